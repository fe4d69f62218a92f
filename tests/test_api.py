"""The Python API: annotate_vcf's summary, progress callback, cancellation and allele sink; the GIL
released during runs; allele_ids on lists and numpy arrays; thread-count independence."""

from __future__ import annotations

import gzip
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import data_lines, info_of, vrs_ids

import anyvar


def records_of(vcf: Path) -> tuple[list[str], list[str]]:
    lines = vcf.read_text().splitlines(keepends=True)
    return [x for x in lines if x.startswith("#")], [x for x in lines if not x.startswith("#")]


@pytest.fixture(scope="module")
def medium_vcf(synthetic, tmp_path_factory) -> Path:
    """30,000 records (about 1.7 MB, several chunks of work)."""
    header, records = records_of(synthetic[1])
    path = tmp_path_factory.mktemp("api_medium") / "medium.vcf"
    path.write_text("".join(header + records * 10))
    return path


@pytest.fixture(scope="module")
def big_vcf(synthetic, tmp_path_factory) -> Path:
    """201,000 records (about 11 MB) for the GIL and thread tests."""
    header, records = records_of(synthetic[1])
    path = tmp_path_factory.mktemp("api_big") / "big.vcf"
    path.write_text("".join(header + records * 67))
    return path


# --- summary -----------------------------------------------------------------------------------


@pytest.mark.parametrize("for_ref", [True, False])
def test_summary_matches_the_output(for_ref, synthetic, synthetic_fasta_uri, tmp_path):
    out = tmp_path / "out.vcf"
    started = time.monotonic()
    summary = anyvar.annotate_vcf(
        synthetic[1], out, dataproxy_uri=synthetic_fasta_uri, for_ref=for_ref
    )
    elapsed = time.monotonic() - started
    records = data_lines(out)
    alleles = sum(1 for r in records for i in (vrs_ids(r) or []) if i)
    errors = sum(1 for r in records if "VRS_Error" in info_of(r))
    assert {"records", "alleles", "errors", "seconds"} <= set(summary)
    assert summary["records"] == len(records) == 3000
    assert summary["alleles"] == alleles
    assert summary["errors"] == errors
    assert errors > 0 and alleles > 3000  # the synthetic data has both
    assert 0 < summary["seconds"] <= elapsed


# --- progress ----------------------------------------------------------------------------------


def check_progress(calls: list[tuple], records: int, size: int) -> None:
    assert calls, "progress was never called"
    assert all(len(c) == 3 for c in calls)
    counts = [c[0] for c in calls]
    read = [c[1] for c in calls]
    assert counts == sorted(counts)
    assert read == sorted(read)
    assert {c[2] for c in calls} == {size}
    assert all(0 <= c[1] <= size for c in calls)
    assert calls[-1] == (records, size, size)


def test_progress_on_a_plain_file(big_vcf, synthetic_fasta_uri, tmp_path):
    calls: list[tuple] = []
    summary = anyvar.annotate_vcf(
        big_vcf,
        tmp_path / "out.vcf",
        dataproxy_uri=synthetic_fasta_uri,
        threads=1,
        progress=lambda *a: calls.append(a),
    )
    check_progress(calls, summary["records"], big_vcf.stat().st_size)


def test_progress_counts_compressed_bytes(medium_vcf, synthetic_fasta_uri, tmp_path):
    src = tmp_path / "in.vcf.gz"
    src.write_bytes(gzip.compress(medium_vcf.read_bytes(), mtime=0))
    calls: list[tuple] = []
    summary = anyvar.annotate_vcf(
        src,
        tmp_path / "out.vcf",
        dataproxy_uri=synthetic_fasta_uri,
        progress=lambda *a: calls.append(a),
    )
    assert summary["records"] == 30000
    check_progress(calls, 30000, src.stat().st_size)


class FifoWriter(threading.Thread):
    """Feeds a named pipe: ``parts`` with ``pause`` seconds between them, then holds the pipe
    open until ``release`` is set (so the input never ends before that)."""

    def __init__(self, path: Path, parts: list[bytes], pause: float, hold: bool) -> None:
        super().__init__(daemon=True)
        self.path, self.parts, self.pause, self.hold = path, parts, pause, hold
        self.release = threading.Event()

    def run(self) -> None:
        try:
            with open(self.path, "wb", buffering=0) as f:
                for i, part in enumerate(self.parts):
                    if i:
                        time.sleep(self.pause)
                    f.write(part)
                if self.hold:
                    self.release.wait(30)
        except BrokenPipeError:
            pass


