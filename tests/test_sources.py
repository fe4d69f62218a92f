"""Reference sequence sources: SeqRepo instances built by biocommons.seqrepo's own CLI, plain and
bgzipped FASTA files, the FASTA refget sidecar, and clear errors for unusable URIs."""

from __future__ import annotations

import base64
import csv
import hashlib
import os
import shutil
from pathlib import Path

import pysam
import pytest
from helpers import build_seqrepo, data_lines, vrs_ids
from service import free_port

import anyvar


def sha512t24u(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha512(data).digest()[:24]).decode("ascii")


def read_fasta(path: Path) -> dict[str, str]:
    """Contig name -> residues, parsed here independently of the code under test."""
    contigs: dict[str, list[str]] = {}
    name = None
    for line in path.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            contigs[name] = []
        elif name is not None:
            contigs[name].append(line.strip())
    return {n: "".join(parts) for n, parts in contigs.items()}


def expected_accessions(fasta: Path) -> dict[str, tuple[str, int]]:
    return {
        name: ("SQ." + sha512t24u(seq.upper().encode()), len(seq))
        for name, seq in read_fasta(fasta).items()
    }


def fasta_uri(path: Path, assembly: str = "GRCh38") -> str:
    return f"fasta+file://{path}?assembly={assembly}"


@pytest.fixture(scope="module")
def seqrepo_instance(synthetic: tuple[Path, Path], tmp_path_factory) -> Path:
    return build_seqrepo(synthetic[0], tmp_path_factory.mktemp("seqrepo") / "root")


@pytest.fixture(scope="module")
def bgzipped_fasta(synthetic: tuple[Path, Path], tmp_path_factory) -> Path:
    """The synthetic reference bgzipped by htslib, with its .fai and .gzi."""
    out = tmp_path_factory.mktemp("bgzf_fasta") / "ref.fa.gz"
    pysam.tabix_compress(str(synthetic[0]), str(out))
    pysam.faidx(str(out))
    assert Path(f"{out}.fai").exists() and Path(f"{out}.gzi").exists()
    return out


# --- SeqRepo -----------------------------------------------------------------------------------


def test_seqrepo_resolves_names_to_independent_digests(seqrepo_instance, synthetic):
    expected = expected_accessions(synthetic[0])
    assert set(expected) == {"chr1", "chr2", "chr3"}
    source = anyvar.SequenceSource(f"seqrepo+file://{seqrepo_instance}")
    for name, (accession, length) in expected.items():
        assert source.resolve(f"GRCh38:{name}") == (accession, length)
        # the numeric alias the fixture loaded resolves to the same sequence
        assert source.resolve(f"GRCh38:{name[3:]}") == (accession, length)
        # the virtual ga4gh namespace of SeqRepo (spec 4.2)
        assert source.resolve(f"ga4gh:{accession}") == (accession, length)


