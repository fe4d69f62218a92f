"""AnyVar main's object routes and their 1.0.0 counterparts over one store, copy numbers and
categorical variants, against a real uvicorn on SQLite and PostgreSQL (AnyVar 1.0.0's own
tests of its shapes run in tests/test_anyvar_suite.py). Ids: vrs-python is the oracle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service import (
    Server,
    build_seqrepo_with_refseq,
    read_fasta,
    start_server,
    storage,
    vrs_python_translator,
)

REFSEQ = {"chr1": "NC_000001.11", "chr2": "NC_000002.12", "chr3": "NC_000003.12"}


@pytest.fixture(scope="module")
def seqrepo(synthetic: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_seqrepo_with_refseq(synthetic[0], tmp_path_factory.mktemp("seqrepo"), REFSEQ)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request, seqrepo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"objects-{request.param}")
    with storage(request.param, tmp / "db") as uri:
        env = {"SEQREPO_DATAPROXY_URI": f"seqrepo+file://{seqrepo}", "ANYVAR_STORAGE_URI": uri}
        srv = start_server(tmp, env)
        try:
            yield srv
        finally:
            srv.stop()


@pytest.fixture(scope="module")
def chr1(synthetic: tuple[Path, Path]) -> str:
    return read_fasta(synthetic[0])["chr1"]


def register(server: Server, definition: str, **extra) -> dict:
    r = server.client.put("/variation", json={"definition": definition, **extra})
    assert r.status_code == 200, r.text
    assert r.json().get("object_id"), r.json()
    return r.json()


def snv(chr1: str, position: int) -> str:
    ref = chr1[position - 1]
    return f"chr1-{position}-{ref}-{'A' if ref != 'A' else 'C'}"


def test_extensions_are_annotations_under_mains_names(server: Server, chr1: str) -> None:
    vid = register(server, snv(chr1, 101))["object_id"]
    r = server.client.post(f"/object/{vid}/extensions", json={"name": "source", "value": "gnomAD"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["object_id"], body["extension_name"], body["extension_value"]) == (
        vid,
        "source",
        "gnomAD",
    )
    assert isinstance(body["extension_id"], int) and body["object"]["id"] == vid
    # the same store, read in either release's names
    r = server.client.get(f"/object/{vid}/extensions/source")
    assert r.json() == {"extensions": [{"object_id": vid, "name": "source", "value": "gnomAD"}]}
    r = server.client.get(f"/object/{vid}/annotations/source")
    assert r.json()["annotations"] == [
        {"object_id": vid, "annotation_type": "source", "annotation_value": "gnomAD"}
    ]
    # registration stamped it as AnyVar does
    stamps = server.client.get(f"/object/{vid}/extensions/creation_timestamp").json()
    assert len(stamps["extensions"]) == 1
    r = server.client.delete(f"/object/{vid}/extensions/source")
    assert r.status_code == 204 and r.content == b""
    assert server.client.get(f"/object/{vid}/extensions/source").json() == {"extensions": []}
    r = server.client.delete("/object/ga4gh:VA.nope/extensions/source")
    assert r.status_code == 404 and r.json() == {"detail": "Object `ga4gh:VA.nope` not found"}
    r = server.client.post("/object/ga4gh:VA.nope/extensions", json={"name": "a", "value": 1})
    assert r.status_code == 404 and r.json() == {"detail": "VRS Object ga4gh:VA.nope not found"}
    r = server.client.post(f"/object/{vid}/extensions", json={"value": 1})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]


def test_mappings_in_both_spellings_and_directions(server: Server, chr1: str) -> None:
    a = register(server, snv(chr1, 201))["object_id"]
    b = register(server, snv(chr1, 202))["object_id"]
    r = server.client.put(
        f"/object/{a}/mappings", json={"dest_id": b, "mapping_type": "liftover_to"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["mapping_type"] == "liftover_to" and r.json()["dest_object"]["id"] == b
    r = server.client.put(
        f"/object/{b}/mappings", json={"dest_id": a, "mapping_type": "transcription"}
    )
    assert r.status_code == 200 and r.json()["mapping_type"] == "transcription"

    def mappings(vid: str, **params) -> list[dict]:
        r = server.client.get(f"/object/{vid}/mappings", params=params)
        assert r.status_code == 200, r.text
        return r.json()["mappings"]

    assert mappings(a) == [{"source_id": a, "dest_id": b, "mapping_type": "liftover_to"}]
    assert mappings(a, as_source="false") == [
        {"source_id": b, "dest_id": a, "mapping_type": "transcribe_to"}
    ]
    assert mappings(a, mapping_type="translate_to") == []
    # 1.0.0's route reads the same row in 1.0.0's names
    r = server.client.get(f"/object/{a}/mappings/liftover")
    assert r.json() == {"mappings": [{"source_id": a, "dest_id": b, "mapping_type": "liftover"}]}
    r = server.client.get(f"/object/{a}/mappings", params={"mapping_type": "liftover"})
    assert r.status_code == 422  # main's route takes main's names
    r = server.client.put(f"/object/{a}/mappings", json={"dest_id": b, "mapping_type": "up"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["msg"] == (
        "Input should be 'liftover', 'transcription' or 'translation'"
    )
    r = server.client.put(
        f"/object/{a}/mappings", json={"dest_id": a, "mapping_type": "liftover_to"}
    )
    assert r.status_code == 422
    assert r.json()["detail"] == (
        f"Failed to add mapping: dest_id='{a}' mapping_type='liftover_to'. "
        f"source_id cannot equal dest_id: {a}"
    )
    assert server.client.get("/object/ga4gh:VA.nope/mappings").status_code == 404


def test_delete_object_takes_its_metadata_both_ways(server: Server, chr1: str) -> None:
    a = register(server, snv(chr1, 301))["object_id"]
    b = register(server, snv(chr1, 302))["object_id"]
    server.client.put(f"/object/{a}/mappings", json={"dest_id": b, "mapping_type": "liftover"})
    server.client.put(f"/object/{b}/mappings", json={"dest_id": a, "mapping_type": "liftover"})
    server.client.post(f"/object/{a}/extensions", json={"name": "n", "value": [1]})
    location = server.client.get(f"/object/{a}").json()["data"]["location"]["id"]
    r = server.client.delete(f"/object/{a}")
    assert r.status_code == 200 and r.json() is None
    assert server.client.get(f"/object/{a}").status_code == 404
    assert server.client.get(f"/object/{b}/mappings").json() == {"mappings": []}
    assert server.client.get(f"/object/{b}/mappings", params={"as_source": False}).json() == {
        "mappings": []
    }
    assert server.client.get(f"/object/{a}/extensions/n").status_code == 404
    assert server.client.get(f"/object/{location}").status_code == 200, "locations stay"
    r = server.client.delete(f"/object/{a}")
    assert r.status_code == 404 and r.json() == {"detail": "Not Found"}


def test_copy_numbers_are_vrs_pythons(server: Server, seqrepo: Path, chr1: str) -> None:
    oracle = vrs_python_translator(seqrepo, "cnv")
    definition = "NC_000001.11:g.100_250del"
    for extra in ({"copies": 1}, {"copy_change": "complete genomic loss"}):
        kind = "CopyNumberCount" if "copies" in extra else "CopyNumberChange"
        body = register(server, definition, input_type=kind, **extra)
        expected = oracle.translate_from(definition, "hgvs", **extra)
        assert body["object_id"] == expected.id
        assert body["object"] == expected.model_dump(exclude_none=True)
        stored = server.client.get(f"/object/{expected.id}")
        assert stored.json()["data"] == body["object"]
        found = server.client.post(
            "/variation", json={"definition": definition, "input_type": kind, **extra}
        )
        assert found.status_code == 200 and found.json()["data"] == body["object"]
        again = server.client.put("/vrs_variation", json=body["object"])
        assert again.status_code == 200 and again.json()["object_id"] == expected.id
    r = server.client.put(
        "/variation",
        json={"definition": definition, "input_type": "CopyNumberChange", "copy_change": "lots"},
    )
    assert r.status_code == 422  # AnyVar's model refuses it before translating


def test_categorical_variants(server: Server, chr1: str) -> None:
    allele = register(server, snv(chr1, 401))["object"]
    catvar = {
        "id": "clingen.allele:CA0001",
        "type": "CategoricalVariant",
        "name": "a canonical allele",
        "constraints": [{"type": "DefiningAlleleConstraint", "allele": allele}],
    }
    r = server.client.put("/categorical_variants/canonical_alleles", json=catvar)
    assert r.status_code == 200 and r.json() is None, r.text
    r = server.client.get("/categorical_variants/canonical_alleles/clingen.allele:CA0001")
    assert r.status_code == 200
    assert r.json() == catvar
    # the defining allele is on a genomic sequence (NC_…): not a protein consequence
    r = server.client.put("/categorical_variants/protein_sequence_consequences", json=catvar)
    assert r.status_code == 422
    assert r.json() == {
        "detail": "Validation checks failed -- see description for data requirements"
    }
    assert (
        server.client.get(
            "/categorical_variants/protein_sequence_consequences/clingen.allele:CA0001"
        ).status_code
        == 404
    )
    two = {**catvar, "constraints": catvar["constraints"] * 2}
    assert server.client.put("/categorical_variants/canonical_alleles", json=two).status_code == 422
    # An IRI in place of the defining allele's location (valid Cat-VRS): 422, nothing stored
    # (it was a 500, found by schemathesis).
    iri = {"id": "clingen.allele:CA0002", **{k: v for k, v in catvar.items() if k != "id"}}
    iri["constraints"] = [
        {"type": "DefiningAlleleConstraint", "allele": {**allele, "location": "https://x/loc/1"}}
    ]
    r = server.client.put("/categorical_variants/canonical_alleles", json=iri)
    assert r.status_code == 422 and "IRI" in r.headers["X-AnyVar-Error-Detail"], r.text
    iri["constraints"] = [{"type": "DefiningAlleleConstraint", "allele": "https://x/allele/1"}]
    r = server.client.put("/categorical_variants/canonical_alleles", json=iri)
    assert r.status_code == 422 and "IRI" in r.headers["X-AnyVar-Error-Detail"], r.text
    assert (
        server.client.get("/categorical_variants/canonical_alleles/clingen.allele:CA0002")
    ).status_code == 404


def test_bad_definitions_and_positions_are_422_naming_the_field(server: Server, chr1: str) -> None:
    """A lone surrogate in a definition, a boolean for ``copies`` and a position past 64 bits
    are 422s naming the field, with nothing stored (they were 500s)."""
    from service import table_counts

    before = table_counts(server.storage_uri)
    bad = '{"definition": "chr1-18-A-G\\udaf7"}'
    headers = {"Content-Type": "application/json"}
    for method, path, body in [
        ("PUT", "/variation", bad),
        ("POST", "/variation", bad),
        ("PUT", "/variations", f"[{bad}]"),
        ("PUT", "/variation", '{"definition": "chr1-18-A-G", "copies": false}'),
        ("PUT", "/variation", '{"definition": "chr1-18-A-G", "copies": 1121644894532154163200}'),
    ]:
        r = server.client.request(method, path, content=body, headers=headers)
        assert r.status_code == 422, (method, path, r.text)
        (problem,) = r.json()["detail"]
        assert problem["loc"][-1] in ("definition", "copies"), problem
    assert table_counts(server.storage_uri) == before
    sq = register(server, snv(chr1, 501))["object"]["location"]["sequenceReference"]
    accession = f"ga4gh:{sq['refgetAccession']}"
    for route in ("/search", "/variations"):
        for name in ("start", "end"):
            params = {"accession": accession, "start": 0, "end": 10, name: 2**63}
            r = server.client.get(route, params=params)
            assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", name]
        r = server.client.get(route, params={"accession": accession, "start": 0, "end": 2**63 - 1})
        assert r.status_code == 200 and r.json()["variations"], r.text


@pytest.mark.parametrize(
    "text",
    [
        "x" * 999 + " tail",  # a space where the cut falls
        "a\x00b\x1bc\x7fd",  # control characters
        "naïve \udaf7 ünïcode",  # non-ASCII and a lone surrogate
    ],
)
def test_an_error_detail_header_is_always_sendable(text: str) -> None:
    """``X-AnyVar-Error-Detail`` carries words from the input: h11 (uvicorn's HTTP/1.1) must
    accept the value, or the whole response is lost (a long 422 detail whose cut fell on a
    space dropped the connection, found by schemathesis)."""
    import h11

    from anyvar.restapi.errors import header_text

    value = header_text(text)
    h11.Response(status_code=422, headers=[("X-AnyVar-Error-Detail", value)])
    assert 0 < len(value) <= 1000
