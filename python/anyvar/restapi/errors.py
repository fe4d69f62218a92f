"""Every error leaves the API as JSON ``{"error": ..., "error_code": ...}`` (AnyVar's
ErrorResponse); bad input is a 4xx naming the problem, a 500 only for our own faults."""

from __future__ import annotations

import errno
import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from anyvar.exceptions import (
    RequiredAnnotationsError,
    SequenceSourceError,
    StorageError,
    TranslationError,
    VcfFormatError,
)

log = logging.getLogger(__name__)


def error_response(status: int, error: str, error_code: str, **extra) -> JSONResponse:
    return JSONResponse(
        status_code=status, content={"error": error, "error_code": error_code, **extra}
    )


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
    """Raised by handlers for an error response with AnyVar's exact text."""

    def __init__(self, status: int, error: str, error_code: str) -> None:
        super().__init__(error)
        self.status, self.error, self.error_code = status, error, error_code


HTTP_CODES = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "PAYLOAD_TOO_LARGE"}


def install(app: FastAPI) -> None:
    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        if isinstance(e.__cause__, OSError) and e.__cause__.errno == errno.ENOSPC:
            # The upload did not fit while it was received (spooled to TMPDIR).
            return await _os(request, e.__cause__)
        # Starlette's own answers (unknown route, wrong method): its ``detail`` plus ours.
        detail = e.detail if isinstance(e.detail, str) else "HTTP error"
        response = error_response(
            e.status_code, detail, HTTP_CODES.get(e.status_code, "HTTP_ERROR"), detail=e.detail
        )
        for k, v in (e.headers or {}).items():
            response.headers[k] = v
        return response

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, e: ApiError) -> JSONResponse:
        return error_response(e.status, e.error, e.error_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid_request(_: Request, e: RequestValidationError) -> JSONResponse:
        # FastAPI's 422 body (``detail``, what AnyVar's clients get) plus the ErrorResponse
        # fields of every other error, in words.
        errors = e.errors()
        return error_response(
            422, describe_invalid(errors), "INVALID_REQUEST", detail=jsonable_encoder(errors)
        )

    @app.exception_handler(RequiredAnnotationsError)
    async def _not_annotated(_: Request, e: RequiredAnnotationsError) -> JSONResponse:
        return error_response(400, str(e), "MISSING_VRS_ANNOTATIONS")

    @app.exception_handler(VcfFormatError)
    async def _bad_vcf(_: Request, e: VcfFormatError) -> JSONResponse:
        return error_response(400, f"Invalid VCF: {e}", "INVALID_VCF", line=e.line)

    @app.exception_handler(TranslationError)
    async def _bad_definition(_: Request, e: TranslationError) -> JSONResponse:
        return error_response(422, str(e), "TRANSLATION_ERROR")

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
