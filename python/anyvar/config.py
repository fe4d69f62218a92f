"""The one settings object: every environment variable anyvar reads, with its default."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def available_cores() -> int:
    """Cores this process may run on (respects CPU affinity and container limits)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


class Settings(BaseSettings):
    """Read from the environment and a ``.env`` file in the working directory."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=True)

    seqrepo_dataproxy_uri: str | None = Field(default=None, alias="SEQREPO_DATAPROXY_URI")
    """Reference sequences: ``seqrepo+file:///path/to/instance``, ``seqrepo+:relative/path`` or
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

    auth_token_list: str = Field(default="", alias="ANYVAR_AUTH_TOKEN_LIST")
    """Comma-separated bearer tokens; when set, every route but the docs requires one."""

    def auth_tokens(self) -> set[str]:
        return {t.strip() for t in self.auth_token_list.split(",") if t.strip()}

    def annotation_threads(self) -> int:
        return self.threads or available_cores()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
