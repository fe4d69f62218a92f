"""Long calls into the core give Python its turn: an ingestion, like an annotation, stops at
its next progress report when the callback raises (a cancelled run, Celery's time limit), and
stores nothing of what it read."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import anyvar
from anyvar.config import Settings
from anyvar.registry import Registry
from anyvar.synthetic import generate


class Stop(Exception):
    pass


@pytest.fixture(scope="module")
def annotated(tmp_path_factory) -> tuple[str, Path]:
    """A reference's source URI and a 20,000-record VCF annotated over it."""
    directory = tmp_path_factory.mktemp("interrupt")
    fasta, vcf = generate(directory, records=20_000, seed=5)
    uri = f"fasta+file://{fasta}?assembly=GRCh38"
    out = directory / "annotated.vcf"
    anyvar.annotate_vcf(vcf, out, dataproxy_uri=uri, threads=2, vrs_attributes=True)
    return uri, out


def stored_alleles(directory: Path) -> int:
    with sqlite3.connect(directory / "registry.db") as db:
        return db.execute("SELECT count(*) FROM alleles").fetchone()[0]


def registry(uri: str, directory: Path) -> Registry:
    storage = f"sqlite:///{directory / 'registry.db'}"
    return Registry.open(Settings(seqrepo_dataproxy_uri=uri, storage_uri=storage))


def test_an_ingestion_stops_when_its_progress_callback_raises(annotated, tmp_path: Path):
    uri, vcf = annotated
    calls: list[int] = []

    def progress(records: int) -> None:
        calls.append(records)
        raise Stop

    with pytest.raises(Stop):
        registry(uri, tmp_path).ingest(vcf, assembly="GRCh38", conflicts=None, progress=progress)
    assert calls == [4096], "stopped at the first report, not at the end of the file"
    assert stored_alleles(tmp_path) == 0


def test_an_ingestion_reports_and_completes(annotated, tmp_path: Path):
    uri, vcf = annotated
    calls: list[int] = []
    summary = registry(uri, tmp_path).ingest(
        vcf, assembly="GRCh38", conflicts=None, progress=calls.append
    )
    assert summary["records"] == 20_000
    assert calls == list(range(4096, 20_001, 4096))
    assert stored_alleles(tmp_path) > 0 and summary["alleles"] > 0
