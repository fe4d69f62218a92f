"""Input that is not a VCF stops the run with a VcfFormatError naming the line and the problem,
leaves no output (not even a temporary file), and makes the CLI print one clean line. Problems of a
single record are not fatal: that record gets VRS_Error and the run goes on."""

from __future__ import annotations

import gzip
import random
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

import pysam
import pytest
from helpers import data_lines, info_of, run_cli, vrs_ids

import anyvar
from anyvar.cli import main as cli_main

HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


@dataclass
class Case:
    data: bytes
    line: int
    message: str  # regex the message must match


def complete_lines(data: bytes, bgzf: bool) -> int:
    """Newlines in the part of a truncated gzip/BGZF stream that a decoder can deliver (whole
    BGZF blocks only: a BGZF reader never hands out part of a block)."""
    count = 0
    while data:
        d = zlib.decompressobj(31)
        out = d.decompress(data)
        if bgzf and not d.eof:
            break
        count += out.count(b"\n")
        if not d.eof:
            break
        data = d.unused_data
    return count


@pytest.fixture(scope="module")
def medium_vcf(synthetic, tmp_path_factory) -> tuple[Path, list[str], list[str]]:
    """About 1.7 MB: several 512 KiB chunks, so errors can come after output was written."""
    lines = synthetic[1].read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    records = [line for line in lines if not line.startswith("#")] * 10
    path = tmp_path_factory.mktemp("medium") / "medium.vcf"
    path.write_text("".join(header + records))
    return path, header, records


