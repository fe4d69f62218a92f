"""Asynchronous runs: the Celery app (``app``) and its tasks (``tasks``, ``fanout``) with the
worker's entry point (``celery_worker``), run state in Redis (``runs``) and the shared work
directory (``workdir``). This module imports no Celery: the API names tasks from here."""

from __future__ import annotations

import re

RUN_ID_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
_RUN_ID = re.compile(RUN_ID_PATTERN)


def valid_run_id(run_id: str) -> bool:
    """The one check of a run id, which names Redis keys, work files and response headers.
    A full match: ``re.match`` with a ``$`` anchor would let a final newline through."""
    return _RUN_ID.fullmatch(run_id) is not None


# Task names: AnyVar's (``anyvar.queueing.celery_worker.…``), kept where the tasks moved, so
# that runs published by AnyVar's own clients are served, and ours beside them.
ANNOTATE_TASK = "anyvar.queueing.celery_worker.annotate_vcf"
INGEST_TASK = "anyvar.queueing.celery_worker.ingest_annotated_vcf"
VARIATIONS_TASK = "anyvar.queueing.celery_worker.register_variations"
CHUNK_TASK = "anyvar.queueing.celery_worker.annotate_chunk"
JOIN_TASK = "anyvar.queueing.celery_worker.join_chunks"

# A run's record (queueing/runs.py): its states, of which ``cancelling`` is shown to clients as
# ``running`` (they list and poll the rest), its kinds and the phases its progress goes through.
STATES = ("queued", "running", "cancelling", "succeeded", "failed", "cancelled")
ACTIVE = ("queued", "running", "cancelling")
LISTED = tuple(s for s in STATES if s != "cancelling")
KINDS = ("vcf", "annotated_vcf", "variations")
PHASES = ("queued", "annotating", "storing", "done")
"""Where a run is: waiting for a worker, annotating records, storing alleles, finished (with
any outcome)."""
CANCELLED = {"error": "Run was cancelled", "error_code": "RUN_CANCELLED"}
"""What a cancelled run's record says."""
