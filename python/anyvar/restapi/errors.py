"""Errors leave the API as AnyVar answers them: where AnyVar defines the body (FastAPI's
``{"detail": ...}`` of its routes and of parameter validation), that body key for key, with our
error code and reason in the ``X-AnyVar-Error-Code`` and ``X-AnyVar-Error-Detail`` headers and
the log; elsewhere our ``{"error": ..., "error_code": ...}``. Bad input is a 4xx naming the
problem, a 500 only for our own faults."""

from __future__ import annotations

import errno
import json
import logging
import re

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from anyvar.exceptions import (
    RequiredAnnotationsError,
    SequenceSourceError,
    StorageError,
    VcfFormatError,
)

log = logging.getLogger(__name__)


def error_response(status: int, error: str, error_code: str, **extra) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": error, "error_code": error_code, **extra}
    )


class EchoingJSONResponse(JSONResponse):
    """A body that may echo the client's input (FastAPI's 422 ``detail`` does): a lone
    surrogate there cannot be UTF-8, so such a body is written with ``\\u`` escapes instead."""

    def render(self, content) -> bytes:
        try:
            return super().render(content)
        except UnicodeEncodeError:
            return json.dumps(content, separators=(",", ":")).encode("ascii")


def header_text(text: str) -> str:
    """One line of printable ASCII (what a header may carry), at most 1000 characters, with
    no space at either end (h11 refuses to send such a value: the response was lost)."""
    flat = " ".join(text.split()).encode("ascii", "backslashreplace").decode("ascii")
    return "".join(c if " " <= c <= "~" else "?" for c in flat)[:1000].strip()


def detail_response(
    status: int, detail: object, error_code: str, why: str | None = None
) -> JSONResponse:
    """AnyVar's ``{"detail": ...}`` body; what we know more goes in headers."""
    headers = {"X-AnyVar-Error-Code": error_code}
    if why:
        headers["X-AnyVar-Error-Detail"] = header_text(why)
    return EchoingJSONResponse(status_code=status, content={"detail": detail}, headers=headers)


WHERE = {"query": "query parameter", "body": "field", "path": "path parameter", "header": "header"}


def describe_invalid(errors: list[dict]) -> str:
    """One line naming each invalid parameter: ``query parameter assembly: String should …``."""
    problems = []
    for e in errors:
        where, *names = e.get("loc") or ("request",)
        name = ".".join(str(n) for n in names)
        problems.append(f"{WHERE.get(str(where), str(where))} {name}: {e.get('msg')}".strip())
    return "Invalid request: " + "; ".join(problems)