@pytest.mark.parametrize(
    "name",
    [
        "GRCh38:chrX",  # unknown alias
        "GRCh37:chr1",  # namespace not loaded
        "grch38:chr1",  # namespaces are case-sensitive
        "GRCh38:CHR1",  # aliases too
        "chr1",  # no namespace at all
        "GRCh38:chr1:5",  # a second colon is not an alias
        "ga4gh:SQ.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    ],
)
def test_seqrepo_unknown_names_give_none(seqrepo_instance, name):
    source = anyvar.SequenceSource(f"seqrepo+file://{seqrepo_instance}")
    assert source.resolve(name) is None


def test_vector_seqrepo_matches_sequences_tsv(vectors, vector_seqrepo_uri):
    source = anyvar.SequenceSource(vector_seqrepo_uri)
    with (vectors / "sequences.tsv").open() as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert rows
    for row in rows:
        expected = (row["refget_accession"], int(row["length"]))
        for alias in row["grch38_aliases"].split(","):
            assert source.resolve(alias) == expected
    # the vectors deliberately carry no GRCh38:2 alias
    assert source.resolve("GRCh38:2") is None
    # and the accession agrees with hashing ref.fa ourselves
    computed = expected_accessions(vectors / "ref.fa")
    assert {r["name"]: (r["refget_accession"], int(r["length"])) for r in rows} == computed


def test_seqrepo_relative_uri(seqrepo_instance, monkeypatch):
    monkeypatch.chdir(seqrepo_instance.parent)
    source = anyvar.SequenceSource(f"seqrepo+:{seqrepo_instance.name}")
    absolute = anyvar.SequenceSource(f"seqrepo+file://{seqrepo_instance}")
    assert source.resolve("GRCh38:chr2") == absolute.resolve("GRCh38:chr2") is not None


# --- FASTA -------------------------------------------------------------------------------------


def test_fasta_sources_resolve_like_seqrepo(synthetic, bgzipped_fasta):
    expected = expected_accessions(synthetic[0])
    for path in (synthetic[0], bgzipped_fasta):
        source = anyvar.SequenceSource(fasta_uri(path))
        for name, value in expected.items():
            assert source.resolve(f"GRCh38:{name}") == value
            assert source.resolve(f"GRCh38:{name[3:]}") == value
        assert source.resolve("GRCh38:chrUn") is None
        assert source.resolve("GRCh37:chr1") is None


def test_fasta_assembly_parameter_sets_the_namespace(synthetic):
    expected = expected_accessions(synthetic[0])["chr1"]
    source = anyvar.SequenceSource(fasta_uri(synthetic[0], "GRCh37"))
    assert source.resolve("GRCh37:chr1") == expected
    assert source.resolve("GRCh38:chr1") is None


@pytest.mark.parametrize("vrs_attributes", [False, True])
def test_fasta_bgzf_fasta_and_seqrepo_annotate_identically(
    synthetic, bgzipped_fasta, seqrepo_instance, tmp_path, vrs_attributes
):
    vcf = synthetic[1]
    uris = {
        "fasta": fasta_uri(synthetic[0]),
        "bgzf": fasta_uri(bgzipped_fasta),
        "seqrepo": f"seqrepo+file://{seqrepo_instance}",
    }
    outputs = {}
    for label, uri in uris.items():
        out = tmp_path / f"{label}.vcf"
        anyvar.annotate_vcf(vcf, out, dataproxy_uri=uri, vrs_attributes=vrs_attributes)
        outputs[label] = out.read_bytes()
    assert outputs["fasta"] == outputs["bgzf"] == outputs["seqrepo"]
    # ... and the shared output is a real annotation, not a column of dots
    records = data_lines(tmp_path / "fasta.vcf")
    ids = [i for r in records for i in (vrs_ids(r) or []) if i]
    assert len(records) == 3000
    assert len(ids) > 4000
    assert all(i.startswith("ga4gh:VA.") for i in ids)


# --- the FASTA refget sidecar ------------------------------------------------------------------


@pytest.fixture
def fasta_copy(synthetic, tmp_path) -> Path:
    path = tmp_path / "copy.fa"
    shutil.copy(synthetic[0], path)
    shutil.copy(f"{synthetic[0]}.fai", f"{path}.fai")
    return path


def test_fasta_digests_are_cached_in_a_sidecar(fasta_copy):
    sidecar = Path(f"{fasta_copy}.refget.tsv")
    assert not sidecar.exists()
    anyvar.SequenceSource(fasta_uri(fasta_copy))
    assert sidecar.exists()
    text = sidecar.read_text()
    for accession, _ in expected_accessions(fasta_copy).values():
        assert accession in text


def test_fasta_sidecar_is_reused(fasta_copy):
    sidecar = Path(f"{fasta_copy}.refget.tsv")
    true_chr1 = anyvar.SequenceSource(fasta_uri(fasta_copy)).resolve("GRCh38:chr1")
    assert true_chr1 is not None
    # Doctor the cached digest: if the next open reads the sidecar, it reports the doctored value.
    doctored = "SQ.fromTheSidecarNotFromTheFasta00"
    sidecar.write_text(sidecar.read_text().replace(true_chr1[0], doctored))
    assert anyvar.SequenceSource(fasta_uri(fasta_copy)).resolve("GRCh38:chr1") == (
        doctored,
        true_chr1[1],
    )


def test_stale_fasta_sidecar_is_recomputed(fasta_copy):
    sidecar = Path(f"{fasta_copy}.refget.tsv")
    before = anyvar.SequenceSource(fasta_uri(fasta_copy)).resolve("GRCh38:chr1")
    assert sidecar.exists()
    # Change one base of chr1 in place: same size, same .fai, different sequence and mtime.
    data = bytearray(fasta_copy.read_bytes())
    first_base = data.index(b"\n") + 1
    data[first_base : first_base + 1] = b"C" if data[first_base : first_base + 1] != b"C" else b"G"
    fasta_copy.write_bytes(bytes(data))
    stat = fasta_copy.stat()
    os.utime(fasta_copy, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    expected = expected_accessions(fasta_copy)["chr1"]
    assert expected != before
    assert anyvar.SequenceSource(fasta_uri(fasta_copy)).resolve("GRCh38:chr1") == expected
    assert expected[0] in sidecar.read_text()


# --- unusable URIs -----------------------------------------------------------------------------


@pytest.fixture
def bad_uris(tmp_path, synthetic, bgzipped_fasta) -> dict[str, tuple[str, str]]:
    no_fai = tmp_path / "nofai.fa"
    shutil.copy(synthetic[0], no_fai)
    no_gzi = tmp_path / "nogzi.fa.gz"
    shutil.copy(bgzipped_fasta, no_gzi)
    shutil.copy(f"{bgzipped_fasta}.fai", f"{no_gzi}.fai")
    not_instance = tmp_path / "not_a_seqrepo"
    not_instance.mkdir()
    return {
        "unknown scheme": ("s3://bucket/seqrepo", r"unknown scheme"),
        "seqrepo REST without host": ("seqrepo+http:///seqrepo", r"names no host"),
        "seqrepo REST unreachable": (
            f"seqrepo+http://127.0.0.1:{free_port()}/seqrepo",
            r"GET http://127\.0\.0\.1:\d+/seqrepo/1/ping failed: .*unreachable",
        ),
        "missing directory": (f"seqrepo+file://{tmp_path}/missing", r"missing is not a directory"),
        "not an instance": (f"seqrepo+file://{not_instance}", r"aliases\.sqlite3"),
        "FASTA without .fai": (fasta_uri(no_fai), r"nofai\.fa\.fai.*samtools faidx"),
        "bgzipped FASTA without .gzi": (fasta_uri(no_gzi), r"nogzi\.fa\.gz\.gzi"),
        "missing FASTA": (fasta_uri(tmp_path / "absent.fa"), r"absent\.fa"),
        "unknown parameter": (f"fasta+file://{synthetic[0]}?species=human", r"species"),
        "not a URI": (str(synthetic[0]), r"not a URI"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "unknown scheme",
        "seqrepo REST without host",
        "seqrepo REST unreachable",
        "missing directory",
        "not an instance",
        "FASTA without .fai",
        "bgzipped FASTA without .gzi",
        "missing FASTA",
        "unknown parameter",
        "not a URI",
    ],
)
def test_bad_uri_raises_sequence_source_error(bad_uris, case, synthetic, tmp_path):
    uri, pattern = bad_uris[case]
    with pytest.raises(anyvar.SequenceSourceError, match=pattern) as info:
        anyvar.SequenceSource(uri)
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, anyvar.AnyVarError)
    # the same through annotate_vcf, which then writes nothing
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(anyvar.SequenceSourceError, match=pattern):
        anyvar.annotate_vcf(synthetic[1], out_dir / "out.vcf", dataproxy_uri=uri)
    assert list(out_dir.iterdir()) == []