def test_progress_reports_increasing_counts_while_input_arrives(
    medium_vcf, synthetic_fasta_uri, tmp_path
):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    data = medium_vcf.read_bytes()
    third = len(data) // 3
    writer = FifoWriter(
        fifo, [data[:third], data[third : 2 * third], data[2 * third :]], 0.5, False
    )
    writer.start()
    calls: list[tuple] = []
    summary = anyvar.annotate_vcf(
        fifo,
        tmp_path / "out.vcf",
        dataproxy_uri=synthetic_fasta_uri,
        progress=lambda *a: calls.append(a),
    )
    writer.join(5)
    assert summary["records"] == 30000
    counts = sorted({c[0] for c in calls})
    assert len(counts) >= 3, calls  # reports while the input was still coming in
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)
    assert calls[-1][:2] == (30000, len(data))


def test_progress_total_is_none_for_a_named_pipe(synthetic, synthetic_fasta_uri, tmp_path):
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    writer = FifoWriter(fifo, [synthetic[1].read_bytes()], 0, False)
    writer.start()
    calls: list[tuple] = []
    anyvar.annotate_vcf(
        fifo,
        tmp_path / "out.vcf",
        dataproxy_uri=synthetic_fasta_uri,
        progress=lambda *a: calls.append(a),
    )
    writer.join(5)
    assert calls and all(c[2] is None for c in calls), calls


class Stop(Exception):
    pass


def test_progress_exception_cancels_a_run_promptly(medium_vcf, synthetic_fasta_uri, tmp_path):
    """The input never ends (a pipe held open): only the cancellation can end the run."""
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    writer = FifoWriter(fifo, [medium_vcf.read_bytes()], 0, True)
    writer.start()
    outdir = tmp_path / "out"
    outdir.mkdir()
    raised = Stop("enough")
    calls: list[tuple] = []

    def progress(*args):
        calls.append(args)
        raise raised

    started = time.monotonic()
    try:
        with pytest.raises(Stop) as info:
            anyvar.annotate_vcf(
                fifo, outdir / "out.vcf", dataproxy_uri=synthetic_fasta_uri, progress=progress
            )
    finally:
        writer.release.set()
    elapsed = time.monotonic() - started
    writer.join(5)
    assert info.value is raised
    assert len(calls) == 1
    assert elapsed < 5
    assert list(outdir.iterdir()) == []


def test_progress_exception_at_the_end_leaves_no_output(synthetic, synthetic_fasta_uri, tmp_path):
    def progress(*args):
        raise Stop("no")

    with pytest.raises(Stop):
        anyvar.annotate_vcf(
            synthetic[1], tmp_path / "out.vcf", dataproxy_uri=synthetic_fasta_uri, progress=progress
        )
    assert list(tmp_path.iterdir()) == []


# --- sink --------------------------------------------------------------------------------------


def flat_ids(vcf: Path) -> list[str]:
    return [i for r in data_lines(vcf) for i in (vrs_ids(r) or []) if i]


@pytest.mark.parametrize("for_ref", [True, False])
def test_sink_receives_every_allele_in_order(for_ref, medium_vcf, synthetic_fasta_uri, tmp_path):
    batches: list[list[tuple]] = []
    out = tmp_path / "out.vcf"
    summary = anyvar.annotate_vcf(
        medium_vcf,
        out,
        dataproxy_uri=synthetic_fasta_uri,
        for_ref=for_ref,
        threads=2,
        sink=batches.append,
    )
    alleles = [a for batch in batches for a in batch]
    assert all(isinstance(b, list) for b in batches)
    assert [a[0] for a in alleles] == flat_ids(out)
    assert len(alleles) == summary["alleles"]
    source = anyvar.SequenceSource(synthetic_fasta_uri)
    accessions = {source.resolve(f"GRCh38:{c}")[0] for c in ("chr1", "chr2", "chr3")}
    for va, sl, accession, start, end, kind, sequence, length, rsl in alleles:
        assert va.startswith("ga4gh:VA.") and sl.startswith("ga4gh:SL.")
        assert accession in accessions
        assert isinstance(start, int) and isinstance(end, int) and 0 <= start <= end
        if kind == "LiteralSequenceExpression":
            assert isinstance(sequence, str) and length is None and rsl is None
        else:
            assert kind == "ReferenceLengthExpression"
            assert isinstance(length, int) and isinstance(rsl, int)


