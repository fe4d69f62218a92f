"""The one settings object: every environment variable anyvar reads, with its default."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal, NoReturn

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from anyvar.exceptions import SettingsError


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _default_chain_dir() -> Path:
    from anyvar.mapping.liftover import default_chain_dir

    return default_chain_dir()


class Settings(BaseSettings):
    """Read from the environment and a ``.env`` file in the working directory."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    seqrepo_dataproxy_uri: str | None = Field(default=None, alias="SEQREPO_DATAPROXY_URI")
    """Reference sequences: ``seqrepo+file:///path/to/instance``, ``seqrepo+:relative/path``,
    ``seqrepo+http://host:port/seqrepo`` (a SeqRepo REST service) or
    ``fasta+file:///path/ref.fa?assembly=GRCh38``."""

    threads: int = Field(default=0, ge=0, alias="ANYVAR_THREADS")
    """Threads one annotation run uses (annotation pool and BGZF workers); 0 = all available
    cores. Several processes on one machine (Celery prefork children) should share the cores."""

    cache_dir: Path = Field(
        default_factory=lambda: (
            Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "anyvar"
        ),
        alias="ANYVAR_CACHE_DIR",
    )
    """Where derived files go when they cannot sit beside their source (FASTA refget digests)."""

    storage_uri: str = Field(
        default_factory=lambda: (
            "sqlite:///"
            + str(
                Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share"))
                / "anyvar"
                / "anyvar.sqlite3"
            )
        ),
        alias="ANYVAR_STORAGE_URI",
    )
    """Registry database: ``sqlite:///path`` (embedded, the default), ``postgresql://…``, or
    the empty string for no storage (annotation only)."""

    liftover_chain_dir: Path = Field(
        default_factory=lambda: _default_chain_dir(), alias="ANYVAR_LIFTOVER_CHAIN_DIR"
    )
    """UCSC chain files (hg38ToHg19, hg19ToHg38) for liftover on registration; by default
    where agct keeps them. Nothing is downloaded."""

    auth_token_list: str = Field(default="", alias="ANYVAR_AUTH_TOKEN_LIST")
    """Comma-separated bearer tokens; when set, every route but the docs requires one."""
    # JWT bearer tokens from an OpenID Connect issuer, as AnyVar 1.0.0 (anyvar/restapi/auth.py).
    # Any of these lists, when set, must match the token's claim; a token passes when it is in
    # the token list above or is such a JWT.
    auth_issuer_url: str | None = Field(default=None, alias="ANYVAR_AUTH_ISSUER_URL")
    """The issuer (``iss`` claim, compared exactly) of accepted JWTs; when set, every route but
    the docs requires a bearer token (needs ANYVAR_AUTH_JWKS_URI to accept any JWT)."""
    auth_jwks_uri: str | None = Field(default=None, alias="ANYVAR_AUTH_JWKS_URI")
    """URL of the issuer's JSON Web Key Set; the RS256 signature is checked with its keys."""
    auth_audiences: str = Field(default="", alias="ANYVAR_AUTH_AUDIENCES")
    """Comma-separated; when set, one of the token's ``aud`` values must be among them."""
    auth_appids: str = Field(default="", alias="ANYVAR_AUTH_APPIDS")
    """Comma-separated; when set, the token's ``appid`` claim must be among them."""
    auth_scopes: str = Field(default="", alias="ANYVAR_AUTH_SCOPES")
    """Comma-separated; when set, the token's ``scope`` must hold at least one of them."""
    auth_emails: str = Field(default="", alias="ANYVAR_AUTH_EMAILS")
    """Comma-separated; when set, the token's ``email`` must be among them (ignoring case)."""
    auth_subjects: str = Field(default="", alias="ANYVAR_AUTH_SUBJECTS")
    """Comma-separated; when set, the token's ``sub`` claim must be among them."""

    # Asynchronous runs on Celery (names and defaults of AnyVar's documentation).
    celery_broker_url: str = Field(default="redis://localhost:6379/0", alias="CELERY_BROKER_URL")
    celery_backend_url: str = Field(default="redis://localhost:6379/0", alias="CELERY_BACKEND_URL")
    vcf_async_work_dir: Path | None = Field(default=None, alias="ANYVAR_VCF_ASYNC_WORK_DIR")
    """Shared directory for uploaded and annotated files; async runs are off without it."""
    vcf_async_failure_status_code: int = Field(
        default=500, ge=200, le=599, alias="ANYVAR_VCF_ASYNC_FAILURE_STATUS_CODE"
    )
    expected_vrs_ids_per_second: int = Field(
        default=300_000, gt=0, alias="ANYVAR_EXPECTED_VRS_IDS_PER_SECOND"
    )
    """For ``Retry-After``: identifiers one worker computes per second (measured: several
    hundred thousand; the estimate errs on the slow side)."""
    vcf_chunk_records: int = Field(default=2_000_000, ge=0, alias="ANYVAR_VCF_CHUNK_RECORDS")
    """An async VCF with more records than this is cut into chunks of this many, each
    annotated and registered by its own task on any worker (about 10-30 s of one thread's
    work each); 0 never cuts. Plain and bgzip inputs are cut; gzip that is not BGZF is not."""
    vcf_chunk_attempts: int = Field(default=3, ge=1, alias="ANYVAR_VCF_CHUNK_ATTEMPTS")
    """Times a chunk is started before a run whose chunk keeps losing its worker fails."""
    max_line_bytes: int = Field(default=64 << 20, gt=0, alias="ANYVAR_MAX_LINE_BYTES")
    """The longest VCF line read (bytes, decompressed): a longer one is bad input (400), found
    before more of it than this is held in memory."""
    max_header_bytes: int = Field(default=64 << 20, gt=0, alias="ANYVAR_MAX_HEADER_BYTES")
    max_json_body_bytes: int = Field(default=4 << 20, gt=0, alias="ANYVAR_MAX_JSON_BODY_BYTES")
    """The largest request body that is not a multipart upload (a JSON body): 413 beyond. It
    also bounds how long FastAPI validates a body on the event loop (about a second for 4 MiB
    of the shortest definitions)."""
    max_definitions: int = Field(default=10_000, gt=0, alias="ANYVAR_MAX_DEFINITIONS")
    """Definitions one ``PUT /variations`` may carry: 422 beyond (AnyVLM sends 1,000)."""
    max_definition_bytes: int = Field(default=1 << 20, gt=0, alias="ANYVAR_MAX_DEFINITION_BYTES")
    """The longest definition, and the longest allele sequence given as VRS JSON: 422
    beyond."""
    body_read_timeout: float = Field(default=60, gt=0, alias="ANYVAR_BODY_READ_TIMEOUT")
    """Seconds a request body may pause, and after which it must have arrived at
    ANYVAR_MIN_BODY_BYTES_PER_SECOND on average: 408 otherwise."""
    min_body_bytes_per_second: int = Field(
        default=1024, ge=0, alias="ANYVAR_MIN_BODY_BYTES_PER_SECOND"
    )
    max_uploads_in_flight: int = Field(default=64, gt=0, alias="ANYVAR_MAX_UPLOADS_IN_FLIGHT")
    """Multipart uploads (``PUT /vcf``, ``PUT /annotated_vcf``) received at once: 503 with
    ``Retry-After`` beyond."""
    vrs_python_output: Literal["2.3", "2.2"] = Field(
        default="2.3", alias="ANYVAR_VRS_PYTHON_OUTPUT"
    )
    """Whose annotated output to match where vrs-python releases differ: 2.2 wrote an empty
    string for a missing String entry (``VRS_States=,AT``), 2.3 and later write ``.``."""
    """The longest VCF header, all its lines together."""
    queued_warning_seconds: float = Field(default=30, gt=0, alias="ANYVAR_QUEUED_WARNING_SECONDS")
    """A run queued this long while no live worker consumes its queue says so when polled."""
    celery_task_default_queue: str = Field(default="anyvar_q", alias="CELERY_TASK_DEFAULT_QUEUE")
    celery_event_queue_prefix: str = Field(default="anyvar_ev", alias="CELERY_EVENT_QUEUE_PREFIX")
    celery_timezone: str = Field(default="UTC", alias="CELERY_TIMEZONE")
    celery_result_expires: int = Field(default=7200, ge=1, alias="CELERY_RESULT_EXPIRES")
    celery_broker_transport_options_visibility_timeout: int = Field(
        default=7200, ge=1, alias="CELERY_BROKER_TRANSPORT_OPTIONS_VISIBILITY_TIMEOUT"
    )
    celery_task_acks_late: bool = Field(default=True, alias="CELERY_TASK_ACKS_LATE")
    celery_task_reject_on_worker_lost: bool = Field(
        default=False, alias="CELERY_TASK_REJECT_ON_WORKER_LOST"
    )
    celery_worker_prefetch_multiplier: int = Field(
        default=1, ge=0, alias="CELERY_WORKER_PREFETCH_MULTIPLIER"
    )
    celery_task_time_limit: int = Field(default=3900, ge=1, alias="CELERY_TASK_TIME_LIMIT")
    celery_soft_time_limit: int = Field(default=3600, ge=1, alias="CELERY_SOFT_TIME_LIMIT")
    celery_worker_send_task_events: bool = Field(
        default=False, alias="CELERY_WORKER_SEND_TASK_EVENTS"
    )

    def async_missing(self) -> str | None:
        """What async runs lack, in words naming the setting or package; None when they
        have the shared work directory and Celery. As AnyVar does, a setting emptied in the
        environment since start turns them off at once."""
        for name in ("ANYVAR_VCF_ASYNC_WORK_DIR", "CELERY_BROKER_URL"):
            if os.environ.get(name) == "":
                return f"{name} is empty"
        if self.vcf_async_work_dir is None:
            return "ANYVAR_VCF_ASYNC_WORK_DIR is not set"
        try:
            import celery  # noqa: F401
        except ImportError:
            return "Celery is not installed (pip install 'anyvar[queueing]')"
        return None

    def async_enabled(self) -> bool:
        return self.async_missing() is None

    def limits(self) -> tuple[int, int]:
        """The input bounds as the core takes them with each call: (longest line, longest
        header), in bytes."""
        return self.max_line_bytes, self.max_header_bytes

    def auth_tokens(self) -> set[str]:
        return {t.strip() for t in self.auth_token_list.split(",") if t.strip()}

    def annotation_threads(self, processes: int = 1) -> int:
        """Threads for the core's work in one of ``processes`` processes that run at once on
        this machine (a worker's pool, ``anyvar serve``'s workers), so that processes × threads
        never oversubscribes its cores: ``ANYVAR_THREADS`` where set, else this process's share
        of the cores. The one place threads are sized."""
        return self.threads or max(1, available_cores() // max(1, processes))


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process, each parsed and range-checked once; SettingsError names
    every bad one."""
    return load_settings()


def load_settings() -> Settings:
    """Settings read now (not cached); SettingsError names every bad one."""
    try:
        return Settings()
    except ValidationError as e:
        raise SettingsError(
            [
                f"{'.'.join(map(str, err['loc']))}={err['input']!r}: {err['msg']}"
                for err in e.errors()
            ]
        ) from None


CANNOT_START = 3
"""Exit status of the API, the worker and ``anyvar serve`` when they cannot start: restarting
cannot help (gunicorn stops instead of restarting workers)."""


def say_cannot_start(e: BaseException) -> None:
    """``AnyVar cannot start: …``, one line per problem, on stderr."""
    for problem in getattr(e, "problems", None) or [str(e)]:
        print(f"AnyVar cannot start: {problem}", file=sys.stderr, flush=True)


def cannot_start(e: BaseException) -> NoReturn:
    """What the API and the worker do when they cannot start: say why, no traceback, exit
    ``CANNOT_START``. ``os._exit``: raising from an import or a lifespan prints a traceback."""
    say_cannot_start(e)
    os._exit(CANNOT_START)
