"""The REST service (``uvicorn anyvar.restapi.main:app``) against real server processes and
real databases: the embedded SQLite file and a PostgreSQL database of the test's own.

Oracles: ``anyvar.annotate_vcf`` (the library the CLI uses) for annotated VCFs, vrs-python
(``AlleleTranslator``, ``ga4gh_identify``) for translated and posted alleles, and the database
tables themselves for what was registered."""

from __future__ import annotations

import contextlib
import gzip
import itertools
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from helpers import OLD_VRS_PYTHON, REPO
from service import (
    STORAGE_KINDS,
    Server,
    all_pages,
    allele_ids,
    allele_ids_on,
    alleles_by_chrom,
    build_seqrepo_with_refseq,
    free_port,
    get_object,
    id_entries,
    info_of,
    put_vcf,
    put_vcfs_at_once,
    read_fasta,
    records,
    run_until_exit,
    start_server,
    storage,
    table_counts,
    unique_ids,
    vrs_python_translator,
)

import anyvar
from anyvar.synthetic import generate

ASYNC_MISSING = "Required modules and/or configurations for asynchronous VCF annotation are missing"
MISSING_ANNOTATIONS = (
    "Required VRS annotations are missing -- ensure INFO field has VRS_Allele_IDs, VRS_Starts, "
    "VRS_Ends, VRS_States, VRS_Lengths, and VRS_RepeatSubunitLengths"
)
CONFLICTS_HEADER = "vrs_id,assembly,chrom,pos,start,end,state,new_vrs_id"
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
REFSEQ = {"chr1": "NC_000001.11", "chr2": "NC_000002.12", "chr3": "NC_000003.12"}
# The vectors' reference (sequences.tsv).
VECTOR_SQ = {
    "chr1": ("SQ.U0rnxpQco7fZw08fw2trON1CpFXgQpuW", 397),
    "chr2": ("SQ.6tRJuRdYj-OAStRLAcYADMy3KoTwKL51", 120),
}


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=STORAGE_KINDS)
def storage_kind(request: pytest.FixtureRequest) -> str:
    return request.param


