"""Deterministic synthetic references and VCFs for the demo, the tests and the benchmarks.

The reference is random sequence dense in homopolymers, short tandem repeats, soft-masked
(lower-case) stretches and N runs; the VCF draws its variants mostly at those repeats and mixes
in every case the annotator treats specially: multi-allelic sites, ``*``, symbolic and breakend
ALTs, ALT ``.``, lower-case and IUPAC bases, REF mismatches and unknown contigs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

BASES = "ACGT"
LINE = 60


@dataclass
class Reference:
    contigs: dict[str, str]
    repeats: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    """0-based [start, end) of each repeat region, per contig."""


def make_reference(lengths: dict[str, int], seed: int = 1) -> Reference:
    rng = random.Random(seed)
    contigs: dict[str, str] = {}
    repeats: dict[str, list[tuple[int, int]]] = {}
    for name, length in lengths.items():
        parts: list[str] = []
        regions: list[tuple[int, int]] = []
        size = 0
        while size < length:
            gap = "".join(rng.choices(BASES, k=rng.randint(8, 60)))
            parts.append(gap)
            size += len(gap)
            kind = rng.random()
            if kind < 0.35:
                unit = rng.choice(BASES)
                piece = unit * rng.randint(4, 25)
            elif kind < 0.8:
                unit = "".join(rng.choices(BASES, k=rng.randint(2, 5)))
                piece = unit * rng.randint(2, 10) + unit[: rng.randint(0, len(unit) - 1)]
            elif kind < 0.9:
                piece = "".join(rng.choices(BASES, k=rng.randint(10, 40))).lower()
                if rng.random() < 0.5:
                    piece += rng.choice("acgt") * rng.randint(5, 12)
            else:
                piece = "N" * rng.randint(3, 15)
            regions.append((size, size + len(piece)))
            parts.append(piece)
            size += len(piece)
        seq = "".join(parts)[:length]
        contigs[name] = seq
        repeats[name] = [(s, e) for s, e in regions if e <= length]
    return Reference(contigs, repeats)


def write_fasta(reference: Reference, path: Path) -> Path:
    """Writes ``path`` and its ``.fai`` (60 residues per line)."""
    path = Path(path)
    fai = []
    offset = 0
    with path.open("w") as f:
        for name, seq in reference.contigs.items():
            header = f">{name} synthetic\n"
            f.write(header)
            offset += len(header)
            fai.append(f"{name}\t{len(seq)}\t{offset}\t{LINE}\t{LINE + 1}\n")
            for i in range(0, len(seq), LINE):
                line = seq[i : i + LINE] + "\n"
                f.write(line)
                offset += len(line)
    Path(str(path) + ".fai").write_text("".join(fai))
    return path


HEADER = """##fileformat=VCFv4.2
##source=anyvar.synthetic
{contigs}##INFO=<ID=DP,Number=1,Type=Integer,Description="Depth">
##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">
##INFO=<ID=END,Number=1,Type=Integer,Description="End position">
##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">
#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1
"""


def _alt(rng: random.Random, seq: str, pos0: int, ref: str) -> str:
    """One ALT for the REF at 0-based ``pos0``: SNV, MNV, deletion, insertion or delins."""
    kind = rng.random()
    if kind < 0.4 or len(ref) == 1 and kind < 0.5:
        if len(ref) == 1:
            return rng.choice([b for b in BASES if b != ref.upper()])
        return "".join(rng.choices(BASES, k=len(ref)))
    if kind < 0.65 and len(ref) > 1:
        return ref[0]
    if kind < 0.9:
        if rng.random() < 0.6:
            # copy of a nearby unit: lands inside the repeat and rolls
            k = rng.randint(1, 6)
            unit = seq[pos0 + 1 : pos0 + 1 + k] or "A"
            return ref[0] + unit.upper() * rng.randint(1, 3)
        return ref[0] + "".join(rng.choices(BASES, k=rng.randint(1, 12)))
    return "".join(rng.choices(BASES, k=rng.randint(1, 4)))


def write_vcf(
    reference: Reference, path: Path, records: int, seed: int = 2, unknown_contig: bool = True
) -> Path:
    """Writes a sorted VCF of ``records`` data lines over ``reference``."""
    rng = random.Random(seed)
    names = list(reference.contigs)
    total = sum(len(s) for s in reference.contigs.values())
    contig_lines = "".join(
        f"##contig=<ID={n},length={len(s)}>\n" for n, s in reference.contigs.items()
    )
    lines: list[str] = []
    per_contig = {n: max(1, records * len(s) // total) for n, s in reference.contigs.items()}
    extra = records - sum(per_contig.values())
    per_contig[names[0]] += extra
    unknown = records // 100 if unknown_contig else 0
    per_contig[names[-1]] -= unknown
    path = Path(path)
    with path.open("w") as out:
        out.write(HEADER.format(contigs=contig_lines))
        for name in names:
            seq = reference.contigs[name]
            regions = reference.repeats[name]
            positions = []
            for _ in range(per_contig[name]):
                if regions and rng.random() < 0.6:
                    s, e = rng.choice(regions)
                    p = rng.randint(max(0, s - 2), min(len(seq) - 1, e))
                else:
                    p = rng.randrange(len(seq))
                positions.append(p)
            positions.sort()
            for p in positions:
                lines.append(_record(rng, name, seq, p))
                if len(lines) >= 10000:
                    out.writelines(lines)
                    lines.clear()
        for i in range(unknown):
            lines.append(f"chrUn\t{i * 10 + 1}\t.\tA\tG\t.\tPASS\t.\tGT\t0/1\n")
        out.writelines(lines)
    return path


def _record(rng: random.Random, chrom: str, seq: str, p: int) -> str:
    ref_len = 1 if rng.random() < 0.55 else rng.randint(2, 8)
    ref = seq[p : p + ref_len] or "N"
    r = rng.random()
    if r < 0.02:
        # REF that does not match the reference
        ref = "".join(rng.choices(BASES, k=len(ref)))
    ref_out = ref.upper() if rng.random() < 0.97 else ref.lower()
    kind = rng.random()
    if kind < 0.70:
        alts = [_alt(rng, seq, p, ref_out)]
    elif kind < 0.82:
        alts = [_alt(rng, seq, p, ref_out) for _ in range(rng.randint(2, 4))]
        alts = list(dict.fromkeys(alts))
    elif kind < 0.85:
        alts = ["*", _alt(rng, seq, p, ref_out)]
    elif kind < 0.88:
        alts = [rng.choice(["<DEL>", "<INS>", "<*>", "<NON_REF>"])]
        if rng.random() < 0.5:
            alts.insert(0, _alt(rng, seq, p, ref_out))
    elif kind < 0.90:
        b = ref_out[0]
        alts = [
            rng.choice(
                [f"{b}]chr2:{rng.randint(1, 99)}]", f"[chr1:{rng.randint(1, 99)}[{b}", f"{b}."]
            )
        ]
    elif kind < 0.92:
        alts = ["."]
    elif kind < 0.935:
        alts = [ref_out]
    elif kind < 0.96:
        alts = [_alt(rng, seq, p, ref_out).lower()]
    elif kind < 0.98:
        alts = [ref_out[0] + rng.choice("NRYKMSWBDHV") * rng.randint(1, 3)]
    else:
        alts = [rng.choice(BASES) + "N"]
    info = "." if rng.random() < 0.2 else f"DP={rng.randint(1, 99)};AF={rng.random():.6f}"
    qual = rng.choice([".", "50", "29.54321"])
    return f"{chrom}\t{p + 1}\t.\t{ref_out}\t{','.join(alts)}\t{qual}\tPASS\t{info}\tGT\t0/1\n"


def reference_for(records: int, reference_length: int | None = None, seed: int = 1) -> Reference:
    """The reference ``generate`` writes for these arguments (the same every time)."""
    total = reference_length or max(20000, records * 30)
    lengths = {
        "chr1": total // 2,
        "chr2": total * 3 // 10,
        "chr3": total - total // 2 - total * 3 // 10,
    }
    return make_reference(lengths, seed=seed)


def generate(
    directory: Path, records: int, reference_length: int | None = None, seed: int = 1
) -> tuple[Path, Path]:
    """A reference FASTA (``ref.fa`` + ``.fai``) and a VCF (``input.vcf``) in ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    reference = reference_for(records, reference_length, seed)
    fasta = write_fasta(reference, directory / "ref.fa")
    vcf = write_vcf(reference, directory / "input.vcf", records, seed=seed + 1)
    return fasta, vcf
