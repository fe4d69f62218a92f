"""The OpenAPI document tells the truth: every status an operation may answer is listed with
the schema of its body. FastAPI lists 200 and 422 unless told; the errors every operation shares
(a fault of ours, an unavailable dependency, a body over a limit, an unknown id) are added here,
by rule, in one place; the routes declare only what is theirs (202, 410…). tests/test_schema.py
holds the document to the running API with schemathesis."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from anyvar.queueing import RUN_ID_PATTERN

ERROR = {"$ref": "#/components/schemas/ErrorResponse"}
DETAIL = {"$ref": "#/components/schemas/DetailResponse"}
EITHER = {"anyOf": [ERROR, DETAIL]}
EMPTY_OR_RUN_ID = f"^({RUN_ID_PATTERN.strip('^$')})?$"

DETAIL_SCHEMA = {
    "title": "DetailResponse",
    "description": "AnyVar's error body (FastAPI's): a text, or the list of invalid fields",
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {
            "anyOf": [
                {"type": "string"},
                {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
                {"type": "object"},
            ]
        }
    },
}


def install(app: FastAPI) -> None:
    """Completes the app's document when it is first built (FastAPI caches it)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            complete(build())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any]) -> None:
    schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    schemas["DetailResponse"] = DETAIL_SCHEMA
    for path, operations in schema["paths"].items():
        for operation in operations.values():
            _complete_operation(path, operation)


def _complete_operation(path: str, operation: dict[str, Any]) -> None:
    responses = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])

    def add(status: int, body: dict, description: str) -> None:
        responses.setdefault(
            str(status), {"description": description, "content": {"application/json": {}}}
        )["content"].setdefault("application/json", {})["schema"] = body

    if "422" in responses:
        # FastAPI's list of invalid fields, or AnyVar's text (a definition that does not
        # translate, a VRS object that is not one).
        responses["422"]["content"]["application/json"]["schema"] = DETAIL
    add(500, ERROR, "A fault of ours (INTERNAL_ERROR); a failed run's own status, if set so")
    add(503, ERROR, "Storage, sequence source or run store unavailable, or too many uploads")
    body = "requestBody" in operation
    run_id = any(p["name"] == "run_id" for p in parameters)
    if body or run_id:
        add(400, EITHER, "A body that cannot be read, a bad VCF, an invalid or busy run id, "
            "asynchronous runs not configured")  # fmt: skip
    if body:
        add(408, ERROR, "The body arrived too slowly (ANYVAR_BODY_READ_TIMEOUT)")
        add(413, ERROR, "The body is over a limit (ANYVAR_MAX_JSON_BODY_BYTES, a VCF line)")
    if "{" in path:
        add(404, EITHER, "Not found (an unknown object, run or categorical variant)")
    for p in parameters:
        if p["name"] == "run_id":
            # Checked by the route (400 INVALID_RUN_ID, AnyVar's status), documented here; an
            # empty one given at submission means "make one up".
            pattern = RUN_ID_PATTERN if p["in"] == "path" else EMPTY_OR_RUN_ID
            for s in p["schema"].get("anyOf", [p["schema"]]):
                if s.get("type") == "string":
                    s["pattern"] = pattern