def _module_server(tmp: Path, kind: str, source: str) -> Iterator[Server]:
    with storage(kind, tmp / "db") as uri:
        server = start_server(
            tmp,
            {
                "SEQREPO_DATAPROXY_URI": source,
                "ANYVAR_STORAGE_URI": uri,
                "ANYVAR_CACHE_DIR": str(tmp / "cache"),
            },
        )
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def vectors_server(
    storage_kind: str, vector_seqrepo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server on the shared vectors' SeqRepo, shared by the tests of one storage kind."""
    tmp = tmp_path_factory.mktemp(f"vectors-server-{storage_kind}")
    yield from _module_server(tmp, storage_kind, vector_seqrepo_uri)


@pytest.fixture(scope="module")
def synthetic_seqrepo(
    synthetic: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The generated reference as a SeqRepo with GRCh38 names and RefSeq (NCBI) accessions."""
    return build_seqrepo_with_refseq(
        synthetic[0], tmp_path_factory.mktemp("synthetic-seqrepo"), REFSEQ
    )


@pytest.fixture(scope="module")
def synthetic_server(
    storage_kind: str, synthetic_seqrepo: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp(f"synthetic-server-{storage_kind}")
    yield from _module_server(tmp, storage_kind, f"seqrepo+file://{synthetic_seqrepo}")


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts servers on fresh databases; stops them and drops the databases afterwards."""
    counter = itertools.count()
    with contextlib.ExitStack() as stack:

        def make(kind: str, source: str, gunicorn_workers: int = 0, **env: str) -> Server:
            work = tmp_path / f"server-{next(counter)}"
            uri = stack.enter_context(storage(kind, work / "db"))
            server = start_server(
                work,
                {
                    "SEQREPO_DATAPROXY_URI": source,
                    "ANYVAR_STORAGE_URI": uri,
                    "ANYVAR_CACHE_DIR": str(work / "cache"),
                    **env,
                },
                gunicorn_workers=gunicorn_workers,
            )
            stack.callback(server.stop)
            return server

        yield make


@pytest.fixture(scope="module")
def oracle(synthetic_seqrepo: Path):
    return vrs_python_translator(synthetic_seqrepo)


# --- helpers ------------------------------------------------------------------------------------


def not_lifted(messages: list[str]) -> list[str]:
    """The messages of a registration but its liftover's: the synthetic reference has no
    GRCh37 (and these servers no chain files), so every registration says it was not lifted
    over, once, in AnyVar's words (tests/test_liftover.py tests liftover itself)."""
    lifted = [m for m in messages if m.startswith("Unable to complete liftover: ")]
    assert len(lifted) == 1, messages
    return [m for m in messages if m not in lifted]


def library_vcf(vcf: Path, out: Path, uri: str, params: dict, compression: str = "none") -> bytes:
    """What ``anyvar.annotate_vcf`` (the CLI's engine) writes for the REST parameters."""
    anyvar.annotate_vcf(
        vcf,
        out,
        dataproxy_uri=uri,
        assembly=params.get("assembly", "GRCh38"),
        for_ref=params.get("for_ref", True),
        vrs_attributes=params.get("add_vrs_attributes", False),
        require_validation=params.get("require_validation", True),
        compression=compression,
    )
    return out.read_bytes()


def wait_for(check: Callable[[], bool], timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


# --- PUT /vcf: the same output as the library, every parameter honoured --------------------------

VCF_PARAMS = {
    "defaults": {},
    "for_ref_false": {"for_ref": False},
    "attributes": {"add_vrs_attributes": True},
    "grch37": {"assembly": "GRCh37"},
    "no_validation": {"require_validation": False},
    "alts_only_attributes_no_validation": {
        "for_ref": False,
        "add_vrs_attributes": True,
        "require_validation": False,
    },
}


@pytest.mark.parametrize("params", VCF_PARAMS.values(), ids=VCF_PARAMS.keys())
def test_put_vcf_matches_library_on_vectors(
    vectors_server: Server, vectors: Path, vector_seqrepo_uri: str, tmp_path: Path, params: dict
) -> None:
    r = put_vcf(vectors_server, vectors / "input.vcf", **params)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/x-vcf")
    assert r.headers["content-disposition"] == 'attachment; filename="input.vrs.vcf"'
    expected = library_vcf(vectors / "input.vcf", tmp_path / "lib.vcf", vector_seqrepo_uri, params)
    assert r.text == expected.decode()
    assert vectors_server.leftovers() == []

    # Each parameter visibly took effect (the library comparison alone would not show a
    # parameter that both sides ignore).
    text = r.text
    entries = id_entries(text)
    if params.get("assembly") == "GRCh37":
        assert entries and set(entries) == {"."}, "the vectors have no GRCh37 aliases"
    else:
        assert len(allele_ids(text)) > 40
    number = "A" if params.get("for_ref") is False else "R"
    assert f"##INFO=<ID=VRS_Allele_IDs,Number={number}," in text
    assert ("VRS_Starts=" in text) == bool(params.get("add_vrs_attributes"))
    mismatch = "Reference mismatch at GRCh38:chr1 position 289-290"
    validating = params.get("require_validation", True) and params.get("assembly") != "GRCh37"
    assert (mismatch in text) == validating


def test_put_vcf_bgzip_output(
    vectors_server: Server, vectors: Path, vector_seqrepo_uri: str, tmp_path: Path
) -> None:
    r = put_vcf(
        vectors_server,
        vectors / "input.vcf",
        filename="sample.vcf",
        output_compression="bgzip",
        add_vrs_attributes=True,
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/gzip")
    assert r.headers["content-disposition"] == 'attachment; filename="sample.vrs.vcf.gz"'
    body = r.content
    # BGZF: gzip members with the "BC" extra subfield, closed by the standard EOF block.
    assert body[:4] == b"\x1f\x8b\x08\x04"
    assert body[12:14] == b"BC"
    assert body.endswith(BGZF_EOF)
    expected = library_vcf(
        vectors / "input.vcf",
        tmp_path / "lib.vcf",
        vector_seqrepo_uri,
        {"add_vrs_attributes": True},
    )
    assert gzip.decompress(body) == expected
    assert vectors_server.leftovers() == []


@pytest.mark.parametrize("compression", ["gzip", "bgzip"])
def test_compressed_upload_returns_plain_vcf(
    vectors_server: Server,
    vectors: Path,
    vector_seqrepo_uri: str,
    tmp_path: Path,
    compression: str,
) -> None:
    plain = (vectors / "input.vcf").read_bytes()
    if compression == "gzip":
        data = gzip.compress(plain)
    else:
        data = subprocess.run(
            ["bgzip", "-c", vectors / "input.vcf"], check=True, capture_output=True
        ).stdout
        assert data[12:14] == b"BC"
    r = put_vcf(vectors_server, data, filename="input.vcf.gz")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/x-vcf")
    assert r.headers["content-disposition"] == 'attachment; filename="input.vrs.vcf"'
    assert r.content[:16] == b"##fileformat=VCF"
    assert r.content == library_vcf(
        vectors / "input.vcf", tmp_path / "lib.vcf", vector_seqrepo_uri, {}
    )
    assert vectors_server.leftovers() == []


def test_download_name_is_sanitised(vectors_server: Server, vectors: Path) -> None:
    r = put_vcf(vectors_server, vectors / "input.vcf", filename='../../etc/my "sample".vcf')
    assert r.status_code == 200, r.text
    match = re.fullmatch(r'attachment; filename="([^"/\\]+)"', r.headers["content-disposition"])
    assert match, r.headers["content-disposition"]
    assert match.group(1).endswith(".vrs.vcf")
    assert ".." not in match.group(1)


GENERATED_PARAMS = {
    "attributes": {"add_vrs_attributes": True},
    "alts_only_no_validation": {"for_ref": False, "require_validation": False},
    "grch37": {"assembly": "GRCh37"},
    "bgzip_attributes_no_ref": {
        "output_compression": "bgzip",
        "add_vrs_attributes": True,
        "for_ref": False,
    },
}


@pytest.mark.parametrize("params", GENERATED_PARAMS.values(), ids=GENERATED_PARAMS.keys())
def test_put_vcf_matches_library_on_generated_vcf(
    synthetic_server: Server,
    synthetic: tuple[Path, Path],
    synthetic_fasta_uri: str,
    tmp_path: Path,
    params: dict,
) -> None:
    """The server reads the generated reference from a SeqRepo; the library from the FASTA."""
    vcf = synthetic[1]
    r = put_vcf(synthetic_server, vcf, **params)
    assert r.status_code == 200, r.text
    body = r.content
    if params.get("output_compression") == "bgzip":
        assert body[12:14] == b"BC" and body.endswith(BGZF_EOF)
        body = gzip.decompress(body)
    expected = library_vcf(vcf, tmp_path / "lib.vcf", synthetic_fasta_uri, params)
    assert body == expected
    text = body.decode()
    assert len(records(text)) == 3000
    if params.get("assembly") == "GRCh37":
        assert set(id_entries(text)) == {"."}
    else:
        assert len(allele_ids(text)) > 2000
    assert synthetic_server.leftovers() == []


def test_concurrent_uploads_register_consistently(
    make_server: Callable[..., Server],
    storage_kind: str,
    synthetic_seqrepo: Path,
    synthetic: tuple[Path, Path],
) -> None:
    """Overlapping registrations racing on one fresh database: every request succeeds and the
    tables hold each allele once."""
    server = make_server(storage_kind, f"seqrepo+file://{synthetic_seqrepo}")
    variants = [{}, {}, {"for_ref": False}, {"require_validation": False}]
    done = put_vcfs_at_once(server, synthetic[1].read_bytes(), variants)
    assert done[0].content == done[1].content
    ids = set().union(*(allele_ids(r.text) for r in done))
    assert server.counts()["alleles"] == len(ids)
    assert server.leftovers() == []


def test_gunicorn_workers_share_one_database(
    make_server: Callable[..., Server],
    storage_kind: str,
    synthetic_seqrepo: Path,
    synthetic: tuple[Path, Path],
    synthetic_fasta_uri: str,
    tmp_path: Path,
) -> None:
    """Under gunicorn with two uvicorn worker processes, both starting on one fresh database
    (so both create its tables at once): concurrent uploads give the library's output, the
    tables hold each allele once, and every allele is retrievable whichever worker answers."""
    server = make_server(storage_kind, f"seqrepo+file://{synthetic_seqrepo}", gunicorn_workers=2)
    assert wait_for(lambda: server.log_text().count("Booting worker with pid") == 2)
    vcf = synthetic[1]
    expected = library_vcf(vcf, tmp_path / "lib.vcf", synthetic_fasta_uri, {})
    for r in put_vcfs_at_once(server, vcf.read_bytes(), [{}] * 4):
        assert r.content == expected
    ids = allele_ids(expected.decode())
    assert server.counts()["alleles"] == len(ids)
    for allele_id in sorted(ids)[:40]:
        assert get_object(server, allele_id)["id"] == allele_id
    assert "Traceback" not in server.log_text()
    assert server.leftovers() == []


# --- registration: retrievable, searchable, idempotent -------------------------------------------


def test_every_allele_is_retrievable(vectors_server: Server, vectors: Path) -> None:
    r = put_vcf(vectors_server, vectors / "input.vcf", add_vrs_attributes=True)
    assert r.status_code == 200, r.text
    checked = 0
    for fields in records(r.text):
        info = info_of(fields)
        if "VRS_Allele_IDs" not in info:
            continue
        columns = zip(
            info["VRS_Allele_IDs"].split(","),
            info["VRS_Starts"].split(","),
            info["VRS_Ends"].split(","),
            strict=True,
        )
        for allele_id, start, end in columns:
            if allele_id == ".":
                continue
            allele = get_object(vectors_server, allele_id)
            assert allele["id"] == allele_id
            assert allele["type"] == "Allele"
            location = allele["location"]
            assert (location["start"], location["end"]) == (int(start), int(end))
            assert (
                location["sequenceReference"]["refgetAccession"]
                == VECTOR_SQ[fields[0] if fields[0] != "1" else "chr1"][0]
            )
            stored_location = get_object(vectors_server, location["id"])
            assert stored_location["type"] == "SequenceLocation"
            assert stored_location["id"] == location["id"]
            assert (stored_location["start"], stored_location["end"]) == (int(start), int(end))
            checked += 1
    assert checked > 80
    for accession, _ in VECTOR_SQ.values():
        reference = get_object(vectors_server, f"ga4gh:{accession}")
        assert reference["type"] == "SequenceReference"
        assert reference["refgetAccession"] == accession


def test_unknown_object_is_404(vectors_server: Server) -> None:
    missing = "ga4gh:VA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    r = vectors_server.client.get(f"/object/{missing}")
    assert r.status_code == 404
    assert r.json() == {"detail": f"VRS Object {missing} not found"}  # AnyVar's body, exactly
    assert r.headers["X-AnyVar-Error-Code"] == "NOT_FOUND"


def test_search_by_region(vectors_server: Server, vectors: Path) -> None:
    r = put_vcf(vectors_server, vectors / "input.vcf")
    assert r.status_code == 200, r.text
    in_file = alleles_by_chrom(r.text)
    sq, length = VECTOR_SQ["chr1"]
    registered = allele_ids_on(vectors_server.storage_uri, sq)
    listings = {}
    for accession in (f"ga4gh:{sq}", "GRCh38:chr1", "GRCh38:1"):
        found, pages = all_pages(vectors_server, accession, 0, length, page_size=7)
        assert pages > 3
        ids = unique_ids(found)
        assert ids == registered, accession
        assert in_file["chr1"] | in_file["1"] <= ids
        listings[accession] = [a["id"] for a in found]
    assert len(set(map(tuple, listings.values()))) == 1, "accession forms disagree"

    located = {a["id"]: a["location"] for a in found}
    for start, end in [(39, 45), (100, 110), (390, 397), (0, 1)]:
        got = unique_ids(all_pages(vectors_server, "GRCh38:chr1", start, end, page_size=3)[0])
        surely = {i for i, loc in located.items() if loc["start"] < end and loc["end"] > start}
        maybe = {i for i, loc in located.items() if loc["start"] <= end and loc["end"] >= start}
        assert surely, (start, end)
        assert surely <= got <= maybe, (start, end)

    # An accession that names no sequence is AnyVar's 404, on both search routes.
    for route, accession in [
        ("/variations", "GRCh38:chrUn"),
        ("/search", "GRCh38:chrUn"),
        ("/variations", "chr1"),  # no assembly
        ("/search", "nonsense"),
    ]:
        r = vectors_server.client.get(route, params={"accession": accession, "start": 0, "end": 1})
        assert r.status_code == 404, (route, accession, r.text)
        assert r.json() == {"detail": "Unable to dereference provided accession ID"}


def test_pagination_covers_every_allele(
    synthetic_server: Server, synthetic: tuple[Path, Path]
) -> None:
    fasta, vcf = synthetic
    r = put_vcf(synthetic_server, vcf)
    assert r.status_code == 200, r.text
    in_file = alleles_by_chrom(r.text)
    lengths = {name: len(seq) for name, seq in read_fasta(fasta).items()}
    for chrom, length in lengths.items():
        sample = get_object(synthetic_server, next(iter(in_file[chrom])))
        sq = sample["location"]["sequenceReference"]["refgetAccession"]
        registered = allele_ids_on(synthetic_server.storage_uri, sq)
        for accession in (f"ga4gh:{sq}", f"GRCh38:{chrom}"):
            found, pages = all_pages(synthetic_server, accession, 0, length, page_size=250)
            assert pages >= 2, "too few alleles to exercise pagination"
            ids = unique_ids(found)
            assert ids == registered, accession
            assert in_file[chrom] <= ids
    r = synthetic_server.client.get(
        "/variations", params={"accession": accession, "start": 0, "end": 10, "page_token": "x"}
    )
    assert_invalid(r, "query parameter page_token")


def test_registration_is_complete_and_idempotent(
    make_server: Callable[..., Server], storage_kind: str, vectors: Path, vector_seqrepo_uri: str
) -> None:
    """On a fresh database: exactly the alleles of the output are stored (rows counted in the
    tables), and registering the same things again adds nothing."""
    server = make_server(storage_kind, vector_seqrepo_uri)
    first = put_vcf(server, vectors / "input.vcf", add_vrs_attributes=True)
    assert first.status_code == 200, first.text
    ids = allele_ids(first.text)
    objects = {i: get_object(server, i) for i in ids}
    expected = {
        "alleles": len(ids),
        "locations": len({o["location"]["id"] for o in objects.values()}),
        "sequence_references": len(
            {o["location"]["sequenceReference"]["refgetAccession"] for o in objects.values()}
        ),
    }
    assert expected["sequence_references"] == 2
    assert server.counts() == expected

    again = put_vcf(server, vectors / "input.vcf", add_vrs_attributes=True)
    assert again.status_code == 200
    assert again.content == first.content
    assert server.counts() == expected

    gz = put_vcf(server, gzip.compress((vectors / "input.vcf").read_bytes()), for_ref=False)
    assert gz.status_code == 200
    r = server.client.put("/variation", json={"definition": "chr1-40-TA-T"})
    assert r.status_code == 200 and r.json()["object_id"] in ids
    r = put_vcf(server, first.content, endpoint="/annotated_vcf")
    assert r.status_code == 200, r.text
    assert server.counts() == expected
    assert server.leftovers() == []


def test_allow_async_write_registers_later(vectors_server: Server, vectors: Path) -> None:
    header = "".join(
        line
        for line in (vectors / "input.vcf").read_text().splitlines(keepends=True)
        if line.startswith("#")
    )
    sq = VECTOR_SQ["chr2"][0]
    reference = read_fasta(vectors / "ref.fa")["chr2"]
    lines = [
        f"chr2\t{p}\t.\t{reference[p - 1]}\t{'T' if reference[p - 1] != 'T' else 'G'},"
        f"{reference[p - 1]}GGGTTTAAACCC\t.\tPASS\t.\tGT\t0/1\n"
        for p in (3, 33, 66, 99)
    ]
    r = put_vcf(
        vectors_server,
        (header + "".join(lines)).encode(),
        allow_async_write=True,
        for_ref=False,
    )
    assert r.status_code == 200, r.text
    ids = allele_ids(r.text)
    assert len(ids) == 8

    def stored() -> bool:
        return ids <= allele_ids_on(vectors_server.storage_uri, sq)

    assert wait_for(stored), "alleles of an allow_async_write upload were never stored"
    for i in ids:
        assert get_object(vectors_server, i)["id"] == i


def test_shutdown_waits_for_background_registration(
    make_server: Callable[..., Server], storage_kind: str, tmp_path: Path
) -> None:
    """A server stopped (SIGTERM, as in a rolling restart) right after answering an
    ``allow_async_write=true`` upload first stores everything that upload computed."""
    fasta, vcf = generate(tmp_path / "gen", records=200_000, seed=12)
    server = make_server(storage_kind, f"fasta+file://{fasta}?assembly=GRCh38")
    r = put_vcf(server, vcf, allow_async_write=True)
    server.proc.terminate()  # at once: the registration has barely begun (checked below)
    assert r.status_code == 200, r.text[:500]
    computed = len(allele_ids(r.text))
    # uvicorn shuts down gracefully, then re-raises the signal: the status says SIGTERM.
    assert server.proc.wait(timeout=300) in (0, -signal.SIGTERM), server.log_text()
    assert "Finished server process" in server.log_text()
    assert server.counts()["alleles"] == computed
    assert "background registration" in server.log_text()


# --- the registry endpoints against vrs-python ---------------------------------------------------

CASES = [
    "substitution",
    "deletion_in_repeat",
    "two_base_deletion_in_repeat",
    "dup",
    "insertion",
    "delins",
    "substitution_chr2",
]


def _homopolymer(seq: str) -> tuple[int, int, str]:
    """A run of >= 5 equal upper-case bases with upper-case bases on both sides."""
    for m in re.finditer(r"A{5,}|C{5,}|G{5,}|T{5,}", seq):
        s, e = m.span()
        if s >= 1 and seq[s - 1] in "ACGT" and e < len(seq) and seq[e] in "ACGT":
            return s, e, seq[s]
    raise AssertionError("no homopolymer in the generated reference")


def _unique_site(seq: str, start: int) -> int:
    """A 0-based position whose neighbourhood is upper-case with no repeated base."""
    for p in range(max(start, 3), len(seq) - 4):
        window = seq[p - 3 : p + 4]
        if set(window) <= set("ACGT") and all(a != b for a, b in itertools.pairwise(window)):
            return p
    raise AssertionError("no unique site in the generated reference")


def _other_base(*avoid: str) -> str:
    return next(b for b in "ACGT" if b not in avoid)


@pytest.fixture(scope="module")
def cases(synthetic: tuple[Path, Path]) -> dict[str, list[tuple[str, str]]]:
    """Each variant in gnomAD, SPDI and HGVS forms: (definition, vrs-python format)."""
    seqs = read_fasta(synthetic[0])
    c1, ac1 = seqs["chr1"], REFSEQ["chr1"]
    s, e, b = _homopolymer(c1)
    a = c1[s - 1]
    p = _unique_site(c1, 100)
    r = c1[p]
    alt = _other_base(r, c1[p - 1], c1[p + 1])
    ins = "GATTACA"
    old = c1[p : p + 3]
    new = _other_base(old[0]) + _other_base(old[2])
    c2, ac2 = seqs["chr2"], REFSEQ["chr2"]
    q = _unique_site(c2, 200)
    r2 = c2[q]
    alt2 = _other_base(r2)
    return {
        "substitution": [
            (f"chr1-{p + 1}-{r}-{alt}", "gnomad"),
            (f"1-{p + 1}-{r}-{alt}", "gnomad"),
            (f"{ac1}:{p}:{r}:{alt}", "spdi"),
            (f"{ac1}:{p}:1:{alt}", "spdi"),
            (f"{ac1}:g.{p + 1}{r}>{alt}", "hgvs"),
        ],
        "deletion_in_repeat": [
            (f"chr1-{s}-{a}{b}-{a}", "gnomad"),
            (f"{ac1}:{s}:{b}:", "spdi"),
            (f"{ac1}:{e - 1}:1:", "spdi"),
            (f"{ac1}:g.{e}del", "hgvs"),
            (f"{ac1}:g.{s + 1}del{b}", "hgvs"),
        ],
        "two_base_deletion_in_repeat": [
            (f"chr1-{s}-{a}{b}{b}-{a}", "gnomad"),
            (f"{ac1}:{s}:2:", "spdi"),
            (f"{ac1}:g.{s + 1}_{s + 2}del", "hgvs"),
            (f"{ac1}:g.{e - 1}_{e}del", "hgvs"),
        ],
        "dup": [
            (f"chr1-{s}-{a}-{a}{b}", "gnomad"),
            (f"{ac1}:{s}::{b}", "spdi"),
            (f"{ac1}:g.{e}dup", "hgvs"),
            (f"{ac1}:g.{s + 1}dup", "hgvs"),
        ],
        "insertion": [
            (f"chr1-{p + 1}-{r}-{r}{ins}", "gnomad"),
            (f"{ac1}:{p + 1}::{ins}", "spdi"),
            (f"{ac1}:g.{p + 1}_{p + 2}ins{ins}", "hgvs"),
        ],
        "delins": [
            (f"chr1-{p + 1}-{old}-{new}", "gnomad"),
            (f"{ac1}:{p}:{old}:{new}", "spdi"),
            (f"{ac1}:{p}:3:{new}", "spdi"),
            (f"{ac1}:g.{p + 1}_{p + 3}delins{new}", "hgvs"),
        ],
        "substitution_chr2": [
            (f"chr2-{q + 1}-{r2}-{alt2}", "gnomad"),
            (f"{ac2}:{q}:{r2}:{alt2}", "spdi"),
            (f"{ac2}:g.{q + 1}{r2}>{alt2}", "hgvs"),
        ],
    }


def _assert_same_allele(got: dict, expected) -> None:
    assert got["id"] == expected.id
    assert got["type"] == "Allele"
    assert got["location"]["id"] == expected.location.id
    assert got["location"]["start"] == expected.location.start
    assert got["location"]["end"] == expected.location.end
    assert (
        got["location"]["sequenceReference"]["refgetAccession"]
        == expected.location.sequenceReference.refgetAccession
    )
    assert got["state"] == expected.state.model_dump(exclude_none=True)


@pytest.mark.parametrize("case", CASES)
def test_put_variation_matches_vrs_python(
    synthetic_server: Server, oracle, cases: dict, case: str
) -> None:
    ids = set()
    for definition, fmt in cases[case]:
        expected = oracle.translate_from(definition, fmt)
        assert expected is not None, definition
        r = synthetic_server.client.put("/variation", json={"definition": definition})
        assert r.status_code == 200, r.text
        body = r.json()
        assert not_lifted(body["messages"]) == [], (definition, body["messages"])
        assert body["input_variation"]["definition"] == definition
        assert body["object_id"] == expected.id, definition
        _assert_same_allele(body["object"], expected)
        assert get_object(synthetic_server, expected.id)["id"] == expected.id
        ids.add(expected.id)
    assert len(ids) == 1, f"the forms of one {case} are one allele: {ids}"


def test_put_variations_answers_in_order(synthetic_server: Server, oracle, cases: dict) -> None:
    definitions = [
        cases["dup"][2],
        ("not a variation", None),
        cases["substitution"][0],
        ("chrZ-10-A-T", None),
        cases["delins"][3],
        cases["insertion"][1],
    ]
    r = synthetic_server.client.put("/variations", json=[{"definition": d} for d, _ in definitions])
    assert r.status_code == 200, r.text
    answers = r.json()
    assert [a["input_variation"]["definition"] for a in answers] == [d for d, _ in definitions]
    for (definition, fmt), answer in zip(definitions, answers, strict=True):
        if fmt is None:
            assert answer["messages"], definition
            # AnyVar leaves out what is None (response_model_exclude_none)
            assert "object" not in answer and "object_id" not in answer
        else:
            expected = oracle.translate_from(definition, fmt)
            assert not_lifted(answer["messages"]) == []
            assert answer["object_id"] == expected.id
            _assert_same_allele(answer["object"], expected)


UNTRANSLATABLE = {
    "garbage": "not a variation",
    "unknown_contig": "chrZ-10-A-T",
    "ref_mismatch": None,  # built from the reference below
    "unknown_refseq": "NC_000099.1:g.10A>T",
    "bad_hgvs": "NC_000001.11:g.abcdel",
}


@pytest.mark.parametrize("name", UNTRANSLATABLE)
def test_untranslatable_definition_is_200_with_message(
    synthetic_server: Server, synthetic: tuple[Path, Path], name: str
) -> None:
    definition = UNTRANSLATABLE[name]
    if definition is None:
        c1 = read_fasta(synthetic[0])["chr1"]
        p = _unique_site(c1, 100)
        definition = f"chr1-{p + 1}-{_other_base(c1[p])}-{c1[p]}"
    before = synthetic_server.counts()
    r = synthetic_server.client.put("/variation", json={"definition": definition})
    assert r.status_code == 200, r.text
    body = r.json()
    assert "object" not in body and "object_id" not in body  # AnyVar leaves out None
    # AnyVar's texts, exactly (our reason is in the log)
    expected = {
        "ref_mismatch": "Reference mismatch at GRCh38:chr1 position",
        "bad_hgvs": f'Unable to parse HGVS expression "{definition}"',
    }.get(name, f'Unable to translate "{definition}"')
    assert len(body["messages"]) == 1 and body["messages"][0].startswith(expected), body
    if name != "ref_mismatch":
        assert body["messages"] == [expected]
    assert synthetic_server.counts() == before


def test_grch37_definition_has_no_allele(synthetic_server: Server, cases: dict) -> None:
    definition = cases["substitution"][0][0]
    r = synthetic_server.client.put(
        "/variation", json={"definition": definition, "assembly_name": "GRCh37"}
    )
    assert r.status_code == 200
    body = r.json()
    assert "object" not in body and body["messages"]


def test_put_vrs_variation_matches_ga4gh_identify(synthetic_server: Server, oracle, cases: dict):
    from ga4gh.core import ga4gh_identify
    from ga4gh.vrs import models

    normalized = oracle.translate_from(*cases["deletion_in_repeat"][0])
    sq = normalized.location.sequenceReference.refgetAccession
    s = normalized.location.start
    variants = {
        # a normalized RLE allele as vrs-python gives it, ids stripped
        "rle": normalized.model_dump(exclude_none=True, exclude={"id", "digest"}),
        # an allele as given, not normalized: its id is computed on that form
        "unnormalized_lse": {
            "type": "Allele",
            "location": {
                "type": "SequenceLocation",
                "sequenceReference": {"type": "SequenceReference", "refgetAccession": sq},
                "start": s,
                "end": s + 1,
            },
            "state": {"type": "LiteralSequenceExpression", "sequence": ""},
        },
    }
    variants["rle"]["location"].pop("id", None)
    for name, allele in variants.items():
        expected_id = ga4gh_identify(models.Allele(**allele))
        r = synthetic_server.client.put("/vrs_variation", json=allele)
        assert r.status_code == 200, (name, r.text)
        body = r.json()
        assert body["object_id"] == expected_id, name
        assert body["object"]["id"] == expected_id
        stored = get_object(synthetic_server, expected_id)
        assert stored["location"]["start"] == allele["location"]["start"]
        assert stored["state"] == allele["state"]
    assert variants["rle"]["state"]["type"] == "ReferenceLengthExpression"

    r = synthetic_server.client.put("/vrs_variation", json={"type": "Allele"})
    assert 400 <= r.status_code < 500, r.text


def test_post_variation_looks_up_without_registering(
    synthetic_server: Server, oracle, cases: dict, synthetic: tuple[Path, Path]
) -> None:
    definition, fmt = cases["delins"][0]
    expected = oracle.translate_from(definition, fmt)
    put = synthetic_server.client.put("/variation", json={"definition": definition})
    assert put.status_code == 200
    r = synthetic_server.client.post("/variation", json={"definition": definition})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"messages", "data"}
    assert body["messages"] == []
    _assert_same_allele(body["data"], expected)

    # A long insertion no generated record has: translated, not registered.
    c1 = read_fasta(synthetic[0])["chr1"]
    p = _unique_site(c1, 1000)
    unregistered = f"chr1-{p + 1}-{c1[p]}-{c1[p]}ACGTTGCAACGTTGCAACGTAC"
    unregistered_id = oracle.translate_from(unregistered, "gnomad").id
    before = synthetic_server.counts()
    r = synthetic_server.client.post("/variation", json={"definition": unregistered})
    assert r.status_code == 404
    assert r.json() == {"detail": f"VRS Object {unregistered_id} not found"}
    assert r.headers["X-AnyVar-Error-Code"] == "NOT_FOUND"
    assert synthetic_server.client.get(f"/object/{unregistered_id}").status_code == 404
    assert synthetic_server.counts() == before

    r = synthetic_server.client.post("/variation", json={"definition": "not a variation"})
    assert r.status_code == 422
    assert "not a variation" in r.text


# --- PUT /annotated_vcf ---------------------------------------------------------------------------


def test_annotated_vcf_roundtrip_into_fresh_database(
    vectors_server: Server,
    make_server: Callable[..., Server],
    storage_kind: str,
    vectors: Path,
    vector_seqrepo_uri: str,
) -> None:
    annotated = put_vcf(vectors_server, vectors / "input.vcf", add_vrs_attributes=True)
    assert annotated.status_code == 200
    ids = allele_ids(annotated.text)
    fresh = make_server(storage_kind, vector_seqrepo_uri)
    r = put_vcf(fresh, annotated.content, filename="annotated.vcf", endpoint="/annotated_vcf")
    assert r.status_code == 200, r.text
    for i in sorted(ids):
        assert get_object(fresh, i) == get_object(vectors_server, i)
    counts = fresh.counts()
    assert counts["alleles"] == len(ids)
    assert counts["sequence_references"] == 2
    # gzip-compressed, the same file adds nothing
    r = put_vcf(fresh, gzip.compress(annotated.content), endpoint="/annotated_vcf")
    assert r.status_code == 200, r.text
    assert fresh.counts() == counts
    assert fresh.leftovers() == []


def test_annotated_vcf_validation_reports_tampered_id(
    vectors_server: Server, vectors: Path
) -> None:
    annotated = put_vcf(vectors_server, vectors / "input.vcf", add_vrs_attributes=True).text
    clean = put_vcf(
        vectors_server, annotated.encode(), endpoint="/annotated_vcf", require_validation=True
    )
    assert clean.status_code == 200, clean.text
    assert clean.headers["content-type"].startswith("text/csv")
    assert clean.text.splitlines() == [CONFLICTS_HEADER]

    fake = "ga4gh:VA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
    lines = annotated.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith("chr1\t112\tins_unique"))
    fields = lines[index].split("\t")
    real = info_of(fields)["VRS_Allele_IDs"].split(",")[1]
    lines[index] = lines[index].replace(real, fake)
    r = put_vcf(
        vectors_server, "".join(lines).encode(), endpoint="/annotated_vcf", require_validation=True
    )
    assert r.status_code == 200, r.text
    rows = r.text.splitlines()
    assert rows[0] == CONFLICTS_HEADER
    assert len(rows) == 2, rows
    row = rows[1].split(",")
    assert row[0] == fake
    assert row[1:4] == ["GRCh38", "chr1", "112"]
    assert row[-1] == real
    assert vectors_server.leftovers() == []


@pytest.mark.parametrize("for_ref", [True, False], ids=["with_ref", "alts_only"])
def test_annotated_vcf_of_vrs_python_2_2_ingests_as_2_3s_does(
    vectors_server: Server, vectors: Path, tmp_path: Path, for_ref: bool
) -> None:
    """vrs-python 2.2 wrote missing states as empty strings (and a bare key for one empty
    entry): its file must rebuild to the same alleles as 2.3's file of the same input, with the
    same conflicts (the base-led breakend, where vrs-python's identity allele is not ours)."""
    instance = next((vectors / "seqrepo").iterdir())
    flags = ["true", str(for_ref).lower(), "true"]
    answers = {}
    for release, python in (("2.2", OLD_VRS_PYTHON), ("2.3", Path(sys.executable))):
        out = tmp_path / f"vrs-python-{release}.vcf"
        oracle = [python, REPO / "tests" / "vrs_python_oracle.py", instance, vectors / "input.vcf"]
        subprocess.run([str(c) for c in [*oracle, out, *flags]], check=True)
        text = out.read_text()
        r = put_vcf(vectors_server, out, endpoint="/annotated_vcf", require_validation=True)
        assert r.status_code == 200, r.text
        answers[release] = (allele_ids(text), r.text.splitlines())
        for i in sorted(allele_ids(text)):
            assert get_object(vectors_server, i)["id"] == i
    old = (tmp_path / "vrs-python-2.2.vcf").read_text()
    assert (";VRS_States=T,;" if for_ref else ";VRS_States;") in old  # the 2.2 spelling
    assert answers["2.2"] == answers["2.3"]
    assert answers["2.3"][1][0] == CONFLICTS_HEADER


@pytest.mark.parametrize("attrs", [False, True], ids=["plain", "ids_only"])
def test_annotated_vcf_without_vrs_fields_is_400(
    vectors_server: Server, vectors: Path, attrs: bool
) -> None:
    data = (vectors / "input.vcf").read_bytes()
    if attrs:  # VRS_Allele_IDs alone is not enough
        data = put_vcf(vectors_server, data).content
        assert b"VRS_Allele_IDs=" in data
    r = put_vcf(vectors_server, data, endpoint="/annotated_vcf")
    assert r.status_code == 400
    assert r.json()["error"] == MISSING_ANNOTATIONS
    assert vectors_server.leftovers() == []


# --- errors ---------------------------------------------------------------------------------------


def _bad_uploads(vectors: Path) -> dict[str, tuple[bytes, list[str]]]:
    text = (vectors / "input.vcf").read_text()
    lines = text.splitlines(keepends=True)
    head = "".join(lines[:15])
    bad_line = len(lines[:15]) + 1
    return {
        "binary_garbage": (random.Random(5).randbytes(4096), ["line 1"]),
        "truncated_gzip": (gzip.compress(text.encode())[:400], ["truncated"]),
        "empty": (b"", ["empty"]),
        "too_few_columns": ((head + "chr1\t5\t.\tA\n").encode(), [f"line {bad_line}", "8"]),
        "non_numeric_pos": (
            (head + "chr1\tfive\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n").encode(),
            [f"line {bad_line}", "POS"],
        ),
    }


@pytest.mark.parametrize(
    "name", ["binary_garbage", "truncated_gzip", "empty", "too_few_columns", "non_numeric_pos"]
)
def test_bad_vcf_is_4xx_naming_the_problem(
    vectors_server: Server, vectors: Path, name: str
) -> None:
    data, words = _bad_uploads(vectors)[name]
    r = put_vcf(vectors_server, data)
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body.get("error"), str), body
    for word in words:
        assert word.lower() in body["error"].lower(), body["error"]
    assert vectors_server.leftovers() == []


def test_bad_annotated_vcf_is_4xx_naming_the_problem(vectors_server: Server, vectors: Path) -> None:
    annotated = put_vcf(vectors_server, vectors / "input.vcf", add_vrs_attributes=True).text
    lines = annotated.splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if "\tsnv_unique\t" in line)
    bad_start = lines[:]
    bad_start[index] = bad_start[index].replace("VRS_Starts=10,", "VRS_Starts=ten,")
    assert bad_start != lines
    cases = {
        "truncated_gzip": (gzip.compress(annotated.encode())[:2500], ["truncated"]),
        "too_few_columns": (annotated + "chr1\t5\t.\tA\n", [f"line {len(lines) + 1}"]),
        "non_numeric_start": ("".join(bad_start), [f"line {index + 1}", "VRS_Starts"]),
    }
    for name, (data, words) in cases.items():
        body = data.encode() if isinstance(data, str) else data
        r = put_vcf(vectors_server, body, endpoint="/annotated_vcf")
        assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
        error = r.json()["error"]
        for word in words:
            assert word.lower() in error.lower(), (name, error)
    assert vectors_server.leftovers() == []


