"""Submitting, polling and cancelling asynchronous runs (``run_async=True``)."""

from __future__ import annotations

import math
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool

from anyvar import _core
from anyvar.config import Settings
from anyvar.restapi.errors import ApiError, error_response

ASYNC_MISSING = "Required modules and/or configurations for asynchronous VCF annotation are missing"
# Media type of each kind of result, by file suffix.
MEDIA_TYPES = {
    "vcf": "text/x-vcf",
    "vcf.gz": "application/gzip",
    "csv": "text/csv",
    "json": "application/json",
}


def connect(state) -> None:
    """At start-up, when async runs are configured: the Celery app and the run store (so the
    first submission pays nothing extra). Celery is imported only then."""
    if state.settings.async_enabled():
        from anyvar.queueing import celery_worker

        state.runs = celery_worker.run_store()
        state.runs.client.ping()
        state.celery = celery_worker
    else:
        state.runs = state.celery = None


def _queueing(request: Request):
    state = request.app.state
    if getattr(state, "runs", None) is None:
        raise ApiError(400, ASYNC_MISSING)
    return state.runs, state.celery


def _check_run_id(run_id: str | None) -> str:
    from anyvar.queueing.runs import RUN_ID

    run_id = run_id or str(uuid.uuid4())
    if not RUN_ID.match(run_id):
        raise ApiError(
            400,
            "Invalid run_id: use 1 to 128 letters, digits, '-' or '_'",
            "INVALID_RUN_ID",
        )
    return run_id


