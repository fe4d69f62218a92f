"""``PUT /vcf``: annotate an uploaded VCF with VRS ids and register every allele."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from anyvar.annotation import VcfParameters
from anyvar.queueing import ANNOTATE_TASK, INGEST_TASK, LISTED
from anyvar.restapi import latency, runs
from anyvar.restapi.deps import RegistryDep
from anyvar.restapi.schema import RunList, RunProgress, RunStatusResponse, errors

router = APIRouter(tags=["VCF Operations"])

AssemblyQuery = Annotated[
    str, Query(pattern="^(GRCh38|GRCh37)$", description="The reference assembly for the VCF")
]


async def save_upload(upload: UploadFile, prefix: str) -> Path:
    """Copies the (already disk-spooled) upload to a file of ours, off the event loop."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=".vcf")
    try:
        with os.fdopen(fd, "wb") as out:
            await run_in_threadpool(shutil.copyfileobj, upload.file, out, 1 << 20)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def stream_then_forget(path: Path) -> Iterator[bytes]:
    """Streams a file that is already unlinked: nothing is left on disk even if the client
    goes away mid-download (the open handle keeps the data until the response ends)."""
    handle = path.open("rb")
    path.unlink()

    def chunks() -> Iterator[bytes]:
        with handle:
            while chunk := handle.read(1 << 20):
                yield chunk

    return chunks()


def download_name(upload_name: str | None, bgzip: bool) -> str:
    stem = Path(upload_name or "input.vcf").name
    for suffix in (".gz", ".bgz", ".vcf"):
        stem = stem.removesuffix(suffix)
    stem = "".join(c for c in stem if c.isalnum() or c in "._-") or "input"
    return f"{stem}.vrs.vcf" + (".gz" if bgzip else "")


VCF_FILE = {"content": {"text/x-vcf": {}, "application/gzip": {}}}
RunIdQuery = Annotated[
    str | None,
    Query(
        description="Id for an async run (1 to 128 letters, digits, '-' or '_'); default a "
        "new UUID. Reusable once the previous run's result was fetched."
    ),
]
RunIdPath = Annotated[str, PathParam(description="The run's id, as in the 202's Location header")]


@router.put(
    "/vcf",
    operation_id="annotate_vcf",
    response_model=None,
    responses={
        200: {**VCF_FILE, "description": "The annotated VCF (sync)"},
        202: {
            "model": RunStatusResponse,
            "description": "Async run submitted; headers Location (poll it) and Retry-After",
        },
        **errors(400, 422, 503, 507),
    },
)
async def annotate_vcf(
    request: Request,
    registry: RegistryDep,
    vcf: Annotated[UploadFile, File(description="VCF to register and annotate")],
    for_ref: Annotated[bool, Query(description="Also compute the REF allele's id")] = True,
    allow_async_write: Annotated[
        bool, Query(description="Answer before the alleles are stored (sync only)")
    ] = False,
    assembly: AssemblyQuery = "GRCh38",
    add_vrs_attributes: Annotated[
        bool, Query(description="Also write VRS_Starts, VRS_Ends, VRS_States, …")
    ] = False,
    run_async: Annotated[
        bool, Query(description="Answer 202 at once and run on a Celery worker")
    ] = False,
    run_id: RunIdQuery = None,
    require_validation: Annotated[
        bool, Query(description="A REF that does not match the reference gets VRS_Error")
    ] = True,
    output_compression: Annotated[
        Literal["none", "bgzip"], Query(description="none: plain VCF; bgzip: BGZF-compressed")
    ] = "none",
) -> StreamingResponse:
    """Annotate a VCF (plain, gzip or bgzip) with VRS ids and register every allele; with
    ``run_async`` answer 202 at once and run on a Celery worker (poll ``GET /vcf/{run_id}``)."""
    if run_id:  # a malformed one is refused even when it would not be used
        runs.check_run_id(run_id)
    parameters = VcfParameters(
        assembly=assembly,
        for_ref=for_ref,
        allow_async_write=allow_async_write,
        add_vrs_attributes=add_vrs_attributes,
        require_validation=require_validation,
        output_compression=output_compression,
    )
    if run_async:
        return await runs.submit(
            request,
            kind="vcf",
            result="vcf.gz" if output_compression == "bgzip" else "vcf",
            task_name=ANNOTATE_TASK,
            run_id=run_id,
            upload=vcf,
            task_kwargs=parameters.model_dump(),
            ids_per_record=2 if for_ref else 1,
        )
    in_path = await save_upload(vcf, "anyvar-in-")
    fd, out_name = tempfile.mkstemp(prefix="anyvar-out-", suffix=".vcf")
    os.close(fd)
    out_path = Path(out_name)
    try:
        # The core releases the GIL: the event loop keeps answering while this runs.
        await latency.file_work(
            request,
            registry.annotate,
            in_path,
            out_path,
            # No index: the answer is the file alone.
            parameters.options(tabix=False),
            allow_async_write=allow_async_write,
        )
        body = stream_then_forget(out_path)
    finally:
        in_path.unlink(missing_ok=True)
        out_path.unlink(missing_ok=True)
    bgzip = output_compression == "bgzip"
    return StreamingResponse(
        body,
        media_type="application/gzip" if bgzip else "text/x-vcf",
        headers={
            "Content-Disposition": f'attachment; filename="{download_name(vcf.filename, bgzip)}"'
        },
    )