def assert_invalid(r: httpx.Response, *named: str) -> None:
    """FastAPI's 422 body alone (``detail``, as AnyVar answers); what is wrong, in words, in
    the headers."""
    assert r.status_code == 422, r.text
    assert list(r.json()) == ["detail"] and r.json()["detail"], r.text
    assert r.headers["X-AnyVar-Error-Code"] == "INVALID_REQUEST"
    said = r.headers["X-AnyVar-Error-Detail"]
    assert said.startswith("Invalid request: ")
    for words in named:
        assert words in said, (words, said)


def test_wrong_assembly_is_422(vectors_server: Server, vectors: Path) -> None:
    for endpoint in ("/vcf", "/annotated_vcf"):
        r = put_vcf(vectors_server, vectors / "input.vcf", endpoint=endpoint, assembly="hg19")
        assert_invalid(r, "query parameter assembly")
    r = vectors_server.client.put(
        "/variation", json={"definition": "chr1-40-TA-T", "assembly_name": "hg19"}
    )
    assert_invalid(r, "field assembly_name")
    r = put_vcf(vectors_server, vectors / "input.vcf", for_ref="maybe")
    assert_invalid(r, "query parameter for_ref", "valid boolean")
    r = vectors_server.client.put("/vcf")
    assert_invalid(r, "field vcf: Field required")  # a missing upload
    r = vectors_server.client.put("/variation", json={"definition": 5})
    assert_invalid(r, "field definition")
    assert vectors_server.leftovers() == []


