"""Asynchronous runs end to end: real Redis, real Celery workers (prefork and solo) and real
``uvicorn`` API processes sharing a work directory. Each group of tests with the same settings
shares one "stack" (an API and its workers on a queue of their own), torn down after the group.

The slow runs are real uploads that take real time: insertions into a 2 Mbp homopolymer, which
normalisation rolls across (see ``async_service.HOMOPOLYMER``)."""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
from async_service import (
    ASYNC_MISSING,
    CELERY,
    CELERY_APP,
    REDIS_URL,
    AsyncData,
    Process,
    Stack,
    allele_ids,
    check_pending,
    check_submitted,
    data_lines,
    in_use,
    library_annotation,
    make_async_data,
    poll_until_done,
    run_record,
    start_api,
    start_stack,
    wait_for,
)
from celery import Celery

GARBAGE = b"this is not a VCF at all\nsecond line\n"


def late_failure(vectors: Path) -> bytes:
    """An annotated VCF whose structure passes the check at submission but whose line 21 the
    ingestion refuses (a VRS field without one value per allele): a failure found in the run."""
    text = (vectors / "expected_attrs.vcf").read_text()
    return re.sub(r"VRS_Starts=[^;]*", "VRS_Starts=x", text, count=1).encode()


LATE_LINE = 21


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> AsyncData:
    return make_async_data(tmp_path_factory.mktemp("async-data"))


@pytest.fixture(scope="session")
def long_vcf(data: AsyncData) -> Path:
    """About 12 s of work for one thread, in many chunks (each under a second): only ever run
    to be cut short. A 40 kB gzip upload."""
    return data.slow_vcf("long.vcf.gz", 1500, pad=16000)


@pytest.fixture(scope="session")
def dense_vcf(data: AsyncData) -> Path:
    """The same work in a single chunk of the core's (a 50 kB VCF)."""
    return data.slow_vcf("dense.vcf", 1500)


@pytest.fixture(scope="session")
def small_vcf(data: AsyncData) -> Path:
    return data.slow_vcf("small.vcf", 0, synthetic=500, seed=3)


@contextlib.contextmanager
def stack_of(root: Path, queue: str, uri: str, **kw) -> Iterator[Stack]:
    stack = start_stack(root, queue, uri, **kw)
    try:
        yield stack
    finally:
        stack.stop()


