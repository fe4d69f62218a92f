"""``seqrepo+http://`` sources: a real seqrepo-rest-service process (biocommons' own, from PyPI)
serves a SeqRepo built by the ``seqrepo`` CLI on a free loopback port, and everything read through
it must agree with reading the same instance as ``seqrepo+file://``."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import data_lines, run_cli, vrs_ids
from service import build_seqrepo_with_refseq

import anyvar
from anyvar.exceptions import TranslationError
from anyvar.processes import Process, ProcessError, answers, clean_env, free_port
from anyvar.synthetic import generate

REFSEQ = {"chr1": "NC_000001.11", "chr2": "NC_000002.12", "chr3": "NC_000003.12"}
BLOCK = 64 * 1024
"""The source's block size (rust/core/src/sequence/files.rs): alleles across it are checked."""

# seqrepo-rest-service's CLI binds 0.0.0.0:5000 in Flask debug mode (reloader and debugger). The
# tests run the same CLI with its app served on a free loopback port and without debug mode.
LAUNCHER = """
import sys

from connexion.apps.flask_app import FlaskApp
from seqrepo_rest_service import cli

port = int(sys.argv.pop(1))
flask_run = FlaskApp.run


def run_on_loopback(self, *args, **kwargs):
    kwargs.update(host="127.0.0.1", port=port, debug=False)
    return flask_run(self, *args, **kwargs)


FlaskApp.run = run_on_loopback
sys.exit(cli.main())
"""


@contextlib.contextmanager
def seqrepo_rest_service(instance: Path, log: Path) -> Iterator[str]:
    """A running seqrepo-rest-service for ``instance``; yields its ``seqrepo+http://`` URI."""
    port = free_port()
    cmd = [sys.executable, "-c", LAUNCHER, port, instance]
    service = Process.start("seqrepo-rest-service", cmd, log.parent, clean_env({}), log)
    try:
        ping = f"http://127.0.0.1:{port}/seqrepo/1/ping"
        try:
            service.wait_until(lambda: answers(ping), timeout=60, what="answering")
        except ProcessError as e:
            pytest.fail(str(e))
        yield f"seqrepo+http://127.0.0.1:{port}/seqrepo"
    finally:
        service.stop(grace=10)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, Path]:
    """A reference long enough for several 64 KiB blocks per contig (chr1 has five) and a
    3,000-record VCF over it."""
    return generate(
        tmp_path_factory.mktemp("http_ref"), records=3000, reference_length=600_000, seed=11
    )


@pytest.fixture(scope="module")
def instance(reference, tmp_path_factory) -> Path:
    return build_seqrepo_with_refseq(
        reference[0], tmp_path_factory.mktemp("http_seqrepo") / "root", REFSEQ
    )


@pytest.fixture(scope="module")
def file_uri(instance) -> str:
    return f"seqrepo+file://{instance}"


@pytest.fixture(scope="module")
def http_uri(instance, tmp_path_factory) -> Iterator[str]:
    with seqrepo_rest_service(instance, tmp_path_factory.mktemp("rest") / "service.log") as uri:
        yield uri


def annotate(uri: str, vcf: Path, out: Path, *extra: str) -> bytes:
    done = run_cli("annotate", vcf, "-o", out, "--dataproxy-uri", uri, "-q", *extra)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stderr == b""
    return out.read_bytes()


@pytest.mark.parametrize("extra", [(), ("--vrs-attributes",)], ids=["ids", "attributes"])
def test_annotate_over_http_is_byte_identical(
    reference, file_uri, http_uri, tmp_path, extra
) -> None:
    vcf = reference[1]
    over_file = annotate(file_uri, vcf, tmp_path / "file.vcf", *extra)
    over_http = annotate(http_uri, vcf, tmp_path / "http.vcf", *extra)
    assert over_http == over_file
    # ... and it is a real annotation, not a column of unknown contigs
    records = data_lines(tmp_path / "http.vcf")
    ids = [i for r in records for i in (vrs_ids(r) or []) if i]
    assert len(records) == 3000
    assert len(ids) > 4000
    assert all(i.startswith("ga4gh:VA.") for i in ids)


