"""What one request may hold, each bound a setting: the size of a JSON body, how slowly a body
may arrive, how many uploads are received at once, and (checked by the routes) how many and how
long the definitions of a request are. A request over a bound gets a 4xx naming the setting,
and what it sent is dropped (a spooled upload's temporary file with it)."""

from __future__ import annotations

import time

import anyio
from fastapi.exceptions import RequestValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from anyvar.config import Settings
from anyvar.restapi.errors import LimitExceeded, error_response


class RequestLimits:
    """ASGI middleware bounding request bodies. JSON bodies (anything but a multipart upload)
    may hold at most ``ANYVAR_MAX_JSON_BODY_BYTES``; every body must keep arriving (no gap of
    ``ANYVAR_BODY_READ_TIMEOUT`` seconds, and after that long at least
    ``ANYVAR_MIN_BODY_BYTES_PER_SECOND`` on average: one byte a second holds nothing open);
    at most ``ANYVAR_MAX_UPLOADS_IN_FLIGHT`` multipart uploads are received at once."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.uploads = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        s = self.settings
        headers = dict(scope["headers"])
        upload = headers.get(b"content-type", b"").startswith(b"multipart/")
        most = None if upload else s.max_json_body_bytes
        length = headers.get(b"content-length", b"")
        if most is not None and length.isdigit() and int(length) > most:
            await self.reject(scope, receive, send, too_large(most))
            return
        if upload and self.uploads >= s.max_uploads_in_flight:
            error = error_response(
                503,
                f"{self.uploads} uploads are being received, the most "
                f"ANYVAR_MAX_UPLOADS_IN_FLIGHT allows: try again shortly",
                "TOO_MANY_UPLOADS",
            )
            error.headers["Retry-After"] = "5"
            await error(scope, receive, send)
            return
        started = time.monotonic()
        received = 0
        body_done = False

        async def limited() -> Message:
            nonlocal received, body_done
            if body_done:  # e.g. a streaming response listening for the client to go away
                return await receive()
            # A cancel scope, not asyncio.wait_for: that made a task per body chunk, on the
            # event loop every request shares.
            with anyio.move_on_after(s.body_read_timeout) as scope:
                message = await receive()
            if scope.cancelled_caught:
                raise too_slow(s)
            if message["type"] == "http.request":
                body_done = not message.get("more_body")
                received += len(message.get("body", b""))
                if most is not None and received > most:
                    raise too_large(most)
                elapsed = time.monotonic() - started
                if (
                    not body_done
                    and elapsed > s.body_read_timeout
                    and received < elapsed * s.min_body_bytes_per_second
                ):
                    raise too_slow(s)
            return message

        self.uploads += 1 if upload else 0
        try:
            await self.app(scope, limited, send)
        finally:
            self.uploads -= 1 if upload else 0

    @staticmethod
    async def reject(scope: Scope, receive: Receive, send: Send, e: LimitExceeded) -> None:
        await error_response(e.status_code, e.detail, e.error_code)(scope, receive, send)


def too_large(most: int) -> LimitExceeded:
    return LimitExceeded(
        413, f"The request body is larger than ANYVAR_MAX_JSON_BODY_BYTES ({most:,} bytes)",
        "PAYLOAD_TOO_LARGE",
    )  # fmt: skip


def too_slow(s: Settings) -> LimitExceeded:
    return LimitExceeded(
        408,
        f"The request body arrived too slowly (ANYVAR_BODY_READ_TIMEOUT={s.body_read_timeout:g} "
        f"s, ANYVAR_MIN_BODY_BYTES_PER_SECOND={s.min_body_bytes_per_second:,})",
        "REQUEST_TIMEOUT",
    )


def check_definitions(settings: Settings, definitions: list[str], *, many: bool) -> None:
    """422 (FastAPI's body, naming each item and the setting) for more definitions than
    ``ANYVAR_MAX_DEFINITIONS`` allows or one longer than ``ANYVAR_MAX_DEFINITION_BYTES``."""
    errors = []
    if len(definitions) > settings.max_definitions:
        errors.append(
            {
                "type": "too_long",
                "loc": ("body",),
                "msg": f"More than ANYVAR_MAX_DEFINITIONS ({settings.max_definitions:,}) "
                "definitions in one request",
                "input": len(definitions),
            }
        )
    for i, definition in enumerate(definitions):
        if len(definition) > settings.max_definition_bytes:
            errors.append(
                {
                    "type": "string_too_long",
                    "loc": ("body", i, "definition") if many else ("body", "definition"),
                    "msg": "Definition longer than ANYVAR_MAX_DEFINITION_BYTES "
                    f"({settings.max_definition_bytes:,})",
                    "input": f"{definition[:40]}…",
                }
            )
    if errors:
        raise RequestValidationError(errors)
