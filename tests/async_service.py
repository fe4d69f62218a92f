"""Helpers for the asynchronous-run tests: a real Redis database of the tests' own, real Celery
worker processes and real ``uvicorn`` API processes sharing a work directory, and inputs that
take a predictable time to annotate (no mocks anywhere)."""

from __future__ import annotations

import contextlib
import gzip
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import redis
from helpers import REPO

from anyvar import processes
from anyvar.processes import clean_env, free_port
from anyvar.synthetic import Reference, make_reference, write_fasta, write_vcf

REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('ANYVAR_TEST_REDIS_DB', '11')}"
"""The tests' own Redis database (flushed when the first stack starts); ANYVAR_TEST_REDIS_DB
picks another so that two test runs on one machine keep apart."""
WORKER_HOST = "anyvar-test"
BIN = Path(sys.executable).parent
CELERY = BIN / "celery"
CELERY_APP = "anyvar.queueing.celery_worker:celery_app"

ASYNC_MISSING = "Required modules and/or configurations for asynchronous VCF annotation are missing"


def in_use(run_id: str, status: str) -> str:
    return (
        f"An existing run with id {run_id} is {status}. "
        "Fetch the completed run result before submitting with the same run_id."
    )


# --- Redis ------------------------------------------------------------------------------------


def redis_client() -> redis.Redis:
    """A client of the tests' database; starts the machine's Redis (scripts/services.sh) when
    it is not running."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        client.ping()
    except redis.ConnectionError:
        subprocess.run(["bash", str(REPO / "scripts" / "services.sh")], check=True, timeout=120)
        client.ping()
    return client


def run_record(client: redis.Redis, run_id: str) -> dict[str, str]:
    """The run's record as the service keeps it in Redis (empty when there is none)."""
    return client.hgetall(f"anyvar:run:{run_id}")


def wait_for(
    predicate: Callable[[], object],
    timeout: float,
    what: str | Callable[[], str],
    interval: float = 0.05,
) -> object:
    """The first true value of ``predicate()``; fails after ``timeout`` seconds, saying
    ``what`` was awaited (a callable is asked only then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            awaited = what() if callable(what) else what
            pytest.fail(f"timed out after {timeout}s waiting for {awaited}")
        time.sleep(interval)


# --- processes --------------------------------------------------------------------------------


class Process(processes.Process):
    """A process of the test's stack (see ``anyvar.processes``), started with a clean
    environment; ``fail`` stops it and fails the test with its log."""

    @classmethod
    def start(cls, name: str, cmd: list, cwd: Path, env: dict[str, str]) -> Process:  # type: ignore[override]
        return super().start(name, cmd, cwd, clean_env(env))

    def fail(self, why: str) -> None:
        self.stop()
        pytest.fail(f"{self.name}: {why}\n--- log ---\n{self.tail()}")

    def ready_within(self, ready, timeout: float, what: str) -> None:
        try:
            self.wait_until(ready, timeout, what)
        except processes.ProcessError as e:
            self.stop()
            pytest.fail(str(e))


@dataclass
class Worker(Process):
    node: str = ""

    def wait_ready(self, timeout: float = 60) -> None:
        self.ready_within(lambda: f"{self.node} ready." in self.text(), timeout, "ready")

    def children(self) -> list[int]:
        """Pids of the pool's child processes (prefork)."""
        pids: list[int] = []
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                pids += [int(p) for p in (task / "children").read_text().split()]
        return pids

    def handled(self, run_id: str) -> bool:
        """Whether this worker's log shows it received the task of ``run_id``."""
        return f"[{run_id}] received" in self.text()


def start_worker(
    root: Path,
    env: dict[str, str],
    name: str,
    pool: str = "prefork",
    concurrency: int = 1,
    wait: bool = True,
) -> Worker:
    node = f"{name}@{WORKER_HOST}"
    cmd = [CELERY, "-A", CELERY_APP, "worker", f"--pool={pool}", "-n", node, "-l", "info"]
    if pool == "prefork":
        cmd.append(f"--concurrency={concurrency}")
    p = Process.start(f"worker-{name}", cmd, root, env)
    worker = Worker(p.name, p.proc, p.log, node)
    if wait:
        worker.wait_ready()
    return worker


@dataclass
class Api(Process):
    url: str = ""
    client: httpx.Client = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=120)

    def wait_ready(self, timeout: float = 60) -> None:
        probe = f"{self.url}/service-info"
        self.ready_within(lambda: processes.answers(probe), timeout, "answering")

    def stop(self) -> None:
        self.client.close()
        super().stop()

    # requests

    def put_vcf(
        self, data: bytes | Path, endpoint: str = "/vcf", filename: str = "input.vcf", **params
    ) -> httpx.Response:
        if isinstance(data, Path):
            data = data.read_bytes()
        params = {k: str(v).lower() if isinstance(v, bool) else v for k, v in params.items()}
        return self.client.put(
            endpoint, params=params, files={"vcf": (filename, data, "application/octet-stream")}
        )

    def submit(
        self, data: bytes | Path, endpoint: str = "/vcf", run_id: str | None = None, **params
    ) -> str:
        """Submits an async run, checks the documented 202 answer, returns the run id."""
        if run_id is not None:
            params["run_id"] = run_id
        r = self.put_vcf(data, endpoint, run_async=True, **params)
        return check_submitted(r, run_id)


