"""``PUT /vcf``: annotate an uploaded VCF with VRS ids and register every allele."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from anyvar.exceptions import RequiredAnnotationsError
from anyvar.restapi import runs
from anyvar.restapi.deps import RegistryDep

router = APIRouter(tags=["VCF Operations"])

ASYNC_MISSING = "Required modules and/or configurations for asynchronous VCF annotation are missing"
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


@router.put("/vcf", operation_id="annotate_vcf", response_model=None)
async def annotate_vcf(
    request: Request,
    registry: RegistryDep,
    vcf: Annotated[UploadFile, File(description="VCF to register and annotate")],
    for_ref: bool = True,
    allow_async_write: bool = False,
    assembly: AssemblyQuery = "GRCh38",
    add_vrs_attributes: bool = False,
    run_async: bool = False,
    run_id: str | None = None,
    require_validation: bool = True,
    output_compression: Annotated[
        Literal["none", "bgzip"], Query(description="none: plain VCF; bgzip: BGZF-compressed")
    ] = "none",
) -> StreamingResponse:
    """Annotate a VCF (plain, gzip or bgzip) with VRS ids and register every allele; with
    ``run_async`` answer 202 at once and run on a Celery worker (poll ``GET /vcf/{run_id}``)."""
    if run_async:
        return await runs.submit(
            request,
            kind="vcf",
            result="vcf.gz" if output_compression == "bgzip" else "vcf",
            task_name="anyvar.queueing.celery_worker.annotate_vcf",
            run_id=run_id,
            upload=vcf,
            task_kwargs={
                "assembly": assembly,
                "for_ref": for_ref,
                "allow_async_write": allow_async_write,
                "add_vrs_attributes": add_vrs_attributes,
                "require_validation": require_validation,
                "output_compression": output_compression,
            },
            ids_per_record=2 if for_ref else 1,
        )
    in_path = await save_upload(vcf, "anyvar-in-")
    fd, out_name = tempfile.mkstemp(prefix="anyvar-out-", suffix=".vcf")
    os.close(fd)
    out_path = Path(out_name)
    try:
        # The core releases the GIL: the event loop keeps answering while this runs.
        await run_in_threadpool(
            registry.annotate,
            in_path,
            out_path,
            assembly=assembly,
            for_ref=for_ref,
            vrs_attributes=add_vrs_attributes,
            require_validation=require_validation,
            compression=output_compression,
            wait_for_storage=not allow_async_write,
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
    if run_async:
        return await runs.submit(
            request,
            kind="annotated_vcf",
            result="csv" if require_validation else "json",
            task_name="anyvar.queueing.celery_worker.ingest_annotated_vcf",
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
        summary = await run_in_threadpool(
            registry.ingest, in_path, assembly=assembly, conflicts=conflicts
        )
        body = stream_then_forget(conflicts) if conflicts else None
    except RequiredAnnotationsError as e:
        raise runs.ApiError(400, str(e)) from None
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


@router.get("/vcf/{run_id}", operation_id="get_vcf_run", response_model=None)
async def get_vcf_run(request: Request, run_id: str):
    """The result of an asynchronous run: 202 while it runs, then the annotated VCF (or the
    conflicts CSV of ``/annotated_vcf``), or the failure."""
    return await runs.poll(request, run_id)


@router.delete("/vcf/{run_id}", operation_id="cancel_vcf_run")
async def cancel_vcf_run(request: Request, run_id: str) -> JSONResponse:
    """Cancel an asynchronous run and remove its files."""
    return await runs.cancel(request, run_id)