def test_run_async_without_async_is_400(vectors_server: Server, vectors: Path) -> None:
    for endpoint in ("/vcf", "/annotated_vcf"):
        r = put_vcf(vectors_server, vectors / "input.vcf", endpoint=endpoint, run_async=True)
        assert r.status_code == 400, (endpoint, r.text)
        what = "VCF annotation" if endpoint == "/vcf" else "VCF ingest"
        assert r.json() == {"error": ASYNC_MISSING.replace("VCF annotation", what)}, r.text
        assert r.headers["X-AnyVar-Error-Code"] == "ASYNC_NOT_CONFIGURED"
        assert "ANYVAR_VCF_ASYNC_WORK_DIR" in r.headers["X-AnyVar-Error-Detail"]
    assert vectors_server.leftovers() == []


def test_service_info(vectors_server: Server, vector_seqrepo_uri: str) -> None:
    r = vectors_server.client.get("/service-info")
    assert r.status_code == 200
    info = r.json()
    assert info["version"] == anyvar.__version__
    assert info["type"]["artifact"] == "anyvar"
    assert anyvar.VRS_VERSION == "2.0.1"
    assert "2.0.1" in r.text
    assert info["capabilities_metadata"] == {"liftover_assemblies": ["GRCh38", "GRCh37"]}
    assert r.headers["X-AnyVar-Sequence-Source"] == vector_seqrepo_uri
    assert f"anyvar.restapi: AnyVar {anyvar.__version__} ready" in vectors_server.log_text()


