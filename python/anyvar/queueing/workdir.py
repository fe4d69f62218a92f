"""The shared work directory: where uploads and results of asynchronous runs live, in date
folders (``YYYYMMDD``), and the sweep that removes what no run needs any more. Every run
file's name is made here: inputs and outputs, their indexes, the parts of a run spread over
workers, and what the core leaves half-written (``.partial``)."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from anyvar.queueing import ACTIVE
from anyvar.queueing.runs import RunStore, outputs

log = logging.getLogger(__name__)

# A file younger than this is never swept: it may be an upload whose run is not recorded yet.
GRACE_SECONDS = 60


def new_path(work_dir: Path, run_id: str, role: str) -> Path:
    """``<work_dir>/<YYYYMMDD>/<run_id>.<nonce>.<role>``: the nonce keeps a resubmitted run's
    files apart from the ones it replaces."""
    day = work_dir / datetime.now(UTC).strftime("%Y%m%d")
    day.mkdir(parents=True, exist_ok=True)
    return day / f"{run_id}.{uuid.uuid4().hex[:12]}.{role}"


def remove(*paths: str | Path | None) -> None:
    for p in paths:
        if p:
            Path(p).unlink(missing_ok=True)


INDEX_SUFFIXES = (".tbi", ".csi")
"""Of the index the core writes beside a BGZF output (CSI for contigs over 2^29 bases)."""


def output_files(output: str | Path | None) -> list[str]:
    """An output and the index the core may have written beside it."""
    return [f"{output}{suffix}" for suffix in ("", *INDEX_SUFFIXES)] if output else []


def index_of(output: str | Path) -> Path | None:
    """The index written beside ``output``, if there is one."""
    return next((Path(p) for p in output_files(output)[1:] if Path(p).exists()), None)


def output_files_of(run: dict[str, str]) -> list[str]:
    """The files a run's result is or will be made of (``outputs``: one output, or the parts
    of a run spread over workers with plain output), each with its index and what a worker
    killed while writing it left half-written beside it (the core's
    ``.<output>.<pid>.<n>.partial`` and its index: found by the fault tests, it stayed until a
    sweep long after the run failed)."""
    files = []
    for output in outputs(run):
        path = Path(output)
        files += [*output_files(output), *map(str, path.parent.glob(f".{path.name}.*.partial*"))]
    return files


def run_files(run: dict[str, str]) -> list[str]:
    """Every file of a run's record: its input and its result's files."""
    return [run.get("input", ""), *output_files_of(run)]


def part_path(input_file_path: str, index: int) -> Path:
    """A chunk's part: beside the input, named after the run (the sweeper keeps it while the
    run is active and removes it after)."""
    return Path(f"{input_file_path}.part-{index}")


def remove_chunk_leftovers(input_file_path: str) -> None:
    """The input and what a killed chunk left half-written (the core's temporary
    ``.<part>.<pid>.<n>.partial``)."""
    path = Path(input_file_path)
    remove(path, *path.parent.glob(f".{path.name}.part-*.partial"))


def remove_chunked_run(input_file_path: str) -> None:
    """Every file of a run spread over workers: input, leftovers and its chunks' parts."""
    path = Path(input_file_path)
    remove_chunk_leftovers(input_file_path)
    remove(*path.parent.glob(f"{path.name}.part-*"))


def _needed(path: Path, store: RunStore) -> bool:
    run = store.get(path.name.split(".", 1)[0])
    if run is None:
        return False  # expired or unknown
    if run["status"] in ACTIVE and run.get("input") and str(path).startswith(run["input"]):
        return True  # the input and, beside it, the parts of its chunks
    if str(path) in {f for output in outputs(run) for f in output_files(output)}:
        # A result's file (or its index): needed while it is written and once it succeeded.
        return run["status"] not in ("cancelled", "failed")
    return False  # an input of an ended run, a chunk's part, or replaced by a resubmission


def sweep(work_dir: Path, store: RunStore, grace: float = GRACE_SECONDS) -> int:
    """Removes files of expired, replaced, failed or cancelled runs and inputs of finished
    ones; returns how many files went."""
    removed = 0
    if not work_dir.is_dir():
        return 0
    today = datetime.now(UTC).strftime("%Y%m%d")
    now = time.time()
    for day in sorted(work_dir.iterdir()):
        if not (day.is_dir() and day.name.isdigit() and len(day.name) == 8):
            continue
        for f in day.iterdir():
            try:
                if now - f.stat().st_mtime < grace:
                    continue
                if not _needed(f, store):
                    f.unlink(missing_ok=True)
                    removed += 1
            except FileNotFoundError:
                continue
        if day.name != today and not any(day.iterdir()):
            day.rmdir()
    if removed:
        log.info("swept %d files from %s", removed, work_dir)
    return removed
