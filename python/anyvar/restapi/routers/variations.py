"""Registering, finding and searching variations: AnyVar 1.0.0's routes and its main branch's,
one implementation behind both shapes."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from anyvar import _core
from anyvar.exceptions import TranslationError
from anyvar.queueing import VARIATIONS_TASK
from anyvar.registry import COPY_NUMBER_TYPES, Registry, register_variations, translate
from anyvar.restapi import runs
from anyvar.restapi.deps import RegistryDep, SettingsDep
from anyvar.restapi.errors import detail_response
from anyvar.restapi.limits import check_definitions
from anyvar.restapi.openapi import DETAIL
from anyvar.restapi.schema import RunProgress, RunStatusResponse, VariationRequest, errors
from anyvar.translate.base import anyvar_message

router = APIRouter(tags=["VRS Objects"])

VARIATION_EXAMPLE_PAYLOAD = {
    "definition": "NC_000007.13:g.36561662_36561663del",
    "input_type": "Allele",
    "copies": 0,
    "copy_change": "complete genomic loss",
    "assembly_name": None,
}
PUT_VRS_VARIATION_EXAMPLE_PAYLOAD = {
    "location": {
        "end": 87894077,
        "start": 87894076,
        "sequenceReference": {
            "refgetAccession": "SQ.ss8r_wB0-b9r44TQTMmVTI92884QvBiB",
            "type": "SequenceReference",
        },
        "type": "SequenceLocation",
    },
    "state": {"sequence": "T", "type": "LiteralSequenceExpression"},
    "type": "Allele",
}


DETAIL_BODY = {"content": {"application/json": {"schema": DETAIL}}}

# Positions are 64-bit in the core and the databases: a larger one is a 422, not an overflow.
MAX_POSITION = 2**63 - 1


def not_found(object_id: str) -> JSONResponse:
    """AnyVar's 404 for an unknown object."""
    return detail_response(404, f"VRS Object {object_id} not found", "NOT_FOUND")


@router.put("/variation", operation_id="register_variation", response_model=dict)
async def register_variation(
    http_request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    request: Annotated[VariationRequest, Body(examples=[VARIATION_EXAMPLE_PAYLOAD])],
) -> Response:
    """Translate a gnomAD-style, SPDI or genomic HGVS definition and register the Allele."""
    check_definitions(settings, [request.definition], many=False)
    answers = await run_in_threadpool(registered, http_request, registry, [request])
    return Response(answers[0], media_type="application/json")


VARIATION_REQUESTS = TypeAdapter(list[VariationRequest])


def parse_requests(body: bytes) -> list[VariationRequest]:
    """The body of ``PUT /variations``, read as FastAPI reads a body (the same 422s), but on a
    worker thread: validating 1,000 definitions on the event loop held up every other request
    (40 % of the loop's time under load)."""
    try:
        items = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        where = getattr(e, "pos", getattr(e, "start", 0))
        error = {"type": "json_invalid", "loc": ("body", where), "msg": "JSON decode error",
                 "input": {}, "ctx": {"error": getattr(e, "msg", str(e))}}  # fmt: skip
        raise RequestValidationError([error]) from None
    try:
        return VARIATION_REQUESTS.validate_python(items)
    except ValidationError as e:
        errors = [{**err, "loc": ("body", *err["loc"])} for err in e.errors(include_url=False)]
        raise RequestValidationError(errors) from None


@router.put(
    "/variations",
    operation_id="register_variations",
    response_model=None,
    responses={202: {"model": RunStatusResponse, "description": "With run_async: submitted"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "array",
                        "items": {"$ref": "#/components/schemas/VariationRequest"},
                    }
                }
            },
        }
    },
)
async def register_variations_route(
    request: Request,
    registry: RegistryDep,
    settings: SettingsDep,
    run_async: bool = False,
    run_id: str | None = None,
) -> Response:
    """Register many definitions in one bulk write; the answers come in input order. With
    ``run_async`` they are registered on a Celery worker (poll ``GET /variations/{run_id}``)."""
    requests = await run_in_threadpool(parse_requests, await request.body())
    check_definitions(settings, [r.definition for r in requests], many=True)
    if run_id:
        runs.check_run_id(run_id)
    if run_async:
        return await runs.submit(
            request,
            kind="variations",
            result="json",
            task_name=VARIATIONS_TASK,
            run_id=run_id,
            body=json.dumps([r.model_dump() for r in requests]).encode(),
            task_kwargs={},
            location_prefix="/variations",
        )

    def answer() -> Response:
        # Serialized on the worker thread too: a large batch's answer would otherwise be
        # encoded on the event loop, and every other request would wait for it.
        answers = registered(request, registry, requests)
        return Response(f"[{','.join(answers)}]", media_type="application/json")

    return await run_in_threadpool(answer)


def registered(request: Request, registry: Registry, requests: list[VariationRequest]):
    """``register_variations``' answers; the batch counted in the metrics as a sync run of
    kind ``variations``."""
    started = time.monotonic()
    record = request.app.state.metrics.runs.record
    try:
        answers, figures = register_variations(registry, requests)
    except BaseException:
        record(kind="variations", mode="sync", outcome="failed", seconds=time.monotonic() - started)
        raise
    seconds = time.monotonic() - started
    record(kind="variations", mode="sync", outcome="succeeded", seconds=seconds, **figures)
    return answers


