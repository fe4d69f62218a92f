"""Stored objects and what is attached to them: lookup and delete, annotations (AnyVar 1.0.0)
and extensions (AnyVar main) over one table, mappings in both releases' spellings over one
table. Bodies and texts are AnyVar's."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from anyvar.core.metadata import FROM_MAIN, TO_MAIN, MappingTypeMain, VariationMappingType
from anyvar.registry import Registry
from anyvar.restapi.deps import RegistryDep
from anyvar.restapi.errors import detail_response
from anyvar.restapi.routers.variations import not_found
from anyvar.restapi.schema import (
    AddAnnotationRequest,
    AddExtensionRequest,
    AddMappingRequest,
    AddMappingRequestMain,
)

router = APIRouter(tags=["VRS Objects"])

ObjectId = Annotated[str, Path(description="a VRS object id, e.g. ga4gh:VA.…")]


def _get(registry: Registry, object_id: str) -> dict | None:
    if registry.storage is None:
        return None
    found = registry.storage.get_object(object_id)
    return None if found is None else json.loads(found)


@router.get("/object/{vrs_id}", operation_id="getVariation", response_model=None)
async def get_object(registry: RegistryDep, vrs_id: ObjectId) -> dict | JSONResponse:
    """Any stored Allele, SequenceLocation, SequenceReference or other VRS object."""
    found = await run_in_threadpool(_get, registry, vrs_id)
    if found is None:
        return not_found(vrs_id)
    return {"messages": [], "data": found}


@router.delete("/object/{vrs_id}", operation_id="deleteObject", response_model=None)
async def delete_object(registry: RegistryDep, vrs_id: ObjectId) -> JSONResponse | None:
    """AnyVar main: removes the object with its extensions and its mappings in both
    directions (its location and sequence reference stay, other alleles may share them)."""
    deleted = registry.storage is not None and await run_in_threadpool(
        registry.storage.delete_object, vrs_id
    )
    if not deleted:
        return detail_response(404, "Not Found", "NOT_FOUND")
    return None


async def _annotate(registry: Registry, vrs_id: str, kind: str, value: Any):
    """The object and the new annotation's id, or None when the object is not stored."""

    def work():
        found = _get(registry, vrs_id)
        if found is None:
            return None
        return found, registry.storage.add_annotation(vrs_id, kind, json.dumps(value))

    return await run_in_threadpool(work)


async def _annotations(registry: Registry, vrs_id: str, kind: str):
    """``(type, value)`` pairs, or None when there are none and the object is not stored."""

    def work():
        rows = registry.storage.annotations(vrs_id, kind) if registry.storage else []
        if not rows and _get(registry, vrs_id) is None:
            return None
        return [(t, json.loads(v)) for _, t, v in rows]

    return await run_in_threadpool(work)


@router.post("/object/{vrs_id}/annotations", operation_id="addAnnotation", response_model=None)
async def add_annotation(
    registry: RegistryDep, vrs_id: ObjectId, body: AddAnnotationRequest
) -> dict | JSONResponse:
    """AnyVar 1.0.0: attach an annotation (any JSON value) to a stored object."""
    added = await _annotate(registry, vrs_id, body.annotation_type, body.annotation_value)
    if added is None:
        return not_found(vrs_id)
    found, annotation_id = added
    return {
        "object": found,
        "object_id": vrs_id,
        "annotation_type": body.annotation_type,
        "annotation_value": body.annotation_value,
        "annotation_id": annotation_id,
    }


@router.get(
    "/object/{vrs_id}/annotations/{annotation_type}",
    operation_id="getAnnotations",
    response_model=None,
)
async def get_annotations(
    registry: RegistryDep, vrs_id: ObjectId, annotation_type: str
) -> dict | JSONResponse:
    found = await _annotations(registry, vrs_id, annotation_type)
    if found is None:
        return not_found(vrs_id)
    return {
        "annotations": [
            {"object_id": vrs_id, "annotation_type": t, "annotation_value": v} for t, v in found
        ]
    }


@router.post("/object/{vrs_id}/extensions", operation_id="addExtension", response_model=None)
async def add_extension(
    registry: RegistryDep, vrs_id: ObjectId, body: AddExtensionRequest
) -> dict | JSONResponse:
    """AnyVar main's name for an annotation: ``name`` and ``value``."""
    added = await _annotate(registry, vrs_id, body.name, body.value)
    if added is None:
        return not_found(vrs_id)
    found, extension_id = added
    return {
        "object": found,
        "object_id": vrs_id,
        "extension_name": body.name,
        "extension_value": body.value,
        "extension_id": extension_id,
    }


@router.get(
    "/object/{vrs_id}/extensions/{extension_name}",
    operation_id="getExtensions",
    response_model=None,
)
async def get_extensions(
    registry: RegistryDep, vrs_id: ObjectId, extension_name: str
) -> dict | JSONResponse:
    found = await _annotations(registry, vrs_id, extension_name)
    if found is None:
        return not_found(vrs_id)
    return {"extensions": [{"object_id": vrs_id, "name": t, "value": v} for t, v in found]}


