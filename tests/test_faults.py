"""A fault campaign kept as tests: a real uvicorn API, real Celery prefork workers, and a Redis
and a PostgreSQL that this module starts itself on free ports (so that it may kill them).

Every scenario checks the same things besides its own end state: no traceback of ours in any
process log, no file left in the work directory or TMPDIR, every allele of a finished run
retrievable with ``GET /object``, ``GET /service-info`` answering within a second throughout
(polled from a process of its own), and the API alive afterwards."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from async_service import (
    AsyncData,
    Stack,
    allele_ids,
    data_lines,
    free_port,
    make_async_data,
    poll_until_done,
    start_api,
    start_stack,
    wait_for,
)

import anyvar
from anyvar import processes

PG_BIN = Path("/usr/lib/postgresql/15/bin")


# --- a Redis and a PostgreSQL of our own --------------------------------------------------------


@dataclass
class RedisServer:
    """redis-server on a port of its own, with an append-only file synced at every write (a
    restarted Redis has every run record it acknowledged)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: processes.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        cmd += ["--dir", str(self.directory), "--appendonly", "yes", "--appendfsync", "always"]
        cmd += ["--save", "", "--protected-mode", "no"]
        log = self.directory / f"redis-{time.monotonic_ns()}.log"  # one per start
        self.process = processes.Process.start("redis", cmd, self.directory, dict(os.environ), log)
        client = redis.Redis.from_url(self.url)

        def up() -> bool:
            try:
                return bool(client.ping())
            except redis.ConnectionError:
                return False

        self.process.wait_until(up, 20, f"answering on port {self.port}")
        client.close()

    def kill(self) -> None:
        assert self.process is not None
        self.process.stop()


