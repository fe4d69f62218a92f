"""A SeqRepo instance of the real sequences AnyVar's REST tests touch (tests/data/anyvar_suite):
each sequence at its real length under its real refget accession and aliases, its known
windows in place and N elsewhere. Written directly in SeqRepo's layout (vrs-python's SeqRepo
writer would name each sequence by the digest of its N-padded bases)."""

from __future__ import annotations

import csv
import hashlib
import shutil
import sqlite3
import subprocess
from pathlib import Path

DATA = Path(__file__).parent.parent / "data" / "anyvar_suite"
LINE = 65536  # bases per FASTA line
BLOCK = 64 * LINE


def _rows(name: str) -> list[dict[str, str]]:
    with (DATA / name).open() as f:
        return list(csv.DictReader(f, delimiter="\t"))


def build(root: Path) -> Path:
    """The instance directory (built once per content of the data files, under ``root``)."""
    digest = hashlib.sha256(
        (DATA / "windows.tsv").read_bytes() + (DATA / "sequences.tsv").read_bytes()
    ).hexdigest()[:12]
    instance = root / f"anyvar-suite-{digest}"
    if (instance / "aliases.sqlite3").exists():
        return instance
    building = root / f"anyvar-suite-{digest}.building"
    shutil.rmtree(building, ignore_errors=True)
    (building / "sequences").mkdir(parents=True)
    sequences = _rows("sequences.tsv")
    windows: dict[str, list[tuple[int, bytes]]] = {}
    for w in _rows("windows.tsv"):
        windows.setdefault(w["accession"], []).append((int(w["start"]), w["sequence"].encode()))

    fasta = building / "sequences" / "anyvar-suite.fa.bgz"
    fai = []
    offset = 0
    with fasta.open("wb") as out:
        bgzip = subprocess.Popen(
            ["bgzip", "-c", "-@", "2", "-i", "-I", f"{fasta}.gzi"],
            stdin=subprocess.PIPE,
            stdout=out,
        )
        assert bgzip.stdin is not None
        for s in sequences:
            seq_id, length = s["accession"].removeprefix("SQ."), int(s["length"])
            header = f">{seq_id}\n".encode()
            bgzip.stdin.write(header)
            offset += len(header)
            fai.append(f"{seq_id}\t{length}\t{offset}\t{LINE}\t{LINE + 1}\n")
            for start in range(0, length, BLOCK):
                block = bytearray(b"N" * min(BLOCK, length - start))
                for w_start, bases in windows.get(s["accession"], []):
                    lo, hi = max(w_start, start), min(w_start + len(bases), start + len(block))
                    if lo < hi:
                        block[lo - start : hi - start] = bases[lo - w_start : hi - w_start]
                lines = b"".join(
                    bytes(block[i : i + LINE]) + b"\n" for i in range(0, len(block), LINE)
                )
                bgzip.stdin.write(lines)
                offset += len(lines)
        bgzip.stdin.close()
        if bgzip.wait() != 0:
            raise RuntimeError("bgzip failed")
    Path(f"{fasta}.fai").write_text("".join(fai))

    with sqlite3.connect(building / "sequences" / "db.sqlite3") as db:
        db.execute(
            "CREATE TABLE seqinfo (seq_id text primary key, len integer not null, "
            "alpha text not null, added timestamp not null default current_timestamp, "
            "relpath text not null)"
        )
        db.executemany(
            "INSERT INTO seqinfo (seq_id, len, alpha, relpath) VALUES (?, ?, ?, ?)",
            [
                (s["accession"].removeprefix("SQ."), int(s["length"]), s["alphabet"], fasta.name)
                for s in sequences
            ],
        )
    with sqlite3.connect(building / "aliases.sqlite3") as db:
        db.execute(
            "CREATE TABLE seqalias (seqalias_id integer primary key, seq_id text not null, "
            "namespace text not null, alias text not null, "
            "added timestamp not null default current_timestamp, "
            "is_current int not null default 1)"
        )
        db.executemany(
            "INSERT INTO seqalias (seq_id, namespace, alias) VALUES (?, ?, ?)",
            [
                (s["accession"].removeprefix("SQ."), *alias.split(":", 1))
                for s in sequences
                for alias in s["aliases"].split(",")
            ],
        )
    building.rename(instance)
    return instance
