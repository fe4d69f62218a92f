"""Submitting, polling and cancelling asynchronous runs (``run_async=True``)."""

from __future__ import annotations

import math
import os
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from anyvar import _core
from anyvar.annotation import VcfRange
from anyvar.config import Settings
from anyvar.queueing import CANCELLED, valid_run_id, workdir
from anyvar.queueing.runs import RunIdInUse, failure_of, outputs
from anyvar.restapi.errors import ApiError, error_response

# AnyVar's texts, by the kind of run asked for.
ASYNC_MISSING = {
    kind: f"Required modules and/or configurations for asynchronous {what} are missing"
    for kind, what in (
        ("vcf", "VCF annotation"),
        ("annotated_vcf", "VCF ingest"),
        ("variations", "variation registration"),
    )
}
# Media type of each kind of result, by file suffix.
MEDIA_TYPES = {
    "vcf": "text/x-vcf",
    "vcf.gz": "application/gzip",
    "csv": "text/csv",
    "json": "application/json",
}


def _redacted(url: str) -> str:
    """A URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return parts._replace(netloc=netloc).geturl()


def connect(state) -> None:
    """At start-up, when async runs are configured: the Celery app and the run store (so the
    first submission pays nothing extra), both reached once so that a dead broker stops the
    start with its setting named. Celery is imported only then."""
    settings: Settings = state.settings
    state.runs = state.celery = None
    if not settings.async_enabled():
        return
    from anyvar.queueing import app as queueing

    try:
        with queueing.celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=5)
    except Exception as e:
        url = _redacted(settings.celery_broker_url)
        raise OSError(f"cannot reach the broker at CELERY_BROKER_URL={url}: {e}") from None
    store = queueing.run_store()
    try:
        store.client.ping()
    except Exception as e:
        url = _redacted(settings.celery_backend_url)
        raise OSError(f"cannot reach the run store at CELERY_BACKEND_URL={url}: {e}") from None
    state.runs, state.celery = store, queueing


def _queueing(request: Request, kind: str = "vcf"):
    """The run store and Celery; AnyVar's 400 when async runs are not configured, checked at
    each request as AnyVar does (emptying a setting turns them off at once)."""
    state = request.app.state
    missing = state.settings.async_missing()
    if missing is None and getattr(state, "runs", None) is None:
        missing = "the API started without them"
    if missing is not None:
        raise ApiError(400, ASYNC_MISSING[kind], "ASYNC_NOT_CONFIGURED", missing)
    return state.runs, state.celery


def check_run_id(run_id: str) -> str:
    """The one check of a run id a client gives (submit, poll, cancel): it names Redis keys,
    files and the Location header."""
    if not valid_run_id(run_id):
        raise ApiError(
            400,
            "Invalid run_id: use 1 to 128 letters, digits, '-' or '_'",
            "INVALID_RUN_ID",
        )
    return run_id


def not_found(run_id: str) -> JSONResponse:
    """AnyVar's 404 for an unknown (or expired) run, with the error fields of every error."""
    return JSONResponse(
        status_code=404,
        content={
            "run_id": run_id,
            "status": "NOT_FOUND",
            "status_message": "Run not found",
            "error": f"Run {run_id} not found",
            "error_code": "NOT_FOUND",
        },
    )