def test_settings_come_from_a_dotenv_file(
    vectors: Path, vector_seqrepo_uri: str, tmp_path: Path
) -> None:
    """With the documented variables only in ``.env`` (in the working directory), the server
    uses that sequence source and registers into that database."""
    with storage("sqlite", tmp_path / "db") as uri:
        (tmp_path / ".env").write_text(
            f"SEQREPO_DATAPROXY_URI={vector_seqrepo_uri}\nANYVAR_STORAGE_URI={uri}\n"
        )
        server = start_server(tmp_path, {"ANYVAR_CACHE_DIR": str(tmp_path / "cache")})
        try:
            info = server.client.get("/service-info")
            assert info.headers["X-AnyVar-Sequence-Source"] == vector_seqrepo_uri
            r = put_vcf(server, vectors / "input.vcf")
            assert r.status_code == 200, r.text
            assert table_counts(uri)["alleles"] == len(allele_ids(r.text)) > 0
        finally:
            server.stop()


def _raw_put_vcf(server: Server, vcf: bytes, stop: str) -> None:
    """Sends ``PUT /vcf`` over a raw socket and hangs up: halfway through the upload
    (``upload``), right after it (``annotation``), or after the first bytes of the response
    (``download``)."""
    boundary = "anyvar-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="vcf"; filename="big.vcf"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + vcf
        + f"\r\n--{boundary}--\r\n".encode()
    )
    host, port = server.url.removeprefix("http://").split(":")
    head = (
        f"PUT /vcf HTTP/1.1\r\nHost: {host}\r\nContent-Length: {len(body)}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n"
    ).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(head + (body[: len(body) // 2] if stop == "upload" else body))
        if stop == "download":
            sock.settimeout(120)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")


def test_client_hanging_up_leaves_no_temporary_files(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    """Whenever the client goes away (mid-upload, during annotation, mid-download), the
    server removes its temporary files, keeps answering and logs no traceback."""
    fasta, vcf = generate(tmp_path / "gen", records=50_000, seed=5)
    server = make_server("sqlite", f"fasta+file://{fasta}?assembly=GRCh38")
    data = vcf.read_bytes()
    for stop in ("upload", "annotation", "download"):
        _raw_put_vcf(server, data, stop)
        assert wait_for(lambda: server.leftovers() == [], timeout=120), (stop, server.leftovers())
        assert server.client.get("/service-info").status_code == 200
    r = put_vcf(server, data)
    assert r.status_code == 200 and len(records(r.text)) == 50_000
    assert server.leftovers() == []
    assert "Traceback" not in server.log_text()


# --- startup failures -----------------------------------------------------------------------------

BAD_STARTS = [
    "missing_seqrepo_instance",
    "unknown_source_scheme",
    "no_source",
    "unreachable_postgresql",
    "missing_postgresql_database",
    "sqlite_under_a_file",
    "sqlite_not_a_database",
    "sqlite_of_another_program",
]


@pytest.mark.parametrize("case", BAD_STARTS)
def test_bad_configuration_refuses_to_start(
    tmp_path: Path, vector_seqrepo_uri: str, case: str
) -> None:
    """The process exits non-zero with one line naming the problem, and no traceback."""
    env = {
        "SEQREPO_DATAPROXY_URI": vector_seqrepo_uri,
        "ANYVAR_STORAGE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "ANYVAR_CACHE_DIR": str(tmp_path / "cache"),
    }
    if case == "missing_seqrepo_instance":
        env["SEQREPO_DATAPROXY_URI"] = f"seqrepo+file://{tmp_path / 'nowhere' / '2024-01-01'}"
        named = ["nowhere"]
    elif case == "unknown_source_scheme":
        env["SEQREPO_DATAPROXY_URI"] = "bogus+ftp://example.invalid/seqrepo"
        named = ["bogus"]
    elif case == "no_source":
        del env["SEQREPO_DATAPROXY_URI"]
        named = ["SEQREPO_DATAPROXY_URI"]
    elif case == "unreachable_postgresql":
        port = free_port()
        env["ANYVAR_STORAGE_URI"] = f"postgresql://postgres@127.0.0.1:{port}/anyvar"
        named = [f"127.0.0.1:{port}|refused"]
    elif case == "missing_postgresql_database":
        env["ANYVAR_STORAGE_URI"] = "postgresql://postgres@127.0.0.1:5432/anyvar_test_absent_db"
        named = ["anyvar_test_absent_db"]
    elif case == "sqlite_under_a_file":
        (tmp_path / "a_file").write_text("not a directory")
        env["ANYVAR_STORAGE_URI"] = f"sqlite:///{tmp_path / 'a_file' / 'db.sqlite3'}"
        named = ["a_file"]
    elif case == "sqlite_of_another_program":
        other = tmp_path / "other.sqlite3"
        with contextlib.closing(sqlite3.connect(other)) as conn:
            conn.execute("CREATE TABLE alleles (id TEXT PRIMARY KEY, payload BLOB)")
        env["ANYVAR_STORAGE_URI"] = f"sqlite:///{other}"
        named = ["other.sqlite3", "alleles", "location_id"]
    else:
        (tmp_path / "garbage.sqlite3").write_bytes(random.Random(1).randbytes(8192))
        env["ANYVAR_STORAGE_URI"] = f"sqlite:///{tmp_path / 'garbage.sqlite3'}"
        named = ["not a database"]
    done = run_until_exit(tmp_path / "work", env)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    messages = [line for line in done.stderr.splitlines() if "AnyVar cannot start" in line]
    assert len(messages) == 1, done.stderr
    assert messages[0].startswith("AnyVar cannot start: ")
    assert "Traceback" not in output
    for pattern in named:
        assert re.search(pattern, messages[0]), f"{pattern!r} not named in {messages[0]!r}"


# --- auth -----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_server(
    vector_seqrepo_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("auth-server")
    server = start_server(
        tmp,
        {
            "SEQREPO_DATAPROXY_URI": vector_seqrepo_uri,
            "ANYVAR_STORAGE_URI": f"sqlite:///{tmp / 'db.sqlite3'}",
            "ANYVAR_CACHE_DIR": str(tmp / "cache"),
            "ANYVAR_AUTH_TOKEN_LIST": "a,b",
        },
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize(
    "authorization", [None, "Bearer c", "Bearer", "Basic b", "Bearer a,b", "b", "Bearer bb"]
)
def test_auth_rejects_missing_or_wrong_token(
    auth_server: Server, vectors: Path, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}
    c = auth_server.client
    requests = [
        c.get("/service-info", headers=headers),
        c.get("/object/ga4gh:VA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", headers=headers),
        c.put("/variation", json={"definition": "chr1-40-TA-T"}, headers=headers),
        c.put(
            "/vcf",
            files={"vcf": ("input.vcf", (vectors / "input.vcf").read_bytes())},
            headers=headers,
        ),
        c.get(
            "/variations",
            params={"accession": "GRCh38:chr1", "start": 0, "end": 9},
            headers=headers,
        ),
    ]
    for r in requests:
        assert r.status_code == 401, (r.request.method, r.request.url, r.text)
        assert r.json()["detail"] in ("Not authenticated", "Invalid token"), r.text


@pytest.mark.parametrize("token", ["a", "b"])
def test_auth_accepts_listed_token(auth_server: Server, vectors: Path, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    c = auth_server.client
    assert c.get("/service-info", headers=headers).status_code == 200
    r = c.put("/variation", json={"definition": "chr1-40-TA-T"}, headers=headers)
    assert r.status_code == 200 and r.json()["object_id"].startswith("ga4gh:VA.")
    r = c.put(
        "/vcf", files={"vcf": ("input.vcf", (vectors / "input.vcf").read_bytes())}, headers=headers
    )
    assert r.status_code == 200 and len(allele_ids(r.text)) > 40


def test_auth_leaves_docs_open(auth_server: Server) -> None:
    c = auth_server.client
    r = c.get("/openapi.json")
    assert r.status_code == 200
    assert "/vcf" in r.json()["paths"]
    r = c.get("/docs")
    assert r.status_code == 200
    assert "swagger" in r.text.lower()


# --- the event loop stays responsive --------------------------------------------------------------


def test_event_loop_answers_during_large_vcf(
    make_server: Callable[..., Server], tmp_path: Path
) -> None:
    fasta, vcf = generate(tmp_path / "big", records=200_000, seed=11)
    server = make_server("sqlite", f"fasta+file://{fasta}?assembly=GRCh38")
    result: dict[str, object] = {}

    def upload() -> None:
        try:
            with vcf.open("rb") as f:
                result["response"] = server.client.put(
                    "/vcf", files={"vcf": ("big.vcf", f)}, timeout=600
                )
        except BaseException as e:  # reported by the main thread
            result["error"] = e

    thread = threading.Thread(target=upload)
    latencies: list[float] = []
    with httpx.Client(base_url=server.url, timeout=30) as probe:
        thread.start()
        time.sleep(0.3)  # let the upload reach the server
        while thread.is_alive():
            t0 = time.monotonic()
            r = probe.get("/service-info")
            elapsed = time.monotonic() - t0
            assert r.status_code == 200
            if thread.is_alive():
                latencies.append(elapsed)
            time.sleep(0.05)
    thread.join()
    assert "error" not in result, result.get("error")
    response = result["response"]
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200, response.text[:500]
    assert len(records(response.text)) == 200_000
    assert len(latencies) >= 5, f"the PUT was too quick to measure ({len(latencies)} samples)"
    assert max(latencies) < 1.0, f"service-info took {max(latencies):.2f}s during the PUT"
    assert server.leftovers() == []