def test_sink_tuples_match_the_vector_alleles(vectors, vector_seqrepo_uri, tmp_path):
    """(va_id, sl_id, accession, start, end, state_type, sequence, length, rsl) against the
    alleles vrs-python computed for the vectors."""
    expected = {}
    for line in (vectors / "alleles.ndjson").read_text().splitlines():
        a = json.loads(line)
        loc, state = a["location"], a["state"]
        expected[a["id"]] = (
            a["id"],
            loc["id"],
            loc["sequenceReference"]["refgetAccession"],
            loc["start"],
            loc["end"],
            state["type"],
            state.get("sequence"),
            state.get("length"),
            state.get("repeatSubunitLength"),
        )
    batches: list[list[tuple]] = []
    out = tmp_path / "out.vcf"
    anyvar.annotate_vcf(
        vectors / "input.vcf", out, dataproxy_uri=vector_seqrepo_uri, sink=batches.append
    )
    alleles = [a for b in batches for a in b]
    assert [a[0] for a in alleles] == flat_ids(out)
    assert len(alleles) >= 95
    for allele in alleles:
        assert allele == expected[allele[0]]
    # the REF allele comes first: snv_unique is A>G at chr1:11
    by_label = {r[2]: vrs_ids(r) for r in data_lines(out)}
    first = [a[0] for a in alleles[:2]]
    assert first == by_label["snv_unique"]
    assert alleles[0][5] == "ReferenceLengthExpression" and alleles[1][6] == "G"


def test_sink_exception_stops_the_run(medium_vcf, synthetic_fasta_uri, tmp_path):
    calls = []

    def sink(batch):
        calls.append(len(batch))
        raise LookupError("registry down")

    with pytest.raises(LookupError, match="registry down"):
        anyvar.annotate_vcf(
            medium_vcf, tmp_path / "out.vcf", dataproxy_uri=synthetic_fasta_uri, sink=sink
        )
    assert len(calls) == 1
    assert list(tmp_path.iterdir()) == []


# --- the GIL and threads -----------------------------------------------------------------------


def test_gil_is_released_during_annotation(big_vcf, synthetic_fasta_uri, tmp_path):
    """A Python thread that yields the GIL at every step keeps counting while a run goes on. With a
    5 s switch interval, a run that held the GIL would starve it completely."""
    anyvar.annotate_vcf(big_vcf, tmp_path / "warm.vcf", dataproxy_uri=synthetic_fasta_uri)
    counter = [0]
    stop = threading.Event()

    def count():
        while not stop.is_set():
            counter[0] += 1
            time.sleep(0)  # releases the GIL

    old = sys.getswitchinterval()
    sys.setswitchinterval(5.0)
    thread = threading.Thread(target=count, daemon=True)
    try:
        thread.start()
        time.sleep(0.05)
        before = counter[0]
        started = time.monotonic()
        summary = anyvar.annotate_vcf(
            big_vcf, tmp_path / "out.vcf", dataproxy_uri=synthetic_fasta_uri, threads=1
        )
        elapsed = time.monotonic() - started
        during = counter[0] - before
    finally:
        stop.set()
        sys.setswitchinterval(old)
        thread.join(10)
    assert summary["records"] == 201_000
    assert elapsed < 5, "the run itself must be shorter than the switch interval"
    # held GIL: 0; released: thousands (a few hundred on a very busy machine)
    assert during > 100, f"the counter thread advanced {during} times in {elapsed:.2f} s"


def test_threads_do_not_change_the_output(big_vcf, synthetic_fasta_uri, tmp_path):
    outputs = {}
    summaries = {}
    for threads in (1, 2):
        out = tmp_path / f"t{threads}.vcf"
        summaries[threads] = anyvar.annotate_vcf(
            big_vcf, out, dataproxy_uri=synthetic_fasta_uri, threads=threads, vrs_attributes=True
        )
        outputs[threads] = out.read_bytes()
    assert outputs[1] == outputs[2]
    assert {k: v for k, v in summaries[1].items() if k != "seconds"} == {
        k: v for k, v in summaries[2].items() if k != "seconds"
    }


