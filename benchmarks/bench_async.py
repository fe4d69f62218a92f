"""Benchmark asynchronous runs (``PUT /vcf?run_async=true``, then ``GET /vcf/{id}``) end to end.

Run with the project's interpreter (it finds ``uvicorn``, ``celery`` and ``anyvar`` beside it);
Redis must be listening on 127.0.0.1:6379 (``scripts/services.sh`` starts it)::

    .venv/bin/python benchmarks/bench_async.py                      # 1,000,000 records
    .venv/bin/python benchmarks/bench_async.py --records 50000 --concurrent 4 --json out.json
    .venv/bin/python benchmarks/bench_async.py --skip-anyvar --concurrent 0

What it does:

* generates (or reuses) the synthetic reference, VCF, bgzipped VCF and SeqRepo instance of
  ``bench_annotate.py`` (its ``prepare``: ``--workdir``, keyed by ``--records``/``--seed``);
* starts our stack: Redis database ``--db`` (default 14, FLUSHDB first and last), one API
  (``uvicorn anyvar.restapi.main:app``) and Celery workers
  (``celery -A anyvar.queueing.celery_worker:celery_app worker --pool=prefork --concurrency=1``),
  with ``SEQREPO_DATAPROXY_URI`` on the generated SeqRepo, ``ANYVAR_STORAGE_URI=""``
  (annotation only: nothing is registered) and ``ANYVAR_VCF_ASYNC_WORK_DIR`` in a temporary
  directory;
* every run is a client doing what the README says: ``PUT /vcf?run_async=true`` (the file
  streamed as the multipart field ``vcf``, default parameters), then ``GET`` on the returned
  ``Location`` until 200, sleeping ``min(Retry-After, --poll-interval)`` (0.2 s) between polls,
  then the result streamed to disk. "Seconds" is the client's wall time from the start of the
  upload to the last byte of the result;
* (1) one worker: the whole bgzipped file (``--records``), and ``anyvar annotate`` on the same
  file for reference;
* (2) one worker, warmed up: a ``--small-records`` (1,000) record file ``--repeats`` (5) times,
  each time the CLI (a fresh process) and then the async path; the overhead is the median of
  (async seconds - CLI seconds);
* (3) a second worker process is started; ``--concurrent`` (20) submissions of
  ``--chunk-records`` (10,000) record files (distinct consecutive pieces of the VCF while the
  file has enough records) at once, from as many client threads; every result's
  ``VRS_Allele_IDs`` must equal the CLI's on the same piece;
* (4) AnyVar 1.0 (``bench_service.py``'s virtualenv ``benchmarks/data/anyvar10-venv``): its API
  and its worker (``celery -A anyvar.queueing.celery_worker:celery_app worker --pool=prefork
  --concurrency=1``) on Redis database ``--anyvar-db`` (13), its own work directory, also with
  ``ANYVAR_STORAGE_URI=""`` (its ``NoObjectStore``: annotation only, like ours), one warm-up run
  and then a ``--anyvar-slice`` (10,000) record VCF; its ``Location`` is followed the same way.

Every process and temporary directory is removed again, also on errors and on Ctrl-C. Logs
stay in ``<workdir>/async/``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import httpx
import redis
from bench_annotate import BIN, REPO, log, prepare, write_slice
from bench_service import (
    REQUEST_TIMEOUT,
    UVICORN,
    BenchError,
    _die_with_parent,
    anyvar10_venv,
    clean_env,
    count_records,
    log_tail,
    server,
    verdict,
)

from anyvar import processes
from anyvar.config import available_cores

ANYVAR = BIN / "anyvar"
CELERY = BIN / "celery"
CELERY_APP = "anyvar.queueing.celery_worker:celery_app"
PARAMS = {"for_ref": "true", "add_vrs_attributes": "false", "allow_async_write": "false"}
"""The default parameters, spelled out (both services have the same defaults)."""
OVERHEAD_TARGET = 0.5
"""Seconds: median (async submit-to-result - CLI) on the small file."""
WORKER_STARTUP_TIMEOUT = 120.0


# --------------------------------------------------------------------------------------------
# processes


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen
    log_path: Path


@contextlib.contextmanager
def worker(
    name: str, celery: Path, node: str, env: dict[str, str], cwd: Path, log_path: Path
) -> Iterator[Worker]:
    """A Celery worker (prefork, concurrency 1) until the block ends; ready when its log says
    ``<node> ready.``."""
    if not celery.exists():
        raise BenchError(f"{celery} not found")
    cmd = [str(celery), "-A", CELERY_APP, "worker", "--pool=prefork", "--concurrency=1"]
    cmd += ["-n", node, "-l", "info"]
    # In `cwd` (no .env there: only `env` configures the worker), in a session of its own:
    # stopped with its prefork children (SIGTERM is a warm shutdown; then its group is killed).
    p = processes.Process.start(name, cmd, cwd, env, log_path, preexec_fn=_die_with_parent)
    host_free = node.split("@", 1)[0] + "@"

    def ready() -> bool:
        return any(host_free in line and " ready." in line for line in p.text().splitlines())

    try:
        try:
            p.wait_until(ready, WORKER_STARTUP_TIMEOUT)
        except processes.ProcessError as e:
            raise BenchError(str(e)) from None
        yield Worker(name, p.proc, log_path)
    finally:
        p.stop(grace=20)


def flush_redis(url: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    except redis.ConnectionError as e:
        raise BenchError(f"Redis at {url} is not reachable ({e}); start it first") from None
    finally:
        client.close()


# --------------------------------------------------------------------------------------------
# the client


@dataclass
class AsyncRun:
    label: str
    records: int
    seconds: float
    """From the start of the upload to the last byte of the result."""
    submit_seconds: float
    """Upload until the 202 answer."""
    polls: int
    retry_after: float
    """The ``Retry-After`` of the 202 answer to the submission."""
    running_after: float | None
    """Ours only: seconds until the first poll that said ``running`` (None: never seen)."""
    records_out: int
    bytes_out: int
    location: str
    start_epoch: float
    """``time.time()`` at the start of the upload (to place the server's timestamps)."""
    phases: dict[str, float] | None = None
    """Ours only, from the run's record in Redis (see ``add_phases``)."""

    @property
    def rate(self) -> float:
        return self.records / max(self.seconds, 1e-9)

    @property
    def run_id(self) -> str:
        return self.location.rstrip("/").rsplit("/", 1)[-1]


class LineCounter:
    """Counts the data lines of a VCF streamed in chunks."""

    def __init__(self) -> None:
        self.newlines = self.header_lines = self.size = 0
        self.prev = b"\n"

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        self.newlines += chunk.count(b"\n")
        self.header_lines += chunk.count(b"\n#") + (self.prev == b"\n" and chunk[:1] == b"#")
        self.prev = chunk[-1:]

    @property
    def records(self) -> int:
        return self.newlines + (self.prev != b"\n") - self.header_lines


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "1")))
    except ValueError:  # an HTTP date: not sent by either service
        return 1.0


