"""The tasks of runs on one worker: annotating a VCF, ingesting an annotated one, and
registering a batch of definitions. Each is thin: a typed request in, one call into the
registry (the Rust core), a path out; ``_run`` records the run's outcome."""

from __future__ import annotations

import json
import logging
import os
import time
from functools import cache
from pathlib import Path

import redis
from celery.exceptions import SoftTimeLimitExceeded
from pydantic import BaseModel

from anyvar import metrics
from anyvar.annotation import VcfParameters
from anyvar.exceptions import AnyVarError
from anyvar.queueing import ANNOTATE_TASK, INGEST_TASK, VARIATIONS_TASK, valid_run_id, workdir
from anyvar.queueing.app import celery_app, run_store, settings
from anyvar.queueing.runs import RunStore, failure_of, time_limit_failure
from anyvar.registry import Registry, register_variations
from anyvar.restapi.schema import VariationRequest

log = logging.getLogger(__name__)


@cache
def registry() -> Registry:
    """Opened once per worker process (after the fork: no connection crosses it)."""
    return Registry.open(settings)


def annotation_threads() -> int:
    """Threads for one run: the cores shared among the pool's processes (the worker's
    ``worker_init`` signal tells them how many there are)."""
    return settings.annotation_threads(int(os.environ.get("ANYVAR_WORKER_CONCURRENCY") or 1))


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


class AnnotateVcfRequest(VcfParameters):
    """AnyVar's ``annotate_vcf`` task arguments: its ``PUT /vcf`` parameters and the input."""

    input_file_path: str


class IngestRequest(BaseModel):
    input_file_path: str
    assembly: str = "GRCh38"
    allow_async_write: bool = False
    require_validation: bool = False


class RegisterVariationsRequest(BaseModel):
    input_file_path: str


class Progress:
    """Reports a run's phase and progress to its record a few times a second, and stops the
    run once it no longer runs (``RunCancelled``: cancelled, or failed in another chunk).

    A chunk of a run spread over workers (``index``) reports under fields of its own
    (``done:<i>``...) that the poll sums, so that a chunk run again after its worker was lost
    is counted once; it also ends at the run's soft time limit, counted from the run's start."""

    def __init__(self, store: RunStore, run_id: str, index: int | None = None) -> None:
        self.store, self.run_id, self.index = store, run_id, index
        self.last = 0.0
        self.records_done = 0
        self.in_storing = False
        self.started = None
        if index is not None:
            started = store.client.hget(store.key(run_id), "started_at")
            self.started = float(started or time.time())

    def _field(self, name: str) -> str:
        return name if self.index is None else f"{name}:{self.index}"

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
        status = self._status()  # None: Redis unreachable, go on
        # A chunk's run ends as a whole: cancelled, or failed in another chunk.
        if status == "cancelling" or (self.index is not None and status not in ("running", None)):
            raise RunCancelled
        # A one-task run has Celery's soft limit; a chunk, the time left of its run's.
        if (
            self.started is not None
            and time.time() - self.started > settings.celery_soft_time_limit
        ):
            raise SoftTimeLimitExceeded()

    def records(self, records: int, *_: object) -> None:
        """Annotation: records done (the core's progress callback; its last call, whether due
        or not, has the run's record count)."""
        self.records_done = records
        if self._due():
            self._update(**{self._field("done"): records})
            self._check_cancelled()

    def storing(self, stored: int, rows: int) -> None:
        """Registration: rows (locations and alleles new to the database) committed."""
        if not self.in_storing:
            # Called first when every record is annotated.
            self.in_storing = True
            stored, rows = 0, 0
            if self.index is None:
                self._update(phase="storing")
            self._update(**{self._field("done"): self.records_done})
        self._update(**{self._field("stored"): stored, self._field("to_store"): rows})
        self._check_cancelled()


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
    found = store.start(run_id, input_file_path)
    if found == "replaced":
        # A task of an earlier run under this id (cancelled while queued, its files gone):
        # the run the id names now has a task of its own.
        log.info("skipped a task of a replaced run %s", run_id)
        return None
    if found not in ("queued", "running"):
        # Cancelled while queued, or while its worker was lost: nothing to do and nothing to
        # leave behind.
        workdir.remove(input_file_path)
        store.end(run_id, "cancelled")
        return None
    if found == "running":
        # Delivered again after its worker was lost: what the lost attempt half-wrote goes
        # (found by the fault tests: its .partial output stayed until a sweep).
        workdir.remove(*workdir.output_files_of(store.get(run_id) or {}))
    work_dir = settings.vcf_async_work_dir or Path(input_file_path).parent.parent
    output = workdir.new_path(work_dir, run_id, "output")
    store.set_outputs(run_id, [output])
    store.update(run_id, started_at=f"{time.time():.3f}", done=0, phase="annotating")
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

    def failed(**failure: object) -> None:
        workdir.remove(input_file_path, *workdir.output_files(output))
        # Counted as it is recorded (cancelled, if a client cancelled it meanwhile).
        ended(retrying(store.fail, run_id, **failure) or "failed")

    try:
        summary = work(Path(input_file_path), output, progress)
    except RunCancelled:
        workdir.remove(input_file_path, *workdir.output_files(output))
        retrying(store.end, run_id, "cancelled")
        ended("cancelled")
        return None
    except SoftTimeLimitExceeded:
        failed(**time_limit_failure(settings.celery_soft_time_limit))
        raise
    except (AnyVarError, OSError, ValueError) as e:
        # Bad input or an unusable source: the run fails with the reason, the worker goes on.
        failure = failure_of(e)
        failed(**failure)
        log.warning("run %s failed: %s", run_id, failure["error"])
        return None
    except BaseException as e:
        failed(**failure_of(e))
        raise
    workdir.remove(input_file_path)
    if retrying(store.succeed, run_id, [output]) == "cancelled":
        # Cancelled while its last alleles were being stored.
        workdir.remove(*workdir.output_files(output))
        ended("cancelled")
        return None
    ended("succeeded", summary)
    return str(output)


@celery_app.task(name=ANNOTATE_TASK, bind=True)
def annotate_vcf(self, **kwargs) -> str | None:
    """Annotate and register an uploaded VCF (AnyVar's task name and keyword arguments)."""
    request = AnnotateVcfRequest(**kwargs)

    def work(input_path: Path, output: Path, progress: Progress) -> dict:
        return registry().annotate(
            input_path,
            output,
            request.options(threads=annotation_threads()),
            progress=progress.records,
            storing=progress.storing,
        )

    return _run(self, "vcf", request.input_file_path, work)


@celery_app.task(name=INGEST_TASK, bind=True)
def ingest_annotated_vcf(self, **kwargs) -> str | None:
    """Register the alleles of an annotated VCF; the output is the conflicts CSV (with
    validation) or a JSON summary."""
    request = IngestRequest(**kwargs)

    def work(input_path: Path, output: Path, progress: Progress) -> None:
        progress.storing(0, 0)  # annotated already: the core reads and registers in one pass
        conflicts = output if request.require_validation else None
        summary = registry().ingest(
            input_path,
            assembly=request.assembly,
            conflicts=conflicts,
            progress=progress.records,  # a cancel or the time limit stops it there
        )
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


@celery_app.task(name=VARIATIONS_TASK, bind=True)
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
