"""Request and response shapes: AnyVar's own (``anyvar.restapi.schema``, which its clients
import), and ours for runs and errors AnyVar does not define."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal

from ga4gh.vrs import VRS_VERSION, VrsType, models
from ga4gh.vrs import __version__ as vrs_python_version
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator

from anyvar import __version__
from anyvar.core import metadata, objects
from anyvar.mapping.liftover import ReferenceAssembly
from anyvar.queueing import KINDS, LISTED, PHASES


class ErrorResponse(BaseModel):
    """Our errors: ``error`` and ``error_code``; bad input also names its ``line``. Where
    AnyVar's body is ``{"error": …}`` alone (async runs not configured, a run id in use) the
    code is in the ``X-AnyVar-Error-Code`` header instead."""

    error: str
    error_code: str | None = None
    line: int | None = Field(default=None, description="1-based line of a bad VCF")


class RunStatusResponse(BaseModel):
    """AnyVar's answer about an asynchronous run."""

    run_id: str
    status: str = Field(description="PENDING, CANCELLED, NOT_FOUND, …")
    status_message: str | None


class RunInfo(BaseModel):
    """A run with its progress, as the poll and the run list show it."""

    run_id: str
    kind: Literal[KINDS] | None
    state: Literal[LISTED]
    phase: Literal[PHASES] | None
    phase_percent: float | None = Field(
        description="progress of the phase: records annotated, or rows stored"
    )
    percent: float | None = Field(description="share of the input's records annotated")
    records_done: int
    records_total: int | None
    submitted_at: str | None
    started_at: str | None
    finished_at: str | None
    error: str | None
    error_code: str | None


class RunProgress(RunInfo, RunStatusResponse):
    """The 202 of a poll: AnyVar's fields and the run's progress."""

    warning: str | None = Field(
        default=None,
        description="Set when the run has been queued for ANYVAR_QUEUED_WARNING_SECONDS and no "
        "live worker consumes its queue",
    )


class RunList(BaseModel):
    runs: list[RunInfo]
    next_page_token: str | None = Field(description="pass as page_token for the next page")


