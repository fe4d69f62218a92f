"""One VCF across many workers: an async run of more than ANYVAR_VCF_CHUNK_RECORDS records is
cut into chunks that any worker annotates and registers, joined in input order into the bytes a
run on one worker writes. Real Redis, two Celery prefork workers, SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pysam
import pytest
from async_service import (
    REDIS_URL,
    AsyncData,
    Stack,
    allele_ids,
    make_async_data,
    poll_until_done,
    redis_client,
    run_record,
    start_stack,
    wait_for,
)
from celery import Celery
from service import postgres_database, table_counts
from test_async import failure, wait_status

from anyvar.synthetic import generate

CHUNK = 1500


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[str, Path]:
    """A reference and a 7,000-record VCF over it (five chunks)."""
    fasta, vcf = generate(tmp_path_factory.mktemp("fanout-data"), records=7000, seed=33)
    return f"fasta+file://{fasta}?assembly=GRCh38", vcf


def two_workers(root: Path, queue: str, uri: str, storage_uri: str, **env: str) -> Stack:
    """An API that cuts runs into chunks, two single-process workers, and a second API on the
    same queue that never cuts (the one-worker run to compare with)."""
    stack = start_stack(
        root,
        queue,
        uri,
        storage_uri=storage_uri,
        env={"ANYVAR_VCF_CHUNK_RECORDS": str(CHUNK), **env},
        workers=[("a", "prefork", 1), ("b", "prefork", 1)],
    )
    stack.add_api("api-whole", {"ANYVAR_VCF_CHUNK_RECORDS": "0"})
    return stack


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def stack(request, tmp_path_factory, rdb, data) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp(f"fanout-{request.param}")
    if request.param == "sqlite":
        stack = two_workers(root, "q_fan_sqlite", data[0], f"sqlite:///{root / 'db.sqlite3'}")
        try:
            yield stack
        finally:
            stack.stop()
    else:
        with postgres_database() as uri:
            stack = two_workers(root, "q_fan_pg", data[0], uri)
            try:
                yield stack
            finally:
                stack.stop()


def bgzip(src: Path, dst: Path) -> Path:
    pysam.tabix_compress(str(src), str(dst), force=True)
    return dst


def check_index(stack, whole_api, run_id, single_id, result: bytes, compression, tmp_path):
    """A BGZF result has its tabix index, the same from a fanned-out run as from one task, and
    it finds every record; a plain result has none (404 NO_INDEX)."""
    fanned = stack.api.client.get(f"/vcf/{run_id}/index")
    single = whole_api.client.get(f"/vcf/{single_id}/index")
    if compression == "none":
        assert fanned.status_code == single.status_code == 404
        assert fanned.json()["error_code"] == "NO_INDEX"
        assert "not bgzip-compressed" in fanned.json()["error"]
        return
    assert fanned.status_code == single.status_code == 200, fanned.text
    assert fanned.content == single.content
    vcf = tmp_path / f"{run_id}.vcf.gz"
    vcf.write_bytes(result)
    Path(f"{vcf}.tbi").write_bytes(fanned.content)
    records = [line for line in pysam.BGZFile(str(vcf)) if not line.startswith(b"#")]
    with pysam.TabixFile(str(vcf)) as tbx:
        found = sum(1 for contig in tbx.contigs for _ in tbx.fetch(contig))
    assert found == len(records) == 7000


def test_fanout_equals_one_worker_byte_for_byte(stack: Stack, data, tmp_path):
    whole_api = stack.extra[0]
    runs = []
    inputs = {"plain": data[1], "bgzip": bgzip(data[1], tmp_path / "in.vcf.gz")}
    for name, vcf in inputs.items():
        for compression, attributes in (("none", False), ("bgzip", False), ("none", True)):
            params = {"output_compression": compression, "add_vrs_attributes": attributes}
            run_id = stack.api.submit(vcf, **params)
            record = run_record(redis_client(), run_id)
            assert record["chunks"] == str(-(-7000 // CHUNK)), record
            fanned, pending = poll_until_done(stack.api, run_id, timeout=120)
            single_id = whole_api.submit(vcf, **params)
            assert run_record(redis_client(), single_id)["chunks"] == ""
            single, _ = poll_until_done(whole_api, single_id, timeout=120)
            runs += [run_id, single_id]
            assert fanned.status_code == single.status_code == 200, fanned.text
            assert fanned.content == single.content, (name, compression, attributes)
            # Progress is summed over the chunks and never goes back.
            done = [b["records_done"] for b in pending]
            assert done == sorted(done) and all(d <= 7000 for d in done), done
            check_index(stack, whole_api, run_id, single_id, fanned.content, compression, tmp_path)
    # Chunks went to both workers.
    for worker in stack.workers:
        assert "annotate_chunk" in worker.text() and "received" in worker.text(), worker.name
    # A result stays downloadable (plain output: the parts, sent one after the other) until
    # it is deleted; then no file is left.
    assert not [f for f in stack.files() if f.name.endswith((".input", ".partial"))]
    for run_id in runs:
        assert stack.api.client.get(f"/vcf/{run_id}").status_code == 200
        assert stack.api.client.delete(f"/vcf/{run_id}").status_code == 200
    assert stack.files() == []


def test_all_alleles_are_retrievable_after_a_fanout(stack: Stack, data):
    run_id = stack.api.submit(data[1])
    r, _ = poll_until_done(stack.api, run_id, timeout=120)
    assert r.status_code == 200
    ids = {i for entry in allele_ids(r.text) for i in entry.split(",") if i.startswith("ga4gh")}
    assert len(ids) > 5000
    for allele_id in sorted(ids)[:: max(1, len(ids) // 200)]:
        got = stack.api.client.get(f"/object/{allele_id}")
        assert got.status_code == 200, (allele_id, got.text)
    counts = table_counts(stack.env["ANYVAR_STORAGE_URI"])
    assert counts["alleles"] >= len(ids)


@pytest.mark.parametrize("records, chunks", [(CHUNK, ""), (CHUNK + 1, "2")])
def test_just_under_and_just_over_the_chunk_size(stack: Stack, data, tmp_path, records, chunks):
    lines = data[1].read_text().splitlines(keepends=True)
    header = [line for line in lines if line.startswith("#")]
    vcf = tmp_path / "slice.vcf"
    vcf.write_text("".join(header + lines[len(header) : len(header) + records]))
    run_id = stack.api.submit(vcf)
    assert run_record(redis_client(), run_id)["chunks"] == chunks
    r, _ = poll_until_done(stack.api, run_id, timeout=60)
    single_id = stack.extra[0].submit(vcf)
    single, _ = poll_until_done(stack.extra[0], single_id, timeout=60)
    assert r.status_code == 200 and r.content == single.content
    assert len(allele_ids(r.text)) == records


# --- faults: slow chunks, on their own stack -------------------------------------------------


@pytest.fixture(scope="module")
def slow(tmp_path_factory) -> AsyncData:
    return make_async_data(tmp_path_factory.mktemp("fanout-slow"))


@pytest.fixture()
def slow_stack(request, tmp_path, rdb, slow) -> Iterator[Stack]:
    env = getattr(request, "param", {})
    stack = two_workers(tmp_path, f"q_fan_{uuid.uuid4().hex[:8]}", slow.source_uri, "", **env)
    try:
        yield stack
    finally:
        stack.stop()


def slow_vcf(slow: AsyncData) -> Path:
    """Four chunks of about two seconds each (insertions into a long homopolymer)."""
    return slow.slow_vcf("slow.vcf", 4 * CHUNK // 3, synthetic=CHUNK * 8 // 3, seed=5)


def kill_a_running_chunk(stack: Stack, rdb, run_id: str) -> None:
    """SIGKILLs the pool process running the last (slowest) chunk, once it has started."""
    wait_for(lambda: "attempts:3" in run_record(rdb, run_id), 60, "the last chunk to start")
    chunk = f"{run_id}-chunk-3"
    app = Celery("anyvar-tests", broker=REDIS_URL)
    try:

        def pid() -> int | None:
            replies = app.control.inspect(timeout=1).active() or {}
            for tasks in replies.values():
                for task in tasks:
                    if task["id"] == chunk and task.get("worker_pid"):
                        return int(task["worker_pid"])
            return None

        os.kill(wait_for(pid, 20, f"{chunk} to be active", interval=0.1), signal.SIGKILL)
    finally:
        app.close()


def test_a_chunk_whose_worker_is_killed_is_run_again(slow_stack: Stack, rdb, slow, tmp_path):
    vcf = slow_vcf(slow)
    run_id = slow_stack.api.submit(vcf)
    kill_a_running_chunk(slow_stack, rdb, run_id)
    r, _ = poll_until_done(slow_stack.api, run_id, timeout=180)
    assert r.status_code == 200, r.text
    single_id = slow_stack.extra[0].submit(vcf)
    single, _ = poll_until_done(slow_stack.extra[0], single_id, timeout=180)
    assert r.content == single.content
    attempts = [int(v) for k, v in run_record(rdb, run_id).items() if k.startswith("attempts:")]
    assert max(attempts) == 2 and sorted(attempts)[:-1] == [1] * (len(attempts) - 1), attempts
    for api, run in ((slow_stack.api, run_id), (slow_stack.extra[0], single_id)):
        assert api.client.delete(f"/vcf/{run}").status_code == 200
    assert slow_stack.files() == [], "no leftover of the killed chunk either"


@pytest.mark.parametrize("slow_stack", [{"ANYVAR_VCF_CHUNK_ATTEMPTS": "1"}], indirect=True)
def test_a_chunk_lost_too_often_fails_the_run(slow_stack: Stack, rdb, slow):
    run_id = slow_stack.api.submit(slow_vcf(slow))
    kill_a_running_chunk(slow_stack, rdb, run_id)
    r, _ = poll_until_done(slow_stack.api, run_id, timeout=180)
    error = failure(r, 500, "WORKER_LOST_ERROR")
    assert "ANYVAR_VCF_CHUNK_ATTEMPTS=1" in error
    wait_for(lambda: slow_stack.files() == [], 30, "the run's files to go")
    for worker in slow_stack.workers:
        # Celery logs the SIGKILL it saw (WorkerLostError); no error passes through our code.
        assert "python/anyvar/" not in worker.text(), worker.text()[-3000:]


def test_cancel_stops_every_chunk_within_a_second(slow_stack: Stack, rdb, slow):
    run_id = slow_stack.api.submit(slow_vcf(slow))
    wait_for(
        lambda: (
            sum(int(v) for k, v in run_record(rdb, run_id).items() if k.startswith("attempts:"))
            >= 2
        ),
        60,
        "two chunks to start",
    )
    cancelled_at = time.monotonic()
    assert slow_stack.api.client.delete(f"/vcf/{run_id}").status_code == 200
    wait_status(rdb, run_id, ("cancelled",), timeout=5)
    assert time.monotonic() - cancelled_at < 2.0
    wait_for(lambda: slow_stack.files() == [], 5, "every chunk file to go")
    failure(slow_stack.api.client.get(f"/vcf/{run_id}"), 410, "RUN_CANCELLED")
    # The chunks not yet started never run.
    time.sleep(1)
    for worker in slow_stack.workers:
        assert "Traceback" not in worker.text()
    assert slow_stack.files() == []
