"""The ``anyvar`` command line: each option of ``annotate`` changes the output as documented, the
summary line, the sequence source from the environment, and the ``synth`` and ``demo`` commands."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pysam
import pytest
from helpers import data_lines, info_of, read_text, run_cli, vrs_ids
from service import free_port

from anyvar.cli import main as cli_main

# Where we deliberately differ from vrs-python (spec 6.3): breakends that start with bases are no
# allele, and ALT `.` without REF gets no VRS keys instead of `-127`.
DEVIATIONS = {"breakend_ref_first_parses_as_identity", "ref_only_alt_dot"}

SUMMARY = re.compile(
    r"^annotated ([\d,]+) records \(([\d,]+) alleles, ([\d,]+) records with VRS_Error\) "
    r"in [\d.]+ s \([\d,]+ records/s\) -> (.+)$"
)


def vrs_info(path: Path) -> dict[str, dict[str, str]]:
    """Per record label (the ID column): its VRS_* INFO entries."""
    return {
        r[2]: {k: v for k, v in info_of(r).items() if k.startswith("VRS_")}
        for r in data_lines(path)
    }


def vrs_header(path: Path) -> list[str]:
    return [line for line in read_text(path).splitlines() if line.startswith("##INFO=<ID=VRS_")]


def annotate(tmp_path: Path, name: str, *args: str, capsys=None) -> Path:
    out = tmp_path / name
    code = cli_main(["annotate", *args, "-o", str(out)])
    assert code == 0
    if capsys is not None:
        capsys.readouterr()
    return out


@pytest.fixture
def vector_args(vectors, vector_seqrepo_uri) -> list[str]:
    return [str(vectors / "input.vcf"), "--dataproxy-uri", vector_seqrepo_uri]


@pytest.mark.parametrize(
    "flags, expected_file",
    [
        ([], "expected_noattrs.vcf"),
        (["--vrs-attributes"], "expected_attrs.vcf"),
        (["--vrs-attributes", "--skip-ref"], "expected_attrs_altsonly.vcf"),
        (["--vrs-attributes", "--no-validation"], "expected_attrs_novalidation.vcf"),
    ],
    ids=["defaults", "vrs-attributes", "skip-ref", "no-validation"],
)
def test_annotate_flags_match_vrs_python(flags, expected_file, vectors, vector_args, tmp_path):
    out = annotate(tmp_path, "out.vcf", *vector_args, *flags)
    ours, theirs = vrs_info(out), vrs_info(vectors / expected_file)
    assert ours.keys() == theirs.keys() and len(ours) == 55
    for label in ours.keys() - DEVIATIONS:
        assert ours[label] == theirs[label], label
    # the header declares what the records carry
    keys = [line.split(",")[0].removeprefix("##INFO=<ID=") for line in vrs_header(out)]
    expected_keys = ["VRS_Allele_IDs", "VRS_Error"]
    if "--vrs-attributes" in flags:
        expected_keys += [
            "VRS_Starts",
            "VRS_Ends",
            "VRS_States",
            "VRS_Lengths",
            "VRS_RepeatSubunitLengths",
        ]
    assert keys == expected_keys
    number = "A" if "--skip-ref" in flags else "R"
    assert all(f",Number={number}," in line for line in vrs_header(out) if "VRS_Error" not in line)


def test_each_flag_changes_what_it_should(vector_args, tmp_path):
    base = vrs_info(annotate(tmp_path, "base.vcf", *vector_args))
    attrs = vrs_info(annotate(tmp_path, "attrs.vcf", *vector_args, "--vrs-attributes"))
    skip = vrs_info(annotate(tmp_path, "skip.vcf", *vector_args, "--skip-ref"))
    noval = vrs_info(annotate(tmp_path, "noval.vcf", *vector_args, "--no-validation"))

    # --vrs-attributes: same ids, plus the five attribute keys
    assert all(base[k].get("VRS_Allele_IDs") == attrs[k].get("VRS_Allele_IDs") for k in base)
    assert "VRS_Starts" not in base["snv_unique"]
    assert attrs["snv_unique"]["VRS_Starts"] == "10,10"
    assert attrs["snv_unique"]["VRS_States"] == "A,G"

    # --skip-ref: the REF id is dropped
    assert base["snv_unique"]["VRS_Allele_IDs"].split(",")[1:] == skip["snv_unique"][
        "VRS_Allele_IDs"
    ].split(",")
    assert "VRS_Allele_IDs" not in skip["ref_only_alt_dot"]  # ALT `.` only: nothing to say

    # --no-validation: only the REF mismatch changes
    assert base["ref_mismatch"] == {
        "VRS_Error": "Reference mismatch at GRCh38:chr1 position 289-290 "
        "(input gave 'G' but correct ref is 'A')"
    }
    assert "VRS_Error" not in noval["ref_mismatch"]
    assert len(noval["ref_mismatch"]["VRS_Allele_IDs"].split(",")) == 2
    changed = {k for k in base if base[k] != noval[k]}
    assert changed == {"ref_mismatch"}


def test_assembly_flag(vector_args, vectors, tmp_path, capsys):
    # the vector SeqRepo has no GRCh37 aliases: nothing resolves, nothing errs
    out = annotate(tmp_path, "grch37.vcf", *vector_args, "--assembly", "GRCh37", capsys=capsys)
    records = data_lines(out)
    assert len(records) == 55
    for r in records:
        info = info_of(r)
        assert "VRS_Error" not in info
        ids = vrs_ids(r)
        assert ids is None or all(i is None for i in ids)
    # a FASTA source named GRCh37 resolves GRCh37 names, and only those
    ref = tmp_path / "ref.fa"
    shutil.copy(vectors / "ref.fa", ref)
    pysam.faidx(str(ref))
    src = [str(vectors / "input.vcf"), "--dataproxy-uri", f"fasta+file://{ref}?assembly=GRCh37"]
    as37 = vrs_info(annotate(tmp_path, "fasta37.vcf", *src, "--assembly", "GRCh37"))
    base = vrs_info(annotate(tmp_path, "base.vcf", *vector_args))
    assert as37["snv_unique"] == base["snv_unique"]
    as38 = vrs_info(annotate(tmp_path, "fasta38.vcf", *src))
    assert as38["snv_unique"]["VRS_Allele_IDs"] == ".,."


def test_dataproxy_uri_flag_selects_the_source(vector_args, vectors, tmp_path):
    ref = tmp_path / "ref.fa"
    shutil.copy(vectors / "ref.fa", ref)
    pysam.faidx(str(ref))
    from_seqrepo = vrs_info(annotate(tmp_path, "seqrepo.vcf", *vector_args))
    from_fasta = vrs_info(
        annotate(
            tmp_path,
            "fasta.vcf",
            str(vectors / "input.vcf"),
            "--dataproxy-uri",
            f"fasta+file://{ref}?assembly=GRCh38",
        )
    )
    # A FASTA source also answers the bare spelling of its contig names (`2` for `chr2`); the
    # vector SeqRepo deliberately lacks GRCh38:2. Everything else is the same.
    differing = {k for k in from_seqrepo if from_seqrepo[k] != from_fasta[k]}
    assert differing == {"contig_2_has_no_alias"}
    assert from_seqrepo["contig_2_has_no_alias"]["VRS_Allele_IDs"] == ".,."
    assert from_fasta["contig_2_has_no_alias"]["VRS_Allele_IDs"].startswith("ga4gh:VA.")


def test_threads_flag(synthetic, synthetic_fasta_uri, tmp_path):
    args = [str(synthetic[1]), "--dataproxy-uri", synthetic_fasta_uri, "-q"]
    one = annotate(tmp_path, "one.vcf", *args, "--threads", "1")
    two = annotate(tmp_path, "two.vcf", *args, "--threads", "2")
    assert one.read_bytes() == two.read_bytes()
    assert len(data_lines(one)) == 3000


def test_compression_and_tabix_flags(synthetic, synthetic_fasta_uri, tmp_path):
    args = [str(synthetic[1]), "--dataproxy-uri", synthetic_fasta_uri, "-q"]
    plain = annotate(tmp_path, "plain.vcf", *args)
    bgz = annotate(tmp_path, "out.vcf.gz", *args, "--tabix")
    assert bgz.read_bytes()[:4] == b"\x1f\x8b\x08\x04"
    assert Path(f"{bgz}.tbi").exists()
    assert read_text(bgz) == plain.read_text()
    forced_plain = annotate(tmp_path, "forced.vcf.gz", *args, "--compression", "none")
    assert forced_plain.read_bytes() == plain.read_bytes()


def test_summary_line(synthetic, synthetic_fasta_uri, tmp_path, capsys):
    out = tmp_path / "out.vcf"
    code = cli_main(
        ["annotate", str(synthetic[1]), "-o", str(out), "--dataproxy-uri", synthetic_fasta_uri]
    )
    captured = capsys.readouterr()
    assert code == 0 and captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    m = SUMMARY.match(lines[0])
    assert m, lines[0]
    records = data_lines(out)
    n = [int(g.replace(",", "")) for g in m.groups()[:3]]
    assert n[0] == len(records) == 3000
    assert n[1] == sum(1 for r in records for i in (vrs_ids(r) or []) if i)
    assert n[2] == sum(1 for r in records if "VRS_Error" in info_of(r))
    assert m.group(4) == str(out)
    assert "3,000 records" in lines[0]  # thousands separators


def test_quiet_flag(synthetic, synthetic_fasta_uri, tmp_path, capsys):
    out = tmp_path / "out.vcf"
    code = cli_main(
        [
            "annotate",
            str(synthetic[1]),
            "-o",
            str(out),
            "--dataproxy-uri",
            synthetic_fasta_uri,
            "-q",
        ]
    )
    assert code == 0
    assert capsys.readouterr() == ("", "")
    assert len(data_lines(out)) == 3000


def test_source_from_the_environment(synthetic, synthetic_fasta_uri, tmp_path):
    reference = annotate(
        tmp_path, "flag.vcf", str(synthetic[1]), "--dataproxy-uri", synthetic_fasta_uri, "-q"
    )
    out = tmp_path / "env.vcf"
    env = {"SEQREPO_DATAPROXY_URI": synthetic_fasta_uri}
    done = run_cli("annotate", synthetic[1], "-o", out, "-q", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr.decode()
    assert out.read_bytes() == reference.read_bytes()
    # the flag wins over the environment
    out2 = tmp_path / "flag_over_env.vcf"
    env = {"SEQREPO_DATAPROXY_URI": "seqrepo+file:///nonexistent/instance"}
    done = run_cli(
        "annotate",
        synthetic[1],
        "-o",
        out2,
        "-q",
        "--dataproxy-uri",
        synthetic_fasta_uri,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert out2.read_bytes() == reference.read_bytes()


def test_no_source_is_a_clean_error(synthetic, tmp_path):
    done = run_cli("annotate", synthetic[1], "-o", tmp_path / "o.vcf", cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 1
    assert err.startswith("anyvar: error: ") and err.count("\n") == 1
    assert "SEQREPO_DATAPROXY_URI" in err
    assert not (tmp_path / "o.vcf").exists()


def test_bad_source_in_the_environment_is_a_clean_error(synthetic, tmp_path):
    # a loopback port nothing listens on (5000, the service's default, may be in use)
    env = {"SEQREPO_DATAPROXY_URI": f"seqrepo+http://127.0.0.1:{free_port()}/seqrepo"}
    done = run_cli("annotate", synthetic[1], "-o", tmp_path / "o.vcf", env=env, cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 1
    assert err.startswith("anyvar: error: ") and err.count("\n") == 1
    assert "REST" in err and "unreachable" in err and "Traceback" not in err
    assert not (tmp_path / "o.vcf").exists()


def test_synth_is_deterministic(tmp_path, capsys):
    for d in ("a", "b"):
        assert cli_main(["synth", str(tmp_path / d), "--records", "400", "--seed", "3"]) == 0
    assert "wrote" in capsys.readouterr().err
    for name in ("ref.fa", "ref.fa.fai", "input.vcf"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert len(data_lines(tmp_path / "a" / "input.vcf")) == 400
    assert cli_main(["synth", str(tmp_path / "c"), "--records", "400", "--seed", "4"]) == 0
    assert (tmp_path / "c" / "input.vcf").read_bytes() != (
        tmp_path / "a" / "input.vcf"
    ).read_bytes()


def test_demo(tmp_path):
    directory = tmp_path / "demo"
    done = run_cli("demo", directory, "--records", "2000", cwd=tmp_path)
    err = done.stderr.decode()
    assert done.returncode == 0, err
    out = directory / "annotated.vcf"
    records = data_lines(out)
    assert len(records) == 2000
    assert "first annotated records:" in err
    assert any(SUMMARY.match(line) for line in err.splitlines())
    # the demo writes the attributes, and nearly every record gets ids
    assert any(line.startswith("##INFO=<ID=VRS_Starts,") for line in read_text(out).splitlines())
    with_ids = [r for r in records if any(vrs_ids(r) or [])]
    assert len(with_ids) > 1800
    assert all("VRS_Starts" in info_of(r) for r in with_ids)


def progress_screen(args: list[str | Path], tmp_path: Path) -> str:
    """What the CLI writes to a terminal on stderr (a real pseudo-terminal), as text."""
    import os
    import pty
    import subprocess

    from helpers import ANYVAR_CLI

    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [ANYVAR_CLI, *map(str, args)], stderr=terminal, stdout=subprocess.DEVNULL, cwd=tmp_path
    ) as proc:
        os.close(terminal)
        chunks = []
        while True:
            try:
                chunk = os.read(controller, 1 << 16)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=120) == 0
    os.close(controller)
    return b"".join(chunks).decode()


@pytest.mark.parametrize("suffix", [".vcf", ".vcf.gz"])
def test_progress_line_counts_records_and_ends_done_at_100(
    synthetic, synthetic_fasta_uri, tmp_path, suffix
):
    """The share is of records (counted first), not of compressed bytes read, and the line
    ends on the ``done`` phase at 100 % with the run's record count."""
    src = synthetic[1]
    if suffix == ".vcf.gz":
        src = tmp_path / "in.vcf.gz"
        pysam.tabix_compress(str(synthetic[1]), str(src))
    records = len(data_lines(synthetic[1]))
    screen = progress_screen(
        ["annotate", src, "--output", tmp_path / "out.vcf", "--dataproxy-uri", synthetic_fasta_uri],
        tmp_path,
    )
    states = [s.strip() for s in screen.replace("\r\n", "\n").split("\r") if s.strip()]
    last = states[-1].splitlines()[0]
    assert re.match(rf"done\s+{records:,} records\s.*100\.0%$", last), states
    assert all(s.split()[0] in ("annotating", "done") for s in states), states
    assert f"annotated {records:,} records" in screen
