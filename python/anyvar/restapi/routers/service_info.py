"""GA4GH service-info."""

from __future__ import annotations

from fastapi import APIRouter

from anyvar import VRS_VERSION, __version__
from anyvar.restapi.deps import RegistryDep, SettingsDep

router = APIRouter(tags=["General"])


@router.get("/service-info", operation_id="service_info")
async def service_info(registry: RegistryDep, settings: SettingsDep) -> dict:
    # Answered on the event loop (nothing here blocks): a liveness probe must not wait for a
    # thread of the pool that busy requests hold.
    storage = settings.storage_uri.split("://", 1)[0] if settings.storage_uri else "none"
    return {
        "id": "org.biocommons.anyvar",
        "name": "AnyVar",
        "type": {"group": "org.biocommons", "artifact": "anyvar", "version": __version__},
        "description": "Register and retrieve variations; annotate VCFs with GA4GH VRS ids.",
        "organization": {"name": "biocommons", "url": "https://biocommons.org"},
        "documentationUrl": "https://github.com/biocommons/anyvar",
        "environment": "prod",
        "version": __version__,
        "spec_metadata": {"vrs_version": VRS_VERSION},
        "impl_metadata": {"anyvar_core_version": __version__},
        "sequence_source": registry.source.uri,
        "storage": storage,
    }
