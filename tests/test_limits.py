"""Hostile input against a real uvicorn API and Celery worker: a decompression bomb whose one
line is a gigabyte of NULs, an over-long header, and run ids that would break a response
header. Each ends as a clear 400 naming the problem, with bounded server memory, no file left
behind and the server still answering."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from async_service import Stack, start_stack

HEADER = b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
RECORD = b"chr1\t11\t.\tA\tG\t.\tPASS\t"
MiB = 1 << 20


def bomb(path: Path, gib: int = 1) -> Path:
    """A gzip VCF: a header, then one record whose INFO is ``gib`` GiB of NUL bytes, one
    gzip member per GiB (about 1 MB each), written without holding the data in memory."""
    zeros = bytes(MiB)
    with path.open("wb") as out:
        for member in range(gib):
            z = zlib.compressobj(9, zlib.DEFLATED, 31)
            if member == 0:
                out.write(z.compress(HEADER + RECORD))
            for _ in range(1024):
                out.write(z.compress(zeros))
            out.write(z.flush())
    return path


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, rdb, vector_seqrepo_uri) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("limits")
    stack = start_stack(
        root, "q_limits", vector_seqrepo_uri, storage_uri=f"sqlite:///{root / 'db.sqlite3'}"
    )
    try:
        yield stack
    finally:
        stack.stop()


def leftovers(stack: Stack) -> list[Path]:
    """Temporary files of ours in the server's TMPDIR (the stack's root) and the work dir."""
    found = [p for p in stack.root.iterdir() if p.name.startswith(("anyvar-", ".anyvar-"))]
    return found + stack.files()


def test_a_decompression_bomb_is_a_400_with_bounded_memory(stack: Stack, tmp_path):
    data = bomb(tmp_path / "bomb.vcf.gz")
    assert data.stat().st_size < 5 * MiB
    before = vm_hwm_mb(stack.api.proc.pid)
    for run_async in (False, True):
        r = stack.api.put_vcf(data, filename="bomb.vcf.gz", run_async=run_async)
        assert r.status_code == 400, r.text
        body = r.json()
        assert body["error_code"] == "INVALID_VCF" and body["line"] == 3, body
        assert "longer than 67108864 bytes (ANYVAR_MAX_LINE_BYTES)" in body["error"], body
    # The line is read only up to the bound (64 MiB), never the gigabyte: a reader's buffer
    # costs up to twice the bound while it grows, and the sync and async reads ran on
    # different threads, whose freed memory the allocator keeps apart.
    peak = vm_hwm_mb(stack.api.proc.pid)
    assert peak < before + 4 * 64, (before, peak)
    assert leftovers(stack) == []
    assert stack.api.client.get("/service-info").status_code == 200
    assert "Traceback" not in stack.api.text()


def test_limits_are_settings(stack: Stack, vectors: Path):
    api = stack.add_api(
        "api-tight", {"ANYVAR_MAX_LINE_BYTES": "1000", "ANYVAR_MAX_HEADER_BYTES": "300"}
    )
    long_line = HEADER + RECORD + b"X=" + b"1" * 2000 + b"\n"
    r = api.put_vcf(long_line)
    assert r.status_code == 400 and r.json()["line"] == 3, r.text
    assert "longer than 1000 bytes (ANYVAR_MAX_LINE_BYTES)" in r.json()["error"]
    text = (vectors / "input.vcf").read_bytes()
    for run_async in (False, True):
        r = api.put_vcf(text, run_async=run_async)
        assert r.status_code == 400, r.text
        assert "header is longer than 300 bytes (ANYVAR_MAX_HEADER_BYTES)" in r.json()["error"]
    # The default bounds take the same file.
    assert stack.api.put_vcf(text).status_code == 200
    assert leftovers(stack) == []


@pytest.fixture()
def small_disk(tmp_path) -> Iterator[Path]:
    """A 6 MiB tmpfs: the server's TMPDIR and work directory (mounting needs root)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.parametrize("size_mb", [4, 9])
def test_a_full_disk_is_a_507_and_leaves_nothing(
    tmp_path, rdb, small_disk, synthetic_fasta_uri, synthetic, size_mb
):
    """4 MB fits on the disk but its annotated result does not; 9 MB does not fit at all.
    Both end with 507, sync and async, with nothing left on the disk."""
    stack = start_stack(
        tmp_path / "stack",
        "q_full",
        synthetic_fasta_uri,
        env={"TMPDIR": str(small_disk), "ANYVAR_VCF_ASYNC_WORK_DIR": str(small_disk / "work")},
    )
    try:
        lines = synthetic[1].read_bytes().splitlines(keepends=True)
        header = b"".join(line for line in lines if line.startswith(b"#"))
        body = b"".join(line for line in lines if not line.startswith(b"#"))
        data = header + body * (size_mb * MiB // len(body) + 1)
        for run_async in (False, True):
            r = stack.api.put_vcf(data, run_async=run_async)
            if run_async and r.status_code == 202:
                # It fit into the work dir; the run's output did not.
                continue
            assert r.status_code == 507, (size_mb, run_async, r.status_code, r.text[:300])
            assert r.json()["error_code"] == "INSUFFICIENT_STORAGE"
            left = [p for p in small_disk.rglob("*") if p.is_file()]
            assert left == [], left
        assert stack.api.client.get("/service-info").status_code == 200
        assert "Traceback" not in stack.api.text()
    finally:
        stack.stop()