@router.put("/annotated_vcf", operation_id="ingest_annotated_vcf", response_model=None)
async def ingest_annotated_vcf(
    request: Request,
    registry: RegistryDep,
    vcf: Annotated[UploadFile, File(description="VCF with the six VRS INFO fields")],
    allow_async_write: bool = False,
    assembly: AssemblyQuery = "GRCh38",
    run_async: bool = False,
    require_validation: Annotated[
        bool, Query(description="Recompute every id and return the CSV of conflicts")
    ] = False,
    run_id: str | None = None,
) -> StreamingResponse | JSONResponse:
    """Register the alleles of a VCF that already carries VRS annotations."""
    if run_id:
        runs.check_run_id(run_id)
    if run_async:
        return await runs.submit(
            request,
            kind="annotated_vcf",
            result="csv" if require_validation else "json",
            task_name=INGEST_TASK,
            run_id=run_id,
            upload=vcf,
            task_kwargs={
                "assembly": assembly,
                "allow_async_write": allow_async_write,
                "require_validation": require_validation,
            },
        )
    in_path = await save_upload(vcf, "anyvar-annotated-")
    conflicts = in_path.with_suffix(".conflicts.csv") if require_validation else None
    try:
        summary = await latency.file_work(
            request, registry.ingest, in_path, assembly=assembly, conflicts=conflicts
        )
        body = stream_then_forget(conflicts) if conflicts else None
    finally:
        in_path.unlink(missing_ok=True)
        if conflicts:
            conflicts.unlink(missing_ok=True)
    if body is None:
        return JSONResponse(summary)
    return StreamingResponse(
        body,
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="conflicts.csv"'},
    )


@router.get(
    "/vcf/{run_id}",
    operation_id="get_vcf_run",
    response_model=None,
    responses={
        200: {
            "content": {**VCF_FILE["content"], "text/csv": {}, "application/json": {}},
            "description": "The result: annotated VCF, or the conflicts CSV (or JSON summary) "
            "of /annotated_vcf",
        },
        202: {"model": RunProgress, "description": "Queued or running; header Retry-After"},
        **errors(400, 404, 410, 500),
    },
)
async def get_vcf_run(request: Request, run_id: RunIdPath):
    """The result of an asynchronous run: 202 while it runs, then the annotated VCF (or the
    conflicts CSV of ``/annotated_vcf``), 410 once cancelled, or the failure with the status
    code ``ANYVAR_VCF_ASYNC_FAILURE_STATUS_CODE``."""
    return await runs.poll(request, run_id)


@router.get(
    "/vcf/{run_id}/index",
    operation_id="get_vcf_run_index",
    response_model=None,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The .tbi (or .csi) index of the run's BGZF result",
        },
        **errors(400, 404),
    },
)
async def get_vcf_run_index(request: Request, run_id: RunIdPath):
    """The tabix index of a succeeded run's result, when it was submitted with
    ``output_compression=bgzip`` (one task or spread over workers alike)."""
    return await runs.index(request, run_id)


@router.delete(
    "/vcf/{run_id}",
    operation_id="cancel_vcf_run",
    responses={200: {"model": RunStatusResponse}, **errors(400, 404)},
)
async def cancel_vcf_run(request: Request, run_id: RunIdPath) -> JSONResponse:
    """Cancel an asynchronous run and remove its files."""
    return await runs.cancel(request, run_id)


StateQuery = Annotated[
    Literal[LISTED] | None,
    Query(description="Only runs in this state"),
]
LimitQuery = Annotated[int, Query(ge=1, le=500, description="Runs per page")]
PageQuery = Annotated[
    str | None,
    Query(
        description="next_page_token of the previous page",
        pattern=r"^[0-9.eE+-]+:[A-Za-z0-9_-]{1,128}$",
    ),
]


@router.get(
    "/runs",
    operation_id="list_runs",
    tags=["Runs"],
    response_model=RunList,
    responses=errors(400, 422),
)
@router.get(
    "/vcf", operation_id="list_vcf_runs", response_model=RunList, responses=errors(400, 422)
)
async def list_runs(
    request: Request, state: StateQuery = None, limit: LimitQuery = 50, page_token: PageQuery = None
) -> JSONResponse:
    """Asynchronous runs, newest first, with their state, phase and progress (``GET /vcf``
    is the same list)."""
    return await runs.list_runs(request, state, limit, page_token)
