"""The Celery app: ``celery -A anyvar.queueing.celery_worker:celery_app worker``.

Configured from the environment (AnyVar's ``CELERY_*`` variables and defaults). Tasks are thin:
a typed request in, one call into the registry (the Rust core), a path out. Only the prefork
and solo pools are supported.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from functools import cache
from pathlib import Path

import redis
from celery import Celery, signals
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import BaseModel

from anyvar import _core, metrics
from anyvar.config import available_cores, cannot_start, get_settings
from anyvar.exceptions import AnyVarError, SettingsError, StorageError, VcfFormatError
from anyvar.queueing import valid_run_id, workdir
from anyvar.queueing.runs import RunStore
from anyvar.registry import Registry, register_variations
from anyvar.restapi.schema import VariationRequest

log = logging.getLogger(__name__)
try:
    settings = get_settings()
except SettingsError as e:  # at import: `celery -A …celery_worker:celery_app worker`
    cannot_start(e)

celery_app = Celery(
    "anyvar", broker=settings.celery_broker_url, backend=settings.celery_backend_url
)
celery_app.conf.update(
    task_default_queue=settings.celery_task_default_queue,
    event_queue_prefix=settings.celery_event_queue_prefix,
    timezone=settings.celery_timezone,
    result_expires=settings.celery_result_expires,
    broker_transport_options={
        "visibility_timeout": settings.celery_broker_transport_options_visibility_timeout
    },
    task_acks_late=settings.celery_task_acks_late,
    task_reject_on_worker_lost=settings.celery_task_reject_on_worker_lost,
    worker_prefetch_multiplier=settings.celery_worker_prefetch_multiplier,
    task_time_limit=settings.celery_task_time_limit,
    # The key Celery reads (AnyVar set `task_soft_time_limit` under another name, so it was
    # silently ignored there). Celery's prefork pool arms the hard timer only when the soft one
    # fires, so a soft limit at or above the hard one would disable the hard limit: drop it.
    task_soft_time_limit=(
        settings.celery_soft_time_limit
        if settings.celery_soft_time_limit < settings.celery_task_time_limit
        else None
    ),
    worker_send_task_events=settings.celery_worker_send_task_events,
    task_track_started=True,
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
)

SUPPORTED_POOLS = ("prefork", "solo")


def run_store() -> RunStore:
    return RunStore.from_url(
        settings.celery_backend_url,
        result_expires=settings.celery_result_expires,
        active_ttl=settings.celery_result_expires
        + settings.celery_task_time_limit
        + settings.celery_broker_transport_options_visibility_timeout,
    )


@cache
def registry() -> Registry:
    """Opened once per worker process (after the fork: no connection crosses it)."""
    return Registry.open(settings)


def annotation_threads() -> int:
    """Threads for one run: the cores shared among the pool's processes, so that
    concurrency × threads never oversubscribes the machine (``ANYVAR_THREADS`` overrides)."""
    if settings.threads:
        return settings.threads
    concurrency = int(os.environ.get("ANYVAR_WORKER_CONCURRENCY", "1") or 1)
    return max(1, available_cores() // max(1, concurrency))


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


class RunCancelled(Exception):
    pass


REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
RECORD_RETRY_SECONDS = 120
"""How long a worker keeps trying to record a run's outcome while Redis is unreachable."""


def retrying(f, *args, **kwargs):
    """``f(*args, **kwargs)`` (a write of a run's record), tried again every second while Redis
    is unreachable: a run that did its work must not be lost because Redis was restarting when
    it ended (found by the fault tests: the run failed with "Connection refused")."""
    deadline = time.monotonic() + RECORD_RETRY_SECONDS
    while True:
        try:
            return f(*args, **kwargs)
        except REDIS_DOWN as e:
            if time.monotonic() > deadline:
                raise
            log.warning("Redis is unreachable, recording the run again in 1 s: %s", e)
            time.sleep(1)


class AnnotateVcfRequest(BaseModel):
    input_file_path: str
    assembly: str = "GRCh38"
    for_ref: bool = True
    allow_async_write: bool = False
    add_vrs_attributes: bool = False
    require_validation: bool = True
    output_compression: str = "none"


