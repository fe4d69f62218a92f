"""``anyvar`` command line: annotate VCFs, generate example data, run the demo."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from anyvar.annotation import annotate_vcf
from anyvar.exceptions import AnyVarError, SequenceSourceError, VcfFormatError


class ProgressBar:
    """One self-rewriting line on stderr: records, records/s, share of input bytes read."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def __call__(self, records: int, bytes_read: int, total: int | None) -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        share = f"  {100 * bytes_read / total:5.1f}%" if total else ""
        sys.stderr.write(f"\r{records:>14,} records  {records / elapsed:>12,.0f} records/s{share}")
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")


def _annotate(args: argparse.Namespace) -> int:
    bar = ProgressBar() if sys.stderr.isatty() and not args.quiet else None
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
            bar.close()
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
        help="seqrepo+file:///instance or fasta+file:///ref.fa?assembly=GRCh38 "
        "(default: $SEQREPO_DATAPROXY_URI)",
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