@router.delete(
    "/object/{vrs_id}/extensions/{extension_name}",
    operation_id="deleteExtensions",
    status_code=204,
    response_model=None,
)
async def delete_extensions(
    registry: RegistryDep, vrs_id: ObjectId, extension_name: str
) -> Response:
    def work() -> bool:
        if _get(registry, vrs_id) is None:
            return False
        registry.storage.delete_annotations(vrs_id, extension_name)
        return True

    if not await run_in_threadpool(work):
        return detail_response(404, f"Object `{vrs_id}` not found", "NOT_FOUND")
    return Response(status_code=204)


def _mapping_request(body: dict) -> tuple[AddMappingRequest | AddMappingRequestMain, bool]:
    """The body in either release's spelling (and whether it is main's); invalid in both, the
    error is 1.0.0's (``Input should be 'liftover', 'transcription' or 'translation'``)."""
    try:
        return AddMappingRequest.model_validate(body), False
    except ValidationError as first:
        try:
            return AddMappingRequestMain.model_validate(body), True
        except ValidationError:
            errors = first.errors(include_url=False)
            raise RequestValidationError(
                [{**e, "loc": ("body", *e["loc"])} for e in errors]
            ) from None


@router.put("/object/{vrs_id}/mappings", operation_id="addMapping", response_model=None)
async def add_mapping(
    registry: RegistryDep,
    vrs_id: ObjectId,
    body: Annotated[
        dict[str, Any],
        Body(examples=[{"dest_id": "ga4gh:VA.…", "mapping_type": "liftover"}]),
    ],
) -> dict | JSONResponse:
    """Map a stored object to another; ``mapping_type`` in 1.0.0's spelling (``liftover``,
    ``transcription``, ``translation``) or main's (``liftover_to``, ``transcribe_to``,
    ``translate_to``), answered in the spelling given."""
    request, main = _mapping_request(body)
    stored = FROM_MAIN[MappingTypeMain(request.mapping_type)] if main else request.mapping_type

    def work():
        source = _get(registry, vrs_id)
        if source is None:
            return not_found(vrs_id)
        dest = _get(registry, request.dest_id)
        if dest is None:
            return not_found(request.dest_id)
        if vrs_id == request.dest_id:
            # AnyVar's text (1.0.0 says "annotation"), naming the request as pydantic prints it.
            return detail_response(
                422,
                f"Failed to add {'mapping' if main else 'annotation'}: {request}. "
                f"source_id cannot equal dest_id: {vrs_id}",
                "INVALID_MAPPING",
            )
        registry.storage.add_mappings([(vrs_id, request.dest_id, str(stored))])
        return {
            "dest_object": dest,
            "dest_object_id": request.dest_id,
            "mapping_type": request.mapping_type,
            "source_object": source,
            "source_object_id": vrs_id,
        }

    return await run_in_threadpool(work)


async def _mappings(
    registry: Registry, vrs_id: str, mapping_type: str | None, as_source: bool
) -> list[tuple[str, str, str]] | None:
    """Mappings from (or to) the object, or None when there are none and it is not stored."""

    def work():
        rows = (
            registry.storage.mappings(vrs_id, mapping_type, as_source) if registry.storage else []
        )
        if not rows and _get(registry, vrs_id) is None:
            return None
        return rows

    return await run_in_threadpool(work)


@router.get(
    "/object/{vrs_id}/mappings/{mapping_type}",
    operation_id="getMappingsOfType",
    response_model=None,
)
async def get_mappings_of_type(
    registry: RegistryDep, vrs_id: ObjectId, mapping_type: VariationMappingType
) -> dict | JSONResponse:
    """AnyVar 1.0.0: the mappings of one type from a stored object."""
    found = await _mappings(registry, vrs_id, str(mapping_type), True)
    if found is None:
        return not_found(vrs_id)
    return {"mappings": [{"source_id": s, "dest_id": d, "mapping_type": t} for s, d, t in found]}


@router.get("/object/{vrs_id}/mappings", operation_id="getMappings", response_model=None)
async def get_mappings(
    registry: RegistryDep,
    vrs_id: ObjectId,
    mapping_type: Annotated[MappingTypeMain | None, Query()] = None,
    as_source: Annotated[
        bool, Query(description="true: mappings from the object; false: mappings to it")
    ] = True,
) -> dict | JSONResponse:
    """AnyVar main: mappings from (or to) a stored object, of one type or all, in main's
    spelling."""
    stored = None if mapping_type is None else str(FROM_MAIN[mapping_type])
    found = await _mappings(registry, vrs_id, stored, as_source)
    if found is None:
        return not_found(vrs_id)
    return {
        "mappings": [
            {"source_id": s, "dest_id": d, "mapping_type": str(TO_MAIN[VariationMappingType(t)])}
            for s, d, t in found
        ]
    }