class IngestRequest(BaseModel):
    input_file_path: str
    assembly: str = "GRCh38"
    allow_async_write: bool = False
    require_validation: bool = False


class RegisterVariationsRequest(BaseModel):
    input_file_path: str


class Progress:
    """Reports a run's phase and progress to its record a few times a second, and stops the
    run (``RunCancelled``) once it is being cancelled."""

    def __init__(self, store: RunStore, run_id: str) -> None:
        self.store, self.run_id = store, run_id
        self.last = 0.0
        self.records_done = 0
        self.in_storing = False

    def _due(self) -> bool:
        now = time.monotonic()
        if now - self.last < 0.25:
            return False
        self.last = now
        return True

    def _status(self) -> str | None:
        """The run's status; None while Redis is unreachable (the run goes on)."""
        try:
            return self.store.status(self.run_id)
        except REDIS_DOWN as e:
            log.warning("run %s: Redis is unreachable, going on: %s", self.run_id, e)
            return None

    def _update(self, **fields: object) -> None:
        """A progress report; skipped while Redis is unreachable: progress is only shown, and
        a Redis restart must not fail the run (the next report, or the outcome, is written)."""
        try:
            self.store.update(self.run_id, **fields)
        except REDIS_DOWN as e:
            log.warning("run %s: Redis is unreachable, progress not reported: %s", self.run_id, e)

    def _check_cancelled(self) -> None:
        if self._status() == "cancelling":
            raise RunCancelled

    def records(self, records: int, *_: object) -> None:
        """Annotation: records done (the core's progress callback; its last call, whether due
        or not, has the run's record count)."""
        self.records_done = records
        if self._due():
            self._update(done=records)
            self._check_cancelled()

    def storing(self, stored: int, rows: int) -> None:
        """Registration: rows (locations and alleles new to the database) committed."""
        if not self.in_storing:
            # Called first when every record is annotated.
            self.in_storing = True
            self._update(phase="storing", stored=0, to_store=0, done=self.records_done)
        else:
            self._update(stored=stored, to_store=rows)
        self._check_cancelled()


def _failure(e: BaseException) -> dict[str, object]:
    """What a failed run's record says: the error, its code, and the line for bad input."""
    if isinstance(e, VcfFormatError):
        return {"error": f"Invalid VCF: {e}", "error_code": "INVALID_VCF", "line": e.line}
    if isinstance(e, StorageError):
        # The database went away mid-run: the sync path's 503 code and words, so a client
        # can tell it from a fault of the run (resubmitting completes it: registration is
        # idempotent).
        return {"error": f"Storage unavailable: {e}", "error_code": "STORAGE_ERROR"}
    return {"error": str(e) or type(e).__name__, "error_code": "RUN_FAILURE"}


