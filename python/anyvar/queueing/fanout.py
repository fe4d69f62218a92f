"""One VCF across many workers.

A large upload is cut into ranges of records when it is checked (``_core.check_vcf``). Each
range is a task of a Celery chord: any worker annotates it into a plain part file beside the
input and registers its alleles (registration is idempotent, so a chunk lost with its worker
is simply run again); the chord's body joins the parts in order into the output one run would
write. The run's record (its state, progress summed over chunks, cancellation) is the same
as for a run on one worker."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded

from anyvar import _core
from anyvar.config import available_cores
from anyvar.exceptions import AnyVarError
from anyvar.queueing import CHUNK_TASK, JOIN_TASK, workdir
from anyvar.queueing.app import celery_app, run_store, settings
from anyvar.queueing.runs import RunStore, failure_of, time_limit_failure
from anyvar.queueing.tasks import (
    AnnotateVcfRequest,
    Progress,
    RunCancelled,
    annotation_threads,
    registry,
)

log = logging.getLogger(__name__)


@celery_app.task(name=CHUNK_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def annotate_chunk(self, index: int, range: list, **kwargs) -> str | None:
    """Annotate and register one range of a run's input into its part file; None when the
    run ended meanwhile (the join then has nothing to do)."""
    request = AnnotateVcfRequest(**kwargs)
    run_id = self.request.id.rsplit("-chunk-", 1)[0]
    store = run_store()
    key = store.key(run_id)
    attempts = store.client.hincrby(key, f"attempts:{index}", 1)
    found = store.start(run_id, request.input_file_path)
    if found == "replaced":
        return None  # a chunk of an earlier run under this id: nothing of it is left
    if found not in ("queued", "running"):
        _end_cancelled(store, run_id, request.input_file_path)
        return None
    if attempts > settings.vcf_chunk_attempts:
        store.fail(
            run_id,
            error=f"Chunk {index} of the run was lost with its worker {attempts - 1} times "
            f"(ANYVAR_VCF_CHUNK_ATTEMPTS={settings.vcf_chunk_attempts})",
            error_code="WORKER_LOST_ERROR",
        )
        workdir.remove_chunked_run(request.input_file_path)
        return None
    store.client.hsetnx(key, "started_at", f"{time.time():.3f}")
    store.update(run_id, phase="annotating")
    part = workdir.part_path(request.input_file_path, index)
    progress = Progress(store, run_id, index)
    try:
        registry().annotate(
            Path(request.input_file_path),
            part,
            # Plain parts: the join compresses (and indexes) the run's output once.
            request.options(
                threads=annotation_threads(), range=tuple(range), compression="none", tabix=False
            ),
            progress=progress.records,
            storing=progress.storing,
        )
    except RunCancelled:
        _end_cancelled(store, run_id, request.input_file_path)
        return None
    except SoftTimeLimitExceeded:
        store.fail(run_id, **time_limit_failure(settings.celery_soft_time_limit))
        workdir.remove_chunked_run(request.input_file_path)
        return None
    except BaseException as e:
        # The first chunk to fail ends the run; the others stop at their next progress report.
        if store.fail(run_id, **failure_of(e)) == "failed":
            log.warning("run %s failed in chunk %d: %s", run_id, index, e)
        workdir.remove_chunked_run(request.input_file_path)
        if not isinstance(e, (AnyVarError, OSError, ValueError)):
            raise
        return None
    return str(part)


def _end_cancelled(store: RunStore, run_id: str, input_file_path: str) -> None:
    """A chunk found its run no longer running: it leaves no file behind, and a run being
    cancelled ends cancelled (one that ended otherwise stays as it is)."""
    workdir.remove_chunked_run(input_file_path)
    store.end(run_id, "cancelled")


@celery_app.task(name=JOIN_TASK, bind=True)
def join_chunks(self, parts: list, **kwargs) -> str | None:
    """The chord's body: once every chunk is annotated and its alleles are durable, the parts
    joined in input order are the run's output."""
    request = AnnotateVcfRequest(**kwargs)
    run_id = self.request.id
    store = run_store()

    if store.status(run_id) != "running" or any(p is None for p in parts):
        _end_cancelled(store, run_id, request.input_file_path)
        return None
    if request.output_compression == "none":
        # Plain parts are the output as they are: the poll sends them one after the other,
        # and the run's one serial step (copying them into one file) is not needed.
        workdir.remove_chunk_leftovers(request.input_file_path)
        if store.succeed(run_id, parts) != "succeeded":
            _end_cancelled(store, run_id, request.input_file_path)
        return None
    work_dir = settings.vcf_async_work_dir or Path(request.input_file_path).parent.parent
    output = workdir.new_path(work_dir, run_id, "output")
    store.set_outputs(run_id, [output])
    try:
        # The one serial step of a fanned-out run (BGZF output is compressed here): it takes
        # every core, which the run's chunks have just given up.
        _core.join_parts(
            parts,
            str(output),
            compression=request.output_compression,
            tabix=request.output_compression == "bgzip",
            threads=available_cores(),
        )
    except (AnyVarError, OSError) as e:
        workdir.remove(*workdir.output_files(output))
        store.fail(run_id, **failure_of(e))
        workdir.remove_chunked_run(request.input_file_path)
        return None
    workdir.remove_chunked_run(request.input_file_path)
    if store.succeed(run_id, [output]) != "succeeded":
        workdir.remove(*workdir.output_files(output))  # cancelled while joining
        return None
    return str(output)