async def submit(
    request: Request,
    *,
    kind: str,
    result: str,
    task_name: str,
    run_id: str | None,
    upload: UploadFile | None = None,
    body: bytes | None = None,
    task_kwargs: dict[str, Any],
    ids_per_record: int = 1,
    location_prefix: str = "/vcf",
) -> JSONResponse:
    """Stores the input in the work directory, reserves the run id, publishes the task and
    answers 202 with ``Location`` and ``Retry-After``."""
    store, celery = _queueing(request, kind)
    settings: Settings = request.app.state.settings
    run_id = check_run_id(run_id or str(uuid.uuid4()))
    try:
        await run_in_threadpool(store.check_available, run_id)
    except RunIdInUse as e:
        raise ApiError(400, str(e), "RUN_ID_IN_USE", "") from None
    work_dir = settings.vcf_async_work_dir
    try:
        input_path = workdir.new_path(work_dir, run_id, "input")
    except OSError as e:
        raise ApiError(
            503,
            f"The work directory ANYVAR_VCF_ASYNC_WORK_DIR={work_dir} is not usable: {e}",
            "WORK_DIR_ERROR",
        ) from None
    ranges: list[VcfRange] = []
    try:
        if upload is not None:
            await run_in_threadpool(_copy, upload, input_path)
            # The whole file is read here (decompressed, every line checked as the run will):
            # bad input is a 400 now, with the line, as on the sync path, not a failed run.
            # A VCF to annotate is also cut into chunks for the workers, when it is large.
            total, ranges = await run_in_threadpool(
                _core.check_vcf,
                str(input_path),
                settings.limits(),
                settings.annotation_threads(),
                kind == "annotated_vcf",
                settings.vcf_chunk_records if kind == "vcf" else 0,
            )
        else:
            input_path.write_bytes(body or b"")
            total = None
        fields = {
            "kind": kind,
            "result": result,
            "input": input_path,
            "total": total if total is not None else "",
            "chunks": len(ranges) or "",
        }
        old_input, old_outputs = await run_in_threadpool(store.reserve, run_id, fields)
    except RunIdInUse as e:
        input_path.unlink(missing_ok=True)
        raise ApiError(400, str(e), "RUN_ID_IN_USE", "") from None
    except BaseException:
        input_path.unlink(missing_ok=True)
        raise
    # The files of a collected run it replaces.
    workdir.remove(*workdir.run_files({"input": old_input, "outputs": old_outputs}))
    # Celery keeps the replaced run's result under the same id: drop it so it cannot be
    # mistaken for this run's outcome.
    await run_in_threadpool(celery.celery_app.AsyncResult(run_id).forget)
    await run_in_threadpool(
        celery.publish,
        task_name,
        run_id,
        {"input_file_path": str(input_path), **task_kwargs},
        ranges,
    )
    ids = (total or 0) * ids_per_record
    retry_after = max(1, math.ceil(ids / settings.expected_vrs_ids_per_second))
    return JSONResponse(
        status_code=202,
        content={
            "run_id": run_id,
            "status": "PENDING",
            "status_message": f"Run submitted. Check status at {location_prefix}/{run_id}",
        },
        headers={"Location": f"{location_prefix}/{run_id}", "Retry-After": str(retry_after)},
    )


def _copy(upload: UploadFile, path: Path) -> None:
    import shutil

    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, 1 << 20)


def _celery_failure(celery, run_id: str) -> dict[str, Any] | None:
    """A failure Celery recorded but our task could not (hard time limit, lost worker)."""
    result = celery.celery_app.AsyncResult(run_id)
    return failure_of(result.result) if result.state == "FAILURE" else None


WORKER_CHECK_SECONDS = 5.0
"""How long the answer of a worker check is reused: a ping costs a second's wait."""


def _queue_has_worker(state, queue: str) -> bool:
    """Whether a live worker consumes ``queue`` (Celery's ``inspect().active_queues()``,
    answered by every worker within a second); cached a few seconds."""
    cached = getattr(state, "worker_check", None)
    now = time.monotonic()
    if cached and cached[0] == queue and now - cached[1] < WORKER_CHECK_SECONDS:
        return cached[2]
    answers = state.celery.celery_app.control.inspect(timeout=1.0).active_queues() or {}
    live = any(q.get("name") == queue for queues in answers.values() for q in queues or ())
    state.worker_check = (queue, now, live)
    return live


def _summed(run: dict[str, str], field: str) -> int:
    """A progress field: the run's own, or the sum over its chunks (``field:<i>``)."""
    if not run.get("chunks"):
        return int(run.get(field) or 0)
    prefix = field + ":"
    return sum(int(v or 0) for k, v in run.items() if k.startswith(prefix))


def _retry_after(run: dict[str, str], settings: Settings) -> int:
    total = int(run.get("total") or 0)
    done = _summed(run, "done")
    started = float(run.get("started_at") or 0)
    rate = settings.expected_vrs_ids_per_second / 2  # records/s, REF and ALT ids
    if started and done:
        rate = done / max(time.time() - started, 1e-3)
    return max(1, math.ceil(max(total - done, 0) / max(rate, 1)))


def _percent(done: int, total: int) -> float | None:
    return round(100 * min(done, total) / total, 1) if total else None


