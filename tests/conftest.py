"""Shared fixtures: the spec's test vectors, generated references and VCFs, and SeqRepo
instances built with biocommons.seqrepo's own CLI (as vrs-python users build them); the
tiers (markers). Helpers that are not fixtures are in helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import VECTORS

from anyvar.synthetic import generate

SLOW = {
    "test_anyvar_suite", "test_async", "test_differential", "test_fanout", "test_faults",
    "test_interop", "test_limits", "test_page", "test_registry", "test_runs", "test_schema",
    "test_seqrepo_http", "test_serve",
}  # fmt: skip
"""Modules whose tests start whole stacks (API, Celery workers, their own Redis or PostgreSQL)
or run a peer (vrs-python, AnyVar 1.0.0) over large inputs: marked ``slow``, so that
``pytest -m "not slow"`` is a fast tier to iterate with. CI runs every tier."""

TIERS = {
    "browser": {"test_page"},
    "faults": {"test_faults", "test_limits"},
    "oracle": {
        "test_anyvar_suite", "test_copy_number", "test_differential", "test_interop",
        "test_liftover", "test_vectors",
    },
    "inprocess": {"test_lifecycle", "test_options", "test_inprocess"},
}  # fmt: skip
"""The other markers, by module (declared in pyproject.toml): ``browser`` drives chromium,
``faults`` kills and starves processes, ``oracle`` compares with a peer (vrs-python, agct,
AnyVar 1.0.0), ``inprocess`` needs no process of its own (Redis and PostgreSQL only): the
seconds-long loop for an edit of the lifecycle, the options or the routes."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__
        if module in SLOW:
            item.add_marker(pytest.mark.slow)
        for marker, modules in TIERS.items():
            if module in modules:
                item.add_marker(getattr(pytest.mark, marker))


@pytest.fixture(scope="session")
def vectors() -> Path:
    if not VECTORS.exists():
        pytest.fail(f"the test vectors are missing at {VECTORS}")
    return VECTORS


@pytest.fixture(scope="session")
def vector_seqrepo_uri(vectors: Path) -> str:
    return f"seqrepo+file://{vectors / 'seqrepo' / '2024-01-01'}"


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small generated reference (``ref.fa`` + ``.fai``) and a 3,000-record VCF over it."""
    return generate(tmp_path_factory.mktemp("synthetic"), records=3000, seed=7)


@pytest.fixture(scope="session")
def synthetic_fasta_uri(synthetic: tuple[Path, Path]) -> str:
    return f"fasta+file://{synthetic[0]}?assembly=GRCh38"


# --- helpers for the I/O, API, CLI and source tests -----------------------------------------


@pytest.fixture(scope="session")
def rdb():
    """The tests' own Redis database (async_service.REDIS_URL), flushed first and last."""
    from async_service import redis_client

    client = redis_client()
    client.flushdb()
    yield client
    client.flushdb()
    client.close()