@dataclass
class PostgresServer:
    """A PostgreSQL 15 cluster of our own (user postgres, trust authentication), in a
    directory owned by postgres (pytest's tmp dirs are not readable by it)."""

    directory: Path
    port: int = field(default_factory=free_port)

    @property
    def uri(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/anyvar"

    def _as_postgres(self, *cmd: str | Path) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *map(str, cmd)],
            check=True,
            capture_output=True,
            timeout=120,
        )

    def init(self) -> None:
        shutil.chown(self.directory, "postgres", "postgres")
        self._as_postgres(PG_BIN / "initdb", "-D", self.directory / "data", "-A", "trust")
        self._as_postgres(PG_BIN / "initdb", "--version")
        self.start()
        self._as_postgres(
            PG_BIN / "psql", "-h", "127.0.0.1", "-p", self.port, "-c", "CREATE DATABASE anyvar"
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        options += f" -c unix_socket_directories={self.directory}"
        self._as_postgres(
            PG_BIN / "pg_ctl", "-D", self.directory / "data", "-l", self.directory / "pg.log",
            "-o", options, "-w", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(PG_BIN / "pg_ctl", "-D", self.directory / "data", "-m", mode, "stop")


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("faults-redis"))
    server.start()
    try:
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.kill()


@pytest.fixture(scope="module")
def own_pg() -> Iterator[PostgresServer]:
    server = PostgresServer(Path(tempfile.mkdtemp(prefix="anyvar-faults-pg-", dir="/tmp")))
    try:
        server.init()
        yield server
    finally:
        with contextlib.suppress(Exception):
            server.stop("immediate")
        shutil.rmtree(server.directory, ignore_errors=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> AsyncData:
    return make_async_data(tmp_path_factory.mktemp("faults-data"))


@pytest.fixture(scope="module")
def stack(tmp_path_factory, own_redis, own_pg, data) -> Iterator[Stack]:
    """One API and two single-process workers on our Redis, storing in our PostgreSQL."""
    root = tmp_path_factory.mktemp("faults")
    stack = start_stack(
        root,
        "q_faults",
        data.source_uri,
        storage_uri=own_pg.uri,
        env={"CELERY_BROKER_URL": own_redis.url, "CELERY_BACKEND_URL": own_redis.url},
        workers=[("a", "prefork", 1), ("b", "prefork", 1)],
    )
    try:
        yield stack
    finally:
        stack.stop()


# --- what every scenario checks -------------------------------------------------------------------


def _poll_service_info(url, paused, done, results) -> None:
    """``Latency``'s poller, in a process of its own (see there)."""
    worst, answers, bad = 0.0, 0, []
    while not done.is_set():
        if paused.is_set():
            time.sleep(0.05)
            continue
        started = time.monotonic()
        try:
            r = httpx.get(f"{url.value.decode()}/service-info", timeout=5)
            if not paused.is_set():
                worst, answers = max(worst, time.monotonic() - started), answers + 1
                if r.status_code != 200:
                    bad.append(f"{r.status_code} {r.text[:200]}")
        except httpx.HTTPError as e:
            if not paused.is_set():
                bad.append(repr(e))
        time.sleep(0.05)
    results.put((worst, answers, bad))


class Latency:
    """Polls ``GET /service-info`` of the stack's API every 50 ms and keeps the slowest
    answer; ``pause()`` while the API restarts, then ``resume()`` follows the new one. The
    poller is a process of its own: a thread of the test's process would wait for the GIL
    its client threads hold, and time that instead of the API."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        ctx = multiprocessing.get_context("spawn")
        self.url = ctx.Array("c", 256)
        self.paused, self.done, self.results = ctx.Event(), ctx.Event(), ctx.Queue()
        self.process = ctx.Process(
            target=_poll_service_info,
            args=(self.url, self.paused, self.done, self.results),
            daemon=True,
        )

    def pause(self) -> None:
        self.paused.set()

    def resume(self) -> None:
        self.url.value = self.stack.api.url.encode()
        self.paused.clear()

    def __enter__(self) -> Latency:
        self.url.value = self.stack.api.url.encode()
        self.process.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        worst, answers, bad = self.results.get(timeout=30)
        self.process.join(10)
        if exc[0] is None:
            assert not bad, bad[:5]
            assert answers > 0
            assert worst < 1.0, f"GET /service-info took {worst:.2f}s"


# Celery reporting, in its own code, the fault we caused (a lost broker connection, a killed
# pool process): allowed in a worker's log, as long as no frame of ours is in it.
OUR_FRAME = re.compile(rf'File "{re.escape(str(Path(anyvar.__file__).parent))}/')
"""A traceback frame in our package (not merely under a directory named anyvar: CI's clone
lives in one, and so do the virtualenv's Celery frames)."""
CELERY_OWN = re.compile(
    r"WorkerLostError|ConnectionRefusedError|redis\.exceptions\.ConnectionError"
)


def check_logs(stack: Stack) -> None:
    """No traceback in an API's log; in a worker's, only Celery's own report of a fault."""
    for p in [stack.api, *stack.workers, *stack.extra]:
        text = p.text()
        # One block per log record (Celery's start with their time), a chained traceback whole.
        blocks = [b for b in re.split(r"\n(?=\[\d{4}-)", text) if "Traceback (most" in b]
        if p.name.startswith("api"):
            assert not blocks, f"{p.name}: a traceback\n{blocks[0][-3000:]}"
        for block in blocks:
            ours = OUR_FRAME.search(block)
            assert not ours and CELERY_OWN.search(block), f"{p.name}: a traceback\n{block[-3000:]}"


def leftovers(stack: Stack) -> list[Path]:
    """Temporary files of ours in TMPDIR (the stack's root) and every file in the work dir."""
    found = [p for p in stack.root.iterdir() if p.name.startswith(("anyvar-", ".anyvar-"))]
    return found + stack.files()


def collect(stack: Stack, run_ids: list[str]) -> None:
    """Removes the runs' results (DELETE) and checks that nothing is left behind."""
    for run_id in run_ids:
        assert stack.api.client.delete(f"/vcf/{run_id}").status_code == 200
    wait_for(lambda: leftovers(stack) == [], 10, lambda: f"no leftovers: {leftovers(stack)}")


def ids_of(text: str) -> set[str]:
    return {i for entry in allele_ids(text) for i in entry.split(",") if i.startswith("ga4gh:VA.")}


def check_retrievable(stack: Stack, text: str) -> None:
    """Every allele id of a finished run's output is registered."""
    ids = sorted(ids_of(text))
    assert ids
    with httpx.Client(base_url=stack.api.url, timeout=30) as client:
        for allele_id in ids:
            r = client.get(f"/object/{allele_id}")
            assert r.status_code == 200, (allele_id, r.status_code, r.text)


def check_alive(stack: Stack) -> None:
    assert stack.api.alive()
    assert stack.api.client.get("/service-info", timeout=1).status_code == 200


def sync_reference(stack: Stack, vcf: Path) -> str:
    r = stack.api.put_vcf(vcf)
    assert r.status_code == 200, r.text
    return r.text


def wait_state(stack: Stack, run_id: str, states: tuple[str, ...], timeout: float = 60) -> None:
    client = redis.Redis.from_url(stack.env["CELERY_BACKEND_URL"], decode_responses=True)
    try:
        wait_for(
            lambda: client.hget(f"anyvar:run:{run_id}", "status") in states,
            timeout,
            f"run {run_id} to be {states}",
        )
    finally:
        client.close()


# --- 1. Redis killed mid-run --------------------------------------------------------------------


def unavailable(r: httpx.Response, code: str) -> str:
    """A clear 503: JSON naming what is down, never a traceback."""
    assert r.status_code == 503, (r.status_code, r.text[:300])
    body = r.json()
    assert body["error_code"] == code, body
    return body["error"]


def test_redis_killed_mid_run_and_restarted(stack: Stack, own_redis: RedisServer, data):
    """Redis (with its append-only file) is SIGKILLed while a run is annotating and started
    again on the same port 2 s later: polls and submissions meanwhile are 503
    RUN_STORE_UNAVAILABLE; the run goes on (its progress is not reported meanwhile) and ends
    with the same output as a sync run."""
    vcf = data.slow_vcf("redis.vcf", 400, synthetic=200, seed=21)  # about 3 s of work
    expected = sync_reference(stack, vcf)
    with Latency(stack):
        run_id = stack.api.submit(vcf)
        wait_state(stack, run_id, ("running",))
        time.sleep(0.5)
        own_redis.kill()
        for _ in range(4):
            error = unavailable(stack.api.client.get(f"/vcf/{run_id}"), "RUN_STORE_UNAVAILABLE")
            assert "CELERY_BACKEND_URL" in error, error
            time.sleep(0.25)
        unavailable(stack.api.put_vcf(vcf, run_async=True), "RUN_STORE_UNAVAILABLE")
        unavailable(stack.api.client.get("/runs"), "RUN_STORE_UNAVAILABLE")
        # Sync runs need no Redis.
        assert data_lines(sync_reference(stack, vcf)) == data_lines(expected)
        own_redis.start()
        r, _ = poll_until_done(stack.api, run_id, timeout=90)
        assert r.status_code == 200, r.text
        assert data_lines(r.text) == data_lines(expected)
        check_retrievable(stack, r.text)
        # New runs are taken after the restart.
        again = stack.api.submit(vcf)
        r, _ = poll_until_done(stack.api, again, timeout=90)
        assert r.status_code == 200 and data_lines(r.text) == data_lines(expected), r.text
    collect(stack, [run_id, again])
    check_logs(stack)
    check_alive(stack)


# --- 2. PostgreSQL stopped mid-registration -------------------------------------------------------


def test_postgres_stopped_mid_registration_and_restarted(stack: Stack, own_pg, data, tmp_path):
    """PostgreSQL is stopped (fast shutdown: connections cut) while a sync and an async run
    are registering: the sync request answers 503 STORAGE_ERROR naming the storage, the async
    run fails with the same code, lookups meanwhile are 503 too; once PostgreSQL is back the
    same requests succeed and every allele of theirs is retrievable."""
    vcf = data.slow_vcf("pg.vcf", 300, synthetic=3000, seed=31)  # about 3 s with storage
    probe = stack.api.put_vcf(data.slow_vcf("probe.vcf", 0, synthetic=20, seed=32))
    assert probe.status_code == 200, probe.text
    known = sorted(ids_of(probe.text))[0]
    with Latency(stack), ThreadPoolExecutor(1) as pool:
        run_id = stack.api.submit(vcf)
        sync = pool.submit(stack.api.put_vcf, vcf)
        wait_state(stack, run_id, ("running",))
        time.sleep(1.0)
        assert not sync.done(), "the sync run ended before the fault"
        own_pg.stop("fast")
        try:
            r = sync.result(timeout=60)
            error = unavailable(r, "STORAGE_ERROR")
            assert error.startswith("Storage unavailable: "), error
            r, _ = poll_until_done(stack.api, run_id, timeout=60)
            assert r.status_code == 500, r.text
            body = r.json()
            assert body["error_code"] == "STORAGE_ERROR", body
            assert body["error"].startswith("Storage unavailable: "), body
            unavailable(stack.api.client.get(f"/object/{known}"), "STORAGE_ERROR")
        finally:
            own_pg.start()
        # The same requests again, after the restart: done, and every allele stored.
        r = stack.api.put_vcf(vcf)
        assert r.status_code == 200, r.text
        expected = r.text
        again = stack.api.submit(vcf)
        r, _ = poll_until_done(stack.api, again, timeout=60)
        assert r.status_code == 200, r.text
        assert data_lines(r.text) == data_lines(expected)
        check_retrievable(stack, expected)
    collect(stack, [run_id, again])
    check_logs(stack)
    check_alive(stack)


# --- 3. a worker's pool process SIGKILLed mid-run (one task, no fan-out) ------------------------


def kill_runner(stack: Stack, run_id: str) -> None:
    """SIGKILLs the pool process of the worker that received the run, once it annotates."""
    wait_state(stack, run_id, ("running",))
    worker = wait_for(
        lambda: next((w for w in stack.workers if w.handled(run_id)), None),
        10,
        "a worker to receive the run",
    )
    (pid,) = worker.children()
    time.sleep(0.5)
    os.kill(pid, signal.SIGKILL)


def test_a_killed_worker_fails_the_run(stack: Stack, data):
    """CELERY_TASK_REJECT_ON_WORKER_LOST=false (the default): the run fails with
    WORKER_LOST_ERROR, its files go, and the worker takes the next run."""
    vcf = data.slow_vcf("lost.vcf", 400, synthetic=200, seed=41)
    with Latency(stack):
        run_id = stack.api.submit(vcf)
        kill_runner(stack, run_id)
        r, _ = poll_until_done(stack.api, run_id, timeout=60)
        assert r.status_code == 500, r.text
        assert r.json()["error_code"] == "WORKER_LOST_ERROR", r.text
        assert stack.files(run_id) == []
        after = stack.api.submit(vcf)
        r, _ = poll_until_done(stack.api, after, timeout=60)
        assert r.status_code == 200, r.text
        check_retrievable(stack, r.text)
    collect(stack, [run_id, after])
    check_logs(stack)
    check_alive(stack)


def test_a_killed_worker_requeues_the_run(stack: Stack, data):
    """CELERY_TASK_REJECT_ON_WORKER_LOST=true (an API and a worker on a queue of their own):
    the run is delivered again and ends with the output of an uninterrupted run."""
    env = {
        "CELERY_TASK_DEFAULT_QUEUE": "q_faults_requeue",
        "CELERY_TASK_REJECT_ON_WORKER_LOST": "1",
    }
    vcf = data.slow_vcf("requeue.vcf", 400, synthetic=200, seed=42)
    expected = sync_reference(stack, vcf)
    api = stack.add_api("api-requeue", env)
    worker = stack.add_worker("requeue", env)
    run_id = api.submit(vcf)
    with Latency(stack):
        kill_runner(Stack(stack.root, stack.env, api, [worker]), run_id)
        r, _ = poll_until_done(api, run_id, timeout=90)
        assert r.status_code == 200, r.text
        assert worker.text().count(f"[{run_id}] received") == 2
        assert data_lines(r.text) == data_lines(expected)
        check_retrievable(stack, r.text)
    assert api.client.delete(f"/vcf/{run_id}").status_code == 200
    wait_for(lambda: leftovers(stack) == [], 10, lambda: f"no leftovers: {leftovers(stack)}")
    check_logs(stack)
    check_alive(stack)
    assert api.alive()


# --- 4. the API restarted while runs are pending ----------------------------------------------


def test_api_restarted_while_runs_are_pending(stack: Stack, data):
    """SIGTERM to the API while runs are queued and running, then a new API process: the runs
    complete, and polls of the new API return their results."""
    vcfs = [data.slow_vcf(f"restart{i}.vcf", 150, synthetic=200, seed=50 + i) for i in range(4)]
    expected = [sync_reference(stack, v) for v in vcfs]
    with Latency(stack) as latency:
        run_ids = [stack.api.submit(v) for v in vcfs]
        wait_state(stack, run_ids[0], ("running",))
        latency.pause()
        old = stack.api
        old.proc.send_signal(signal.SIGTERM)
        # A graceful stop; recent uvicorn then exits by the signal it caught.
        assert old.proc.wait(timeout=30) in (0, -signal.SIGTERM)
        assert "Finished server process" in old.text()
        stack.extra.append(old)
        stack.api = start_api(stack.root, stack.env, name="api-restarted")
        latency.resume()
        for run_id, text in zip(run_ids, expected, strict=True):
            r, _ = poll_until_done(stack.api, run_id, timeout=90)
            assert r.status_code == 200, r.text
            assert data_lines(r.text) == data_lines(text)
            check_retrievable(stack, r.text)
    collect(stack, run_ids)
    check_logs(stack)
    check_alive(stack)


# --- 5. twenty concurrent clients -------------------------------------------------------------


def test_twenty_concurrent_clients(stack: Stack, data):
    """Ten sync PUT /vcf and ten async submissions with their polls, at once, over four
    files: every client gets the ids of a single sync run of its file."""
    vcfs = [data.slow_vcf(f"client{i}.vcf", 20, synthetic=600, seed=70 + i) for i in range(4)]
    expected = [data_lines(sync_reference(stack, v)) for v in vcfs]
    run_ids: list[str] = []

    def client(i: int) -> None:
        vcf, want = vcfs[i % 4], expected[i % 4]
        with httpx.Client(base_url=stack.api.url, timeout=120) as c:
            files = {"vcf": ("input.vcf", vcf.read_bytes())}
            if i % 2 == 0:
                r = c.put("/vcf", files=files)
            else:
                r = c.put("/vcf", params={"run_async": "true"}, files=files)
                assert r.status_code == 202, r.text
                run_id = r.json()["run_id"]
                run_ids.append(run_id)
                deadline = time.monotonic() + 120
                while (r := c.get(f"/vcf/{run_id}")).status_code == 202:
                    assert time.monotonic() < deadline, r.text
                    time.sleep(0.2)
            assert r.status_code == 200, r.text
            assert data_lines(r.text) == want, i

    with Latency(stack), ThreadPoolExecutor(20) as pool:
        for f in [pool.submit(client, i) for i in range(20)]:
            f.result()
    assert len(run_ids) == 10
    for vcf in vcfs:
        check_retrievable(stack, stack.api.put_vcf(vcf).text)
    collect(stack, run_ids)
    check_logs(stack)
    check_alive(stack)
