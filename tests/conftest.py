"""Our stand-in for AnyVar 1.0.0's ``tests/conftest.py``: the same fixtures, served from our
app (its lifespan running, as a deployment runs it) over the database, sequences and Redis that
tests/test_anyvar_suite.py configures in the environment."""

import json
import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ga4gh.vrs import models
from pydantic import BaseModel

from anyvar.anyvar import create_storage, create_translator
from anyvar.core import objects
from anyvar.restapi.main import app as anyvar_restapi


def pytest_runtest_setup(item):
    """As AnyVar's: tests marked for another database are skipped."""
    supported = {"postgresql", "snowflake"}.intersection(m.name for m in item.iter_markers())
    current = os.environ["ANYVAR_TEST_STORAGE_URI"].split("+")[0].split(":")[0]
    if supported and current not in supported:
        pytest.skip(f"Skipping test for {supported} when current test db is {current}")


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    return Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def alleles(test_data_dir: Path):
    class _AlleleFixture(BaseModel):
        variation: models.Allele
        comment: str | None = None
        register_params: dict[str, str | int] | None = None

    data = json.loads((test_data_dir / "variations.json").read_text())
    for allele in data["alleles"].values():
        assert _AlleleFixture(**allele)
    return data["alleles"]


@pytest.fixture(scope="session")
def copy_number_variations(test_data_dir: Path):
    return json.loads((test_data_dir / "variations.json").read_text())["copy_numbers"]


@pytest.fixture(scope="session")
def storage_uri() -> str:
    return os.environ["ANYVAR_TEST_STORAGE_URI"]


@pytest.fixture(scope="module")
def storage(storage_uri: str):
    storage = create_storage(uri=storage_uri)
    storage.wipe_db()
    return storage


@pytest.fixture(scope="session")
def translator():
    return create_translator()


@pytest.fixture(scope="module")
def restapi_client(storage):
    with TestClient(app=anyvar_restapi) as client:
        yield client


@pytest.fixture(scope="module")
def anyvar_instance(restapi_client):
    return restapi_client.app.state.anyvar


variation_class_map = {
    "Allele": models.Allele,
    "CopyNumberCount": models.CopyNumberCount,
    "CopyNumberChange": models.CopyNumberChange,
}


def build_vrs_variant_from_dict(variant_dict: dict) -> objects.VrsVariation:
    return variation_class_map[variant_dict.get("type", "")](**variant_dict)


@pytest.fixture
def build_vrs_variant_from_dict_function():
    return build_vrs_variant_from_dict
