"""Input and output handling: compressed inputs, BGZF output and tabix indexes, standard
input/output, verbatim pass-through of everything not annotated, and unusual but valid files."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pysam
import pytest
from helpers import data_lines, info_of, read_text, run_cli, vrs_ids

import anyvar

BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def is_bgzf(data: bytes) -> bool:
    return data[:4] == b"\x1f\x8b\x08\x04" and data[12:14] == b"BC"


@pytest.fixture(scope="module")
def plain_output(synthetic, synthetic_fasta_uri, tmp_path_factory) -> bytes:
    """The synthetic VCF annotated from its plain-text form: what every other form must give."""
    out = tmp_path_factory.mktemp("io_reference") / "out.vcf"
    summary = anyvar.annotate_vcf(synthetic[1], out, dataproxy_uri=synthetic_fasta_uri)
    assert summary["records"] == 3000
    return out.read_bytes()


# --- compressed input --------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["gzip", "gzip named .vcf", "gzip two members", "bgzip"])
def test_compressed_input_gives_identical_output(
    form, synthetic, synthetic_fasta_uri, plain_output, tmp_path
):
    text = synthetic[1].read_bytes()
    if form == "bgzip":
        src = tmp_path / "in.vcf.gz"
        pysam.tabix_compress(str(synthetic[1]), str(src))
        assert is_bgzf(src.read_bytes())
    else:
        src = tmp_path / ("in.vcf" if form == "gzip named .vcf" else "in.vcf.gz")
        if form == "gzip two members":
            half = text.index(b"\nchr2\t") + 1
            data = gzip.compress(text[:half], mtime=0) + gzip.compress(text[half:], mtime=0)
        else:
            data = gzip.compress(text, mtime=0)
        assert not is_bgzf(data)
        src.write_bytes(data)
    out = tmp_path / "out.vcf"
    anyvar.annotate_vcf(src, out, dataproxy_uri=synthetic_fasta_uri)
    assert out.read_bytes() == plain_output


# --- output compression ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["out.vcf.gz", "out.vcf.bgz"])
def test_gz_output_name_writes_bgzf(name, synthetic, synthetic_fasta_uri, plain_output, tmp_path):
    out = tmp_path / name
    anyvar.annotate_vcf(synthetic[1], out, dataproxy_uri=synthetic_fasta_uri)
    data = out.read_bytes()
    assert is_bgzf(data)
    assert data.endswith(BGZF_EOF)
    assert gzip.decompress(data) == plain_output
    # htslib reads it as a VCF with every record
    with pysam.VariantFile(str(out)) as vf:
        assert sum(1 for _ in vf) == 3000


def test_compression_overrides_the_name(synthetic, synthetic_fasta_uri, plain_output, tmp_path):
    forced = tmp_path / "forced.vcf"
    anyvar.annotate_vcf(
        synthetic[1], forced, dataproxy_uri=synthetic_fasta_uri, compression="bgzip"
    )
    assert is_bgzf(forced.read_bytes())
    assert gzip.decompress(forced.read_bytes()) == plain_output

    plain = tmp_path / "plain.vcf.gz"
    anyvar.annotate_vcf(synthetic[1], plain, dataproxy_uri=synthetic_fasta_uri, compression="none")
    assert plain.read_bytes() == plain_output


def test_unknown_compression_is_refused(synthetic, synthetic_fasta_uri, tmp_path):
    with pytest.raises(ValueError, match="xz"):
        anyvar.annotate_vcf(
            synthetic[1], tmp_path / "o.vcf", dataproxy_uri=synthetic_fasta_uri, compression="xz"
        )
    assert list(tmp_path.iterdir()) == []


def overlapping(records: list[list[str]], chrom: str, start: int, end: int) -> list[str]:
    """Records overlapping 0-based [start, end), as tabix answers for REF spans."""
    return [
        "\t".join(r)
        for r in records
        if r[0] == chrom and int(r[1]) - 1 < end and int(r[1]) - 1 + len(r[3]) > start
    ]


def test_tabix_index_is_usable(synthetic, synthetic_fasta_uri, tmp_path):
    out = tmp_path / "out.vcf.gz"
    anyvar.annotate_vcf(synthetic[1], out, dataproxy_uri=synthetic_fasta_uri, tabix=True)
    assert Path(f"{out}.tbi").exists()
    records = data_lines(out)
    with pysam.TabixFile(str(out)) as tbx:
        assert set(tbx.contigs) == {"chr1", "chr2", "chr3", "chrUn"}
        for chrom, start, end in [("chr2", 1000, 3000), ("chr1", 0, 500), ("chrUn", 0, 50)]:
            got = list(tbx.fetch(chrom, start, end))
            assert got == overlapping(records, chrom, start, end)
            assert got, f"the region {chrom}:{start}-{end} should hold records"
            assert all("VRS_Allele_IDs=" in line or "VRS_Error=" in line for line in got)


def test_tabix_of_plain_output_is_refused(synthetic, synthetic_fasta_uri, tmp_path):
    with pytest.raises(ValueError, match="BGZF"):
        anyvar.annotate_vcf(
            synthetic[1], tmp_path / "out.vcf", dataproxy_uri=synthetic_fasta_uri, tabix=True
        )


def test_refused_tabix_request_leaves_no_output(synthetic, synthetic_fasta_uri, tmp_path):
    with pytest.raises(ValueError):
        anyvar.annotate_vcf(
            synthetic[1], tmp_path / "out.vcf", dataproxy_uri=synthetic_fasta_uri, tabix=True
        )
    assert list(tmp_path.iterdir()) == []


# --- standard input and output -----------------------------------------------------------------


@pytest.mark.parametrize("compressed", [False, True])
def test_stdin_to_stdout(compressed, synthetic, synthetic_fasta_uri, plain_output):
    data = synthetic[1].read_bytes()
    if compressed:
        data = gzip.compress(data, mtime=0)
    done = run_cli(
        "annotate", "-", "-o", "-", "--dataproxy-uri", synthetic_fasta_uri, "-q", stdin=data
    )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == plain_output
    assert done.stderr == b""


def test_stdout_carries_only_the_vcf(synthetic, synthetic_fasta_uri, plain_output):
    """The summary goes to stderr, so stdout stays a clean VCF for pipes."""
    done = run_cli("annotate", synthetic[1], "-o", "-", "--dataproxy-uri", synthetic_fasta_uri)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout == plain_output
    assert b"annotated 3,000 records" in done.stderr


def test_bgzf_to_stdout_is_refused(synthetic, synthetic_fasta_uri, capfd):
    with pytest.raises(ValueError, match="standard output"):
        anyvar.annotate_vcf(
            synthetic[1], "-", dataproxy_uri=synthetic_fasta_uri, compression="bgzip"
        )
    assert capfd.readouterr().out == ""


# --- verbatim pass-through ---------------------------------------------------------------------


def passthrough_vcf(reference: str) -> tuple[str, list[str]]:
    """A VCF with awkward but valid content htslib would re-encode; returns (text, records)."""
    header = [
        "##fileformat=VCFv4.3",
        "##random text without an equals sign",
        "##contig=<ID=chr1,length=10>",  # a wrong length: passed through, never checked
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">',
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">',
        '##INFO=<ID=FLAG,Number=0,Type=Flag,Description="A flag">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=VF,Number=1,Type=Float,Description="A float">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2",
    ]
    b = reference
    records = [
        f"chr1\t11\trs1\t{b[10]}\t{'T' if b[10] != 'T' else 'C'}\t29.54321\tPASS\t"
        "AF=0.333333333;DP=+07;FLAG\tGT:VF\t0/1:0.123456789\t1|0:1.0e-5",
        f"chr1\t21\t.\t{b[20]}\t<DEL>\t1e6\tq10;lowDP\t.\tGT\t./.\t0|0",  # no END declared
        f"chr1\t31\tid3\t{b[30:33]}\t{b[30]}\t100.0\t.\tUNDECLARED=x y\tGT:VF\t0/1:.\t1/1:3",
        "chrUndeclared\t5\t.\tA\tG\t.\tPASS\tDP=5\tGT\t0/1\t0/0",
    ]
    return "\n".join(header + records) + "\n", header


def test_verbatim_passthrough(synthetic, synthetic_fasta_uri, tmp_path):
    reference = "".join(
        line.strip() for line in synthetic[0].read_text().split(">chr2")[0].splitlines()[1:]
    ).upper()
    text, header = passthrough_vcf(reference)
    src = tmp_path / "in.vcf"
    src.write_text(text)
    out = tmp_path / "out.vcf"
    summary = anyvar.annotate_vcf(src, out, dataproxy_uri=synthetic_fasta_uri)
    assert (summary["records"], summary["errors"]) == (4, 0)
    lines = out.read_text().splitlines()
    out_header = [line for line in lines if line.startswith("#")]
    # every input header line is kept, in order and byte for byte; only our two lines are added,
    # right before #CHROM (no PASS line, nothing dropped)
    assert out_header[:-3] == header[:-1]
    assert out_header[-3].startswith("##INFO=<ID=VRS_Allele_IDs,Number=R,")
    assert out_header[-2].startswith("##INFO=<ID=VRS_Error,")
    assert out_header[-1] == header[-1]

    inputs = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    outputs = data_lines(out)
    assert len(outputs) == len(inputs)
    for i, o in zip(inputs, outputs, strict=True):
        assert o[:7] == i[:7]
        assert o[8:] == i[8:]
        info = o[7]
        if i[7] == ".":
            assert info.startswith("VRS_Allele_IDs=")
        else:
            assert info.startswith(i[7] + ";VRS_Allele_IDs=")
        assert "END=" not in info
    assert outputs[0][5] == "29.54321"
    assert outputs[0][7].startswith("AF=0.333333333;DP=+07;FLAG;")
    assert outputs[0][9:] == ["0/1:0.123456789", "1|0:1.0e-5"]
    ids = [vrs_ids(o) for o in outputs]
    assert ids[0][0] and ids[0][1] and ids[0][0] != ids[0][1]
    assert ids[1][0] and ids[1][1] is None  # symbolic ALT: no allele, record kept
    assert ids[3] == [None, None]  # undeclared, unknown contig


def test_reannotation_replaces_old_vrs_fields(synthetic, synthetic_fasta_uri, tmp_path):
    once = tmp_path / "once.vcf"
    twice = tmp_path / "twice.vcf"
    anyvar.annotate_vcf(synthetic[1], once, dataproxy_uri=synthetic_fasta_uri)
    anyvar.annotate_vcf(once, twice, dataproxy_uri=synthetic_fasta_uri)
    assert twice.read_bytes() == once.read_bytes()
    # from an annotation with attributes back to one without
    attrs = tmp_path / "attrs.vcf"
    back = tmp_path / "back.vcf"
    anyvar.annotate_vcf(synthetic[1], attrs, dataproxy_uri=synthetic_fasta_uri, vrs_attributes=True)
    assert "VRS_Starts" in attrs.read_text()
    anyvar.annotate_vcf(attrs, back, dataproxy_uri=synthetic_fasta_uri)
    assert back.read_bytes() == once.read_bytes()


# --- unusual but valid files -------------------------------------------------------------------

HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def test_header_only_vcf(synthetic_fasta_uri, tmp_path):
    src = tmp_path / "in.vcf"
    src.write_text(HEADER)
    out = tmp_path / "out.vcf"
    summary = anyvar.annotate_vcf(src, out, dataproxy_uri=synthetic_fasta_uri)
    assert (summary["records"], summary["alleles"], summary["errors"]) == (0, 0, 0)
    lines = out.read_text().splitlines()
    assert lines[0] == "##fileformat=VCFv4.2"
    assert lines[1].startswith("##INFO=<ID=VRS_Allele_IDs,")
    assert lines[2].startswith("##INFO=<ID=VRS_Error,")
    assert lines[3] == HEADER.splitlines()[1]
    assert len(lines) == 4


def some_records(synthetic: tuple[Path, Path], n: int = 200) -> list[str]:
    lines = [line for line in synthetic[1].read_text().splitlines() if not line.startswith("#")]
    return random.Random(5).sample(lines, n)


def test_crlf_line_endings(synthetic, synthetic_fasta_uri, tmp_path):
    header = [line for line in synthetic[1].read_text().splitlines() if line.startswith("#")]
    lines = header + some_records(synthetic)
    lf, crlf = tmp_path / "lf.vcf", tmp_path / "crlf.vcf"
    lf.write_bytes(("\n".join(lines) + "\n").encode())
    crlf.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    out_lf, out_crlf = tmp_path / "lf.out.vcf", tmp_path / "crlf.out.vcf"
    a = anyvar.annotate_vcf(lf, out_lf, dataproxy_uri=synthetic_fasta_uri)
    b = anyvar.annotate_vcf(crlf, out_crlf, dataproxy_uri=synthetic_fasta_uri)
    assert (a["records"], a["alleles"], a["errors"]) == (b["records"], b["alleles"], b["errors"])
    got = out_crlf.read_bytes()
    assert b"\r;" not in got and b"\r," not in got  # no CR leaked into the values
    assert got.replace(b"\r\n", b"\n") == out_lf.read_bytes()
    # data lines keep their CRLF ending
    body = got.split(b"#CHROM", 1)[1].split(b"\n")[1:-1]
    assert len(body) == 200 and all(line.endswith(b"\r") for line in body)


def test_missing_final_newline(synthetic, synthetic_fasta_uri, tmp_path):
    records = some_records(synthetic, 20)
    src = tmp_path / "in.vcf"
    src.write_text(HEADER.replace("\tINFO\n", "\tINFO\tFORMAT\tS1\n") + "\n".join(records))
    out = tmp_path / "out.vcf"
    summary = anyvar.annotate_vcf(src, out, dataproxy_uri=synthetic_fasta_uri)
    assert summary["records"] == 20
    text = read_text(out)
    assert text.endswith("\n")
    last = data_lines(out)[-1]
    assert last[:7] == records[-1].split("\t")[:7]
    assert any(key.startswith("VRS_") for key in info_of(last))