class ApiError(Exception):
    """Raised by handlers for an error response. ``why``, given for a body AnyVar defines
    (its ``{"error": …}`` alone), is what we know more: it goes in the headers, with the
    code."""

    def __init__(self, status: int, error: str, error_code: str, why: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.error_code, self.why = status, error, error_code, why


class LimitExceeded(StarletteHTTPException):
    """A request over one of the limits of ``limits.py``; ``error_code`` says which. An
    HTTPException so that FastAPI passes it on from its body parsing (other errors there
    become a 400 saying only that the body could not be parsed)."""

    def __init__(self, status: int, detail: str, error_code: str) -> None:
        super().__init__(status_code=status, detail=detail)
        self.error_code = error_code


def allowed_methods(request: Request) -> str:
    """The methods the API documents at the request's path: Starlette's 405 names only those
    of the first route that matched it, though several routes may share a path."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi()["paths"].items():
        pattern = "[^/]+".join(re.escape(part) for part in re.split(r"\{[^}]+\}", template))
        if re.fullmatch(pattern, path):
            methods |= {m.upper() for m in operations}
    return ", ".join(sorted(methods))


HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        if isinstance(e.__cause__, OSError) and e.__cause__.errno == errno.ENOSPC:
            # The upload did not fit while it was received (spooled to TMPDIR).
            return await _os(request, e.__cause__)
        if isinstance(e, LimitExceeded):  # ours, not a body AnyVar defines
            return error_response(e.status_code, e.detail, e.error_code)
        detail = e.detail
        if e.status_code == 400 and str(detail).startswith(("Field exceeded", "Part exceeded")):
            # Starlette's words (older, newer) for a large part that is not a file: an
            # upload sent under another name, or without a filename.
            detail = f"{detail}: the VCF goes in the multipart file field `vcf` (with a filename)"
        # AnyVar's answers (its routes' HTTPException, an unknown route, a wrong method):
        # FastAPI's ``detail`` body alone.
        response = detail_response(
            e.status_code, detail, HTTP_CODES.get(e.status_code, "HTTP_ERROR")
        )
        for k, v in (e.headers or {}).items():
            response.headers[k] = v
        if e.status_code == 405:
            response.headers["Allow"] = allowed_methods(request)
        return response

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        if e.why is None:
            return error_response(e.status, e.error, e.error_code)
        headers = {"X-AnyVar-Error-Code": e.error_code}
        if e.why:
            headers["X-AnyVar-Error-Detail"] = header_text(e.why)
        return JSONResponse(status_code=e.status, content={"error": e.error}, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI's 422 body, what AnyVar's clients get; the problem in words in a header.
        errors = e.errors()
        return detail_response(
            422, jsonable_encoder(errors), "INVALID_REQUEST", describe_invalid(errors)
        )

    @app.exception_handler(RequiredAnnotationsError)
    async def _not_annotated(_: Request, e: RequiredAnnotationsError) -> JSONResponse:
        return error_response(400, str(e), "MISSING_VRS_ANNOTATIONS")

    @app.exception_handler(VcfFormatError)
    async def _bad_vcf(_: Request, e: VcfFormatError) -> JSONResponse:
        return error_response(400, f"Invalid VCF: {e}", "INVALID_VCF", line=e.line)

    @app.exception_handler(SequenceSourceError)
    async def _source(_: Request, e: SequenceSourceError) -> JSONResponse:
        log.error("sequence source failed: %s", e)
        return error_response(503, f"Sequence source unavailable: {e}", "SEQUENCE_SOURCE_ERROR")

    @app.exception_handler(StorageError)
    async def _storage(_: Request, e: StorageError) -> JSONResponse:
        log.error("storage failed: %s", e)
        return error_response(503, f"Storage unavailable: {e}", "STORAGE_ERROR")

    try:
        from redis.exceptions import RedisError
    except ImportError:  # without the queueing extra there is no Redis to fail
        RedisError = None  # noqa: N806
    if RedisError is not None:

        @app.exception_handler(RedisError)
        async def _run_store(_: Request, e: Exception) -> JSONResponse:
            # Redis down or restarting (found by the fault tests): a clear 503 the client may
            # retry, not a 500 with a traceback for every poll and submission meanwhile.
            log.error("run store failed: %s", e)
            return error_response(
                503,
                f"The run store (CELERY_BACKEND_URL) is unavailable: {e}",
                "RUN_STORE_UNAVAILABLE",
            )

    @app.exception_handler(OSError)
    async def _os(_: Request, e: OSError) -> JSONResponse:
        if e.errno == errno.ENOSPC:
            # The upload or its result did not fit: the handler that wrote it removed it.
            log.error("disk full: %s", e)
            return error_response(
                507,
                "Not enough disk space for the upload or its result (TMPDIR, or "
                "ANYVAR_VCF_ASYNC_WORK_DIR for async runs)",
                "INSUFFICIENT_STORAGE",
            )
        log.exception("unhandled error")
        return error_response(500, "Internal server error", "INTERNAL_ERROR")

    @app.exception_handler(Exception)
    async def _ours(_: Request, e: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return error_response(500, "Internal server error", "INTERNAL_ERROR")