def start_api(root: Path, env: dict[str, str], name: str = "api", wait: bool = True) -> Api:
    port = free_port()
    cmd = [BIN / "uvicorn", "anyvar.restapi.main:app"]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    p = Process.start(name, cmd, root, env)
    api = Api(p.name, p.proc, p.log, f"http://127.0.0.1:{port}")
    if wait:
        api.wait_ready()
    return api


def check_submitted(r: httpx.Response, run_id: str | None, prefix: str = "/vcf") -> str:
    assert r.status_code == 202, r.text
    body = r.json()
    got = body.get("run_id")
    assert isinstance(got, str) and got
    if run_id is not None:
        assert got == run_id
    assert body == {
        "run_id": got,
        "status": "PENDING",
        "status_message": f"Run submitted. Check status at {prefix}/{got}",
    }
    assert r.headers["location"] == f"{prefix}/{got}"
    assert re.fullmatch(r"[0-9]+", r.headers["retry-after"]), r.headers["retry-after"]
    assert int(r.headers["retry-after"]) >= 1
    return got


PENDING_KEYS = {
    "run_id",
    "status",
    "status_message",
    "state",
    "records_done",
    "records_total",
    "percent",
    "submitted_at",
}


def check_pending(r: httpx.Response, run_id: str, prefix: str = "/vcf") -> dict:
    """The documented 202 of a poll, with our progress fields."""
    assert r.status_code == 202, r.text
    assert re.fullmatch(r"[0-9]+", r.headers["retry-after"]), r.headers["retry-after"]
    assert int(r.headers["retry-after"]) >= 1
    body = r.json()
    assert PENDING_KEYS <= body.keys(), body
    assert body["run_id"] == run_id
    assert body["status"] == "PENDING"
    assert body["status_message"] == f"Run not completed. Check status at {prefix}/{run_id}"
    assert body["state"] in ("queued", "running")
    assert isinstance(body["records_done"], int) and body["records_done"] >= 0
    assert body["submitted_at"]
    return body


def poll_until_done(
    api: Api, run_id: str, timeout: float = 60, prefix: str = "/vcf", interval: float = 0.1
) -> tuple[httpx.Response, list[dict]]:
    """Polls until the run is no longer pending; returns the final answer and the 202
    bodies seen (each checked)."""
    pending: list[dict] = []
    deadline = time.monotonic() + timeout
    while True:
        r = api.client.get(f"{prefix}/{run_id}")
        if r.status_code != 202:
            return r, pending
        pending.append(check_pending(r, run_id, prefix))
        if time.monotonic() > deadline:
            pytest.fail(f"run {run_id} still pending after {timeout}s: {r.text}")
        time.sleep(interval)


# --- stacks -----------------------------------------------------------------------------------


@dataclass
class Stack:
    """An API and its workers on one queue of the tests' Redis database and one work dir."""

    root: Path
    env: dict[str, str]
    api: Api
    workers: list[Worker]
    extra: list[Process] = field(default_factory=list)

    @property
    def work_dir(self) -> Path:
        return Path(self.env["ANYVAR_VCF_ASYNC_WORK_DIR"])

    def add_worker(self, name: str, env: dict[str, str] | None = None, **kw) -> Worker:
        worker = start_worker(self.root, {**self.env, **(env or {})}, name, **kw)
        self.workers.append(worker)
        return worker

    def add_api(self, name: str, env: dict[str, str]) -> Api:
        api = start_api(self.root, {**self.env, **env}, name)
        self.extra.append(api)
        return api

    def files(self, run_id: str | None = None) -> list[Path]:
        """Files in the work dir (of ``run_id``: named after it)."""
        if not self.work_dir.exists():
            return []
        found = [p for p in self.work_dir.rglob("*") if p.is_file()]
        if run_id is not None:
            found = [p for p in found if p.name.split(".", 1)[0] == run_id]
        return sorted(found)

    def stop(self) -> None:
        for p in [self.api, *self.workers, *self.extra]:
            p.stop()

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name} ---\n{p.text()[-4000:]}" for p in [self.api, *self.workers, *self.extra]
        )