def _run(task, kind: str, input_file_path: str, work) -> str | None:
    """Runs ``work(input, output, progress)`` as run ``task.request.id`` and records the
    outcome: the run's state, the output path, or the error and its code."""
    run_id = task.request.id
    store = run_store()
    if not valid_run_id(run_id):
        # Published by another client with an id we would never have accepted: it names
        # files and keys, so it is refused outright.
        workdir.remove(input_file_path)
        log.warning("refused a task with an invalid run id %r", run_id)
        return None
    if store.get(run_id) is None:
        # Published by another client (AnyVar's task name and arguments): record it here.
        store.reserve(run_id, {"kind": kind, "input": input_file_path})
    found = store.transition(run_id, "running", ("queued", "running"))
    if found not in ("queued", "running"):
        # Cancelled while queued, or while its worker was lost: nothing to do and nothing to
        # leave behind.
        workdir.remove(input_file_path)
        if found == "cancelling":
            store.finish(run_id, "cancelled", error="Run was cancelled", error_code="RUN_CANCELLED")
        return None
    if found == "running":
        # Delivered again after its worker was lost: what the lost attempt half-wrote goes
        # (found by the fault tests: its .partial output stayed until a sweep).
        lost = store.client.hget(store.key(run_id), "output")
        if lost:
            workdir.remove(*workdir.run_files({"output": lost}))
    work_dir = settings.vcf_async_work_dir or Path(input_file_path).parent.parent
    output = workdir.new_path(work_dir, run_id, "output")
    store.update(run_id, started_at=f"{time.time():.3f}", output=output, done=0, phase="annotating")
    progress = Progress(store, run_id)
    started = time.monotonic()

    def ended(outcome: str, summary: dict | None = None) -> None:
        # The run's figures for GET /metrics (kept in Redis: the API renders them).
        s = summary or {"records": progress.records_done}
        metrics.record_run(
            store.client,
            kind=kind,
            outcome=outcome,
            seconds=time.monotonic() - started,
            records=s.get("records", 0),
            alleles=s.get("alleles", 0),
            stored=s.get("stored", 0),
        )

    def finish(status: str, **fields: object) -> None:
        retrying(store.finish, run_id, status, **fields)

    try:
        summary = work(Path(input_file_path), output, progress)
        if retrying(store.status, run_id) == "cancelling":
            raise RunCancelled  # cancelled while its last alleles were being stored
    except RunCancelled:
        workdir.remove(input_file_path, *workdir.output_files(output))
        finish("cancelled", error="Run was cancelled", error_code="RUN_CANCELLED")
        ended("cancelled")
        return None
    except SoftTimeLimitExceeded:
        workdir.remove(input_file_path, *workdir.output_files(output))
        ended("failed")
        finish(
            "failed",
            error=f"Run exceeded the soft time limit of {settings.celery_soft_time_limit} s",
            error_code="TIME_LIMIT_EXCEEDED",
        )
        raise
    except (AnyVarError, OSError, ValueError) as e:
        # Bad input or an unusable source: the run fails with the reason, the worker goes on.
        workdir.remove(input_file_path, *workdir.output_files(output))
        failure = _failure(e)
        finish("failed", **failure)
        ended("failed")
        log.warning("run %s failed: %s", run_id, failure["error"])
        return None
    except BaseException as e:
        workdir.remove(input_file_path, *workdir.output_files(output))
        finish("failed", **_failure(e))
        ended("failed")
        raise
    workdir.remove(input_file_path)
    ended("succeeded", summary)
    finish("succeeded", output=output)
    return str(output)


@celery_app.task(name="anyvar.queueing.celery_worker.annotate_vcf", bind=True)
def annotate_vcf(self, **kwargs) -> str | None:
    """Annotate and register an uploaded VCF (AnyVar's task name and keyword arguments)."""
    request = AnnotateVcfRequest(**kwargs)

    def work(input_path: Path, output: Path, progress: Progress) -> dict:
        return registry().annotate(
            input_path,
            output,
            assembly=request.assembly,
            for_ref=request.for_ref,
            vrs_attributes=request.add_vrs_attributes,
            require_validation=request.require_validation,
            compression=request.output_compression,
            # A BGZF result comes with its index (GET /vcf/{run_id}/index).
            tabix=request.output_compression == "bgzip",
            wait_for_storage=True,
            threads=annotation_threads(),
            progress=progress.records,
            storing=progress.storing if registry().storage is not None else None,
        )

    return _run(self, "vcf", request.input_file_path, work)


# --- one VCF across many workers ---------------------------------------------------------------
#
# A large upload is cut into ranges of records when it is checked (``_core.check_vcf``). Each
# range is a task of a Celery chord: any worker annotates it into a plain part file beside the
# input and registers its alleles (registration is idempotent, so a chunk lost with its worker
# is simply run again); the chord's body joins the parts in order into the output one run would
# write. The run's record (its state, progress summed over chunks, cancellation) is the same
# as for a run on one worker.

CHUNK_TASK = "anyvar.queueing.celery_worker.annotate_chunk"
JOIN_TASK = "anyvar.queueing.celery_worker.join_chunks"


def publish(task_name: str, run_id: str, kwargs: dict, ranges: list) -> None:
    """Sends run ``run_id``: one task, or a chord of chunk tasks and their join when the input
    was cut into ``ranges``. The task (or the join) has the run's id."""
    if not ranges:
        celery_app.send_task(task_name, kwargs=kwargs, task_id=run_id)
        return
    from celery import chord

    chunks = [
        celery_app.signature(CHUNK_TASK, kwargs={**kwargs, "index": i, "range": list(r)}).set(
            task_id=f"{run_id}-chunk-{i}"
        )
        for i, r in enumerate(ranges)
    ]
    join = celery_app.signature(JOIN_TASK, kwargs=kwargs).set(task_id=run_id)
    chord(chunks)(join)