def _count(path: Path) -> int | None:
    try:
        return _core.count_records(str(path))
    except Exception:
        return None  # not a VCF: the run will fail and say why


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
    from anyvar.queueing import workdir
    from anyvar.queueing.runs import RunIdInUse

    store, celery = _queueing(request)
    settings: Settings = request.app.state.settings
    run_id = _check_run_id(run_id)
    try:
        await run_in_threadpool(store.check_available, run_id)
    except RunIdInUse as e:
        raise ApiError(400, str(e)) from None
    input_path = workdir.new_path(settings.vcf_async_work_dir, run_id, "input")
    try:
        if upload is not None:
            await run_in_threadpool(_copy, upload, input_path)
            total = await run_in_threadpool(_count, input_path)
        else:
            input_path.write_bytes(body or b"")
            total = None
        fields = {
            "kind": kind,
            "result": result,
            "input": input_path,
            "total": total if total is not None else "",
        }
        old_input, old_output = await run_in_threadpool(store.reserve, run_id, fields)
    except RunIdInUse as e:
        input_path.unlink(missing_ok=True)
        raise ApiError(400, str(e)) from None
    except BaseException:
        input_path.unlink(missing_ok=True)
        raise
    workdir.remove(old_input, old_output)  # a collected run this one replaces
    # Celery keeps the replaced run's result under the same id: drop it so it cannot be
    # mistaken for this run's outcome.
    await run_in_threadpool(celery.celery_app.AsyncResult(run_id).forget)
    await run_in_threadpool(
        celery.celery_app.send_task,
        task_name,
        kwargs={"input_file_path": str(input_path), **task_kwargs},
        task_id=run_id,
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


def _celery_failure(celery, run_id: str) -> tuple[str, str] | None:
    """A failure Celery recorded but our task could not (hard time limit, lost worker)."""
    result = celery.celery_app.AsyncResult(run_id)
    if result.state != "FAILURE":
        return None
    exc = result.result
    name = type(exc).__name__
    text = str(exc) or name
    code = {
        "TimeLimitExceeded": "TIME_LIMIT_EXCEEDED",
        "SoftTimeLimitExceeded": "TIME_LIMIT_EXCEEDED",
        "WorkerLostError": "WORKER_LOST_ERROR",
    }.get(name, "RUN_FAILURE")
    return text, code


def _retry_after(run: dict[str, str], settings: Settings) -> int:
    total = int(run.get("total") or 0)
    done = int(run.get("done") or 0)
    started = float(run.get("started_at") or 0)
    rate = settings.expected_vrs_ids_per_second / 2  # records/s, REF and ALT ids
    if started and done:
        rate = done / max(time.time() - started, 1e-3)
    return max(1, math.ceil(max(total - done, 0) / max(rate, 1)))


async def poll(request: Request, run_id: str, location_prefix: str = "/vcf"):
    """202 while queued or running, the result when done, the failure with its code."""
    store, celery = _queueing(request)
    settings: Settings = request.app.state.settings
    run = await run_in_threadpool(store.get, run_id)
    if run is None:
        return JSONResponse(
            status_code=404,
            content={"run_id": run_id, "status": "NOT_FOUND", "status_message": "Run not found"},
        )
    status = run["status"]
    if status in ("queued", "running", "cancelling"):
        failure = await run_in_threadpool(_celery_failure, celery, run_id)
        if failure is None:
            total = int(run.get("total") or 0)
            done = int(run.get("done") or 0)
            return JSONResponse(
                status_code=202,
                headers={"Retry-After": str(_retry_after(run, settings))},
                content={
                    "run_id": run_id,
                    "status": "PENDING",
                    "status_message": (
                        f"Run not completed. Check status at {location_prefix}/{run_id}"
                    ),
                    "state": "queued" if status == "queued" else "running",
                    "records_done": done,
                    "records_total": total or None,
                    "percent": round(100 * done / total, 1) if total else None,
                    "submitted_at": _iso(run.get("submitted_at")),
                    "started_at": _iso(run.get("started_at")),
                },
            )
        from anyvar.queueing import workdir

        error, code = failure
        workdir.remove(run.get("input"), run.get("output"))
        await run_in_threadpool(store.finish, run_id, "failed", error=error, error_code=code)
        run = {**run, "status": "failed", "error": error, "error_code": code}
        status = "failed"
    await run_in_threadpool(store.update, run_id, collected=1)
    if status == "succeeded" and run.get("output") and Path(run["output"]).exists():
        suffix = run.get("result") or "vcf"
        return FileResponse(
            run["output"],
            media_type=MEDIA_TYPES.get(suffix, "application/octet-stream"),
            filename=f"{run_id}.{suffix}",
        )
    if status == "succeeded":
        error, code = "The run's result is no longer available", "RUN_FAILURE"
    else:
        error, code = run.get("error") or "Run failed", run.get("error_code") or "RUN_FAILURE"
    return error_response(settings.vcf_async_failure_status_code, error, code)


async def cancel(request: Request, run_id: str) -> JSONResponse:
    """Cancels a run: a queued one never starts, a running one stops at its next progress
    report, a finished one loses its files. Later polls say it was cancelled."""
    from anyvar.queueing import workdir

    store, _ = _queueing(request)
    found = await run_in_threadpool(
        store.transition, run_id, "cancelled", ("queued", "succeeded", "failed")
    )
    if found == "":
        return JSONResponse(
            status_code=404,
            content={"run_id": run_id, "status": "NOT_FOUND", "status_message": "Run not found"},
        )
    if found == "running":
        await run_in_threadpool(store.transition, run_id, "cancelling", ("running",))
        message = "Run is being cancelled"
    else:
        run = await run_in_threadpool(store.get, run_id) or {}
        workdir.remove(run.get("input"), run.get("output"))
        await run_in_threadpool(
            store.update, run_id, error="Run was cancelled", error_code="RUN_CANCELLED"
        )
        # No Celery revoke: workers would remember the id and discard a later run reusing it;
        # the task itself skips a run that is no longer queued.
        message = "Run cancelled"
    return JSONResponse(
        status_code=200,
        content={"run_id": run_id, "status": "CANCELLED", "status_message": message},
    )


def _iso(epoch: str | None) -> str | None:
    if not epoch:
        return None
    from datetime import UTC, datetime

    return datetime.fromtimestamp(float(epoch), UTC).isoformat()
