"""The registry: translate and register variations, fetch objects, search by region."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from anyvar import _core
from anyvar.registry import Registry, VariationRequest, translate_and_register
from anyvar.restapi import runs
from anyvar.restapi.deps import RegistryDep

router = APIRouter(tags=["VRS Objects"])


def not_found(object_id: str) -> JSONResponse:
    """AnyVar's 404 body (``detail``) with the error fields of every other error."""
    message = f"VRS Object {object_id} not found"
    return JSONResponse(
        status_code=404, content={"detail": message, "error": message, "error_code": "NOT_FOUND"}
    )


@router.put("/variation", operation_id="register_variation")
async def register_variation(registry: RegistryDep, request: VariationRequest) -> dict:
    """Translate a gnomAD-style, SPDI or genomic HGVS definition and register the Allele."""
    return await run_in_threadpool(translate_and_register, registry, request)


@router.put("/variations", operation_id="register_variations", response_model=None)
async def register_variations(
    request: Request,
    registry: RegistryDep,
    requests: Annotated[list[VariationRequest], Body()],
    run_async: bool = False,
    run_id: str | None = None,
) -> list[dict] | JSONResponse:
    """Register many definitions; the answers come in input order. With ``run_async`` they
    are registered on a Celery worker (poll ``GET /variations/{run_id}``)."""
    if run_async:
        return await runs.submit(
            request,
            kind="variations",
            result="json",
            task_name="anyvar.queueing.celery_worker.register_variations",
            run_id=run_id,
            body=json.dumps([r.model_dump() for r in requests]).encode(),
            task_kwargs={},
            location_prefix="/variations",
        )

    def run() -> list[dict]:
        return [translate_and_register(registry, r) for r in requests]

    return await run_in_threadpool(run)


@router.put("/vrs_variation", operation_id="register_vrs_variation")
async def register_vrs_variation(
    registry: RegistryDep, variation: Annotated[dict[str, Any], Body()]
) -> dict:
    """Register a VRS Allele given as JSON; its identifiers are computed here."""
    allele = _core.Allele.from_json(json.dumps(variation))
    await run_in_threadpool(registry.register, [allele])
    return {"messages": [], "object": json.loads(allele.json()), "object_id": allele.id}


@router.post("/variation", operation_id="get_variation", response_model=None)
async def find_variation(registry: RegistryDep, request: VariationRequest) -> dict | JSONResponse:
    """Translate a definition and return the registered Allele, without registering it."""
    allele = await run_in_threadpool(
        registry.translate, request.definition, request.assembly_name or "GRCh38"
    )
    return await get_object(registry, allele.id)


@router.get("/object/{object_id}", operation_id="get_object", response_model=None)
async def get_object(registry: RegistryDep, object_id: str) -> dict | JSONResponse:
    """Any registered Allele, SequenceLocation or SequenceReference."""
    if registry.storage is None:
        return not_found(object_id)
    found = await run_in_threadpool(registry.storage.get_object, object_id)
    if found is None:
        return not_found(object_id)
    return {"messages": [], "data": json.loads(found)}


@router.get("/variations", operation_id="search_variations", tags=["Search"])
async def search_variations(
    registry: RegistryDep,
    accession: Annotated[str, Query(description="ga4gh:SQ.… or an alias such as GRCh38:chr19")],
    start: Annotated[int, Query(ge=0, description="inter-residue start")],
    end: Annotated[int, Query(ge=0, description="inter-residue end")],
    page_size: Annotated[int, Query(ge=1, le=10000)] = 1000,
    page_token: Annotated[
        str | None,
        # An allele id: anything else would silently give an empty page, not an error.
        Query(
            description="next_page_token of a previous page",
            pattern=r"^ga4gh:VA\.[A-Za-z0-9_-]{32}$",
        ),
    ] = None,
) -> dict:
    """Registered Alleles whose location overlaps ``[start, end]`` on the sequence, ordered by
    id; follow ``next_page_token`` for the next page."""
    resolved = await run_in_threadpool(_resolve_accession, registry, accession)
    if resolved is None or registry.storage is None:
        return {"variations": [], "next_page_token": None}
    rows = await run_in_threadpool(
        registry.storage.find_alleles, resolved, start, end, page_token or "", page_size + 1
    )
    page = [json.loads(r) for r in rows[:page_size]]
    next_token = page[-1]["id"] if len(rows) > page_size else None
    return {"variations": page, "next_page_token": next_token}


def _resolve_accession(registry: Registry, accession: str) -> str | None:
    name = accession.removeprefix("ga4gh:")
    if name.startswith("SQ."):
        return name
    found = registry.source.resolve(accession)
    return found[0] if found else None


@router.get("/variations/{run_id}", operation_id="get_variations_run", response_model=None)
async def get_variations_run(request: Request, run_id: str):
    """The answers of an asynchronous ``PUT /variations`` run."""
    return await runs.poll(request, run_id, location_prefix="/variations")
