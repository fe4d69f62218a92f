"""The registry's storage through the REST service, against real SQLite files and PostgreSQL
databases: searches find exactly the alleles whose location overlaps the range, a failed upload
registers nothing, and a database AnyVar 1.0 created (with its foreign keys, its GiST index and
alleles of its own) is used as it is.

Oracles: the database tables, queried directly, and the library's own translation."""

from __future__ import annotations

import contextlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from service import (
    STORAGE_KINDS,
    Server,
    all_pages,
    allele_ids,
    allele_ids_on,
    get_object,
    postgres_database,
    put_vcf,
    read_fasta,
    records,
    start_server,
    storage,
    table_counts,
    unique_ids,
)

import anyvar
from anyvar.synthetic import generate

BIN = 1 << 14
"""The width of the search index's bins (storage/bins.rs): ranges at its edges are checked."""


@contextlib.contextmanager
def registry_server(work: Path, kind: str, fasta: Path, uri: str | None = None) -> Iterator[Server]:
    """A server on ``fasta``'s sequences and a fresh database of ``kind`` (or ``uri``)."""
    with contextlib.ExitStack() as stack:
        if uri is None:
            uri = stack.enter_context(storage(kind, work / "db"))
        server = start_server(
            work,
            {
                "SEQREPO_DATAPROXY_URI": f"fasta+file://{fasta}?assembly=GRCh38",
                "ANYVAR_STORAGE_URI": uri,
                "ANYVAR_CACHE_DIR": str(work / "cache"),
            },
        )
        stack.callback(server.stop)
        yield server


def accession_of(server: Server, allele_id: str) -> str:
    return get_object(server, allele_id)["location"]["sequenceReference"]["refgetAccession"]


def first_allele_on(text: str, chrom: str) -> str:
    for fields in records(text):
        ids = allele_ids("\t".join(fields)) if fields[0] == chrom else set()
        if ids:
            return min(ids)
    raise AssertionError(f"no allele on {chrom}")


def search(server: Server, accession: str, start: int, end: int, page_size: int = 97) -> set[str]:
    return unique_ids(all_pages(server, accession, start, end, page_size)[0])


OPEN_AT = """
import sys, time
from anyvar import _core
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
_core.Storage(sys.argv[1])
"""


@pytest.mark.parametrize("kind", STORAGE_KINDS)
def test_processes_opening_a_new_database_together(tmp_path: Path, kind: str) -> None:
    """Worker processes that start at the same moment on a database nobody has opened yet
    (gunicorn workers, Celery children) all open it, each creating its tables if missing."""
    for round in range(3):
        with storage(kind, tmp_path / f"round-{round}") as uri:
            start_at = time.time() + 1.5  # after every interpreter has imported the extension
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", OPEN_AT, uri, str(start_at)],
                    stderr=subprocess.PIPE,
                    text=True,
                )
                for _ in range(6)
            ]
            errors = [p.communicate(timeout=120)[1] for p in procs]
            assert [p.returncode for p in procs] == [0] * 6, errors
            assert set(table_counts(uri).values()) == {0}


@pytest.mark.parametrize("kind", STORAGE_KINDS)
def test_search_finds_exactly_the_overlapping_alleles(tmp_path: Path, kind: str) -> None:
    """Alleles from a VCF, from PUT /variation and one wider than the bins it could be listed
    in: every range returns the alleles whose location overlaps it, each once, and no other."""
    fasta, vcf = generate(tmp_path / "data", records=4000, reference_length=200_000, seed=5)
    with registry_server(tmp_path / "work", kind, fasta) as server:
        r = put_vcf(server, vcf)
        assert r.status_code == 200, r.text[:500]
        sq = accession_of(server, first_allele_on(r.text, "chr1"))
        chr1 = read_fasta(fasta)["chr1"]
        for pos in (BIN - 1, BIN, BIN + 1, 70_000):
            ref = chr1[pos - 1].upper()
            definition = f"chr1-{pos}-{ref}-{'T' if ref != 'T' else 'G'}"
            body = server.client.put("/variation", json={"definition": definition}).json()
            assert body["object_id"], body
        wide = {
            "type": "Allele",
            "location": {
                "type": "SequenceLocation",
                "sequenceReference": {"type": "SequenceReference", "refgetAccession": sq},
                "start": 3,
                "end": 3 + 70 * BIN,
            },
            "state": {"type": "LiteralSequenceExpression", "sequence": "A"},
        }
        wide_id = server.client.put("/vrs_variation", json=wide).json()["object_id"]

        rng = random.Random(7)
        ranges = [(0, 100_000), (BIN - 1, BIN - 1), (BIN - 1, BIN), (BIN, BIN), (2 * BIN, 3 * BIN)]
        starts = rng.sample(range(0, 110_000), 30)
        ranges += [(s, s + rng.choice([0, 1, 10, 500, 20_000])) for s in starts]
        ranges += [(60 * BIN, 60 * BIN + 5), (3 + 70 * BIN, 3 + 70 * BIN), (4 + 70 * BIN, 10**9)]
        for start, end in ranges:
            expected = allele_ids_on(server.storage_uri, sq, start, end)
            assert search(server, f"ga4gh:{sq}", start, end) == expected, (start, end)
        assert wide_id in search(server, "GRCh38:chr1", 60 * BIN, 60 * BIN + 5)
        assert search(server, "GRCh38:chr1", 4 + 70 * BIN, 10**9) == set()
        assert len(allele_ids_on(server.storage_uri, sq)) > 1000, "too few alleles to mean much"


