"""AnyVar 1.0.0's module path for the object routes and their example payloads."""

from anyvar.restapi.routers.objects import router as objects_router
from anyvar.restapi.routers.variations import (
    PUT_VRS_VARIATION_EXAMPLE_PAYLOAD,
    VARIATION_EXAMPLE_PAYLOAD,
)

__all__ = ["PUT_VRS_VARIATION_EXAMPLE_PAYLOAD", "VARIATION_EXAMPLE_PAYLOAD", "objects_router"]