def _body(response: httpx.Response) -> str:
    return response.read().decode(errors="replace")[:2000]


def run_async(
    base_url: str,
    vcf: Path,
    records: int,
    label: str,
    out: Path | None = None,
    max_interval: float = 0.2,
) -> AsyncRun:
    """Submit ``vcf``, poll its ``Location`` honouring ``Retry-After`` but at least every
    ``max_interval`` seconds, stream the result to ``out`` (or count and discard it)."""
    params = {**PARAMS, "run_async": "true"}
    counter = LineCounter()
    polls = 0
    running_after = None
    with (
        httpx.Client(timeout=REQUEST_TIMEOUT) as client,
        vcf.open("rb") as f,
        out.open("wb") if out is not None else contextlib.nullcontext() as sink,
    ):
        start_epoch = time.time()
        start = time.perf_counter()
        r = client.put(
            f"{base_url}/vcf",
            params=params,
            files={"vcf": (vcf.name, f, "application/octet-stream")},
        )
        submit_seconds = time.perf_counter() - start
        if r.status_code != 202:
            raise BenchError(
                f"{label}: PUT /vcf?run_async=true answered {r.status_code}: {_body(r)}"
            )
        location = r.headers.get("location")
        if not location:
            raise BenchError(f"{label}: the 202 answer has no Location header: {dict(r.headers)}")
        url = urljoin(base_url + "/", location)
        first_retry = wait = _retry_after(r)
        while True:
            time.sleep(min(wait, max_interval))
            polls += 1
            with client.stream("GET", url) as resp:
                if resp.status_code == 202:
                    wait = _retry_after(resp)
                    body = resp.read()
                    if running_after is None:
                        with contextlib.suppress(ValueError, AttributeError):
                            if json.loads(body).get("state") == "running":
                                running_after = time.perf_counter() - start
                    continue
                if resp.status_code != 200:
                    raise BenchError(
                        f"{label}: GET {location} answered {resp.status_code}: {_body(resp)}"
                    )
                for chunk in resp.iter_bytes(1 << 20):
                    counter.feed(chunk)
                    if sink is not None:
                        sink.write(chunk)
                break
        seconds = time.perf_counter() - start
    return AsyncRun(
        label, records, seconds, submit_seconds, polls, first_retry, running_after,
        counter.records, counter.size, location, start_epoch,
    )  # fmt: skip