def task_pid(stack: Stack, node: str, run_id: str, timeout: float = 15) -> int:
    """The pid of the pool process running ``run_id``, as ``celery inspect active`` reports
    it (asked through the broker, like the CLI)."""
    app = Celery("anyvar-tests", broker=REDIS_URL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            replies = app.control.inspect(destination=[node], timeout=2).active() or {}
            for task in replies.get(node, []):
                if task["id"] == run_id and task.get("worker_pid"):
                    return int(task["worker_pid"])
            if time.monotonic() > deadline:
                pytest.fail(f"{run_id} is not active on {node}: {replies}\n{stack.logs()}")
            time.sleep(0.1)
    finally:
        app.close()


def wait_status(rdb, run_id: str, statuses: tuple[str, ...], timeout: float = 30) -> dict:
    return wait_for(
        lambda: (rec := run_record(rdb, run_id)) and rec.get("status") in statuses and rec,
        timeout,
        lambda: f"run {run_id} to be {statuses} (is {run_record(rdb, run_id)})",
    )


def failure(r, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code, body
    assert isinstance(body["error"], str) and body["error"], body
    return body["error"]


def today_dirs(stack: Stack) -> None:
    """Date folders are YYYYMMDD (AnyVar defect 8)."""
    dirs = [p.name for p in stack.work_dir.iterdir() if p.is_dir()]
    assert dirs and all(re.fullmatch(r"\d{8}", d) for d in dirs), dirs
    days = {datetime.strptime(d, "%Y%m%d").replace(tzinfo=UTC) for d in dirs}
    assert any(abs((datetime.now(UTC) - day).days) <= 1 for day in days), dirs


# --- the main stack: vectors, embedded storage, one prefork worker of concurrency 2 ----------


@pytest.fixture(scope="class")
def main(tmp_path_factory, rdb, vector_seqrepo_uri) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("main")
    with stack_of(
        root,
        "q_main",
        vector_seqrepo_uri,
        storage_uri=f"sqlite:///{root / 'db.sqlite3'}",
        workers=[("main", "prefork", 2)],
    ) as stack:
        yield stack


@pytest.fixture(scope="class")
def main_alt(main: Stack) -> Process:
    """A second API on the main queue: failures answered 200, a slow expected rate."""
    return main.add_api(
        "api-alt",
        {"ANYVAR_VCF_ASYNC_FAILURE_STATUS_CODE": "200", "ANYVAR_EXPECTED_VRS_IDS_PER_SECOND": "10"},
    )


class TestMain:
    def test_submit_poll_and_result_equal_sync(self, main: Stack, vectors, tmp_path):
        vcf = vectors / "input.vcf"
        sync = main.api.put_vcf(vcf)
        assert sync.status_code == 200, sync.text
        library = library_annotation(vcf, tmp_path / "lib.vcf", main.env["SEQREPO_DATAPROXY_URI"])

        run_id = main.api.submit(vcf)  # no run_id: a generated UUID
        assert str(uuid.UUID(run_id)) == run_id
        r, _ = poll_until_done(main.api, run_id)
        assert r.status_code == 200, r.text
        assert r.text.startswith("##fileformat=VCF")
        assert data_lines(r.text) == data_lines(sync.text) == data_lines(library)
        ids = allele_ids(r.text)
        assert sum(map(bool, ids)) > len(ids) // 2, "most records should carry VRS_Allele_IDs"

        # Not single-use (AnyVar defect 3): polling again gives the same result.
        again = main.api.client.get(f"/vcf/{run_id}")
        assert again.status_code == 200 and again.content == r.content

        # The upload left the work dir when the run ended; only the result remains.
        files = main.files(run_id)
        assert [f.read_bytes() for f in files] == [r.content], files
        today_dirs(main)

    def test_run_id_in_use_until_collected_then_replaced(self, main: Stack, rdb, vectors):
        vcf = vectors / "input.vcf"
        lines = vcf.read_text().splitlines(keepends=True)
        header = [line for line in lines if line.startswith("#")]
        subset = "".join(header + [line for line in lines if not line.startswith("#")][:10])
        sync_subset = main.api.put_vcf(subset.encode())
        assert sync_subset.status_code == 200

        run_id = "Custom-run_1"
        main.api.submit(vcf, run_id=run_id)
        r = main.api.put_vcf(vcf, run_async=True, run_id=run_id)
        assert r.status_code == 400, r.text
        assert r.json()["error"] in {in_use(run_id, s) for s in ("PENDING", "STARTED", "SUCCESS")}

        wait_status(rdb, run_id, ("succeeded",))
        r = main.api.put_vcf(vcf, run_async=True, run_id=run_id)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == in_use(run_id, "SUCCESS")

        first = main.api.client.get(f"/vcf/{run_id}")
        assert first.status_code == 200
        old_files = main.files(run_id)
        assert old_files, "the result should be in the work dir"

        # Collected: the id may be reused, and the new run replaces the old one.
        main.api.submit(subset.encode(), run_id=run_id)
        assert not [f for f in old_files if f.exists()], "the replaced run's files remain"
        r, _ = poll_until_done(main.api, run_id)
        assert r.status_code == 200, r.text
        assert data_lines(r.text) == data_lines(sync_subset.text)
        assert len(data_lines(r.text)) == 10 != len(data_lines(first.text))
        assert len(main.files(run_id)) == 1

    def test_unknown_run_is_404_at_once(self, main: Stack):
        for prefix in ("/vcf", "/variations"):
            r = main.api.client.get(f"{prefix}/no-such-run")
            assert r.status_code == 404
            assert r.json() == {
                "run_id": "no-such-run",
                "status": "NOT_FOUND",
                "status_message": "Run not found",
                "error": "Run no-such-run not found",
                "error_code": "NOT_FOUND",
            }
            assert r.elapsed.total_seconds() < 0.5

    def test_unsafe_run_ids_are_refused(self, main: Stack, vectors):
        vcf = vectors / "input.vcf"
        before = main.files()
        # A final newline passed a `$`-anchored check and then broke the Location header.
        for bad in ("../x", "a" * 129, "a b", "x/y", "run.1", "abc\n", "abc\r\n", "é"):
            r = main.api.put_vcf(vcf, run_async=True, run_id=bad)
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["error_code"] == "INVALID_RUN_ID" and "run_id" in r.json()["error"]
            r = main.api.client.put(
                "/variations", params={"run_async": "true", "run_id": bad}, json=[]
            )
            assert r.status_code == 400, (bad, r.text)
            # Every endpoint taking a run id checks it the same way (one with a '/' cannot
            # reach them: it names another route).
            for method, path in (("GET", "/vcf"), ("DELETE", "/vcf"), ("GET", "/variations")):
                if "/" in bad:
                    continue
                r = main.api.client.request(method, f"{path}/{quote(bad, safe='')}")
                assert r.status_code == 400, (method, path, bad, r.text)
                assert r.json()["error_code"] == "INVALID_RUN_ID"
        assert main.files() == before
        assert "Traceback" not in main.api.text()
        # The longest safe id is fine.
        longest = "b" * 128
        main.api.submit(vcf, run_id=longest)
        r, _ = poll_until_done(main.api, longest)
        assert r.status_code == 200

    def test_failed_run_answers_500_with_the_reason(self, main: Stack, rdb, vectors):
        bad = late_failure(vectors)
        sync = main.api.put_vcf(bad, "/annotated_vcf")
        assert sync.status_code == 400, sync.text
        run_id = main.api.submit(bad, "/annotated_vcf", run_id="garbage-1")
        wait_status(rdb, run_id, ("failed",))
        assert main.files(run_id) == []
        # Failed and not yet collected: the id is still in use.
        r = main.api.put_vcf(vectors / "input.vcf", run_async=True, run_id=run_id)
        assert r.status_code == 400 and r.json()["error"] == in_use(run_id, "FAILURE"), r.text
        assert r.headers["X-AnyVar-Error-Code"] == "RUN_ID_IN_USE"

        r, _ = poll_until_done(main.api, run_id)
        # AnyVar's failure status code, with the specific code and line of the sync answer.
        assert r.status_code == 500 and r.json() == sync.json(), r.text
        assert r.json()["error_code"] == "INVALID_VCF" and r.json()["line"] == LATE_LINE
        # A failure stays readable (not single-use either).
        failure(main.api.client.get(f"/vcf/{run_id}"), 500, "INVALID_VCF")
        # Collected: the id can be used again.
        main.api.submit(vectors / "input.vcf", run_id=run_id)
        r, _ = poll_until_done(main.api, run_id)
        assert r.status_code == 200, r.text

    def test_concurrent_submissions_of_one_run_id(self, main: Stack, vectors):
        """The id is reserved atomically (AnyVar defect 4): one of them wins."""
        body = (vectors / "input.vcf").read_bytes()
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(
                    lambda _: main.api.put_vcf(body, run_async=True, run_id="racy-1"), range(8)
                )
            )
        codes = sorted(r.status_code for r in answers)
        assert codes == [202] + [400] * 7, [r.text for r in answers]
        r, _ = poll_until_done(main.api, "racy-1")
        assert r.status_code == 200
        assert len(main.files("racy-1")) == 1, "a losing submission left its upload behind"

    def test_delete_finished_run_removes_its_files(self, main: Stack, rdb, vectors):
        run_id = main.api.submit(vectors / "input.vcf", run_id="delete-finished")
        wait_status(rdb, run_id, ("succeeded",))
        assert main.files(run_id)
        r = main.api.client.delete(f"/vcf/{run_id}")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "DELETED"
        assert main.files(run_id) == []
        # It reads as gone, not as cancelled: it had finished.
        failure(main.api.client.get(f"/vcf/{run_id}"), 410, "RESULT_GONE")
        # A deleted run's id is free again.
        main.api.submit(vectors / "input.vcf", run_id=run_id)
        r, _ = poll_until_done(main.api, run_id)
        assert r.status_code == 200, r.text

    def test_cancel_unknown_run_is_404(self, main: Stack):
        r = main.api.client.delete("/vcf/never-submitted")
        assert r.status_code == 404, r.text
        assert r.json()["status"] == "NOT_FOUND"

    def test_failure_status_code_is_configurable(self, main: Stack, main_alt, vectors):
        run_id = main_alt.submit(late_failure(vectors), "/annotated_vcf")
        r, _ = poll_until_done(main_alt, run_id)
        error = failure(r, 200, "INVALID_VCF")
        assert f"line {LATE_LINE}" in error and r.json()["line"] == LATE_LINE, error
        assert r.headers["content-type"].startswith("application/json")

    def test_retry_after_counts_records_of_gzip_uploads(self, main: Stack, main_alt, vectors):
        plain = (vectors / "input.vcf").read_bytes()
        records = len(data_lines(plain.decode()))
        expected = -(-records * 2 // 10)  # REF and ALT ids at 10 ids/s
        answers = {}
        for name, body in (("plain", plain), ("gzip", gzip.compress(plain))):
            r = main_alt.put_vcf(body, filename=f"in.{name}", run_async=True)
            check_submitted(r, None)
            answers[name] = (r.json()["run_id"], int(r.headers["retry-after"]))
        assert answers["plain"][1] == answers["gzip"][1] == expected, answers
        results = [poll_until_done(main_alt, run_id)[0] for run_id, _ in answers.values()]
        assert all(r.status_code == 200 for r in results)
        assert data_lines(results[0].text) == data_lines(results[1].text)

    def test_annotated_vcf_async(self, main: Stack, vectors):
        text = (vectors / "expected_attrs.vcf").read_text()
        first_id = re.search(r"VRS_Allele_IDs=([^,;]+)", text).group(1)
        wrong = "ga4gh:VA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        tampered = text.replace(first_id, wrong, 1).encode()

        sync = main.api.put_vcf(tampered, "/annotated_vcf", require_validation=True)
        assert sync.status_code == 200, sync.text
        run_id = main.api.submit(tampered, "/annotated_vcf", require_validation=True)
        r, _ = poll_until_done(main.api, run_id)
        assert r.status_code == 200, r.text
        rows = r.text.splitlines()
        assert rows[0] == "vrs_id,assembly,chrom,pos,start,end,state,new_vrs_id"
        assert any(row.startswith(wrong + ",") and first_id in row for row in rows[1:]), rows
        assert sorted(rows) == sorted(sync.text.splitlines())

        # Without validation the result is AnyVar's body of a finished registration, with
        # the summary the synchronous call answers beside it.
        sync = main.api.put_vcf(tampered, "/annotated_vcf")
        run_id = main.api.submit(tampered, "/annotated_vcf")
        r, _ = poll_until_done(main.api, run_id)
        assert r.status_code == 200, r.text
        assert r.json() == {
            "run_id": run_id,
            "status": "SUCCESS",
            "status_message": "VCF registration complete",
            **sync.json(),
        }

        # Missing VRS fields: refused at submission, as the synchronous call refuses them.
        sync = main.api.put_vcf(vectors / "input.vcf", "/annotated_vcf")
        r = main.api.put_vcf(vectors / "input.vcf", "/annotated_vcf", run_async=True)
        assert r.status_code == sync.status_code == 400, r.text
        assert r.json() == sync.json()
        assert "Required VRS annotations are missing" in failure(r, 400, "MISSING_VRS_ANNOTATIONS")

    def test_variations_async(self, main: Stack, vectors):
        requests = [
            {"definition": d}
            for d in ("chr1-11-A-G", "1-56-GA-CG", "garbage", "chr2-21-A-G", "chr1-11-A-G")
        ]
        sync = main.api.client.put("/variations", json=requests)
        assert sync.status_code == 200, sync.text
        assert [a.get("object_id") is not None for a in sync.json()] == [1, 1, 0, 1, 1]

        r = main.api.client.put("/variations", params={"run_async": "true"}, json=requests)
        run_id = check_submitted(r, None, prefix="/variations")
        done, _ = poll_until_done(main.api, run_id, prefix="/variations")
        assert done.status_code == 200, done.text
        assert done.json() == sync.json()
        # A VCF run is not a variation run: not found there.
        vcf_run = main.api.submit(vectors / "input.vcf")
        assert main.api.client.get(f"/variations/{vcf_run}").status_code == 404
        assert poll_until_done(main.api, vcf_run)[0].status_code == 200

        r = main.api.client.put(
            "/variations", params={"run_async": "true", "run_id": "vars-1"}, json=requests
        )
        check_submitted(r, "vars-1", prefix="/variations")
        done, _ = poll_until_done(main.api, "vars-1", prefix="/variations")
        assert done.json() == sync.json()


def test_async_not_configured_is_400(tmp_path, vector_seqrepo_uri, vectors):
    """The API without ANYVAR_VCF_ASYNC_WORK_DIR (a broker URL alone is not enough)."""
    env = {
        "SEQREPO_DATAPROXY_URI": vector_seqrepo_uri,
        "ANYVAR_STORAGE_URI": "",
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_BACKEND_URL": REDIS_URL,
        "TMPDIR": str(tmp_path),
    }
    api = start_api(tmp_path, env)
    try:
        # AnyVar's body exactly (its text for each kind of run); the missing setting and our
        # code in the headers.
        for endpoint, what in (("/vcf", "VCF annotation"), ("/annotated_vcf", "VCF ingest")):
            r = api.put_vcf(vectors / "expected_attrs.vcf", endpoint, run_async=True)
            assert r.status_code == 400, r.text
            assert r.json() == {"error": ASYNC_MISSING.replace("VCF annotation", what)}
            assert r.headers["X-AnyVar-Error-Code"] == "ASYNC_NOT_CONFIGURED"
            assert r.headers["X-AnyVar-Error-Detail"] == "ANYVAR_VCF_ASYNC_WORK_DIR is not set"
        r = api.client.put(
            "/variations", params={"run_async": "true"}, json=[{"definition": "chr1-11-A-G"}]
        )
        assert r.status_code == 400, r.text
        assert r.json() == {
            "error": ASYNC_MISSING.replace("VCF annotation", "variation registration")
        }
        assert api.put_vcf(vectors / "input.vcf").status_code == 200  # sync still works
    finally:
        api.stop()


def test_threads_pool_is_refused(tmp_path, rdb):
    env = {
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_BACKEND_URL": REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": "q_threads",
        "ANYVAR_VCF_ASYNC_WORK_DIR": str(tmp_path / "work"),
        "ANYVAR_STORAGE_URI": "",
    }
    cmd = [
        CELERY,
        "-A",
        CELERY_APP,
        "worker",
        "--pool=threads",
        "-n",
        "threads@anyvar-test",
    ]
    p = Process.start("threads", cmd, tmp_path, env)
    try:
        code = p.proc.wait(timeout=60)
    finally:
        p.stop()
    output = p.text()
    assert code != 0, output
    assert "prefork" in output and "solo" in output, output
    assert "ready." not in output


# --- one busy worker: cancellation, a lost pool process, then a second worker ----------------


@pytest.fixture(scope="class")
def queue(tmp_path_factory, rdb, data) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("queue")
    with stack_of(root, "q_queue", data.source_uri, workers=[("q1", "prefork", 1)]) as stack:
        yield stack


class TestQueue:
    def test_cancel_queued_and_running_runs(self, queue: Stack, rdb, long_vcf, small_vcf):
        api = queue.api
        running = api.submit(long_vcf, run_id="cancel-running")
        wait_status(rdb, running, ("running",))
        # In use while it runs.
        r = api.put_vcf(long_vcf, run_async=True, run_id=running)
        assert r.status_code == 400 and r.json()["error"] == in_use(running, "STARTED"), r.text

        queued = api.submit(small_vcf, run_id="cancel-queued")
        body = check_pending(api.client.get(f"/vcf/{queued}"), queued)
        assert body["state"] == "queued"
        assert body["records_total"] == len(data_lines(small_vcf.read_text()))
        # Progress is reported while it runs (records of the gzip upload, decompressed).
        body = wait_for(
            lambda: (
                (b := check_pending(api.client.get(f"/vcf/{running}"), running))["records_done"]
                and b
            ),
            10,
            "progress to be reported",
        )
        assert body["state"] == "running" and body["records_total"] == 1500, body
        assert 0 < body["records_done"] < 1500 and 0 < body["percent"] < 100, body
        assert len(queue.files(queued)) == 1, "the upload should wait in the work dir"

        r = api.client.delete(f"/vcf/{queued}")
        assert r.status_code == 200, r.text
        assert r.json()["run_id"] == queued
        assert queue.files(queued) == [], "the cancelled run's upload remains"
        failure(api.client.get(f"/vcf/{queued}"), 410, "RUN_CANCELLED")

        start = time.monotonic()
        r = api.client.delete(f"/vcf/{running}")
        assert r.status_code == 200, r.text
        done, _ = poll_until_done(api, running, timeout=10)
        assert time.monotonic() - start < 3, "the running run did not stop promptly"
        failure(done, 410, "RUN_CANCELLED")
        wait_for(lambda: queue.files(running) == [], 5, "the cancelled run's files to go")

        # The worker is free again, and the cancelled queued run never started.
        after = api.submit(small_vcf, run_id="after-cancel")
        r, _ = poll_until_done(api, after, timeout=30)
        assert r.status_code == 200, r.text
        record = run_record(rdb, queued)
        assert record["status"] == "cancelled" and "started_at" not in record, record
        assert queue.files(queued) == []
        failure(api.client.get(f"/vcf/{queued}"), 410, "RUN_CANCELLED")
        failure(api.client.get(f"/vcf/{running}"), 410, "RUN_CANCELLED")

    def test_id_of_a_cancelled_queued_run_can_be_reused(
        self, queue: Stack, rdb, long_vcf, small_vcf, tmp_path
    ):
        """Cancelling a queued run must not poison its id: resubmitted, it runs."""
        api = queue.api
        busy = api.submit(long_vcf, run_id="reuse-busy")
        wait_status(rdb, busy, ("running",))
        api.submit(small_vcf, run_id="reuse-1")
        assert api.client.delete("/vcf/reuse-1").status_code == 200
        assert api.client.delete(f"/vcf/{busy}").status_code == 200
        failure(poll_until_done(api, busy, timeout=10)[0], 410, "RUN_CANCELLED")

        api.submit(small_vcf, run_id="reuse-1")
        r, _ = poll_until_done(api, "reuse-1", timeout=20)
        assert r.status_code == 200, r.text
        expected = library_annotation(
            small_vcf, tmp_path / "expected.vcf", queue.env["SEQREPO_DATAPROXY_URI"]
        )
        assert data_lines(r.text) == data_lines(expected)

    def test_cancel_stops_within_a_chunk_of_expensive_records(self, queue: Stack, rdb, dense_vcf):
        """All 1500 expensive records fit one 512 kB chunk of the core's work: cancelling must
        still stop the run promptly (not after the chunk, ~12 s later)."""
        run_id = queue.api.submit(dense_vcf, run_id="cancel-dense")
        wait_status(rdb, run_id, ("running",))
        time.sleep(0.5)
        start = time.monotonic()
        assert queue.api.client.delete(f"/vcf/{run_id}").status_code == 200
        done, _ = poll_until_done(queue.api, run_id, timeout=60)
        took = time.monotonic() - start
        failure(done, 410, "RUN_CANCELLED")
        assert took < 3, f"the run went on for {took:.1f}s after it was cancelled"

    def test_lost_pool_process_fails_the_run(self, queue: Stack, rdb, long_vcf):
        run_id = queue.api.submit(long_vcf, run_id="lost-1")
        wait_status(rdb, run_id, ("running",))
        pid = task_pid(queue, queue.workers[0].node, run_id)
        assert pid in queue.workers[0].children()
        os.kill(pid, signal.SIGKILL)
        r, _ = poll_until_done(queue.api, run_id, timeout=30)
        failure(r, 500, "WORKER_LOST_ERROR")
        assert queue.files(run_id) == []

    def test_two_workers_share_the_queue(self, queue: Stack, data: AsyncData, tmp_path):
        queue.add_worker("q2", concurrency=1)
        inputs = {
            f"share-{i}": data.slow_vcf(f"share{i}.vcf", 20, synthetic=300, seed=100 + i)
            for i in range(10)
        }
        for run_id, vcf in inputs.items():
            queue.api.submit(vcf, run_id=run_id)
        for run_id, vcf in inputs.items():
            r, _ = poll_until_done(queue.api, run_id, timeout=60)
            assert r.status_code == 200, r.text
            expected = library_annotation(vcf, tmp_path / f"{run_id}.vcf", data.source_uri)
            assert data_lines(r.text) == data_lines(expected), run_id
        by = {w.node: {i for i in inputs if w.handled(i)} for w in queue.workers}
        assert all(by.values()), f"a worker processed none: {by}"
        assert sorted(i for ids in by.values() for i in ids) == sorted(inputs), by


# --- time limits ------------------------------------------------------------------------------


def limit_exceeded(stack: Stack, rdb, vcf: Path, within: float) -> None:
    """A run of ``vcf`` fails with TIME_LIMIT_EXCEEDED within ``within`` seconds of its start
    and leaves no file; the worker goes on with the next run."""
    run_id = stack.api.submit(vcf)
    wait_status(rdb, run_id, ("running",))
    start = time.monotonic()
    r, _ = poll_until_done(stack.api, run_id, timeout=60)
    took = time.monotonic() - start
    assert took < within, f"the run went on for {took:.1f}s: {r.status_code} {r.text[:300]}"
    error = failure(r, 500, "TIME_LIMIT_EXCEEDED")
    assert "time limit" in error.lower() or "TimeLimitExceeded" in error, error
    wait_for(lambda: stack.files(run_id) == [], 5, "the run's files to go")


@pytest.fixture(scope="class")
def soft_limited(tmp_path_factory, rdb, data) -> Iterator[Stack]:
    env = {"CELERY_SOFT_TIME_LIMIT": "1", "CELERY_TASK_TIME_LIMIT": "120"}
    root = tmp_path_factory.mktemp("soft")
    with stack_of(root, "q_soft", data.source_uri, env=env) as stack:
        yield stack


class TestSoftTimeLimit:
    def test_soft_limit(self, soft_limited: Stack, rdb, long_vcf, small_vcf):
        limit_exceeded(soft_limited, rdb, long_vcf, within=1 + 3)
        after = soft_limited.api.submit(small_vcf)
        r, _ = poll_until_done(soft_limited.api, after, timeout=30)
        assert r.status_code == 200, r.text

    def test_soft_limit_within_a_chunk_of_expensive_records(
        self, soft_limited: Stack, rdb, dense_vcf
    ):
        """All 1500 expensive records are one chunk of the core's work (~12 s): the soft
        limit of 1 s must still stop the run then, not after the chunk."""
        limit_exceeded(soft_limited, rdb, dense_vcf, within=1 + 3)


def test_hard_limit(tmp_path, rdb, data, long_vcf, small_vcf):
    """CELERY_TASK_TIME_LIMIT=2 with a larger soft limit: the hard limit kills the run."""
    env = {"CELERY_SOFT_TIME_LIMIT": "120", "CELERY_TASK_TIME_LIMIT": "2"}
    with stack_of(tmp_path, "q_hard", data.source_uri, env=env) as stack:
        limit_exceeded(stack, rdb, long_vcf, within=2 + 4)
        after = stack.api.submit(small_vcf)
        r, _ = poll_until_done(stack.api, after, timeout=30)
        assert r.status_code == 200, r.text


# --- re-queued after a lost pool process ------------------------------------------------------


@pytest.fixture(scope="class")
def requeueing(tmp_path_factory, rdb, data) -> Iterator[Stack]:
    env = {"CELERY_TASK_REJECT_ON_WORKER_LOST": "true"}
    root = tmp_path_factory.mktemp("requeue")
    with stack_of(root, "q_requeue", data.source_uri, env=env) as stack:
        yield stack


class TestRequeue:
    def test_lost_pool_process_requeues_the_run(self, requeueing: Stack, rdb, data, tmp_path):
        stack = requeueing
        vcf = data.slow_vcf("medium.vcf", 600, synthetic=200, seed=11)  # ~5 s
        with ThreadPoolExecutor(1) as pool:
            # The expected result, computed meanwhile (the core releases the GIL).
            expected = pool.submit(
                library_annotation, vcf, tmp_path / "expected.vcf", data.source_uri
            )
            worker = stack.workers[0]
            run_id = stack.api.submit(vcf, run_id="requeue-1")
            wait_status(rdb, run_id, ("running",))
            pid = task_pid(stack, worker.node, run_id)
            assert run_record(rdb, run_id)["status"] == "running"
            os.kill(pid, signal.SIGKILL)
            r, _ = poll_until_done(stack.api, run_id, timeout=90)
            assert r.status_code == 200, r.text
            assert worker.text().count(f"[{run_id}] received") >= 2, worker.text()
            assert data_lines(r.text) == data_lines(expected.result())

    def test_run_cancelled_while_its_pool_process_is_lost(self, requeueing: Stack, rdb, long_vcf):
        """Cancelled while running, and the process running it dies before it notices (frozen
        with SIGSTOP, then killed): the re-delivered run must end as cancelled, not stay
        pending."""
        stack = requeueing
        run_id = stack.api.submit(long_vcf, run_id="requeue-cancelled")
        wait_status(rdb, run_id, ("running",))
        pid = task_pid(stack, stack.workers[0].node, run_id)
        os.kill(pid, signal.SIGSTOP)
        try:
            assert stack.api.client.delete(f"/vcf/{run_id}").status_code == 200
        finally:
            os.kill(pid, signal.SIGKILL)
        r, _ = poll_until_done(stack.api, run_id, timeout=15)
        failure(r, 410, "RUN_CANCELLED")
        wait_for(lambda: stack.files(run_id) == [], 5, "the cancelled run's files to go")


# --- the solo pool, and finished runs expiring -------------------------------------------------


def test_solo_pool_and_expired_runs_are_swept(tmp_path, rdb, data: AsyncData, small_vcf):
    env = {"CELERY_RESULT_EXPIRES": "5"}
    with stack_of(
        tmp_path / "stack", "q_solo", data.source_uri, env=env, workers=[("solo", "solo", 1)]
    ) as stack:
        collected = stack.api.submit(small_vcf)
        uncollected = stack.api.submit(small_vcf)
        r, _ = poll_until_done(stack.api, collected, timeout=30)
        assert r.status_code == 200, r.text
        expected = library_annotation(small_vcf, tmp_path / "expected.vcf", data.source_uri)
        assert data_lines(r.text) == data_lines(expected)
        wait_status(rdb, uncollected, ("succeeded",))
        assert stack.files(collected) and stack.files(uncollected)

        wait_for(
            lambda: not stack.files(collected) and not stack.files(uncollected),
            30,
            "the expired runs' files to be swept",
            interval=0.5,
        )
        for run_id in (collected, uncollected):
            r = stack.api.client.get(f"/vcf/{run_id}")
            assert r.status_code == 404, r.text
            assert r.json()["status"] == "NOT_FOUND"


def test_queued_run_cancelled_with_no_worker_never_runs(tmp_path, rdb, data, small_vcf):
    """Cancelled before any worker runs; a worker started afterwards does not run it."""
    with stack_of(tmp_path / "stack", "q_noworker", data.source_uri, workers=[]) as stack:
        run_id = stack.api.submit(small_vcf, run_id="nobody-1")
        assert len(stack.files(run_id)) == 1
        assert stack.api.client.delete(f"/vcf/{run_id}").status_code == 200
        assert stack.files(run_id) == []
        worker = stack.add_worker("late")
        other = stack.api.submit(small_vcf, run_id="nobody-2")
        r, _ = poll_until_done(stack.api, other, timeout=30)
        assert r.status_code == 200, r.text
        assert "started_at" not in run_record(rdb, run_id)
        failure(stack.api.client.get(f"/vcf/{run_id}"), 410, "RUN_CANCELLED")
        assert stack.files(run_id) == []
        assert worker.alive()


def test_restarts_lose_no_finished_result(tmp_path, rdb, data: AsyncData, small_vcf):
    """Run state lives in Redis and files in the work dir: a new API and a new worker still
    serve a result finished (and not yet collected) before both were restarted."""
    with stack_of(tmp_path / "stack", "q_restart", data.source_uri) as stack:
        run_id = stack.api.submit(small_vcf, run_id="survives-restart")
        wait_status(rdb, run_id, ("succeeded",))
        stack.stop()
        assert not stack.api.alive()
        stack.api = start_api(stack.root, stack.env, name="api2")
        stack.add_worker("w2")
        r, _ = poll_until_done(stack.api, run_id, timeout=30)
        assert r.status_code == 200, r.text
        expected = library_annotation(small_vcf, tmp_path / "expected.vcf", data.source_uri)
        assert data_lines(r.text) == data_lines(expected)
        # The restarted worker runs new submissions too.
        other = stack.api.submit(small_vcf)
        r, _ = poll_until_done(stack.api, other, timeout=30)
        assert r.status_code == 200, r.text
