"""GA4GH service-info, AnyVar's body key for key; the sequence source and storage in use are
told in headers."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from anyvar.restapi.deps import RegistryDep, SettingsDep
from anyvar.restapi.errors import header_text

router = APIRouter(tags=["General"])


@router.get("/service-info", operation_id="service_info")
async def service_info(request: Request, registry: RegistryDep, settings: SettingsDep):
    # Answered on the event loop (nothing here blocks): a liveness probe must not wait for a
    # thread of the pool that busy requests hold.
    storage = settings.storage_uri.split("://", 1)[0] if settings.storage_uri else "none"
    return JSONResponse(
        request.app.state.service_info.model_dump(mode="json"),
        headers={
            "X-AnyVar-Sequence-Source": header_text(registry.source.uri),
            "X-AnyVar-Storage": storage,
        },
    )