def part_path(input_file_path: str, index: int) -> Path:
    """A chunk's part: beside the input, named after the run (the sweeper keeps it while the
    run is active and removes it after)."""
    return Path(f"{input_file_path}.part-{index}")


def remove_leftovers(input_file_path: str) -> None:
    """The input and what a killed chunk left half-written (the core's temporary
    ``.<part>.<pid>.<n>.partial``)."""
    path = Path(input_file_path)
    workdir.remove(path, *path.parent.glob(f".{path.name}.part-*.partial"))


def remove_run_files(input_file_path: str) -> None:
    """Every file of a run spread over workers: input, leftovers and its chunks' parts."""
    path = Path(input_file_path)
    remove_leftovers(input_file_path)
    workdir.remove(*path.parent.glob(f"{path.name}.part-*"))


class ChunkProgress(Progress):
    """A chunk's share of its run's progress, under fields of its own (``done:<i>``...) that
    the poll sums, so that a chunk run again after its worker was lost is counted once."""

    def __init__(self, store: RunStore, run_id: str, index: int) -> None:
        super().__init__(store, run_id)
        self.index = index
        self.started = float(store.client.hget(store.key(run_id), "started_at") or time.time())

    def _check_cancelled(self) -> None:
        # A run ends as a whole: cancelled, failed in another chunk, or over its time limit.
        status = self._status()
        if status not in ("running", None):  # None: Redis unreachable, go on
            raise RunCancelled
        if time.time() - self.started > settings.celery_soft_time_limit:
            raise SoftTimeLimitExceeded()

    def records(self, records: int, *_: object) -> None:
        self.records_done = records
        if self._due():
            self._update(**{f"done:{self.index}": records})
            self._check_cancelled()

    def storing(self, stored: int, rows: int) -> None:
        i = self.index
        if not self.in_storing:
            self.in_storing = True
            stored, rows = 0, 0
            self._update(**{f"done:{i}": self.records_done})
        self._update(**{f"stored:{i}": stored, f"to_store:{i}": rows})
        self._check_cancelled()


@celery_app.task(name=CHUNK_TASK, bind=True, acks_late=True, reject_on_worker_lost=True)
def annotate_chunk(self, index: int, range: list, **kwargs) -> str | None:
    """Annotate and register one range of a run's input into its part file; None when the
    run ended meanwhile (the join then has nothing to do)."""
    request = AnnotateVcfRequest(**kwargs)
    run_id = self.request.id.rsplit("-chunk-", 1)[0]
    store = run_store()
    key = store.key(run_id)
    attempts = store.client.hincrby(key, f"attempts:{index}", 1)
    if store.transition(run_id, "running", ("queued", "running")) not in ("queued", "running"):
        _end_cancelled(store, run_id, request.input_file_path)
        return None
    if attempts > settings.vcf_chunk_attempts:
        store.finish(
            run_id,
            "failed",
            error=f"Chunk {index} of the run was lost with its worker {attempts - 1} times "
            f"(ANYVAR_VCF_CHUNK_ATTEMPTS={settings.vcf_chunk_attempts})",
            error_code="WORKER_LOST_ERROR",
        )
        remove_run_files(request.input_file_path)
        return None
    store.client.hsetnx(key, "started_at", f"{time.time():.3f}")
    store.update(run_id, phase="annotating")
    part = part_path(request.input_file_path, index)
    progress = ChunkProgress(store, run_id, index)
    try:
        registry().annotate(
            Path(request.input_file_path),
            part,
            assembly=request.assembly,
            for_ref=request.for_ref,
            vrs_attributes=request.add_vrs_attributes,
            require_validation=request.require_validation,
            compression="none",
            wait_for_storage=True,
            threads=annotation_threads(),
            progress=progress.records,
            storing=progress.storing if registry().storage is not None else None,
            range=tuple(range),
        )
    except RunCancelled:
        _end_cancelled(store, run_id, request.input_file_path)
        return None
    except SoftTimeLimitExceeded:
        if store.transition(run_id, "failed", ("running",)) == "running":
            store.finish(
                run_id,
                "failed",
                error=f"Run exceeded the soft time limit of {settings.celery_soft_time_limit} s",
                error_code="TIME_LIMIT_EXCEEDED",
            )
        remove_run_files(request.input_file_path)
        return None
    except BaseException as e:
        # The first chunk to fail ends the run; the others stop at their next progress report.
        found = store.transition(run_id, "failed", ("running",))
        if found == "running":
            store.finish(run_id, "failed", **_failure(e))
            log.warning("run %s failed in chunk %d: %s", run_id, index, e)
        _end_cancelled(store, run_id, request.input_file_path)
        if not isinstance(e, (AnyVarError, OSError, ValueError)):
            raise
        return None
    return str(part)