def add_phases(redis_url: str, run: AsyncRun) -> None:
    """Splits one of our runs with the timestamps of its record (``anyvar:run:<id>``): upload
    and submission (until ``submitted_at``), queue (until the worker's ``started_at``),
    annotation (until ``finished_at``) and the client's remaining wait plus download (until
    the last byte; with a 0.2 s poll interval up to 0.2 s of it is the poll schedule)."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        record = client.hgetall(f"anyvar:run:{run.run_id}")
    finally:
        client.close()
    try:
        submitted, started, finished = (
            float(record[k]) for k in ("submitted_at", "started_at", "finished_at")
        )
    except (KeyError, ValueError):
        return
    end = run.start_epoch + run.seconds
    run.phases = {
        "submit": submitted - run.start_epoch,
        "queue": started - submitted,
        "annotate": finished - started,
        "poll_and_download": end - finished,
        "ready_after": finished - run.start_epoch,
    }


def phases_text(run: AsyncRun) -> str:
    ph = run.phases
    if not ph:
        return "no run record"
    return (
        f"upload+submit {ph['submit']:.3f} s, queue {ph['queue']:.3f} s, annotate "
        f"{ph['annotate']:.3f} s, poll+download {ph['poll_and_download']:.3f} s"
    )


def run_cli(src: Path, dst: Path, seqrepo_uri: str, log_path: Path) -> float:
    """``anyvar annotate`` (default threads: all cores); wall seconds of the process."""
    cmd = [str(ANYVAR), "annotate", str(src), "-o", str(dst), "--dataproxy-uri", seqrepo_uri]
    cmd.append("-q")
    env = clean_env(ANYVAR_STORAGE_URI="")
    with log_path.open("wb") as out:
        start = time.perf_counter()
        code = subprocess.call(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        seconds = time.perf_counter() - start
    if code != 0:
        raise BenchError(f"`{' '.join(cmd)}` exited {code}:\n{log_tail(log_path)}")
    return seconds


# --------------------------------------------------------------------------------------------
# inputs and correctness


def write_chunks(vcf: Path, outdir: Path, size: int, count: int) -> list[tuple[Path, int]]:
    """The header plus consecutive pieces of ``size`` data lines: ``count`` pieces at most, as
    many as the file has whole pieces (one shorter piece when it has none). One pass."""
    header: list[str] = []
    chunks: list[tuple[Path, int]] = []
    dst = None
    path = outdir / "chunk-000.vcf"
    written = 0
    try:
        with vcf.open() as src:
            for line in src:
                if line.startswith("#"):
                    header.append(line)
                    continue
                if dst is None:
                    if len(chunks) == count:
                        break
                    path = outdir / f"chunk-{len(chunks):03d}.vcf"
                    dst = path.open("w")
                    dst.writelines(header)
                    written = 0
                dst.write(line)
                written += 1
                if written == size:
                    dst.close()
                    dst = None
                    chunks.append((path, size))
    finally:
        if dst is not None:  # a shorter last piece: used only when there is no whole one
            dst.close()
            if chunks:
                path.unlink()
            else:
                chunks.append((path, written))
    return chunks


def allele_ids(path: Path) -> Iterator[tuple[list[str], str | None]]:
    """(CHROM..ALT, VRS_Allele_IDs or None) per data line."""
    with path.open() as f:
        for line in f:
            if line.startswith("#"):
                continue
            fields = line.rstrip("\n").split("\t")
            ids = None
            for kv in fields[7].split(";"):
                if kv.startswith("VRS_Allele_IDs="):
                    ids = kv[len("VRS_Allele_IDs=") :]
            yield fields[:5], ids


def compare_ids(got: Path, expected: Path) -> list[str]:
    """Differences in CHROM..ALT or ``VRS_Allele_IDs`` (at most 10), or a count mismatch."""
    problems: list[str] = []
    n = 0
    a_iter, b_iter = allele_ids(got), allele_ids(expected)
    for n, (a, b) in enumerate(zip(a_iter, b_iter, strict=False), 1):
        if a != b:
            problems.append(f"record {n}: {a} vs the CLI's {b}")
            if len(problems) >= 10:
                return problems
    extra_a, extra_b = sum(1 for _ in a_iter), sum(1 for _ in b_iter)
    if extra_a or extra_b:
        problems.append(f"{n + extra_a:,} records vs the CLI's {n + extra_b:,}")
    return problems


# --------------------------------------------------------------------------------------------
# the parts


@dataclass
class Overhead:
    records: int
    cli_seconds: list[float]
    runs: list[AsyncRun]
    first: AsyncRun
    """The warm-up: the first run on a fresh worker process (opens the registry)."""
    correct: bool

    @property
    def async_seconds(self) -> list[float]:
        return [r.seconds for r in self.runs]

    @property
    def differences(self) -> list[float]:
        return [r.seconds - c for r, c in zip(self.runs, self.cli_seconds, strict=True)]

    @property
    def median(self) -> float:
        return statistics.median(self.differences)

    @property
    def ready_median(self) -> float | None:
        """Median of (server's ``finished_at`` - upload start - CLI seconds): the overhead
        without the client's poll schedule and download."""
        pairs = zip(self.runs, self.cli_seconds, strict=True)
        diffs = [r.phases["ready_after"] - c for r, c in pairs if r.phases]
        return statistics.median(diffs) if diffs else None


@dataclass
class Concurrent:
    submissions: int
    workers: int
    records_each: list[int]
    distinct_inputs: int
    wall_seconds: float
    runs: list[AsyncRun]
    problems: dict[str, list[str]] = field(default_factory=dict)

    @property
    def records(self) -> int:
        return sum(self.records_each)

    @property
    def rate(self) -> float:
        return self.records / max(self.wall_seconds, 1e-9)


def our_env(seqrepo_uri: str, redis_url: str, work_dir: Path) -> dict[str, str]:
    return clean_env(
        SEQREPO_DATAPROXY_URI=seqrepo_uri,
        ANYVAR_STORAGE_URI="",
        ANYVAR_VCF_ASYNC_WORK_DIR=str(work_dir),
        CELERY_BROKER_URL=redis_url,
        CELERY_BACKEND_URL=redis_url,
    )


def measure_ours(args, data, full_n: int, tmp: Path, logs: Path, redis_url: str) -> dict:
    uri = data.uri
    env = our_env(uri, redis_url, tmp / "work")
    (tmp / "work").mkdir()
    out: dict = {}
    with contextlib.ExitStack() as stack:
        log("starting our API and worker 1 ...")
        api = stack.enter_context(server("our API", UVICORN, env, logs, logs / "api.log"))
        stack.enter_context(
            worker("our worker 1", CELERY, "bench1@%h", env, logs, logs / "worker1.log")
        )

        # (2) overhead over the CLI on a small file; its warm-up also warms the worker
        small = tmp / f"small-{args.small_records}.vcf"
        small_n = write_slice(data.vcf, small, args.small_records)
        log(f"overhead: {small_n:,}-record file, warm-up + {args.repeats} x (CLI, async) ...")
        cli_small = tmp / "small-cli.vcf"
        first = run_async(api.url, small, small_n, "warm-up", tmp / "small-async.vcf",
                          args.poll_interval)  # fmt: skip
        add_phases(redis_url, first)
        run_cli(small, cli_small, uri, logs / "cli-small.log")  # warm the page cache
        correct = not compare_ids(tmp / "small-async.vcf", cli_small)
        cli_s: list[float] = []
        small_runs: list[AsyncRun] = []
        for i in range(args.repeats):
            cli_s.append(run_cli(small, cli_small, uri, logs / "cli-small.log"))
            run = run_async(api.url, small, small_n, f"small {i}", tmp / "small-async.vcf",
                            args.poll_interval)  # fmt: skip
            add_phases(redis_url, run)
            small_runs.append(run)
            correct &= run.records_out == small_n
        correct &= not compare_ids(tmp / "small-async.vcf", cli_small)
        out["overhead"] = Overhead(small_n, cli_s, small_runs, first, correct)

        # (1) the whole bgzipped file on one worker, then the CLI on it
        log(f"one worker: {full_n:,} records (bgzip) through the async path ...")
        out["big"] = run_async(
            api.url, data.vcf_gz, full_n, f"{full_n:,} records bgzip", None, args.poll_interval
        )
        add_phases(redis_url, out["big"])
        log(f"CLI on the same {full_n:,} records ...")
        big_cli = tmp / "big-cli.vcf"
        out["big_cli_seconds"] = run_cli(data.vcf_gz, big_cli, uri, logs / "cli-big.log")
        big_cli.unlink()

        # (3) concurrent submissions on two workers
        if args.concurrent > 0:
            chunk_dir = tmp / "chunks"
            chunk_dir.mkdir()
            chunks = write_chunks(data.vcf, chunk_dir, args.chunk_records, args.concurrent)
            log(f"CLI on the {len(chunks)} distinct input(s) of the concurrent part ...")
            for path, _ in chunks:
                run_cli(path, path.with_suffix(".cli.vcf"), uri, logs / "cli-chunk.log")
            log("starting worker 2 ...")
            stack.enter_context(
                worker("our worker 2", CELERY, "bench2@%h", env, logs, logs / "worker2.log")
            )
            jobs = [chunks[j % len(chunks)] for j in range(args.concurrent)]
            log(
                f"{args.concurrent} concurrent submissions of {args.chunk_records:,} records "
                "on two workers ..."
            )

            def one(j: int) -> AsyncRun:
                path, n = jobs[j]
                return run_async(api.url, path, n, f"concurrent {j}",
                                 tmp / f"concurrent-{j:03d}.vcf", args.poll_interval)  # fmt: skip

            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=args.concurrent) as pool:
                runs = list(pool.map(one, range(args.concurrent)))
            wall = time.perf_counter() - start
            for run in runs:
                add_phases(redis_url, run)
            problems: dict[str, list[str]] = {}
            for j, (run, (path, n)) in enumerate(zip(runs, jobs, strict=True)):
                found = compare_ids(tmp / f"concurrent-{j:03d}.vcf", path.with_suffix(".cli.vcf"))
                if run.records_out != n:
                    found.append(f"{run.records_out:,} records came back, {n:,} sent")
                if found:
                    problems[run.label] = found
            out["concurrent"] = Concurrent(
                args.concurrent, 2, [n for _, n in jobs], len(chunks), wall, runs, problems
            )
    return out