def bin_rows(uri: str) -> int:
    if uri.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(uri.removeprefix("sqlite:///"))
        try:
            return conn.execute("SELECT count(*) FROM allele_bins").fetchone()[0]
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(uri) as conn:
        return conn.execute("SELECT count(*) FROM allele_bins").fetchone()[0]


@pytest.mark.parametrize("kind", STORAGE_KINDS)
def test_failed_upload_registers_nothing(tmp_path: Path, kind: str) -> None:
    """A VCF that turns out bad on its last line: 400, no allele stored, and searches unharmed
    by what the run had already listed in the search index (also once the good file is in).

    The file is a dozen annotation chunks: the loader's queue holds four batches, so by the
    time the last line fails, earlier batches have certainly been looked up and listed."""
    fasta, vcf = generate(tmp_path / "data", records=100_000, seed=6)
    good = vcf.read_bytes()
    bad = good + b"chr1\tnot-a-position\t.\tA\tG\t.\t.\t.\n"
    with registry_server(tmp_path / "work", kind, fasta) as server:
        r = put_vcf(server, bad)
        assert r.status_code == 400, r.text[:500]
        bad_line = len(good.splitlines()) + 1
        assert f"line {bad_line}:" in r.json()["error"], r.text
        assert server.counts() == {"alleles": 0, "locations": 0, "sequence_references": 0}
        assert bin_rows(server.storage_uri) > 0, "the run listed nothing before it failed"
        for chrom in ("chr1", "chr2", "chr3"):
            assert search(server, f"GRCh38:{chrom}", 0, 10**7) == set(), chrom

        r = put_vcf(server, good)
        assert r.status_code == 200, r.text[:500]
        sq = accession_of(server, first_allele_on(r.text, "chr2"))
        found = search(server, f"ga4gh:{sq}", 0, 10**7, page_size=5000)
        assert found == allele_ids_on(server.storage_uri, sq)
        assert server.counts()["alleles"] == len(allele_ids(r.text))


# AnyVar 1.0.0's tables as its create_tables() leaves them in PostgreSQL (pg_dump --schema-only).
ANYVAR_10_SCHEMA = """
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE TYPE mapping_type AS ENUM ('LIFTOVER', 'TRANSCRIPTION', 'TRANSLATION');
CREATE TYPE molecule_type AS ENUM ('genomic', 'RNA', 'mRNA', 'protein');
CREATE TABLE sequence_references (id varchar NOT NULL PRIMARY KEY, molecule_type molecule_type);
CREATE TABLE locations (
    id varchar NOT NULL PRIMARY KEY,
    sequence_reference_id varchar NOT NULL REFERENCES sequence_references(id),
    start_pos integer, end_pos integer,
    start_outer integer, start_inner integer, end_outer integer, end_inner integer);
CREATE TABLE alleles (
    id varchar NOT NULL PRIMARY KEY,
    location_id varchar NOT NULL REFERENCES locations(id),
    state jsonb NOT NULL);
CREATE TABLE vrs_objects (id varchar NOT NULL PRIMARY KEY, vrs_object jsonb NOT NULL);
CREATE TABLE annotations (
    id serial PRIMARY KEY, object_id varchar NOT NULL, annotation_type varchar NOT NULL,
    annotation_value jsonb NOT NULL);
CREATE TABLE variation_mappings (
    id serial PRIMARY KEY, source_id varchar NOT NULL, dest_id varchar NOT NULL,
    mapping_type mapping_type NOT NULL, UNIQUE (source_id, dest_id, mapping_type));
CREATE INDEX ix_location_ref_overlap ON locations
    USING gist (sequence_reference_id, int8range(start_pos::bigint, end_pos::bigint, '[]'));
"""


