"""The REST routes in process: ``create_app(Settings(...))`` under FastAPI's TestClient, on a
SQLite file and the spec's vectors. No server, no worker: the edit-test loop of a route is
seconds. The vectors' ids (tests/data/vectors/alleles.tsv, from vrs-python) are the oracle;
the same routes run against real uvicorn, PostgreSQL and workers in test_restapi.py."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from helpers import data_lines, vrs_ids

import anyvar
from anyvar.config import Settings
from anyvar.restapi.main import create_app


@pytest.fixture
def client(vector_seqrepo_uri: str, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        seqrepo_dataproxy_uri=vector_seqrepo_uri,
        storage_uri=f"sqlite:///{tmp_path / 'registry.db'}",
        liftover_chain_dir=tmp_path / "no-chains",
    )
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.fixture(scope="module")
def expected(vectors: Path) -> dict[str, str]:
    """vrs-python's Allele id of each ``chrom-pos-ref-alt`` of the vectors."""
    with (vectors / "alleles.tsv").open() as f:
        return {row["vcf_coords"]: row["va_id"] for row in csv.DictReader(f, delimiter="\t")}


def test_a_definition_registers_and_reads_back(client: TestClient, expected):
    definition, va_id = "chr1-11-A-G", expected["chr1-11-A-G"]
    r = client.put("/variation", json={"definition": definition})
    assert r.status_code == 200, r.text
    assert r.json()["object_id"] == va_id
    got = client.get(f"/object/{va_id}")
    assert got.status_code == 200
    assert got.json()["data"]["id"] == va_id
    assert client.get("/object/ga4gh:VA.nope").status_code == 404


def test_a_batch_answers_in_order_with_the_oracles_ids(client: TestClient, expected):
    definitions = [d for d in expected if not d.endswith("-A-A")][:20]
    r = client.put("/variations", json=[{"definition": d} for d in [*definitions, "nonsense"]])
    assert r.status_code == 200, r.text
    answers = r.json()
    assert [a.get("object_id") for a in answers[:-1]] == [expected[d] for d in definitions]
    assert "object_id" not in answers[-1] and answers[-1]["messages"], "a failure says why"


def test_put_vcf_answers_what_the_library_writes(
    client: TestClient, vectors: Path, vector_seqrepo_uri: str, tmp_path: Path
):
    with (vectors / "input.vcf").open("rb") as f:
        r = client.put("/vcf", files={"vcf": ("input.vcf", f)}, params={"for_ref": "false"})
    assert r.status_code == 200, r.text
    served = tmp_path / "served.vcf"
    served.write_bytes(r.content)
    library = tmp_path / "library.vcf"
    anyvar.annotate_vcf(
        vectors / "input.vcf", library, dataproxy_uri=vector_seqrepo_uri, for_ref=False
    )
    assert [vrs_ids(f) for f in data_lines(served)] == [vrs_ids(f) for f in data_lines(library)]


def test_bad_input_is_a_4xx_naming_the_line(client: TestClient):
    r = client.put("/vcf", files={"vcf": ("x.vcf", b"##fileformat=VCFv4.2\nnot a header\n")})
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_VCF" and r.json()["line"] == 2