def _end_cancelled(store: RunStore, run_id: str, input_file_path: str) -> None:
    """A chunk found its run no longer running: it leaves no file behind, and a run being
    cancelled is recorded as cancelled."""
    remove_run_files(input_file_path)
    if store.transition(run_id, "cancelled", ("cancelling",)) == "cancelling":
        store.finish(run_id, "cancelled", error="Run was cancelled", error_code="RUN_CANCELLED")


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
        remove_leftovers(request.input_file_path)
        if store.transition(run_id, "succeeded", ("running",)) != "running":
            _end_cancelled(store, run_id, request.input_file_path)
            return None
        store.finish(run_id, "succeeded", parts=json.dumps(parts))
        return None
    work_dir = settings.vcf_async_work_dir or Path(request.input_file_path).parent.parent
    output = workdir.new_path(work_dir, run_id, "output")
    store.update(run_id, output=output)
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
        store.finish(run_id, "failed", **_failure(e))
        remove_run_files(request.input_file_path)
        return None
    remove_run_files(request.input_file_path)
    if store.transition(run_id, "succeeded", ("running",)) != "running":
        workdir.remove(*workdir.output_files(output))  # cancelled while joining
        _end_cancelled(store, run_id, request.input_file_path)
        return None
    store.finish(run_id, "succeeded", output=output)
    return str(output)


@celery_app.task(name="anyvar.queueing.celery_worker.ingest_annotated_vcf", bind=True)
def ingest_annotated_vcf(self, **kwargs) -> str | None:
    """Register the alleles of an annotated VCF; the output is the conflicts CSV (with
    validation) or a JSON summary."""
    request = IngestRequest(**kwargs)

    def work(input_path: Path, output: Path, progress: Progress) -> None:
        progress.storing(0, 0)  # annotated already: the core reads and registers in one pass
        conflicts = output if request.require_validation else None
        summary = registry().ingest(input_path, assembly=request.assembly, conflicts=conflicts)
        if conflicts is None:
            # AnyVar's body of a finished registration, with our counts beside it.
            done = {
                "run_id": self.request.id,
                "status": "SUCCESS",
                "status_message": "VCF registration complete",
            }
            output.write_text(json.dumps({**done, **summary}))

    return _run(self, "annotated_vcf", request.input_file_path, work)


VARIATIONS_BATCH = 1000


@celery_app.task(name="anyvar.queueing.celery_worker.register_variations", bind=True)
def register_variations_task(self, **kwargs) -> str | None:
    """Translate and register a JSON list of variation requests; the output is the JSON list
    of answers, in order."""
    request = RegisterVariationsRequest(**kwargs)

    def work(input_path: Path, output: Path, progress: Progress) -> dict[str, int]:
        requests = [VariationRequest(**r) for r in json.loads(input_path.read_text())]
        # In batches: one bulk registration each, and progress between them.
        answers: list[str] = []
        summary = {"records": 0, "alleles": 0, "stored": 0}
        for start in range(0, len(requests), VARIATIONS_BATCH):
            batch, figures = register_variations(
                registry(), requests[start : start + VARIATIONS_BATCH]
            )
            answers += batch
            summary = {k: summary[k] + figures[k] for k in summary}
            progress.records(len(answers))
        output.write_text(f"[{','.join(answers)}]")
        return summary

    return _run(self, "variations", request.input_file_path, work)