def describe(run_id: str, run: dict[str, str]) -> dict[str, Any]:
    """A run as the poll and the run list show it. ``state`` is queued, running, succeeded,
    failed or cancelled; ``phase`` is queued, annotating, storing or done, and
    ``phase_percent`` its own progress (records annotated, or rows stored); ``percent`` is the
    share of the input's records annotated (100 once storing starts)."""
    status = run.get("status", "")
    phase = run.get("phase") or ("done" if status in ("succeeded", "failed", "cancelled") else "")
    total = int(run.get("total") or 0)
    done = _summed(run, "done")
    if run.get("chunks") and phase == "annotating" and total and done >= total:
        phase = "storing"  # chunks store as they finish: once all are annotated, it is storing
    if phase == "done":
        percent = phase_percent = 100.0 if status == "succeeded" else _percent(done, total)
    elif phase == "storing":
        rows = _summed(run, "to_store")
        percent, phase_percent = 100.0, _percent(_summed(run, "stored"), rows) or 0.0
    elif phase == "annotating":
        percent = phase_percent = _percent(done, total)
    else:
        percent = phase_percent = 0.0
    return {
        "run_id": run_id,
        "kind": run.get("kind") or None,
        "state": "running" if status == "cancelling" else status,
        "phase": phase or None,
        "phase_percent": phase_percent,
        "percent": percent,
        "records_done": done,
        "records_total": total or None,
        "submitted_at": _iso(run.get("submitted_at")),
        "started_at": _iso(run.get("started_at")),
        "finished_at": _iso(run.get("finished_at")),
        "error": run.get("error") or None,
        "error_code": run.get("error_code") or None,
    }


async def poll(request: Request, run_id: str, location_prefix: str = "/vcf"):
    """The one rule of a poll's status code: 202 while queued or running (with progress);
    200 with the result once it succeeded; 404 for an unknown or expired run; 410 for a run the
    client cancelled (or whose result was removed): nothing went wrong on the server; and
    ``ANYVAR_VCF_ASYNC_FAILURE_STATUS_CODE`` (AnyVar's, default 500) for a failed run, with
    its ``error_code`` (INVALID_VCF with ``line``, TIME_LIMIT_EXCEEDED, WORKER_LOST_ERROR,
    RUN_FAILURE)."""
    check_run_id(run_id)
    store, celery = _queueing(request)
    settings: Settings = request.app.state.settings
    run = await run_in_threadpool(store.get, run_id)
    if run is None or (location_prefix == "/variations" and run.get("kind") != "variations"):
        return not_found(run_id)  # /variations/{id} serves variation runs only
    status = run["status"]
    if status in ("queued", "running", "cancelling"):
        failure = await run_in_threadpool(_celery_failure, celery, run_id)
        if failure is None:
            body = {
                **describe(run_id, run),
                "status": "PENDING",
                "status_message": f"Run not completed. Check status at {location_prefix}/{run_id}",
            }
            waited = time.time() - float(run.get("submitted_at") or time.time())
            if status == "queued" and waited > settings.queued_warning_seconds:
                queue = settings.celery_task_default_queue
                if not await run_in_threadpool(_queue_has_worker, request.app.state, queue):
                    body["warning"] = (
                        f"Queued for {waited:.0f} s and no live worker consumes the queue "
                        f"{queue!r}: start one (celery -A anyvar.queueing.celery_worker:celery_app"
                        " worker)"
                    )
            return JSONResponse(
                status_code=202,
                headers={"Retry-After": str(_retry_after(run, settings))},
                content=body,
            )
        workdir.remove(*workdir.run_files(run))
        await run_in_threadpool(store.fail, run_id, **failure)
        run = await run_in_threadpool(store.get, run_id) or run
        status = run["status"]
    await run_in_threadpool(store.update, run_id, collected=1)
    files = [Path(p) for p in outputs(run)]
    if status == "succeeded" and files and all(p.exists() for p in files):
        suffix = run.get("result") or "vcf"
        media_type = MEDIA_TYPES.get(suffix, "application/octet-stream")
        if len(files) == 1:
            return FileResponse(files[0], media_type=media_type, filename=f"{run_id}.{suffix}")
        return _concatenated(files, media_type, f"{run_id}.{suffix}")
    if status == "cancelled":
        return gone(run_id, "CANCELLED", CANCELLED["error"], CANCELLED["error_code"])
    if run.get("deleted") == "1":
        return gone(run_id, "DELETED", "The run was deleted: its result is removed", "RESULT_GONE")
    if status == "succeeded":
        return gone(run_id, "SUCCESS", "The run's result is no longer available", "RESULT_GONE")
    error, code = run.get("error") or "Run failed", run.get("error_code") or "RUN_FAILURE"
    extra = {"line": int(run["line"])} if run.get("line") else {}
    return error_response(settings.vcf_async_failure_status_code, error, code, **extra)