def test_names_resolve_as_over_files(reference, file_uri, http_uri) -> None:
    over_file = anyvar.SequenceSource(file_uri)
    over_http = anyvar.SequenceSource(http_uri)
    known = []
    for name, accession in REFSEQ.items():
        found = over_file.resolve(f"GRCh38:{name}")
        assert found is not None and found[1] > 100_000
        known += [f"GRCh38:{name}", f"GRCh38:{name[3:]}", f"refseq:{accession}"]
        known.append(f"ga4gh:{found[0]}")
    unknown = [
        "GRCh38:chrX",  # unknown alias
        "GRCh37:chr1",  # namespace not loaded
        "grch38:chr1",  # namespaces are case-sensitive
        "GRCh38:CHR1",  # aliases too
        "chr1",  # no namespace at all
        "GRCh38:chr1:5",  # a second colon is not an alias
        "ga4gh:SQ.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "GRCh38:chr1/x",  # a slash stays inside the one path segment
        "GRCh38:chr%",  # and SQL wildcards match nothing unique
    ]
    for name in known:
        assert over_http.resolve(name) == over_file.resolve(name) is not None, name
    for name in unknown:
        assert over_file.resolve(name) is None, name
        assert over_http.resolve(name) is None, name


def definitions(reference: Path) -> list[str]:
    """gnomAD-style, SPDI and genomic HGVS definitions, among them alleles that cross a block
    boundary, on repeats (normalization reads beyond them) and with a wrong REF."""
    seqs: dict[str, list[str]] = {}
    name = ""
    for line in reference.read_text().splitlines():
        if line.startswith(">"):
            name = line[1:].split()[0]
            seqs[name] = []
        else:
            seqs[name].append(line.strip())
    chr1 = "".join(seqs["chr1"]).upper()
    assert len(chr1) > 4 * BLOCK
    out = []
    for pos in (1, 1000, BLOCK - 2, BLOCK, BLOCK + 1, 2 * BLOCK - 1, 4 * BLOCK + 3):
        ref = chr1[pos - 1]
        if ref not in "ACGT":
            continue
        alt = "T" if ref != "T" else "G"
        out.append(f"1-{pos}-{ref}-{alt}")
        out.append(f"chr1-{pos}-{chr1[pos - 1 : pos + 4]}-{ref}")  # deletion (may span blocks)
        out.append(f"NC_000001.11:g.{pos}{ref}>{alt}")
        out.append(f"NC_000001.11:{pos - 1}:1:{alt}")
    out += [
        f"NC_000001.11:g.{BLOCK - 3}_{BLOCK + 3}del",
        f"NC_000001.11:{BLOCK - 5}:10:",
        f"NC_000001.11:{BLOCK - 1}:0:{chr1[BLOCK - 1 : BLOCK + 8]}",  # a duplication
        "1-1000-ACGTACGTAC-A",  # a wrong REF (almost surely)
        "chrX-10-A-T",  # an unknown contig
        f"1-{len(chr1) + 5}-A-T",  # past the end
    ]
    return out


def test_translations_agree(reference, file_uri, http_uri) -> None:
    over_file = anyvar.SequenceSource(file_uri)
    over_http = anyvar.SequenceSource(http_uri)
    outcomes = {"ok": 0, "error": 0}
    for definition in definitions(reference[0]):
        results = []
        for source in (over_file, over_http):
            try:
                results.append(source.translate(definition, "GRCh38").json())
            except TranslationError as e:
                results.append(f"error: {e}")
        assert results[1] == results[0], definition
        outcomes["error" if results[0].startswith("error") else "ok"] += 1
    assert outcomes["ok"] > 20 and outcomes["error"] >= 3, outcomes


def test_stopped_server_is_one_clear_error(instance, tmp_path) -> None:
    with seqrepo_rest_service(instance, tmp_path / "service.log") as uri:
        opened = anyvar.SequenceSource(uri)
    # The service is gone: opening fails at once, with the URI named ...
    with pytest.raises(anyvar.SequenceSourceError, match="unreachable") as info:
        anyvar.SequenceSource(uri)
    assert uri in str(info.value)
    # ... a source opened before it went away fails as loudly, never "unknown sequence" ...
    with pytest.raises(anyvar.SequenceSourceError, match="unreachable") as info:
        opened.resolve("GRCh38:chr1")
    assert uri in str(info.value)
    # ... and the CLI says it in one line and writes nothing.
    out = tmp_path / "out.vcf"
    vcf = generate(tmp_path / "vcf", records=20)[1]
    done = run_cli("annotate", vcf, "-o", out, "--dataproxy-uri", uri)
    err = done.stderr.decode()
    assert done.returncode == 1, err
    assert err.startswith("anyvar: error: ") and err.count("\n") == 1, err
    assert uri in err and "unreachable" in err and "Traceback" not in err
    assert not out.exists()