def columns(uri: str) -> dict[str, set[str]]:
    import psycopg

    with psycopg.connect(uri) as conn:
        rows = conn.execute(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = 'public'"
        ).fetchall()
    out: dict[str, set[str]] = {}
    for table, column in rows:
        out.setdefault(table, set()).add(column)
    return out


def test_anyvar_10_database_is_used_as_it_is(tmp_path: Path) -> None:
    """A database AnyVar 1.0 created and filled: its alleles are served and found by searches,
    a VCF registers into its tables (foreign keys and all), and its columns stay AnyVar's."""
    import psycopg
    from psycopg.types.json import Jsonb

    fasta, vcf = generate(tmp_path / "data", records=2000, seed=8)
    source = anyvar.open_sequence_source(f"fasta+file://{fasta}?assembly=GRCh38")
    theirs = []
    for fields in records(vcf.read_text())[:400]:
        if fields[3].upper() in "ACGT" and fields[4].upper() in ("A", "C", "G", "T"):
            with contextlib.suppress(ValueError):
                theirs.append(source.translate("-".join(fields[:2] + fields[3:5]), "GRCh38"))
    assert len(theirs) > 50
    with postgres_database() as uri:
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(ANYVAR_10_SCHEMA)
            for allele in theirs:  # as AnyVar's add_objects() stores them
                obj = json.loads(allele.json())
                loc = obj["location"]
                sq = loc["sequenceReference"]["refgetAccession"]
                conn.execute(
                    "INSERT INTO sequence_references (id) VALUES (%s) ON CONFLICT DO NOTHING", [sq]
                )
                conn.execute(
                    "INSERT INTO locations (id, sequence_reference_id, start_pos, end_pos)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    [loc["id"], sq, loc["start"], loc["end"]],
                )
                conn.execute(
                    "INSERT INTO alleles (id, location_id, state) VALUES (%s, %s, %s)"
                    " ON CONFLICT DO NOTHING",
                    [obj["id"], loc["id"], Jsonb(obj["state"])],
                )
        before = columns(uri)
        with registry_server(tmp_path / "work", "postgresql", fasta, uri=uri) as server:
            for allele in theirs[:50]:
                assert get_object(server, allele.id) == json.loads(allele.json())
                loc = json.loads(allele.json())["location"]
                sq = loc["sequenceReference"]["refgetAccession"]
                assert allele.id in search(server, f"ga4gh:{sq}", loc["start"], loc["end"])
            r = put_vcf(server, vcf)
            assert r.status_code == 200, r.text[:500]
            stored = {a.id for a in theirs} | allele_ids(r.text)
            assert server.counts()["alleles"] == len(stored)
            sq = accession_of(server, first_allele_on(r.text, "chr3"))
            assert search(server, f"ga4gh:{sq}", 0, 10**6) == allele_ids_on(uri, sq)
        after = columns(uri)
    for table in ("sequence_references", "locations", "alleles"):
        assert after[table] == before[table], table
    assert "allele_bins" in after


def test_postgresql_connections_dropped_by_the_server_are_reopened(tmp_path: Path) -> None:
    """When PostgreSQL ends the service's connections (a restart, a failover, an idle
    timeout), the next requests are answered as before: none of them fails on finding its
    connection closed."""
    import psycopg

    fasta, vcf = generate(tmp_path / "data", records=2_000, seed=8)
    with registry_server(tmp_path / "server", "postgresql", fasta) as server:
        r = put_vcf(server, vcf)
        assert r.status_code == 200, r.text
        allele = first_allele_on(r.text, "chr1")
        accession = accession_of(server, allele)
        database = server.storage_uri.rsplit("/", 1)[1]
        with psycopg.connect(server.storage_uri, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [database],
            ).fetchone()[0]
        assert ended >= 1, "the service held no connection to end"
        assert get_object(server, allele)["id"] == allele
        assert allele in search(server, f"ga4gh:{accession}", 0, 10**9)
        assert put_vcf(server, vcf).status_code == 200
