"""Asynchronous runs: the Celery app (``celery_worker``), run state in Redis (``runs``) and the
shared work directory (``workdir``)."""

from __future__ import annotations

import re

RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)


def valid_run_id(run_id: str) -> bool:
    """The one check of a run id, which names Redis keys, work files and response headers.
    A full match: ``re.match`` with a ``$`` anchor would let a final newline through."""
    return _RUN_ID.fullmatch(run_id) is not None
