"""The Celery worker's entry point: ``celery -A anyvar.queueing.celery_worker:celery_app worker``.

The app (``app``), with the worker's signals, and the tasks it runs: one-worker runs
(``tasks``) and runs spread over many workers (``fanout``). Only the prefork and solo pools
are supported.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from celery import signals

from anyvar.config import available_cores
from anyvar.queueing import workdir
from anyvar.queueing.app import celery_app, run_store, settings

# Imported to register the tasks with the app; their names are AnyVar's, and importable here
# as in AnyVar.
from anyvar.queueing.fanout import annotate_chunk, join_chunks
from anyvar.queueing.tasks import annotate_vcf, ingest_annotated_vcf, register_variations_task

__all__ = [
    "annotate_chunk",
    "annotate_vcf",
    "celery_app",
    "ingest_annotated_vcf",
    "join_chunks",
    "register_variations_task",
]

log = logging.getLogger(__name__)

SUPPORTED_POOLS = ("prefork", "solo")


@signals.worker_init.connect
def _check_pool(sender, **_) -> None:
    pool = sender.pool_cls
    name = pool if isinstance(pool, str) else getattr(pool, "__module__", "").rsplit(".", 1)[-1]
    if name not in SUPPORTED_POOLS:
        message = (
            f"AnyVar supports only the prefork and solo pools (got {name!r}); "
            "start the worker with --pool=prefork or --pool=solo"
        )
        print(f"anyvar: {message}", file=sys.stderr, flush=True)
        os._exit(2)
    concurrency = sender.concurrency if name == "prefork" else 1
    # Inherited by the prefork children, which size their annotation threads from it. The
    # parent itself never annotates, so no thread pool exists yet when it forks.
    os.environ["ANYVAR_WORKER_CONCURRENCY"] = str(
        concurrency if isinstance(concurrency, int) else available_cores()
    )


@signals.worker_ready.connect
def _start_sweeper(**_) -> None:
    work_dir = settings.vcf_async_work_dir
    if work_dir is None:
        return
    period = max(1.0, min(600.0, settings.celery_result_expires / 4))
    grace = min(workdir.GRACE_SECONDS, max(10, settings.celery_result_expires))

    def loop() -> None:
        store = run_store()
        while True:
            try:
                workdir.sweep(work_dir, store, grace)
            except Exception:
                log.exception("sweeping %s failed", work_dir)
            time.sleep(period)

    threading.Thread(target=loop, name="anyvar-sweeper", daemon=True).start()