async def index(request: Request, run_id: str):
    """The tabix (or, for contigs over 2^29 bases, CSI) index of a succeeded run's BGZF
    result, written beside it by the worker; 404 ``NO_INDEX`` saying why there is none."""
    check_run_id(run_id)
    store, _ = _queueing(request)
    run = await run_in_threadpool(store.get, run_id)
    if run is None:
        return not_found(run_id)
    done, files = run["status"] == "succeeded", outputs(run)
    found = workdir.index_of(files[0]) if done and len(files) == 1 else None
    if found is None:
        why = (
            "its result is not bgzip-compressed (submit with output_compression=bgzip)"
            if done
            else f"it is {run['status']}, not succeeded"
        )
        return error_response(404, f"Run {run_id} has no index: {why}", "NO_INDEX")
    suffix = run.get("result") or "vcf"
    return FileResponse(
        found, media_type="application/octet-stream", filename=f"{run_id}.{suffix}{found.suffix}"
    )


def _concatenated(files: list[Path], media_type: str, filename: str) -> StreamingResponse:
    """A result made of parts (a run spread over workers, plain output), sent one part after
    the other: joining them into one file first would be the run's one serial step. All are
    opened first, so a cancel that removes them meanwhile cannot cut the answer short."""
    handles = [p.open("rb") for p in files]
    size = sum(os.fstat(h.fileno()).st_size for h in handles)

    def chunks():
        for handle in handles:
            with handle:
                while chunk := handle.read(1 << 20):
                    yield chunk

    return StreamingResponse(
        chunks(),
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(size),
        },
    )


def gone(run_id: str, status: str, message: str, code: str) -> JSONResponse:
    return JSONResponse(
        status_code=410,
        content={
            "run_id": run_id,
            "status": status,
            "status_message": message,
            "error": message,
            "error_code": code,
        },
    )


async def cancel(request: Request, run_id: str) -> JSONResponse:
    """Cancels a run: a queued one never starts, a running one stops at its next progress
    report (later polls say it was cancelled: 410 ``RUN_CANCELLED``). A finished run is
    deleted: its files go and later polls say its result is gone (410 ``RESULT_GONE``)."""
    check_run_id(run_id)
    store, _ = _queueing(request)
    run = await run_in_threadpool(store.get, run_id) or {}
    found = await run_in_threadpool(store.cancel, run_id)
    if found == "":
        return not_found(run_id)
    if found in ("queued", "succeeded", "failed"):
        # No Celery revoke for a queued run: workers would remember the id and discard a
        # later run reusing it; the task itself skips a run that is no longer queued.
        workdir.remove(*workdir.run_files(run))
    if found in ("succeeded", "failed"):
        status, message = "DELETED", "Run deleted: its result is removed"
    elif found in ("queued", "cancelled"):
        status, message = "CANCELLED", "Run cancelled"
    else:  # running or cancelling: its worker stops at its next progress report
        status, message = "CANCELLED", "Run is being cancelled"
    return JSONResponse(
        status_code=200,
        content={"run_id": run_id, "status": status, "status_message": message},
    )


async def list_runs(
    request: Request, state: str | None, limit: int, page_token: str | None
) -> JSONResponse:
    """Runs, newest first, a page at a time; ``next_page_token`` continues the listing."""
    store, _ = _queueing(request)
    after = None
    if page_token:
        try:
            score, _, member = page_token.partition(":")
            after = (float(score), check_run_id(member))
        except (ValueError, ApiError):
            raise ApiError(422, f"Invalid page_token {page_token!r}", "INVALID_REQUEST") from None
    # "running" includes runs being cancelled, as their state says.
    states = ("running", "cancelling") if state == "running" else (state,) if state else None
    found, last = await run_in_threadpool(store.list, states, limit, after)
    return JSONResponse(
        {
            "runs": [describe(run_id, run) for run_id, run in found],
            "next_page_token": f"{last[0]!r}:{last[1]}" if last else None,
        }
    )


def _iso(epoch: str | None) -> str | None:
    if not epoch:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(float(epoch), UTC).isoformat()
