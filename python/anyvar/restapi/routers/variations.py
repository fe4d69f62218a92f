"""The registry: translate and register variations, fetch objects, search by region."""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, StrictStr
from starlette.concurrency import run_in_threadpool

from anyvar import _core
from anyvar.exceptions import TranslationError
from anyvar.registry import Registry
from anyvar.restapi.deps import RegistryDep

router = APIRouter(tags=["VRS Objects"])


class VariationRequest(BaseModel):
    definition: StrictStr
    input_type: str | None = None
    copies: int | None = None
    copy_change: str | None = None
    assembly_name: Literal["GRCh38", "GRCh37"] | None = "GRCh38"


def not_found(object_id: str) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": f"VRS Object {object_id} not found"})


def _translate_and_register(registry: Registry, request: VariationRequest) -> dict[str, Any]:
    response: dict[str, Any] = {
        "input_variation": request.model_dump(),
        "messages": [],
        "object": None,
        "object_id": None,
    }
    if request.input_type not in (None, "Allele"):
        response["messages"].append(f"Unsupported input_type {request.input_type!r}: only Allele")
        return response
    try:
        allele = registry.translate(request.definition, request.assembly_name or "GRCh38")
    except TranslationError as e:
        response["messages"].append(f'Unable to translate "{request.definition}": {e}')
        return response
    registry.register([allele])
    response["object"] = json.loads(allele.json())
    response["object_id"] = allele.id
    return response


@router.put("/variation", operation_id="register_variation")
async def register_variation(registry: RegistryDep, request: VariationRequest) -> dict:
    """Translate a gnomAD-style, SPDI or genomic HGVS definition and register the Allele."""
    return await run_in_threadpool(_translate_and_register, registry, request)


@router.put("/variations", operation_id="register_variations")
async def register_variations(
    registry: RegistryDep, requests: Annotated[list[VariationRequest], Body()]
) -> list[dict]:
    """Register many definitions; the answers come in input order."""

    def run() -> list[dict]:
        return [_translate_and_register(registry, r) for r in requests]

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
        str | None, Query(description="next_page_token of a previous page")
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