def test_threads_do_not_change_bgzf_content(medium_vcf, synthetic_fasta_uri, tmp_path):
    texts = []
    for threads in (1, 2):
        out = tmp_path / f"t{threads}.vcf.gz"
        anyvar.annotate_vcf(medium_vcf, out, dataproxy_uri=synthetic_fasta_uri, threads=threads)
        texts.append(gzip.decompress(out.read_bytes()))
    assert texts[0] == texts[1]


# --- allele_ids --------------------------------------------------------------------------------


def alt_rows(vcf: Path) -> tuple[list[str], list[int], list[str], list[str], list[str | None]]:
    """One row per ALT of an annotated VCF (REF computed), with the ALT id it was given."""
    chrom, pos, ref, alt, ids = [], [], [], [], []
    for r in data_lines(vcf):
        if r[4] == ".":
            continue
        alts = r[4].split(",")
        got = vrs_ids(r)
        alt_ids = got[1:] if got is not None else [None] * len(alts)
        assert len(alt_ids) == len(alts)
        for a, i in zip(alts, alt_ids, strict=True):
            chrom.append(r[0])
            pos.append(int(r[1]))
            ref.append(r[3])
            alt.append(a)
            ids.append(i)
    return chrom, pos, ref, alt, ids


@pytest.fixture(scope="module", params=[True, False], ids=["validation", "no-validation"])
def annotated_rows(request, synthetic, synthetic_fasta_uri, tmp_path_factory):
    out = tmp_path_factory.mktemp("allele_ids") / "out.vcf"
    anyvar.annotate_vcf(
        synthetic[1], out, dataproxy_uri=synthetic_fasta_uri, require_validation=request.param
    )
    rows = alt_rows(out)
    assert any(i is None for i in rows[4]) and sum(i is not None for i in rows[4]) > 2000
    return request.param, rows


def test_allele_ids_of_lists(annotated_rows, synthetic_fasta_uri):
    validation, (chrom, pos, ref, alt, expected) = annotated_rows
    got = anyvar.allele_ids(
        chrom, pos, ref, alt, dataproxy_uri=synthetic_fasta_uri, require_validation=validation
    )
    assert isinstance(got, np.ndarray)
    assert got.dtype == object and got.shape == (len(expected),)
    assert got.tolist() == expected


def test_allele_ids_of_numpy_arrays(annotated_rows, synthetic_fasta_uri):
    validation, (chrom, pos, ref, alt, expected) = annotated_rows
    got = anyvar.allele_ids(
        np.array(chrom),  # fixed-width unicode
        np.array(pos, dtype=np.int32),
        np.array(ref, dtype=object),
        np.array(alt),
        dataproxy_uri=synthetic_fasta_uri,
        require_validation=validation,
        threads=2,
    )
    assert got.dtype == object
    assert got.tolist() == expected
    # a strided (non-contiguous) slice works the same
    every_other = anyvar.allele_ids(
        np.array(chrom)[::2],
        np.array(pos, dtype=np.int64)[::2],
        np.array(ref)[::2],
        np.array(alt)[::2],
        dataproxy_uri=synthetic_fasta_uri,
        require_validation=validation,
    )
    assert every_other.tolist() == expected[::2]


def test_allele_ids_empty(synthetic_fasta_uri):
    got = anyvar.allele_ids([], [], [], [], dataproxy_uri=synthetic_fasta_uri)
    assert isinstance(got, np.ndarray) and got.shape == (0,)


@pytest.mark.parametrize(
    "lengths", [(3, 2, 3, 3), (3, 3, 2, 3), (3, 3, 3, 4), (2, 3, 3, 3)], ids=str
)
def test_allele_ids_mismatched_lengths(lengths, synthetic_fasta_uri):
    c, p, r, a = lengths
    with pytest.raises(ValueError, match="same length"):
        anyvar.allele_ids(
            ["chr1"] * c,
            np.arange(1, p + 1),
            ["A"] * r,
            ["G"] * a,
            dataproxy_uri=synthetic_fasta_uri,
        )