def start_stack(
    root: Path,
    queue: str,
    source_uri: str,
    storage_uri: str = "",
    env: dict[str, str] | None = None,
    workers: Iterable[tuple[str, str, int]] = (("w1", "prefork", 1),),
) -> Stack:
    """Starts an API and workers (name, pool, concurrency) concurrently with the common
    environment plus ``env``; each stack has its own queue and work dir."""
    root.mkdir(parents=True, exist_ok=True)
    work_dir = root / "work"
    work_dir.mkdir(exist_ok=True)
    common = {
        "SEQREPO_DATAPROXY_URI": source_uri,
        "ANYVAR_STORAGE_URI": storage_uri,
        "ANYVAR_CACHE_DIR": str(root / "cache"),
        "CELERY_BROKER_URL": REDIS_URL,
        "CELERY_BACKEND_URL": REDIS_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "ANYVAR_VCF_ASYNC_WORK_DIR": str(work_dir),
        "ANYVAR_THREADS": "1",
        "TMPDIR": str(root),
        **(env or {}),
    }
    started: list[Process] = []
    try:
        api = start_api(root, common, wait=False)
        started.append(api)
        ws = []
        for name, pool, concurrency in workers:
            ws.append(start_worker(root, common, name, pool, concurrency, wait=False))
            started.append(ws[-1])
        api.wait_ready()
        for w in ws:
            w.wait_ready()
    except BaseException:
        for p in started:
            p.stop()
        raise
    return Stack(root, common, api, ws)


# --- inputs -----------------------------------------------------------------------------------

HOMOPOLYMER = 2_000_000
"""Length of the run of ``A`` on ``chrH``: normalising an insertion of one more ``A`` rolls
across all of it, so each such record costs milliseconds of real work (a slow run without
mocks, and without a big file)."""
FLANK = 1000


@dataclass
class AsyncData:
    fasta: Path
    source_uri: str
    reference: Reference
    directory: Path

    def slow_vcf(
        self, name: str, records: int, synthetic: int = 0, seed: int = 1, pad: int = 0
    ) -> Path:
        """``records`` insertions into the homopolymer of ``chrH`` (distinct positions), after
        ``synthetic`` generated records over the other contigs. ``pad`` lengthens each of
        their IDs so that few share a chunk of the core's work (without it, all of them are
        one chunk). Gzip-compressed when ``name`` ends in ``.gz``."""
        path = self.directory / name
        contigs = Reference(
            {n: s for n, s in self.reference.contigs.items() if n != "chrH"},
            {n: r for n, r in self.reference.repeats.items() if n != "chrH"},
        )
        if synthetic:
            write_vcf(contigs, path, synthetic, seed=seed, unknown_contig=False)
            lines = path.read_text().splitlines(keepends=True)
        else:
            lines = ["##fileformat=VCFv4.2\n", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"]
        header = [line for line in lines if line.startswith("#")]
        body = [line for line in lines if not line.startswith("#")]
        contig_line = f"##contig=<ID=chrH,length={len(self.reference.contigs['chrH'])}>\n"
        header.insert(1, contig_line)
        columns = header[-1].rstrip("\n").split("\t")
        rng = random.Random(seed)
        step = HOMOPOLYMER // max(1, records)
        for i in range(records):
            pos = FLANK + 2 + i * step + rng.randrange(max(1, step - 1))
            row = ["chrH", str(pos), f"h{i}" + "_" * pad, "A", "AA", ".", "PASS", "."]
            if len(columns) > 8:
                row += ["GT", "0/1"]
            body.append("\t".join(row) + "\n")
        text = "".join(header + body).encode()
        path.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
        return path


def make_async_data(directory: Path) -> AsyncData:
    directory.mkdir(parents=True, exist_ok=True)
    reference = make_reference({"chr1": 60_000, "chr2": 40_000, "chr3": 20_000}, seed=5)
    rng = random.Random(9)
    flank = "".join(rng.choices("ACGT", k=FLANK))
    reference.contigs["chrH"] = flank + "A" * HOMOPOLYMER + flank
    reference.repeats["chrH"] = [(FLANK, FLANK + HOMOPOLYMER)]
    fasta = write_fasta(reference, directory / "ref.fa")
    return AsyncData(fasta, f"fasta+file://{fasta}?assembly=GRCh38", reference, directory)


# --- results ----------------------------------------------------------------------------------


def data_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def allele_ids(text: str) -> list[str]:
    """The VRS_Allele_IDs value of each data line ("" when absent)."""
    out = []
    for line in data_lines(text):
        info = line.split("\t")[7]
        found = re.search(r"(?:^|;)VRS_Allele_IDs=([^;]*)", info)
        out.append(found.group(1) if found else "")
    return out


def library_annotation(vcf: Path, out: Path, source_uri: str) -> str:
    """What ``anyvar.annotate_vcf`` writes for the REST defaults."""
    import anyvar

    anyvar.annotate_vcf(vcf, out, dataproxy_uri=source_uri, threads=1)
    return out.read_text()
