"""Response shapes, for the OpenAPI schema (``/docs``): what clients of each status code get."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class ErrorResponse(BaseModel):
    """Every error: AnyVar's ``error`` and ``error_code``; bad input also names its ``line``."""

    error: str
    error_code: str
    line: int | None = Field(default=None, description="1-based line of a bad VCF")


class RunStatusResponse(BaseModel):
    """AnyVar's answer about an asynchronous run."""

    run_id: str
    status: str = Field(description="PENDING, CANCELLED, NOT_FOUND, …")
    status_message: str | None


class RunInfo(BaseModel):
    """A run with its progress, as the poll and the run list show it."""

    run_id: str
    kind: Literal["vcf", "annotated_vcf", "variations"] | None
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    phase: Literal["queued", "annotating", "storing", "done"] | None
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
