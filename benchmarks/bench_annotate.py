"""Benchmark ``anyvar annotate`` against vrs-python's ``vrs-annotate vcf``.

Run with the project's interpreter (it finds both CLIs and the ``seqrepo`` CLI beside it)::

    .venv/bin/python benchmarks/bench_annotate.py                  # 1,000,000 records
    .venv/bin/python benchmarks/bench_annotate.py --records 50000 --json results.json

What it does:

* generates (once per ``--records``/``--seed``; reused afterwards) a synthetic reference and VCF
  with ``anyvar.synthetic.generate``, a bgzipped copy of the VCF, and a SeqRepo instance built
  from the FASTA with the ``seqrepo`` CLI (``build_seqrepo`` from ``tests/helpers.py``);
* times our CLI on the whole file in four configurations (IDs only / with ``--vrs-attributes``,
  plain / bgzip in and out), each a separate child process whose own peak RSS is measured;
* times vrs-python's CLI on a slice (``--vrs-slice`` records, default 10,000) of the same file
  with and without attributes, and checks that our output on that slice carries the same
  ``VRS_Allele_IDs`` (and, with attributes, the same ``VRS_*`` attribute fields);
* runs the IDs-only plain configuration on a smaller prefix too, to show that peak memory does
  not grow with the input.

Both tools are run with REF validation *required* (a REF that does not match the reference
gives ``VRS_Error`` and no ids): that is our CLI's default, and vrs-python gets
``--require-validation`` (its default only logs a warning and still computes ids). Both compute
the REF allele (neither gets ``--skip-ref``), and both read the same SeqRepo instance.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pysam

from anyvar.config import available_cores
from anyvar.synthetic import generate

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # not resolved: keep the venv's bin/, not the base Python's
ANYVAR = BIN / "anyvar"
VRS_ANNOTATE = BIN / "vrs-annotate"
DATA_VERSION = 1
"""Bump when the generated files change shape, so old work directories are regenerated."""

ATTRIBUTE_FIELDS = (
    "VRS_Starts",
    "VRS_Ends",
    "VRS_States",
    "VRS_Lengths",
    "VRS_RepeatSubunitLengths",
)
BREAKEND = re.compile(r"[\[\]]|^\.[^.]|[^.]\.$")
"""Mate breakends (``G]chr2:5]``, ``[chr1:9[G``) and single breakends (``G.``, ``.G``)."""


def _build_seqrepo():
    """``build_seqrepo`` from tests/helpers.py (imported by path: tests/ is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "_anyvar_tests_helpers", REPO / "tests" / "helpers.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_seqrepo


# --------------------------------------------------------------------------------------------
# data


@dataclass
class Data:
    fasta: Path
    vcf: Path
    vcf_gz: Path
    seqrepo: Path

    @property
    def uri(self) -> str:
        return f"seqrepo+file://{self.seqrepo.resolve()}"


def prepare(workdir: Path, records: int, seed: int) -> Data:
    """The generated files in ``workdir``, reused when ``params.json`` says they match."""
    workdir.mkdir(parents=True, exist_ok=True)
    params = {"version": DATA_VERSION, "records": records, "seed": seed}
    stamp = workdir / "params.json"
    data = Data(
        workdir / "ref.fa",
        workdir / "input.vcf",
        workdir / "input.vcf.gz",
        workdir / "seqrepo" / "bench",
    )
    ready = [data.fasta, data.vcf, data.vcf_gz, data.seqrepo / "aliases.sqlite3"]
    if (
        stamp.exists()
        and json.loads(stamp.read_text()) == params
        and all(p.exists() for p in ready)
    ):
        log(f"reusing generated data in {workdir}")
        return data
    if shutil.which("bgzip") is None:
        sys.exit("bgzip is not on PATH: apt-get install -y tabix (the seqrepo CLI needs it)")
    stamp.unlink(missing_ok=True)
    t = time.perf_counter()
    log(f"generating {records:,} records (seed {seed}) in {workdir} ...")
    generate(workdir, records=records, seed=seed)
    pysam.tabix_compress(str(data.vcf), str(data.vcf_gz), force=True)
    log("building the SeqRepo instance ...")
    shutil.rmtree(workdir / "seqrepo", ignore_errors=True)
    _build_seqrepo()(data.fasta, workdir / "seqrepo", instance="bench")
    stamp.write_text(json.dumps(params))
    log(f"data ready in {time.perf_counter() - t:.1f} s")
    return data


def write_slice(vcf: Path, out: Path, records: int) -> int:
    """Header plus the first ``records`` data lines on contigs the header declares.

    vrs-python (pysam) aborts on a record whose contig has no ``##contig`` line, and the
    generator appends such records (``chrUn``) at the very end; both tools get the same slice.
    Returns the number of records written.
    """
    declared: set[str] = set()
    written = 0
    with vcf.open() as src, out.open("w") as dst:
        for line in src:
            if line.startswith("#"):
                if line.startswith("##contig=<ID="):
                    declared.add(line[len("##contig=<ID=") :].split(",", 1)[0].rstrip(">\n"))
                dst.write(line)
                continue
            if written >= records:
                break
            if line.split("\t", 1)[0] in declared:
                dst.write(line)
                written += 1
    return written


# --------------------------------------------------------------------------------------------
# measuring


@dataclass
class Result:
    name: str
    tool: str
    attributes: bool
    records: int
    seconds: float
    peak_rss_mb: float
    ratio: float | None = None
    startup: float = 0.0
    """Fixed cost left out of ``rate`` (vrs-python only: its run on a header-only VCF)."""

    @property
    def rate(self) -> float:
        return self.records / max(self.seconds - self.startup, 1e-9)


# Runs argv[2:] as its only child, then writes that child's peak RSS (ru_maxrss) to argv[1].
PEAK_RSS_WRAPPER = """\
import resource, subprocess, sys
code = subprocess.call(sys.argv[2:])
with open(sys.argv[1], "w") as f:
    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))
sys.exit(code if code >= 0 else 128 - code)
"""


def run_measured(cmd: list[str], log_path: Path) -> tuple[float, float]:
    """Runs ``cmd`` to completion; returns (wall seconds, peak RSS in MB of that process).

    Peak memory is read by a tiny wrapper process (``python -S -c``, about 10 MB) that runs
    ``cmd`` as its one and only child and then reports ``getrusage(RUSAGE_CHILDREN)``: with a
    single child, that running maximum over reaped children *is* the child's own peak, so no
    deltas are needed. Not measured from this script directly, for two reasons: our own
    ``RUSAGE_CHILDREN`` is a maximum over every child we ever ran (a small run after a big
    one would report the big one's peak), and on Linux even ``os.wait4`` on one child is
    wrong because a process's ``ru_maxrss`` keeps the high-water mark of the memory it had
    before ``exec`` - i.e. of this parent at fork time (generated data, numpy, pysam: every
    child would report at least this script's RSS). The wrapper's own small footprint is the
    floor instead, well below any Python CLI's. (``/usr/bin/time -f %M`` would do the same
    but is not installed everywhere.) Output goes to a file, never a pipe we would not drain.
    """
    rss_file = log_path.with_name(log_path.name + ".maxrss")
    wrapper = [sys.executable, "-S", "-c", PEAK_RSS_WRAPPER, str(rss_file), *cmd]
    with log_path.open("wb") as out:
        start = time.perf_counter()
        code = subprocess.call(wrapper, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        seconds = time.perf_counter() - start
    if code != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        sys.exit(f"command failed ({code}): {' '.join(map(str, cmd))}\n{tail}")
    # ru_maxrss is in KiB on Linux, in bytes on macOS
    scale = 1 if platform.system() == "Darwin" else 1024
    return seconds, int(rss_file.read_text()) * scale / 1e6


def ours(
    name: str, src: Path, dst: Path, records: int, uri: str, threads: int, attributes: bool
) -> Result:
    cmd = [str(ANYVAR), "annotate", str(src), "-o", str(dst), "--dataproxy-uri", uri]
    cmd += ["--threads", str(threads), "-q"]
    if attributes:
        cmd.append("--vrs-attributes")
    seconds, peak = run_measured(cmd, dst.with_name(dst.name + ".log"))
    return Result(name, "anyvar", attributes, records, seconds, peak)


def vrs_python(name: str, src: Path, dst: Path, records: int, uri: str, attributes: bool) -> Result:
    cmd = [str(VRS_ANNOTATE), "vcf", str(src), "--vcf-out", str(dst), "--dataproxy-uri", uri]
    cmd += ["--require-validation", "--silent", "--log-level", "error"]
    if attributes:
        cmd.append("--vrs-attributes")
    seconds, peak = run_measured(cmd, dst.with_name(dst.name + ".log"))
    return Result(name, "vrs-python", attributes, records, seconds, peak)


# --------------------------------------------------------------------------------------------
# correctness


def _records(path: Path):
    with path.open() as f:
        for line in f:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            info = dict(kv.split("=", 1) if "=" in kv else (kv, "") for kv in fields[7].split(";"))
            yield fields, info


def compare(ours_vcf: Path, theirs_vcf: Path, fields: tuple[str, ...]) -> dict:
    """Per-allele comparison of ``fields`` wherever vrs-python wrote ``VRS_Allele_IDs``.

    Alleles whose ALT is a breakend are tallied apart when we wrote ``.``: by the spec they have
    no VRS Allele, while vrs-python reads the leading base of ``G]chr2:5]`` / ``G.`` as a plain
    sequence. Any other difference is a mismatch.
    """
    alleles = breakends = 0
    mismatches: list[str] = []
    n = 0
    pairs = zip(_records(ours_vcf), _records(theirs_vcf), strict=True)
    for n, ((fa, ia), (fb, ib)) in enumerate(pairs, 1):
        if fa[:5] != fb[:5]:
            raise RuntimeError(f"record {n} differs in CHROM..ALT: {fa[:5]} vs {fb[:5]}")
        if "VRS_Allele_IDs" not in ib:
            continue
        alts = ["REF", *fb[4].split(",")]
        for field in fields:
            a = ia.get(field, "").split(",")
            b = ib.get(field, "").split(",")
            for i, alt in enumerate(alts):
                va = a[i] if i < len(a) else "<missing>"
                vb = b[i] if i < len(b) else "<missing>"
                if field == "VRS_Allele_IDs":
                    alleles += 1
                if va == vb:
                    continue
                if i > 0 and BREAKEND.search(alt) and va == ".":
                    breakends += field == "VRS_Allele_IDs"
                    continue
                mismatches.append(
                    f"{fa[0]}:{fa[1]} {fa[3]}>{alt} {field}: ours {va} vrs-python {vb}"
                )
    return {
        "records": n,
        "alleles": alleles,
        "breakend_differences": breakends,
        "mismatches": mismatches,
    }


# --------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def table(results: list[Result]) -> str:
    head = ("configuration", "records", "seconds", "records/s", "x vrs-python", "peak RSS MB")
    rows = [
        (
            r.name,
            f"{r.records:,}",
            f"{r.seconds:.2f}",
            f"{r.rate:,.0f}",
            "" if r.ratio is None else f"{r.ratio:.1f}x",
            f"{r.peak_rss_mb:.0f}",
        )
        for r in results
    ]
    return format_table(head, rows)


def format_table(head, rows) -> str:
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(x) for x in col) for col in zip(head, *rows, strict=True)]
    lines = []
    for i, row in enumerate([head, *rows]):
        cells = [
            c.ljust(w) if j == 0 else c.rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "data")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--threads", type=int, default=available_cores(), help="for our CLI (default: all cores)"
    )
    p.add_argument("--vrs-slice", type=int, default=10_000, help="records given to vrs-python")
    p.add_argument(
        "--flat-records",
        type=int,
        default=100_000,
        help="smaller prefix for the memory-flatness check",
    )
    p.add_argument("--skip-vrs-python", action="store_true", help="skip the slow reference runs")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    for exe in (ANYVAR, VRS_ANNOTATE):
        if not exe.exists():
            sys.exit(f"{exe} not found: run this script with the project's .venv/bin/python")
    data = prepare(args.workdir, args.records, args.seed)
    out = args.workdir / "out"
    out.mkdir(exist_ok=True)
    uri = data.uri
    log(f"threads for anyvar: {args.threads}; sequences: {uri}")

    results: list[Result] = []
    configs = [
        ("anyvar IDs plain", data.vcf, out / "ids.vcf", False),
        ("anyvar IDs bgzip", data.vcf_gz, out / "ids.vcf.gz", False),
        ("anyvar attrs plain", data.vcf, out / "attrs.vcf", True),
        ("anyvar attrs bgzip", data.vcf_gz, out / "attrs.vcf.gz", True),
    ]
    for name, src, dst, attributes in configs:
        log(f"running {name} on {args.records:,} records ...")
        results.append(ours(name, src, dst, args.records, uri, args.threads, attributes))

    # memory flatness: the same configuration on a prefix a tenth the size or less
    flat_n = min(args.flat_records, max(1, args.records // 10))
    flat_vcf = out / f"prefix-{flat_n}.vcf"
    flat_n = write_slice(data.vcf, flat_vcf, flat_n)
    log(f"running anyvar IDs plain on the first {flat_n:,} records (memory flatness) ...")
    flat = ours(
        f"anyvar IDs plain ({flat_n:,} prefix)",
        flat_vcf,
        out / "prefix-ids.vcf",
        flat_n,
        uri,
        args.threads,
        False,
    )

    checks: dict[str, dict] = {}
    reference: dict[bool, Result] = {}
    slice_results: list[Result] = []
    if not args.skip_vrs_python:
        slice_vcf = out / f"slice-{args.vrs_slice}.vcf"
        n = write_slice(data.vcf, slice_vcf, args.vrs_slice)
        # vrs-python's fixed cost (imports, opening SeqRepo) is a noticeable share of a short
        # run; it is measured on the header alone and left out of its records/s, which makes
        # the ratios conservative (our records/s include our own, much smaller, startup).
        empty_vcf = out / "header-only.vcf"
        write_slice(data.vcf, empty_vcf, 0)
        log("running vrs-python on a header-only VCF (startup cost) ...")
        startup = vrs_python(
            "startup", empty_vcf, out / "vrs-python-empty.vcf", 0, uri, False
        ).seconds
        for attributes, label in ((False, "IDs"), (True, "attrs")):
            log(f"running vrs-python {label} plain on {n:,} records ...")
            theirs = vrs_python(
                f"vrs-python {label} plain",
                slice_vcf,
                out / f"vrs-python-{label}.vcf",
                n,
                uri,
                attributes,
            )
            theirs.startup = startup
            reference[attributes] = theirs
            mine = ours(
                f"anyvar {label} plain ({n:,} slice)",
                slice_vcf,
                out / f"slice-{label}.vcf",
                n,
                uri,
                args.threads,
                attributes,
            )
            slice_results += [theirs, mine]
            fields = ("VRS_Allele_IDs", *ATTRIBUTE_FIELDS) if attributes else ("VRS_Allele_IDs",)
            checks[label] = compare(
                out / f"slice-{label}.vcf", out / f"vrs-python-{label}.vcf", fields
            )

    for r in [*results, flat, *slice_results]:
        if r.tool == "anyvar" and r.attributes in reference:
            r.ratio = r.rate / reference[r.attributes].rate
        elif r.tool == "vrs-python":
            r.ratio = 1.0

    print()
    print(f"anyvar {args.threads} thread(s), {available_cores()} core(s) available")
    if reference:
        print("ratio = our records/s / vrs-python's records/s (same attribute setting, plain VCF,")
        print(
            f"        vrs-python on the first {reference[False].records:,} records, its records/s "
            f"excluding its {reference[False].startup:.2f} s startup; ours include startup)"
        )
        for r in results:
            print(f"  {r.name:<20} {r.ratio:6.1f}x")
    print()
    print(table([*results, flat, *slice_results]))
    print()
    full = results[0]
    print(
        f"memory flatness (anyvar IDs plain): {flat.records:,} records {flat.peak_rss_mb:.0f} MB, "
        f"{full.records:,} records {full.peak_rss_mb:.0f} MB "
        f"({full.peak_rss_mb / max(flat.peak_rss_mb, 1e-9):.2f}x the memory for "
        f"{full.records / flat.records:.0f}x the records)"
    )
    failed = False
    for label, c in checks.items():
        bad = c["mismatches"]
        failed |= bool(bad)
        print(
            f"correctness ({label}, {c['records']:,} records, "
            f"{c['alleles']:,} alleles with vrs-python ids): "
            f"{len(bad)} mismatches; {c['breakend_differences']} breakend ALTs `.` by spec"
        )
        for line in bad[:20]:
            print("  " + line)
        if len(bad) > 20:
            print(f"  ... and {len(bad) - 20} more")

    if args.json:
        payload = {
            "records": args.records,
            "seed": args.seed,
            "threads": args.threads,
            "cores": available_cores(),
            "vrs_python_startup_seconds": reference[False].startup if reference else None,
            "results": [
                {**asdict(r), "records_per_second": r.rate}
                for r in [*results, flat, *slice_results]
            ],
            "memory_flatness": {
                "prefix_records": flat.records,
                "prefix_peak_rss_mb": flat.peak_rss_mb,
                "full_records": full.records,
                "full_peak_rss_mb": full.peak_rss_mb,
            },
            "correctness": {
                k: {**v, "mismatch_count": len(v["mismatches"])} for k, v in checks.items()
            },
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