@router.put("/vrs_variation", operation_id="register_vrs_variation")
async def register_vrs_variation(
    registry: RegistryDep,
    settings: SettingsDep,
    variation: Annotated[dict[str, Any], Body(examples=[PUT_VRS_VARIATION_EXAMPLE_PAYLOAD])],
) -> dict:
    """Register a VRS Allele, CopyNumberCount or CopyNumberChange given as JSON; its
    identifiers are computed here."""
    state = variation.get("state")
    sequence = state.get("sequence") if isinstance(state, dict) else None
    if isinstance(sequence, str) and len(sequence) > settings.max_definition_bytes:
        raise HTTPException(
            status_code=422,
            detail="state.sequence is longer than ANYVAR_MAX_DEFINITION_BYTES "
            f"({settings.max_definition_bytes:,})",
        )
    try:
        if variation.get("type") in COPY_NUMBER_TYPES:
            parsed = _core.CopyNumber.from_json(json.dumps(variation))
        else:
            parsed = _core.Allele.from_json(json.dumps(variation))
    except (TranslationError, ValueError) as e:
        raise HTTPException(status_code=422, detail=str(e)) from None
    _, failed = await run_in_threadpool(registry.register, [parsed])
    return {
        "input_variation": variation,
        "messages": [failed[parsed.id]] if parsed.id in failed else [],
        "object": json.loads(parsed.json()),
        "object_id": parsed.id,
    }


@router.post(
    "/variation",
    operation_id="get_variation",
    response_model=None,
    responses={404: {"description": "Not registered", **DETAIL_BODY}},
)
async def find_variation(
    registry: RegistryDep, settings: SettingsDep, request: VariationRequest
) -> dict | JSONResponse:
    """Translate a definition and return the registered Allele, without registering it: 422
    with AnyVar's text when it does not translate, 404 when it is not registered."""
    check_definitions(settings, [request.definition], many=False)
    try:
        variation = await run_in_threadpool(translate, registry.source, request)
    except TranslationError as e:
        reason = str(e)
        return detail_response(
            422, anyvar_message(request.definition, reason), "TRANSLATION_ERROR", reason
        )
    if registry.storage is None or not await run_in_threadpool(
        registry.storage.get_object, variation.id
    ):
        return not_found(variation.id)
    return {"messages": [], "data": json.loads(variation.json())}


async def _search(registry: Registry, accession: str, start: int, end: int, after: str, limit: int):
    """Registered alleles overlapping ``[start, end]`` after the id ``after``, and whether more
    follow; 404 (AnyVar's) when the accession names no sequence."""
    sequence = await run_in_threadpool(_resolve_accession, registry, accession)
    if sequence is None:
        raise HTTPException(status_code=404, detail="Unable to dereference provided accession ID")
    if registry.storage is None:
        return [], False
    rows = await run_in_threadpool(
        registry.storage.find_alleles, sequence, start, end, after, limit + 1
    )
    return [json.loads(r) for r in rows[:limit]], len(rows) > limit


# The search parameters of both releases' routes.
AccessionQuery = Annotated[str, Query(description="ga4gh:SQ.… or an alias such as GRCh38:chr19")]
StartQuery = Annotated[int, Query(ge=0, le=MAX_POSITION, description="inter-residue start")]
EndQuery = Annotated[int, Query(ge=0, le=MAX_POSITION, description="inter-residue end")]


@router.get(
    "/search",
    operation_id="searchVariations",
    tags=["Search"],
    responses={404: {"description": "Unknown accession", **DETAIL_BODY}},
)
async def search(
    registry: RegistryDep,
    accession: AccessionQuery,
    start: StartQuery,
    end: EndQuery,
) -> dict:
    """AnyVar 1.0.0's search: registered Alleles whose location overlaps ``[start, end]``."""
    found, _ = await _search(registry, accession, start, end, "", 500)
    return {"variations": found}


ALLELE_ID = r"^ga4gh:VA\.[A-Za-z0-9_-]{32}$"


@router.get(
    "/variations",
    operation_id="search_variations",
    tags=["Search"],
    responses={404: {"description": "Unknown accession", **DETAIL_BODY}},
)
async def search_variations(
    registry: RegistryDep,
    accession: AccessionQuery,
    start: StartQuery,
    end: EndQuery,
    page_size: Annotated[int, Query(ge=1, le=10000)] = 1000,
    # An allele id: anything else would silently give an empty page, not an error.
    cursor: Annotated[
        str | None, Query(description="next_cursor of a previous page", pattern=ALLELE_ID)
    ] = None,
    page_token: Annotated[
        str | None, Query(description="the same as cursor (our earlier name)", pattern=ALLELE_ID)
    ] = None,
) -> dict:
    """AnyVar main's search: registered Alleles whose location overlaps ``[start, end]``,
    ordered by id, a page at a time; follow ``next_cursor`` (also given as
    ``next_page_token``)."""
    page, more = await _search(
        registry, accession, start, end, cursor or page_token or "", page_size
    )
    next_cursor = page[-1]["id"] if more else None
    return {"variations": page, "next_cursor": next_cursor, "next_page_token": next_cursor}


def _resolve_accession(registry: Registry, accession: str) -> str | None:
    name = accession.removeprefix("ga4gh:")
    if name.startswith("SQ."):
        return name
    found = registry.source.resolve(accession) or registry.source.resolve(f"refseq:{accession}")
    return found[0] if found else None


@router.get(
    "/variations/{run_id}",
    operation_id="get_variations_run",
    response_model=None,
    responses={
        200: {"description": "The answers, in input order (as PUT /variations answers)"},
        202: {"model": RunProgress, "description": "Queued or running; header Retry-After"},
        **errors(410),
    },
)
async def get_variations_run(request: Request, run_id: str):
    """The answers of an asynchronous ``PUT /variations`` run."""
    return await runs.poll(request, run_id, location_prefix="/variations")
