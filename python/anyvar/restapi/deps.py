"""Dependencies shared by the routers, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from anyvar.config import Settings
from anyvar.registry import Registry


# async: FastAPI runs a plain function dependency on the thread pool, and under load (20
# clients, 2 cores: the fault tests) those hops made even GET /service-info take over a second.
async def _registry(request: Request) -> Registry:
    return request.app.state.registry


async def _settings(request: Request) -> Settings:
    return request.app.state.settings


RegistryDep = Annotated[Registry, Depends(_registry)]
SettingsDep = Annotated[Settings, Depends(_settings)]
