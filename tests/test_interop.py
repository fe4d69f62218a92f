"""One PostgreSQL database shared with AnyVar 1.0.0 itself (PyPI, in .venv-anyvar-1.0, made by
scripts/setup.sh), both ways: what AnyVar wrote (alleles, annotations, mappings) our API
serves, and what our API wrote AnyVar's own storage reads back."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from service import REPO, Server, postgres_database, start_server

ANYVAR_10 = REPO / ".venv-anyvar-1.0" / "bin" / "python"
DEFINITIONS = ["chr1-11-A-G", "chr1-56-GA-CG", "chr1-63-CAGG-CGGG"]


def anyvar_10(uri: str, script: str, data: object) -> object:
    """Runs ``script`` in AnyVar 1.0.0's interpreter with ``storage`` (its PostgreSQL storage
    on ``uri``) and ``data``; returns what it prints as JSON."""
    if not ANYVAR_10.exists():
        pytest.fail(f"{ANYVAR_10} is missing: scripts/setup.sh installs AnyVar 1.0.0 there")
    prelude = (
        "import json, sys\n"
        "from anyvar.anyvar import create_storage\n"
        "from anyvar.core import metadata\n"
        "from ga4gh.vrs import models\n"
        "storage = create_storage(sys.argv[1])\n"
        "data = json.loads(sys.argv[2])\n"
    )
    run = subprocess.run(
        [str(ANYVAR_10), "-c", prelude + script, uri, json.dumps(data)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


@pytest.fixture
def database() -> str:
    with postgres_database() as uri:
        with psycopg.connect(uri, autocommit=True) as conn:
            # AnyVar's GiST index over (varchar, int8range) needs it
            conn.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
        yield uri


@contextlib.contextmanager
def server_on(work: Path, seqrepo_uri: str, storage_uri: str) -> Iterator[Server]:
    server = start_server(
        work, {"SEQREPO_DATAPROXY_URI": seqrepo_uri, "ANYVAR_STORAGE_URI": storage_uri}
    )
    try:
        yield server
    finally:
        server.stop()


def translated(server: Server, definitions: list[str]) -> list[dict]:
    r = server.client.put("/variations", json=[{"definition": d} for d in definitions])
    assert r.status_code == 200, r.text
    return [a["object"] for a in r.json()]


def test_what_anyvar_wrote_we_serve(database: str, tmp_path: Path, vector_seqrepo_uri: str) -> None:
    # Our alleles, as AnyVar would have them: written by AnyVar 1.0.0 into its own tables.
    with server_on(tmp_path / "ours", vector_seqrepo_uri, "") as server:
        alleles = translated(server, DEFINITIONS)
    a, b, c = (x["id"] for x in alleles)
    anyvar_10(
        database,
        "storage.add_objects([models.Allele(**x) for x in data['alleles']])\n"
        "storage.add_annotation(metadata.Annotation(object_id=data['a'],"
        " annotation_type='note', annotation_value={'k': [1, 2]}))\n"
        "storage.add_mapping(metadata.VariationMapping(source_id=data['a'],"
        " dest_id=data['b'], mapping_type='liftover'))\n"
        "print(json.dumps('ok'))",
        {"alleles": alleles, "a": a, "b": b},
    )
    with server_on(tmp_path / "shared", vector_seqrepo_uri, database) as server:
        for allele in alleles:
            r = server.client.get(f"/object/{allele['id']}")
            assert r.status_code == 200 and r.json()["data"] == allele, r.text
        r = server.client.get(f"/object/{a}/annotations/note")
        assert r.json()["annotations"] == [
            {"object_id": a, "annotation_type": "note", "annotation_value": {"k": [1, 2]}}
        ]
        r = server.client.get(f"/object/{a}/mappings/liftover")
        assert r.json() == {
            "mappings": [{"source_id": a, "dest_id": b, "mapping_type": "liftover"}]
        }
        r = server.client.get(f"/object/{b}/mappings", params={"as_source": "false"})
        assert r.json()["mappings"] == [
            {"source_id": a, "dest_id": b, "mapping_type": "liftover_to"}
        ]
        sq = alleles[0]["location"]["sequenceReference"]["refgetAccession"]
        found = server.client.get(
            "/search", params={"accession": f"ga4gh:{sq}", "start": 0, "end": 100}
        )
        assert {x["id"] for x in found.json()["variations"]} == {a, b, c}
        # ... and ours go into AnyVar's tables beside theirs, which AnyVar reads.
        more = translated(server, ["chr1-397-C-G"])
    got = anyvar_10(
        database,
        "print(json.dumps([x.model_dump(exclude_none=True)"
        " for x in storage.get_objects(models.Allele, data)]))",
        [more[0]["id"]],
    )
    assert got == more


def test_what_we_wrote_anyvar_reads(database: str, tmp_path: Path, vector_seqrepo_uri: str) -> None:
    with server_on(tmp_path / "shared", vector_seqrepo_uri, database) as server:
        alleles = translated(server, DEFINITIONS)
        a, b, _ = (x["id"] for x in alleles)
        r = server.client.post(
            f"/object/{a}/annotations",
            json={"annotation_type": "clinvar", "annotation_value": "Pathogenic"},
        )
        assert r.status_code == 200, r.text
        r = server.client.put(
            f"/object/{a}/mappings", json={"dest_id": b, "mapping_type": "transcribe_to"}
        )
        assert r.status_code == 200, r.text
    got = anyvar_10(
        database,
        "print(json.dumps({"
        "'alleles': [x.model_dump(exclude_none=True)"
        " for x in storage.get_objects(models.Allele, data['ids'])],"
        "'annotations': [x.model_dump() for x in storage.get_annotations(data['a'], 'clinvar')],"
        "'created': len(storage.get_annotations(data['a'], 'creation_timestamp')),"
        "'mappings': [x.model_dump(mode='json') for x in storage.get_mappings(data['a'])],"
        "}))",
        {"ids": [x["id"] for x in alleles], "a": a},
    )
    assert sorted(got["alleles"], key=lambda x: x["id"]) == sorted(alleles, key=lambda x: x["id"])
    assert got["annotations"] == [
        {"object_id": a, "annotation_type": "clinvar", "annotation_value": "Pathogenic"}
    ]
    assert got["created"] == 1, "AnyVar's creation_timestamp annotation, once"
    assert got["mappings"] == [{"source_id": a, "dest_id": b, "mapping_type": "transcription"}]