def make_cases(synthetic: tuple[Path, Path], medium) -> dict[str, Case]:
    text = synthetic[1].read_bytes()
    header_lines = sum(1 for line in text.splitlines() if line.startswith(b"#"))
    medium_path, header, records = medium

    garbage = random.Random(0).randbytes(5000)
    assert garbage[:2] != b"\x1f\x8b"

    gz = gzip.compress(text, mtime=0)
    truncated_gz = gz[: len(gz) * 6 // 10]
    bad_crc = bytearray(gz)
    bad_crc[-8] ^= 0xFF

    bgz = pysam_bgzip(text)
    truncated_bgz = bgz[: len(bgz) * 6 // 10]
    assert complete_lines(truncated_bgz, True) > 0, "cut after the first block"

    record = "chr1\t11\t.\tA\tG\t.\tPASS\t.\n"
    no_chrom = "".join(h for h in header if not h.startswith("#CHROM"))
    deep = header_lines + 25_000
    deep_lines = header + records[: deep - header_lines - 1]
    return {
        "binary garbage": Case(garbage, 1, r"not a VCF"),
        "empty file": Case(b"", 1, r"empty"),
        "a UTF-8 byte order mark first": Case(
            b"\xef\xbb\xbf" + text, 1, r"byte order mark \(bytes EF BB BF\)"
        ),
        "gzip of a text that is not a VCF": Case(gzip.compress(b"hello\nworld\n"), 1, r"not a VCF"),
        "no #CHROM line": Case(no_chrom.encode(), len(header), r"no #CHROM line"),
        "data before #CHROM": Case(
            (no_chrom + record).encode(), len(header), r"#CHROM line before the data"
        ),
        "too few columns": Case(
            (HEADER + record + "chr1\t12\t.\tA\n").encode(), 4, r"8 tab-separated columns.*found 4"
        ),
        "space-separated columns": Case(
            (HEADER + record.replace("\t", " ")).encode(), 3, r"columns.*found 1"
        ),
        "non-numeric POS": Case(
            (HEADER + record + record.replace("\t11\t", "\tfive\t")).encode(),
            4,
            r"POS \"five\" is not a number",
        ),
        "negative POS": Case(
            (HEADER + record.replace("\t11\t", "\t-3\t")).encode(), 3, r"POS \"-3\" is not a number"
        ),
        "header line after #CHROM": Case(
            (HEADER + record + "##late=header\n" + record).encode(), 4, r"header line after"
        ),
        "truncated gzip": Case(
            truncated_gz, complete_lines(truncated_gz, False) + 1, r"compressed input is truncated"
        ),
        "gzip with a bad checksum": Case(
            bytes(bad_crc), text.count(b"\n") + 1, r"compressed input is corrupt"
        ),
        "truncated bgzip": Case(
            truncated_bgz, complete_lines(truncated_bgz, True) + 1, r"compressed input is truncated"
        ),
        # Cut exactly before the 28-byte end-of-file block: every block decodes, only the
        # missing marker shows the data may be incomplete.
        "bgzip without its end-of-file block": Case(
            bgz[:-28], text.count(b"\n") + 1, r"bgzip input is truncated.*end-of-file block"
        ),
        "too few columns after 1.3 MB of output": Case(
            "".join(deep_lines + ["chr1\t12\t.\tA\n"] + records[:100]).encode(),
            deep,
            r"found 4",
        ),
    }


def pysam_bgzip(data: bytes) -> bytes:
    """BGZF-compresses bytes with htslib (through a temporary file next to nothing else)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        src, dst = Path(d) / "x", Path(d) / "x.gz"
        src.write_bytes(data)
        pysam.tabix_compress(str(src), str(dst))
        return dst.read_bytes()


CASES = [
    "binary garbage",
    "empty file",
    "a UTF-8 byte order mark first",
    "gzip of a text that is not a VCF",
    "no #CHROM line",
    "data before #CHROM",
    "too few columns",
    "space-separated columns",
    "non-numeric POS",
    "negative POS",
    "header line after #CHROM",
    "truncated gzip",
    "gzip with a bad checksum",
    "truncated bgzip",
    "bgzip without its end-of-file block",
    "too few columns after 1.3 MB of output",
]


@pytest.fixture(scope="module")
def cases(synthetic, medium_vcf) -> dict[str, Case]:
    made = make_cases(synthetic, medium_vcf)
    assert sorted(made) == sorted(CASES)
    return made


def write_case(case: Case, tmp_path: Path) -> tuple[Path, Path]:
    indir, outdir = tmp_path / "in", tmp_path / "out"
    indir.mkdir()
    outdir.mkdir()
    src = indir / "input.vcf.gz"
    src.write_bytes(case.data)
    return src, outdir


@pytest.mark.parametrize("output_name", ["out.vcf", "out.vcf.gz"])
@pytest.mark.parametrize("name", CASES)
def test_fatal_input_error(name, output_name, cases, synthetic_fasta_uri, tmp_path):
    case = cases[name]
    src, outdir = write_case(case, tmp_path)
    with pytest.raises(anyvar.VcfFormatError) as info:
        anyvar.annotate_vcf(src, outdir / output_name, dataproxy_uri=synthetic_fasta_uri, threads=2)
    error = info.value
    assert isinstance(error, ValueError)
    assert isinstance(error, anyvar.AnyVarError)
    assert error.line == case.line, str(error)
    assert error.message
    assert re.search(case.message, error.message), error.message
    assert str(error) == f"line {case.line}: {error.message}"
    # nothing left behind: no output, no temporary file
    assert list(outdir.iterdir()) == []


@pytest.mark.parametrize("name", CASES)
def test_cli_reports_one_line(name, cases, synthetic_fasta_uri, tmp_path, capsys):
    case = cases[name]
    src, outdir = write_case(case, tmp_path)
    code = cli_main(
        ["annotate", str(src), "-o", str(outdir / "o.vcf"), "--dataproxy-uri", synthetic_fasta_uri]
    )
    captured = capsys.readouterr()
    assert code != 0
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(f"anyvar: error: {src}: line {case.line}: ")
    assert list(outdir.iterdir()) == []


@pytest.mark.parametrize("name", ["truncated gzip", "binary garbage"])
def test_cli_script_exit_code_and_no_traceback(name, cases, synthetic_fasta_uri, tmp_path):
    case = cases[name]
    src, outdir = write_case(case, tmp_path)
    done = run_cli("annotate", src, "-o", outdir / "o.vcf", "--dataproxy-uri", synthetic_fasta_uri)
    stderr = done.stderr.decode()
    assert done.returncode == 1
    assert "Traceback" not in stderr
    assert stderr.count("\n") == 1 and stderr.startswith("anyvar: error: ")
    assert f"line {case.line}:" in stderr
    assert list(outdir.iterdir()) == []


def test_cli_missing_input_file(synthetic_fasta_uri, tmp_path, capsys):
    code = cli_main(
        [
            "annotate",
            str(tmp_path / "absent.vcf"),
            "-o",
            str(tmp_path / "o.vcf"),
            "--dataproxy-uri",
            synthetic_fasta_uri,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("anyvar: error: ") and "absent.vcf" in err and err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_threads_value_is_a_clean_error(synthetic, synthetic_fasta_uri, tmp_path):
    done = run_cli(
        "annotate",
        synthetic[1],
        "-o",
        tmp_path / "o.vcf",
        "--dataproxy-uri",
        synthetic_fasta_uri,
        "--threads",
        "-1",
    )
    assert done.returncode != 0
    assert b"Traceback" not in done.stderr, done.stderr.decode()
    assert not (tmp_path / "o.vcf").exists()


# --- record-level problems ---------------------------------------------------------------------


def vector_records() -> str:
    """Records over the vectors' chr1 (397 bp): bad ones between good ones."""
    return "".join(
        f"{line}\n"
        for line in [
            "chr1\t11\tgood_before\tA\tG\t.\tPASS\tDP=3",
            "chr1\t290\tref_mismatch\tG\tA\t.\tPASS\tDP=4",
            "chr1\t0\tpos_zero\tN\tA\t.\tPASS\t.",
            "chr1\t396\tref_past_end\tTCA\tT\t.\tPASS\t.",
            "chr1\t290\tref_mismatch_lower\tg\ta,<DEL>\t.\tPASS\t.",
            "chr1\t11\tgood_after\tA\tG\t.\tPASS\t.",
        ]
    )


@pytest.mark.parametrize("vrs_attributes", [False, True])
def test_record_level_errors_are_not_fatal(vector_seqrepo_uri, tmp_path, vrs_attributes):
    src = tmp_path / "in.vcf"
    src.write_text(HEADER + vector_records())
    out = tmp_path / "out.vcf"
    summary = anyvar.annotate_vcf(
        src, out, dataproxy_uri=vector_seqrepo_uri, vrs_attributes=vrs_attributes
    )
    assert (summary["records"], summary["errors"], summary["alleles"]) == (6, 4, 4)
    by_id = {r[2]: r for r in data_lines(out)}
    errors = {k: info_of(r).get("VRS_Error") for k, r in by_id.items()}
    assert errors == {
        "good_before": None,
        "ref_mismatch": "Reference mismatch at GRCh38:chr1 position 289-290 "
        "(input gave 'G' but correct ref is 'A')",
        "pos_zero": "start out of range (-1)",
        "ref_past_end": "Reference mismatch at GRCh38:chr1 position 395-398 "
        "(input gave 'TCA' but correct ref is 'TC')",
        "ref_mismatch_lower": "Reference mismatch at GRCh38:chr1 position 289-290 "
        "(input gave 'G' but correct ref is 'A')",
        "good_after": None,
    }
    for label in ("ref_mismatch", "pos_zero", "ref_past_end", "ref_mismatch_lower"):
        info = info_of(by_id[label])
        # only the single error value, none of the other VRS keys
        assert [k for k in info if k.startswith("VRS_")] == ["VRS_Error"]
    assert by_id["ref_mismatch"][7].startswith("DP=4;VRS_Error=")
    # processing went on: the record after the errors is annotated like the one before
    assert vrs_ids(by_id["good_after"]) == vrs_ids(by_id["good_before"])
    assert vrs_ids(by_id["good_after"])[1] == "ga4gh:VA.Uh1M3DEgTlOIoVZ-FQPuuXUTPnc6Q7zj"


def test_ref_mismatch_without_validation_is_annotated(vector_seqrepo_uri, tmp_path):
    src = tmp_path / "in.vcf"
    src.write_text(HEADER + vector_records())
    out = tmp_path / "out.vcf"
    summary = anyvar.annotate_vcf(
        src, out, dataproxy_uri=vector_seqrepo_uri, require_validation=False
    )
    by_id = {r[2]: r for r in data_lines(out)}
    assert "VRS_Error" not in info_of(by_id["ref_mismatch"])
    ids = vrs_ids(by_id["ref_mismatch"])
    assert len(ids) == 2 and all(ids)
    # position 0 stays an error, with or without validation (spec 3.4)
    assert info_of(by_id["pos_zero"])["VRS_Error"] == "start out of range (-1)"
    # a REF past the sequence end is an error rather than an allele beyond the sequence (6.6)
    assert "past the end" in info_of(by_id["ref_past_end"])["VRS_Error"]
    assert summary["errors"] == 2