def measure_anyvar10(args, data, tmp: Path, logs: Path, redis_url: str) -> dict:
    uvicorn = anyvar10_venv(args.anyvar_venv)
    celery = uvicorn.with_name("celery")
    work = tmp / "anyvar10-work"
    work.mkdir()
    env = our_env(data.uri, redis_url, work)
    slice_vcf = tmp / f"anyvar10-slice-{args.anyvar_slice}.vcf"
    slice_n = write_slice(data.vcf, slice_vcf, args.anyvar_slice)
    warm_vcf = tmp / "anyvar10-warm.vcf"
    warm_n = write_slice(data.vcf, warm_vcf, 100)
    with contextlib.ExitStack() as stack:
        log("starting AnyVar 1.0's API and worker ...")
        api = stack.enter_context(
            server("AnyVar 1.0 API", uvicorn, env, logs, logs / "anyvar10-api.log")
        )
        stack.enter_context(
            worker("AnyVar 1.0 worker", celery, "anyvar10@%h", env, logs,
                   logs / "anyvar10-worker.log")
        )  # fmt: skip
        log("AnyVar 1.0: warm-up run (100 records) ...")
        warm = run_async(api.url, warm_vcf, warm_n, "AnyVar 1.0 warm-up", None, args.poll_interval)
        log(f"AnyVar 1.0: {slice_n:,} records through its async path ...")
        run = run_async(
            api.url, slice_vcf, slice_n, f"AnyVar 1.0 {slice_n:,}", None, args.poll_interval
        )
    if run.records_out != slice_n:
        raise BenchError(f"AnyVar 1.0 returned {run.records_out:,} records of {slice_n:,}")
    return {"run": run, "warm_up_seconds": warm.seconds}


