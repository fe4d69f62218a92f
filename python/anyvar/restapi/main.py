"""The ASGI app: ``uvicorn anyvar.restapi.main:app`` (or gunicorn with uvicorn workers)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from anyvar import __version__, metrics
from anyvar import anyvar as anyvar_library
from anyvar.config import Settings, cannot_start, get_settings
from anyvar.exceptions import AnyVarError, SettingsError
from anyvar.registry import Registry
from anyvar.restapi import auth, errors, latency, limits, openapi, runs
from anyvar.restapi.routers import catvars, objects, page, service_info, variations, vcf
from anyvar.restapi.routers import metrics as metrics_router
from anyvar.restapi.schema import ServiceInfo

try:
    from redis.exceptions import RedisError
except ImportError:  # without the queueing extra there is no Redis to fail

    class RedisError(Exception):  # type: ignore[no-redef]
        pass


log = logging.getLogger("anyvar.restapi")

OPEN_PATHS = {"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/"}
# The docs' and the web page's own files: the page must load before the user enters a token.
OPEN_PREFIXES = (page.DOCS_ASSETS + "/", page.ASSETS + "/")


def show_our_log() -> None:
    """uvicorn and gunicorn configure only their own loggers: without a handler of ours,
    anyvar's INFO lines (ready, background registrations stored) would never be shown."""
    ours = logging.getLogger("anyvar")
    if not ours.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(name)s: %(message)s"))
        ours.addHandler(handler)
        ours.setLevel(logging.INFO)


@asynccontextmanager
async def app_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """AnyVar's lifespan (``anyvar.restapi.main.app_lifespan``): the service description, and
    an ``AnyVar`` of the storage and translator its factories make, at ``app.state.anyvar``;
    the storage is closed at the end."""
    settings: Settings = getattr(app.state, "settings", None) or get_settings()
    app.state.service_info = ServiceInfo()
    storage = anyvar_library.create_storage(settings.storage_uri)
    translator = anyvar_library.create_translator(settings.seqrepo_dataproxy_uri)
    app.state.anyvar = anyvar_library.AnyVar(translator=translator, object_store=storage)
    try:
        yield
    finally:
        storage.close()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """AnyVar's lifespan, then ours over the same storage and sequences: the registry the
    routes use, the run store and the metrics."""
    settings: Settings = app.state.settings
    show_our_log()
    async with AsyncExitStack() as stack:
        try:
            await stack.enter_async_context(app_lifespan(app))
            app.state.registry = Registry.of(app.state.anyvar, settings)
            runs.connect(app.state)
            app.state.metrics.count_sync_runs(app.state.registry)
        except (AnyVarError, OSError, ValueError, RedisError) as e:
            # One clear line and a failed start, not a traceback now or on the first request.
            cannot_start(e)
        storage = app.state.registry.storage
        log.info(
            "AnyVar %s ready: sequences %s, storage %s",
            __version__,
            settings.seqrepo_dataproxy_uri,
            "none" if storage is None else settings.storage_uri.split("@")[-1],
        )
        latency.install(app)
        yield
        # Uploads answered with allow_async_write=true may still be storing their alleles.
        await asyncio.to_thread(app.state.registry.wait_for_background)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        title="AnyVar",
        version=__version__,
        description="Register and retrieve GA4GH VRS variation; annotate VCFs with VRS ids.",
        lifespan=lifespan,
        # Served by routers/page.py from installed files: FastAPI's default pages load
        # Swagger UI and ReDoc from a CDN and are blank offline.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    errors.install(app)
    app.add_middleware(limits.RequestLimits, settings=settings)  # inside metrics: counted
    metrics.install(app)
    # Bearer tokens (ANYVAR_AUTH_TOKEN_LIST) and JWTs (ANYVAR_AUTH_ISSUER_URL): auth.py.
    auth.install(app, settings, OPEN_PATHS, OPEN_PREFIXES)
    app.include_router(service_info.router)
    app.include_router(vcf.router)
    app.include_router(variations.router)
    app.include_router(objects.router)
    app.include_router(catvars.router)
    app.include_router(metrics_router.router)
    page.install(app)  # /docs, /redoc and the web page at /
    openapi.install(app)  # every status each operation answers, in /openapi.json
    return app


def _app() -> FastAPI:
    """The app ``uvicorn anyvar.restapi.main:app`` serves, configured from the environment."""
    try:
        return create_app()
    except SettingsError as e:
        cannot_start(e)


app = _app()