def errors(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses`` entries for error status codes."""
    described = {
        400: "Bad input (INVALID_VCF with the line, INVALID_RUN_ID, RUN_ID_IN_USE, "
        "ASYNC_NOT_CONFIGURED, MISSING_VRS_ANNOTATIONS)",
        404: "Unknown or expired run (NOT_FOUND)",
        410: "The run was cancelled (RUN_CANCELLED) or its result removed (RESULT_GONE)",
        413: "Upload or line over a configured limit",
        422: "Invalid parameter (FastAPI's detail, plus error and error_code)",
        500: "The run failed (the status code is ANYVAR_VCF_ASYNC_FAILURE_STATUS_CODE, "
        "default 500): INVALID_VCF with line, TIME_LIMIT_EXCEEDED, WORKER_LOST_ERROR, "
        "RUN_FAILURE",
        503: "Sequence source, storage or work directory unavailable",
        507: "Not enough disk for the upload or the result",
    }
    return {c: {"model": ErrorResponse, "description": described[c]} for c in codes}


# AnyVar's shapes (1.0.0, with main's additions), key for key.


class EndpointTag(str, Enum):
    META = "Service Metadata"
    VCF = "VCF Operations"
    VRS_OBJECTS = "VRS Objects"
    SEARCH = "Search Operations"


class ServiceEnvironment(str, Enum):
    DEV = "dev"
    PROD = "prod"
    TEST = "test"
    STAGING = "staging"


class ServiceOrganization(BaseModel):
    name: str = "bioccommons"  # sic: AnyVar's default
    url: str = "https://biocommons.org"


class ServiceType(BaseModel):
    group: str = "org.biocommons"
    artifact: str = "anyvar"
    version: str = __version__


class SpecMetadata(BaseModel):
    vrs_version: str = VRS_VERSION


class ImplMetadata(BaseModel):
    """The vrs-python release whose models (and, by default, output) we follow."""

    vrs_python_version: str = vrs_python_version


class CapabilitiesMetadata(BaseModel):
    liftover_assemblies: list[str] = ["GRCh38", "GRCh37"]


class ServiceInfo(BaseModel):
    """GA4GH service-info, as AnyVar answers it."""

    id: str = "org.biocommons.anyvar"
    name: str = "AnyVar"
    type: ServiceType = ServiceType()
    description: str = "Register and retrieve variations and associated annotations."
    organization: ServiceOrganization = ServiceOrganization()
    contactUrl: str = "mailto:alex.wagner@nationwidechildrens.org"  # noqa: N815
    documentationUrl: str = "https://github.com/biocommons/anyvar"  # noqa: N815
    createdAt: datetime = datetime.fromisoformat("2025-06-01T00:00:00Z")  # noqa: N815
    updatedAt: datetime = datetime.fromisoformat("2025-06-01T00:00:00Z")  # noqa: N815
    environment: ServiceEnvironment = ServiceEnvironment.DEV
    version: str = __version__
    spec_metadata: SpecMetadata = SpecMetadata()
    impl_metadata: ImplMetadata = ImplMetadata()
    capabilities_metadata: CapabilitiesMetadata = CapabilitiesMetadata()


class TranslationResult(BaseModel):
    variation: objects.VrsVariation | None = None
    error: str | None = None


class SupportedVariationType(StrEnum):
    ALLELE = VrsType.ALLELE.value
    COPY_NUMBER_CHANGE = VrsType.CN_CHANGE.value
    COPY_NUMBER_COUNT = VrsType.CN_COUNT.value


class VariationRequest(BaseModel):
    """The body of ``PUT /variation``, ``POST /variation`` and each item of
    ``PUT /variations``."""

    model_config = ConfigDict(use_enum_values=True)

    definition: StrictStr
    input_type: SupportedVariationType | None = None
    # Not a boolean (AnyVar's lax int took false as 0), and 64-bit (as the core stores it: a
    # larger one was a 500, found by schemathesis).
    copies: Annotated[StrictInt, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    copy_change: models.CopyChange | None = None
    # validated so that the default, too, is the value ("GRCh38"), as use_enum_values makes
    # what a client sends
    assembly_name: ReferenceAssembly | None = Field(
        default=ReferenceAssembly.GRCH38, validate_default=True
    )

    @field_validator("definition")
    @classmethod
    def encodable(cls, definition: str) -> str:
        """A lone surrogate (``"\\udaf7"`` in JSON) is no text the core can read: a 422
        naming the field, not a 500."""
        try:
            definition.encode("utf-8")
        except UnicodeEncodeError as e:
            raise ValueError(f"not valid Unicode text: {e.reason} at {e.start}") from None
        return definition


class AddAnnotationResponse(BaseModel):
    object: objects.VrsObject | None
    object_id: str | None
    annotation_type: str | None
    annotation_value: Any | None
    annotation_id: int | None


class AddAnnotationRequest(BaseModel):
    annotation_type: str
    annotation_value: Any


class GetAnnotationResponse(BaseModel):
    annotations: list[metadata.Annotation]


class AddExtensionRequest(BaseModel):
    name: str
    value: Any


class AddExtensionResponse(BaseModel):
    object: objects.VrsObject | None
    object_id: str | None
    extension_name: str | None
    extension_value: Any | None
    extension_id: int | None


class GetExtensionResponse(BaseModel):
    extensions: list[metadata.Extension]


class AddMappingResponse(BaseModel):
    model_config = ConfigDict(use_enum_values=True)

    source_object: objects.VrsObject | None
    source_object_id: str
    dest_object: objects.VrsObject | None
    dest_object_id: str
    mapping_type: metadata.VariationMappingType | metadata.MappingTypeMain


class AddMappingRequest(BaseModel):
    """AnyVar 1.0.0's mapping body."""

    model_config = ConfigDict(use_enum_values=True)

    dest_id: str
    mapping_type: metadata.VariationMappingType


class AddMappingRequestMain(BaseModel):
    """AnyVar main's mapping body (``liftover_to``…)."""

    model_config = ConfigDict(use_enum_values=True)

    dest_id: str
    mapping_type: metadata.MappingTypeMain


class GetMappingResponse(BaseModel):
    mappings: Iterable[metadata.VariationMapping]


class RegisterVariationResponse(BaseModel):
    input_variation: VariationRequest | objects.VrsVariation
    messages: list[str] = []
    object: objects.VrsVariation | None = None
    object_id: str | None = None


class GetObjectResponse(BaseModel):
    messages: list[StrictStr]
    data: objects.VrsObject | None = None


class SearchResponse(BaseModel):
    variations: list[models.Variation]