# --------------------------------------------------------------------------------------------


def _terminate(signum, frame):  # SIGTERM/SIGHUP: unwind through the finally blocks
    log(f"signal {signum}: stopping the processes and removing the temporary files ...")
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "data")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--small-records", type=int, default=1_000, help="the overhead file")
    p.add_argument("--repeats", type=int, default=5, help="overhead runs (median)")
    p.add_argument(
        "--concurrent", type=int, default=20, help="simultaneous submissions (0: skip the part)"
    )
    p.add_argument("--chunk-records", type=int, default=10_000, help="records per submission")
    p.add_argument("--anyvar-slice", type=int, default=10_000, help="records given to AnyVar 1.0")
    p.add_argument("--skip-anyvar", action="store_true", help="skip the AnyVar 1.0 run")
    p.add_argument(
        "--anyvar-venv",
        type=Path,
        default=REPO / "benchmarks" / "data" / "anyvar10-venv",
        help="AnyVar 1.0's virtualenv (bench_service.py's; created on first use)",
    )
    p.add_argument(
        "--poll-interval",
        type=float,
        default=0.2,
        help="longest sleep between polls (shorter when Retry-After says so)",
    )
    p.add_argument("--redis", default="redis://127.0.0.1:6379", help="Redis server (no db)")
    p.add_argument("--db", type=int, default=14, help="our Redis database (flushed)")
    p.add_argument("--anyvar-db", type=int, default=13, help="AnyVar 1.0's database (flushed)")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = p.parse_args(argv)
    args.workdir = args.workdir.resolve()  # the processes run in <workdir>/async
    args.anyvar_venv = args.anyvar_venv.absolute()  # not resolved: keep the venv's bin/
    if args.db == args.anyvar_db:
        p.error("--db and --anyvar-db must differ")
    for exe in (UVICORN, CELERY, ANYVAR):
        if not exe.exists():
            sys.exit(f"{exe} not found: run this script with the project's .venv/bin/python")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)

    our_redis = f"{args.redis.rstrip('/')}/{args.db}"
    their_redis = f"{args.redis.rstrip('/')}/{args.anyvar_db}"
    data = prepare(args.workdir, args.records, args.seed)
    full_n = count_records(data.vcf)
    logs = args.workdir / "async"
    logs.mkdir(exist_ok=True)
    log(f"{available_cores()} core(s); sequences {data.uri}; logs in {logs}")

    anyvar10: dict | None = None
    anyvar10_error: str | None = "skipped (--skip-anyvar)" if args.skip_anyvar else None
    tmp = Path(tempfile.mkdtemp(prefix="bench-async-", dir=args.workdir))
    flushed: list[str] = []
    try:
        flush_redis(our_redis)
        flushed.append(our_redis)
        ours = measure_ours(args, data, full_n, tmp, logs, our_redis)
        if not args.skip_anyvar:
            try:
                flush_redis(their_redis)
                flushed.append(their_redis)
                anyvar10 = measure_anyvar10(args, data, tmp, logs, their_redis)
            except Exception as e:  # report why and keep our numbers
                anyvar10_error = str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
                log(f"AnyVar 1.0 could not be run: {anyvar10_error}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        for url in flushed:
            with contextlib.suppress(BenchError):
                flush_redis(url)

    # ---- report: ratios and overheads first
    failures: list[str] = []
    big: AsyncRun = ours["big"]
    over: Overhead = ours["overhead"]
    conc: Concurrent | None = ours.get("concurrent")
    theirs: AsyncRun | None = anyvar10["run"] if anyvar10 else None
    ratio = big.rate / theirs.rate if theirs else None
    if big.records_out != full_n:
        failures.append(f"the {full_n:,}-record run returned {big.records_out:,} records")
    if not over.correct:
        failures.append("the small async runs' VRS_Allele_IDs differ from the CLI's")
    if conc is not None and conc.problems:
        failures.append(f"{len(conc.problems)} of {conc.submissions} concurrent results differ")

    print()
    print(
        f"our stack: {available_cores()} core(s), API + prefork workers (concurrency 1, "
        "ANYVAR_THREADS unset: cores / concurrency threads each), ANYVAR_STORAGE_URI='' "
        "(annotation only)"
    )
    print(
        f"client: PUT /vcf?run_async=true, GET Location every min(Retry-After, "
        f"{args.poll_interval:g}) s, seconds = upload start to last result byte"
    )
    if theirs is not None:
        print(
            f"ratio ours / AnyVar 1.0 (async records/s; ours {full_n:,} bgzipped records, "
            f"1 worker: {big.rate:,.0f}/s; AnyVar 1.0 {theirs.records:,} plain records, 1 worker, "
            f"no storage: {theirs.rate:,.1f}/s): {ratio:,.1f}x"
        )
    else:
        print(f"AnyVar 1.0: no numbers: {anyvar10_error}")
    print(
        f"async overhead over the CLI ({over.records:,} records, median of "
        f"{len(over.differences)}): {over.median:+.3f} s (target < {OVERHEAD_TARGET} s: "
        f"{verdict(over.median < OVERHEAD_TARGET)}); async "
        f"{statistics.median(over.async_seconds):.3f} s, CLI "
        f"{statistics.median(over.cli_seconds):.3f} s (medians)"
    )
    if over.ready_median is not None:
        print(
            "  the same without the poll schedule and download (result written by the worker, "
            f"finished_at, minus upload start, minus CLI seconds): {over.ready_median:+.3f} s"
        )
    print(
        f"async overhead over the CLI ({full_n:,} bgzipped records): "
        f"{big.seconds - ours['big_cli_seconds']:+.2f} s "
        f"(async {big.seconds:.2f} s, CLI {ours['big_cli_seconds']:.2f} s, "
        f"{big.seconds / max(ours['big_cli_seconds'], 1e-9):.2f}x)"
    )
    print()
    print(
        f"1. one worker, {full_n:,} records (bgzip): {big.seconds:.2f} s submit-to-result, "
        f"{big.rate:,.0f} records/s (submit answered in {big.submit_seconds:.2f} s with "
        f"Retry-After {big.retry_after:g}; running after "
        + ("-" if big.running_after is None else f"{big.running_after:.2f} s")
        + f"; {big.polls} polls; {big.records_out:,} records back)"
    )
    print(f"   {phases_text(big)}")
    print(
        f"2. overhead runs ({over.records:,} records): async "
        + ", ".join(f"{s:.3f}" for s in over.async_seconds)
        + " s; CLI "
        + ", ".join(f"{s:.3f}" for s in over.cli_seconds)
        + f" s; first run on a fresh worker {over.first.seconds:.3f} s; "
        + ("IDs equal to the CLI's" if over.correct else "IDs DIFFER from the CLI's")
    )
    if over.runs:
        median_run = sorted(over.runs, key=lambda r: r.seconds)[len(over.runs) // 2]
        print(f"   median run: {phases_text(median_run)}")
    print(f"   first run on a fresh worker: {phases_text(over.first)}")
    if conc is not None:
        secs = sorted(r.seconds for r in conc.runs)
        print(
            f"3. {conc.submissions} concurrent submissions x {conc.records_each[0]:,} records "
            f"({conc.distinct_inputs} distinct inputs) on {conc.workers} workers: "
            + (
                "all results correct"
                if not conc.problems
                else f"{len(conc.problems)} results WRONG"
            )
            + f"; wall {conc.wall_seconds:.2f} s, {conc.rate:,.0f} records/s in total; "
            f"per submission {secs[0]:.2f} / {statistics.median(secs):.2f} / {secs[-1]:.2f} s "
            f"(min / median / max); submits answered in at most "
            f"{max(r.submit_seconds for r in conc.runs):.2f} s"
        )
        timed = [r.phases for r in conc.runs if r.phases]
        if timed:
            print(
                f"   upload+submit at most {max(ph['submit'] for ph in timed):.3f} s; queue "
                f"median {statistics.median(ph['queue'] for ph in timed):.3f} s, max "
                f"{max(ph['queue'] for ph in timed):.3f} s; annotate median "
                f"{statistics.median(ph['annotate'] for ph in timed):.3f} s; poll+download "
                f"median {statistics.median(ph['poll_and_download'] for ph in timed):.3f} s"
            )
        for label, found in conc.problems.items():
            for line in found[:5]:
                print(f"   {label}: {line}")
    else:
        print("3. concurrent submissions: skipped (--concurrent 0)")
    if theirs is not None:
        print(
            f"4. AnyVar 1.0, one worker, {theirs.records:,} records (plain): "
            f"{theirs.seconds:.2f} s submit-to-result, {theirs.rate:,.1f} records/s "
            f"(Retry-After {theirs.retry_after:g}, "
            f"{theirs.polls} polls; warm-up run {anyvar10['warm_up_seconds']:.2f} s)"
        )
    else:
        print(f"4. AnyVar 1.0: {anyvar10_error}")
    for line in failures:
        print(f"FAILED: {line}")

    if args.json:
        payload = {
            "records": full_n,
            "seed": args.seed,
            "cores": available_cores(),
            "poll_interval": args.poll_interval,
            "storage": "none (ANYVAR_STORAGE_URI='') for both services",
            "ratio_vs_anyvar10": ratio,
            "one_worker": {**asdict(big), "records_per_second": big.rate},
            "one_worker_cli_seconds": ours["big_cli_seconds"],
            "overhead": {
                **asdict(over),
                "async_seconds": over.async_seconds,
                "differences": over.differences,
                "median_difference": over.median,
                "median_difference_at_finished_at": over.ready_median,
                "target": OVERHEAD_TARGET,
                "met": over.median < OVERHEAD_TARGET,
            },
            "concurrent": None
            if conc is None
            else {
                **{k: v for k, v in asdict(conc).items() if k != "runs"},
                "records": conc.records,
                "records_per_second": conc.rate,
                "runs": [{**asdict(r), "records_per_second": r.rate} for r in conc.runs],
                "all_correct": not conc.problems,
            },
            "anyvar10": None
            if theirs is None
            else {
                **asdict(theirs),
                "records_per_second": theirs.rate,
                "warm_up_seconds": anyvar10["warm_up_seconds"],
            },
            "anyvar10_error": anyvar10_error,
            "failures": failures,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the finally blocks have stopped the processes
        log("interrupted")
        sys.exit(130)
    except BenchError as e:
        sys.exit(f"error: {e}")
