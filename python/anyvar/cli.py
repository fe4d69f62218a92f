"""``anyvar`` command line: annotate VCFs, generate example data, run the demo, serve."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from anyvar import _core
from anyvar.annotation import annotate_vcf
from anyvar.config import get_settings
from anyvar.exceptions import AnyVarError, SequenceSourceError, VcfFormatError
from anyvar.serve import add_parser as add_serve_parser


class ProgressBar:
    """One self-rewriting line on stderr: the phase, records, records/s and the share of the
    input's records done (counted before the run; compressed bytes read would run ahead of the
    records, and a gzip input gives no uncompressed size up front)."""

    def __init__(self, total_records: int | None, stream=sys.stderr) -> None:
        self.started = time.monotonic()
        self.total = total_records
        self.stream = stream
        self.records = 0

    def _write(self, phase: str, records: int) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        share = f"  {100 * min(records, self.total) / self.total:5.1f}%" if self.total else ""
        self.stream.write(
            f"\r{phase:<10} {records:>14,} records  {records / elapsed:>12,.0f} records/s{share}"
        )
        self.stream.flush()

    def __call__(self, records: int, *_: object) -> None:
        self.records = records
        self._write("annotating", records)

    def close(self, records: int | None) -> None:
        """Ends the line: ``done`` with the run's record count, or where a failed run stopped."""
        if records is not None:
            self._write("done", records)
        self.stream.write("\n")
        self.stream.flush()


def _count_for_progress(path: str) -> int | None:
    """The input's records, for the progress line's share (one extra decompressing pass, paid
    only when the line is shown); None for stdin or an input the run will reject anyway."""
    if path == "-":
        return None
    try:
        settings = get_settings()
        return _core.check_vcf(path, settings.limits(), settings.annotation_threads())[0]
    except (AnyVarError, OSError, ValueError):
        return None


def _annotate(args: argparse.Namespace) -> int:
    bar = None
    if sys.stderr.isatty() and not args.quiet:
        bar = ProgressBar(_count_for_progress(args.input))
    summary = None
    try:
        summary = annotate_vcf(
            args.input,
            args.output,
            dataproxy_uri=args.dataproxy_uri,
            assembly=args.assembly,
            for_ref=not args.skip_ref,
            vrs_attributes=args.vrs_attributes,
            require_validation=not args.no_validation,
            threads=args.threads,
            compression=args.compression,
            tabix=args.tabix,
            progress=bar,
        )
    finally:
        if bar:
            bar.close(summary["records"] if summary else None)
    if not args.quiet:
        rate = summary["records"] / max(summary["seconds"], 1e-9)
        print(
            f"annotated {summary['records']:,} records ({summary['alleles']:,} alleles, "
            f"{summary['errors']:,} records with VRS_Error) in {summary['seconds']:.2f} s "
            f"({rate:,.0f} records/s) -> {args.output}",
            file=sys.stderr,
        )
    return 0


def _synth(args: argparse.Namespace) -> int:
    from anyvar.synthetic import generate

    fasta, vcf = generate(Path(args.directory), args.records, args.reference_length, args.seed)
    print(f"wrote {fasta} and {vcf}", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from anyvar.synthetic import generate

    directory = Path(args.directory)
    fasta, vcf = generate(directory, args.records)
    out = directory / "annotated.vcf"
    ns = argparse.Namespace(
        input=str(vcf),
        output=str(out),
        dataproxy_uri=f"fasta+file://{fasta.resolve()}?assembly=GRCh38",
        assembly="GRCh38",
        skip_ref=False,
        vrs_attributes=True,
        no_validation=False,
        threads=None,
        compression="auto",
        tabix=False,
        quiet=False,
    )
    _annotate(ns)
    with out.open() as f:
        records = [line for line in f if not line.startswith("#")]
    print("first annotated records:", file=sys.stderr)
    for line in records[:3]:
        print("  " + line.rstrip("\n")[:200], file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anyvar", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    a = sub.add_parser("annotate", help="annotate a VCF with GA4GH VRS identifiers")
    a.add_argument("input", help="VCF (plain, gzip or bgzip); - for standard input")
    a.add_argument("--output", "-o", required=True, help="output VCF; .gz = bgzip; - for stdout")
    a.add_argument(
        "--dataproxy-uri",
        help="seqrepo+file:///instance, seqrepo+http://host:port/seqrepo or "
        "fasta+file:///ref.fa?assembly=GRCh38 (default: $SEQREPO_DATAPROXY_URI)",
    )
    a.add_argument("--assembly", default="GRCh38", help="alias namespace of CHROM (GRCh38)")
    a.add_argument("--vrs-attributes", action="store_true", help="also write VRS_Starts, ...")
    a.add_argument("--skip-ref", action="store_true", help="do not annotate the REF allele")
    a.add_argument(
        "--no-validation", action="store_true", help="do not require REF to match the reference"
    )
    a.add_argument("--threads", type=int, default=None, help="default: $ANYVAR_THREADS or cores")
    a.add_argument("--compression", choices=["auto", "none", "bgzip"], default="auto")
    a.add_argument("--tabix", action="store_true", help="write a .tbi index (bgzip output)")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress bar or summary")
    a.set_defaults(run=_annotate)

    s = sub.add_parser("synth", help="write a synthetic reference and VCF (tests, benchmarks)")
    s.add_argument("directory")
    s.add_argument("--records", type=int, default=10000)
    s.add_argument("--reference-length", type=int, default=None)
    s.add_argument("--seed", type=int, default=1)
    s.set_defaults(run=_synth)

    d = sub.add_parser("demo", help="annotate a generated example VCF end to end")
    d.add_argument("directory", nargs="?", default="demo-data")
    d.add_argument("--records", type=int, default=100000)
    d.set_defaults(run=_demo)
    add_serve_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except VcfFormatError as e:
        print(f"anyvar: error: {getattr(args, 'input', '')}: {e}", file=sys.stderr)
    except (SequenceSourceError, AnyVarError, OSError, ValueError) as e:
        print(f"anyvar: error: {e}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\nanyvar: interrupted", file=sys.stderr)
        return 130
    return 1


if __name__ == "__main__":
    sys.exit(main())
