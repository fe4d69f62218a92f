"""Benchmark the REST service's synchronous ``PUT /vcf`` against AnyVar 1.0's.

Run with the project's interpreter (it finds ``uvicorn`` beside it)::

    .venv/bin/python benchmarks/bench_service.py                  # 1,000,000 records
    .venv/bin/python benchmarks/bench_service.py --records 100000 --json results.json
    .venv/bin/python benchmarks/bench_service.py --storages none,sqlite --skip-anyvar

What it does:

* generates (or reuses) the same synthetic reference, VCF and SeqRepo instance as
  ``bench_annotate.py`` (its ``prepare``: ``benchmarks/data/``, keyed by ``--records``/``--seed``);
* for each storage (``none``: ``ANYVAR_STORAGE_URI=""``; ``sqlite``: a fresh file;
  ``postgres``: a fresh database on ``--pg-url``, created and dropped here), starts our server
  (``uvicorn anyvar.restapi.main:app``) as a subprocess, sends one ``PUT /vcf`` with the default
  parameters (``for_ref=true``, ``add_vrs_attributes=false``, ``allow_async_write=false``), the
  file streamed from disk as the multipart field ``vcf`` and the annotated VCF streamed back,
  then reads the server's peak RSS (``VmHWM`` in ``/proc/<pid>/status``) and counts the rows of
  the ``alleles`` table. This is done on a prefix (``--prefix-records``, default 100,000, at most
  a tenth of the file) and on the whole file, each with a fresh server and fresh storage, to show
  that the server's memory does not grow with the upload;
* with a database, sends two more requests to the server that just registered the whole file:
  the same file again (every allele already registered: idempotent re-registration) and another
  VCF of as many records over the same reference (``another.vcf``, generated with another seed:
  a registry that grows). A fresh database is the easy case for B-trees; these show the rest;
* runs AnyVar 1.0 (PyPI ``anyvar[queueing,postgres]==1.0.0``, in its own virtualenv under
  ``benchmarks/data/anyvar10-venv``, created on first use) the same way on a slice
  (``--anyvar-slice`` records, default 10,000) with PostgreSQL, in a separate fresh database.

Seconds are the client's wall time of the one request: upload, annotation, registration (the
response only starts once storage has committed, ``allow_async_write=false``) and download.
Every server and every database made here is removed again, also on errors and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
from bench_annotate import BIN, REPO, format_table, log, prepare, write_slice

from anyvar import processes
from anyvar.config import available_cores
from anyvar.processes import free_port
from anyvar.synthetic import reference_for, write_vcf

UVICORN = BIN / "uvicorn"
APP = "anyvar.restapi.main:app"
ANYVAR10_SPEC = "anyvar[queueing,postgres]==1.0.0"
ANYVAR10_VERSION = "1.0.0"
STORAGES = ("none", "sqlite", "postgres")
TARGETS = {"sqlite": 150_000, "postgres": 100_000}
"""records/s for the 1,000,000-record file (the issue's targets)."""
TARGET_RECORDS = 1_000_000
RATIO_TARGET = 150.0
"""Our PostgreSQL records/s over AnyVar 1.0's."""
FLAT_LIMIT = 1.5
"""Peak RSS on the whole file over peak RSS on the prefix above which memory is not flat."""
FLAT_MIN_PREFIX = 100_000
"""Below this a prefix may not fill the server's bounded buffers (the SQLite page cache, the
storage loader's queue), so growth from it is reported but not counted as a failure."""
REQUEST_TIMEOUT = httpx.Timeout(3 * 3600.0, connect=30.0)
STARTUP_TIMEOUT = 300.0
"""Seconds a server may take to answer ``/service-info`` (AnyVar 1.0 imports a lot)."""


class BenchError(RuntimeError):
    """A step failed; the message says which and why."""


# --------------------------------------------------------------------------------------------
# PostgreSQL administration (psql: the project's venv has no PostgreSQL driver of its own)


def _with_db(base_url: str, db: str) -> str:
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + db, parts.query, ""))


def psql(base_url: str, sql: str, db: str = "postgres") -> str:
    psql_bin = shutil.which("psql")
    if psql_bin is None:
        raise BenchError("psql is not on PATH (Debian package postgresql-client)")
    proc = subprocess.run(
        [psql_bin, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", _with_db(base_url, db)],
        input=sql,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode != 0:
        raise BenchError(f"psql failed on {sql.strip()!r}: {proc.stderr.strip()}")
    return proc.stdout.strip()


class Databases:
    """Fresh databases on one server, all dropped by ``drop_all`` (also after errors)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.prefix = f"anyvar_bench_{os.getpid()}_{int(time.time())}"
        self.created: list[str] = []

    def check(self) -> None:
        psql(self.base_url, "SELECT 1")

    def create(self, label: str, extensions: tuple[str, ...] = ()) -> str:
        """Creates ``<prefix>_<label>``; returns its URL."""
        name = f"{self.prefix}_{label}"
        psql(self.base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        psql(self.base_url, f'CREATE DATABASE "{name}"')
        self.created.append(name)
        for ext in extensions:
            psql(self.base_url, f'CREATE EXTENSION IF NOT EXISTS "{ext}"', db=name)
        return _with_db(self.base_url, name)

    def count(self, url: str, table: str = "alleles") -> int:
        db = urlsplit(url).path.lstrip("/")
        return int(psql(self.base_url, f"SELECT count(*) FROM {table}", db=db))

    def drop(self, url: str) -> None:
        name = urlsplit(url).path.lstrip("/")
        psql(self.base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.created:
            self.created.remove(name)

    def drop_all(self) -> None:
        for name in list(self.created):
            try:
                self.drop(_with_db(self.base_url, name))
            except Exception as e:  # keep dropping the others
                log(f"warning: could not drop database {name}: {e}")


# --------------------------------------------------------------------------------------------
# servers


def clean_env(**settings: str) -> dict[str, str]:
    """This environment without any AnyVar/SeqRepo/Celery setting or virtualenv, plus
    ``settings``."""
    env = processes.clean_env(settings)
    env.pop("VIRTUAL_ENV", None)
    return env


def _die_with_parent() -> None:
    """Child side of Popen: get SIGTERM if this script dies without cleaning up (SIGKILL)."""
    if platform.system() == "Linux":
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG


def proc_status_kb(pid: int, key: str) -> int:
    """A ``kB`` field of ``/proc/<pid>/status`` (``VmHWM``: peak RSS, ``VmRSS``: current)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise BenchError(f"no {key} in /proc/{pid}/status")


def log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


@dataclass
class Server:
    name: str
    proc: subprocess.Popen
    url: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def peak_rss_mb(self) -> float:
        return proc_status_kb(self.pid, "VmHWM") * 1024 / 1e6

    def rss_mb(self) -> float:
        return proc_status_kb(self.pid, "VmRSS") * 1024 / 1e6

    def memory(self) -> dict[str, float]:
        """MB now, split by kind (anonymous, file-backed, shared), for the JSON output."""
        keys = ("VmHWM", "VmRSS", "RssAnon", "RssFile", "RssShmem")
        return {k: proc_status_kb(self.pid, k) * 1024 / 1e6 for k in keys}


@contextlib.contextmanager
def server(
    name: str, uvicorn: Path, env: dict[str, str], cwd: Path, log_path: Path
) -> Iterator[Server]:
    """``uvicorn`` serving ``APP`` on a free loopback port until the block ends."""
    if not uvicorn.exists():
        raise BenchError(f"{uvicorn} not found")
    port = free_port()
    cmd = [uvicorn, APP, "--host", "127.0.0.1", "--port", port]
    cmd += ["--log-level", "warning", "--no-access-log"]
    # In `cwd` (no .env there: only `env` configures the server), in a session of its own
    # (Ctrl-C reaches this script, which stops it), dying with this script.
    p = processes.Process.start(name, cmd, cwd, env, log_path, preexec_fn=_die_with_parent)
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            p.wait_until(lambda: processes.answers(f"{url}/service-info"), STARTUP_TIMEOUT)
        except processes.ProcessError as e:
            raise BenchError(str(e)) from None
        yield Server(name, p.proc, url, log_path)
    finally:
        if p.alive():
            # uvicorn shuts down at once when idle; AnyVar 1.0 in the middle of a request
            # (after an interrupt) first finishes it, on its event loop
            p.stop(grace=10)


# --------------------------------------------------------------------------------------------
# the request


@dataclass
class Upload:
    seconds: float
    to_headers: float
    """Until the response headers arrived: upload + annotation + registration."""
    records_out: int
    bytes_out: int


def put_vcf(url: str, vcf: Path) -> Upload:
    """One synchronous ``PUT /vcf`` with the default parameters, streamed both ways; the
    annotated VCF is counted (data lines, bytes) and discarded."""
    params = {"for_ref": "true", "add_vrs_attributes": "false", "allow_async_write": "false"}
    newlines = header_lines = size = 0
    prev = b"\n"
    with httpx.Client(timeout=REQUEST_TIMEOUT) as client, vcf.open("rb") as f:
        start = time.perf_counter()
        with client.stream(
            "PUT", f"{url}/vcf", params=params, files={"vcf": (vcf.name, f, "text/x-vcf")}
        ) as response:
            to_headers = time.perf_counter() - start
            if response.status_code != 200:
                body = response.read().decode(errors="replace")[:2000]
                raise BenchError(f"PUT /vcf answered {response.status_code}: {body}")
            for chunk in response.iter_bytes(1 << 20):
                if not chunk:
                    continue
                size += len(chunk)
                newlines += chunk.count(b"\n")
                header_lines += chunk.count(b"\n#") + (prev == b"\n" and chunk[:1] == b"#")
                prev = chunk[-1:]
        seconds = time.perf_counter() - start
    if prev != b"\n":  # last line without a newline
        newlines += 1
    return Upload(seconds, to_headers, newlines - header_lines, size)


def count_records(vcf: Path) -> int:
    n = 0
    with vcf.open("rb") as f:
        for line in f:
            n += not line.startswith(b"#")
    return n


# --------------------------------------------------------------------------------------------
# runs


@dataclass
class Result:
    name: str
    server: str
    storage: str
    records: int
    seconds: float
    to_headers: float
    peak_rss_mb: float
    idle_rss_mb: float
    """The server's RSS just before the request."""
    alleles_rows: int | None
    records_out: int
    ratio: float | None = None
    memory: dict[str, float] = field(default_factory=dict)
    """``/proc/<pid>/status`` of the server right after the request, in MB."""

    @property
    def rate(self) -> float:
        return self.records / max(self.seconds, 1e-9)


def another_vcf(rundir: Path, records: int, seed: int) -> Path:
    """A VCF of ``records`` records over the reference ``prepare`` generated for ``records`` and
    ``seed``, with other variants (reused when it matches)."""
    vcf = rundir / "another.vcf"
    stamp = rundir / "another.json"
    params = {"records": records, "seed": seed}
    if not (vcf.exists() and stamp.exists() and json.loads(stamp.read_text()) == params):
        log(f"generating another {records:,}-record VCF over the same reference ...")
        write_vcf(reference_for(records, None, seed), vcf, records, seed=seed + 1000)
        stamp.write_text(json.dumps(params))
    return vcf


def run_ours(
    storage: str,
    label: str,
    vcf: Path,
    records: int,
    seqrepo_uri: str,
    rundir: Path,
    dbs: Databases | None,
    then: tuple[tuple[str, Path, int], ...] = (),
) -> list[Result]:
    """A fresh server with fresh ``storage``, one request, its numbers; then each request of
    ``then`` (label, VCF, records) to the same server and database; storage removed after."""
    name = f"anyvar {storage} ({label})"
    tag = f"{storage}-{label}"
    sqlite_file = rundir / f"registry-{tag}.sqlite3"
    pg_url = None
    try:
        if storage == "none":
            uri = ""
        elif storage == "sqlite":
            remove_sqlite(sqlite_file)
            uri = "sqlite:///" + str(sqlite_file.resolve())
        else:
            assert dbs is not None
            pg_url = dbs.create(f"ours_{label}")
            uri = pg_url
        env = clean_env(ANYVAR_STORAGE_URI=uri, SEQREPO_DATAPROXY_URI=seqrepo_uri)

        def alleles_rows() -> int | None:
            if storage == "sqlite":
                with contextlib.closing(sqlite3.connect(sqlite_file)) as conn:
                    return conn.execute("SELECT count(*) FROM alleles").fetchone()[0]
            if storage == "postgres":
                assert dbs is not None and pg_url is not None
                return dbs.count(pg_url)
            return None

        results = []
        with server(name, UVICORN, env, rundir, rundir / f"server-{tag}.log") as srv:
            for request, (what, path, n) in enumerate(((label, vcf, records), *then)):
                title = name if request == 0 else f"anyvar {storage} ({label}, then {what})"
                log(f"running {title}: PUT /vcf with {n:,} records ...")
                idle = srv.rss_mb()
                up = put_vcf(srv.url, path)
                results.append(
                    Result(
                        title, "anyvar", storage, n, up.seconds, up.to_headers, srv.peak_rss_mb(),
                        idle, alleles_rows(), up.records_out, memory=srv.memory(),
                    )
                )  # fmt: skip
        return results
    finally:
        if storage == "sqlite":
            remove_sqlite(sqlite_file)
        if pg_url is not None and dbs is not None:
            dbs.drop(pg_url)


def remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)


def anyvar10_venv(venv: Path) -> Path:
    """AnyVar 1.0's virtualenv (created on first use); returns its ``uvicorn``."""
    uvicorn = venv / "bin" / "uvicorn"
    ready = venv / ".anyvar10-ready"
    if ready.exists() and ready.read_text().strip() == ANYVAR10_SPEC and uvicorn.exists():
        return uvicorn
    python3 = shutil.which("python3") or getattr(sys, "_base_executable", sys.executable)
    install_log = venv.with_name(venv.name + "-install.log")
    log(f"creating AnyVar 1.0's virtualenv in {venv} (pip install '{ANYVAR10_SPEC}') ...")
    shutil.rmtree(venv, ignore_errors=True)
    t = time.perf_counter()
    with install_log.open("wb") as out:
        steps = [
            [python3, "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", ANYVAR10_SPEC],
        ]
        for cmd in steps:
            code = subprocess.call(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            if code != 0:
                raise BenchError(
                    f"could not install AnyVar 1.0: `{' '.join(cmd)}` exited {code} "
                    f"(log {install_log}):\n{log_tail(install_log)}"
                )
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; "
         "print(m.version('anyvar'))"],
        capture_output=True, text=True,
    )  # fmt: skip
    if check.stdout.strip() != ANYVAR10_VERSION:
        raise BenchError(f"the virtualenv has anyvar {check.stdout.strip()!r}: {check.stderr}")
    ready.write_text(ANYVAR10_SPEC + "\n")
    log(f"AnyVar 1.0 installed in {time.perf_counter() - t:.0f} s")
    return uvicorn


def run_anyvar10(
    uvicorn: Path, vcf: Path, records: int, seqrepo_uri: str, rundir: Path, dbs: Databases
) -> Result:
    """AnyVar 1.0 with PostgreSQL. It creates its tables itself at startup, but one of its
    indexes (``ix_location_ref_overlap``, GiST over a varchar and a range) needs the
    ``btree_gist`` extension, which it does not create: that is the one init step done here."""
    name = "AnyVar 1.0 postgres"
    pg_url = dbs.create("anyvar10", extensions=("btree_gist",))
    try:
        # ANYVAR_*/CELERY_* stripped: no broker, sync only; table names left at the defaults
        env = clean_env(ANYVAR_STORAGE_URI=pg_url, SEQREPO_DATAPROXY_URI=seqrepo_uri)
        log(f"running {name}: PUT /vcf with {records:,} records ...")
        with server(name, uvicorn, env, rundir, rundir / "server-anyvar10.log") as srv:
            idle = srv.rss_mb()
            up = put_vcf(srv.url, vcf)
            peak = srv.peak_rss_mb()
            memory = srv.memory()
            rows = dbs.count(pg_url)
        return Result(
            name, "anyvar 1.0", "postgres", records, up.seconds, up.to_headers, peak, idle,
            rows, up.records_out, memory=memory,
        )  # fmt: skip
    finally:
        dbs.drop(pg_url)


# --------------------------------------------------------------------------------------------
# output


def table(results: list[Result]) -> str:
    head = (
        "configuration",
        "records",
        "seconds",
        "to headers s",
        "records/s",
        "x AnyVar 1.0",
        "peak RSS MB",
        "idle RSS MB",
        "alleles rows",
    )
    rows = [
        (
            r.name,
            f"{r.records:,}",
            f"{r.seconds:.2f}",
            f"{r.to_headers:.2f}",
            f"{r.rate:,.0f}",
            "" if r.ratio is None else f"{r.ratio:.1f}x",
            f"{r.peak_rss_mb:.0f}",
            f"{r.idle_rss_mb:.0f}",
            "-" if r.alleles_rows is None else f"{r.alleles_rows:,}",
        )
        for r in results
    ]
    return format_table(head, rows)


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT MET"


# --------------------------------------------------------------------------------------------


def _terminate(signum, frame):  # SIGTERM/SIGHUP: unwind through the finally blocks
    log(f"signal {signum}: stopping the servers and dropping the databases ...")
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / "data")
    p.add_argument("--records", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument(
        "--prefix-records",
        type=int,
        default=100_000,
        help="the smaller run (memory flatness); at most a tenth of --records",
    )
    p.add_argument(
        "--storages",
        default=",".join(STORAGES),
        help="comma-separated subset of none,sqlite,postgres (default: all)",
    )
    p.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432",
        help="PostgreSQL server (no database): fresh databases are created and dropped on it",
    )
    p.add_argument("--anyvar-slice", type=int, default=10_000, help="records given to AnyVar 1.0")
    p.add_argument("--skip-anyvar", action="store_true", help="skip the AnyVar 1.0 run")
    p.add_argument("--json", type=Path, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    storages = [s.strip() for s in args.storages.split(",") if s.strip()]
    unknown = sorted(set(storages) - set(STORAGES))
    if unknown or not storages:
        p.error(f"--storages: unknown {unknown}; choose from {','.join(STORAGES)}")
    if not UVICORN.exists():
        sys.exit(f"{UVICORN} not found: run this script with the project's .venv/bin/python")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)

    data = prepare(args.workdir, args.records, args.seed)
    rundir = args.workdir / "service"
    rundir.mkdir(exist_ok=True)
    seqrepo_uri = data.uri
    full_n = count_records(data.vcf)
    another = another_vcf(rundir, args.records, args.seed)
    prefix_vcf = rundir / "prefix.vcf"
    prefix_n = write_slice(data.vcf, prefix_vcf, min(args.prefix_records, full_n // 10))
    inputs = [("prefix", prefix_vcf, prefix_n), ("full", data.vcf, full_n)]
    followups = (("the same file", data.vcf, full_n), ("another VCF", another, full_n))
    log(f"{available_cores()} core(s); sequences {seqrepo_uri}; storages {','.join(storages)}")

    dbs = Databases(args.pg_url)
    need_pg = "postgres" in storages or not args.skip_anyvar
    if need_pg:
        try:
            dbs.check()
        except BenchError as e:
            sys.exit(f"PostgreSQL at {args.pg_url} is not usable: {e}")

    results: dict[tuple[str, str], Result] = {}
    populated: list[Result] = []
    anyvar10: Result | None = None
    anyvar10_error: str | None = None
    failures: list[str] = []
    try:
        for storage in storages:
            for label, vcf, n in inputs:
                then = followups if label == "full" and storage != "none" else ()
                first, *more = run_ours(
                    storage, label, vcf, n, seqrepo_uri, rundir, dbs if need_pg else None, then
                )
                results[storage, label] = first
                populated.extend(more)
        if args.skip_anyvar:
            anyvar10_error = "skipped (--skip-anyvar)"
        else:
            slice_vcf = rundir / f"slice-{args.anyvar_slice}.vcf"
            slice_n = write_slice(data.vcf, slice_vcf, args.anyvar_slice)
            try:
                uvicorn10 = anyvar10_venv(args.workdir / "anyvar10-venv")
                anyvar10 = run_anyvar10(uvicorn10, slice_vcf, slice_n, seqrepo_uri, rundir, dbs)
            except Exception as e:  # report why and keep our numbers
                anyvar10_error = str(e) if isinstance(e, BenchError) else f"{type(e).__name__}: {e}"
                log(f"AnyVar 1.0 could not be run: {anyvar10_error}")
    finally:
        dbs.drop_all()

    # ---- report: ratios and targets first, then the table
    ordered = [results[s, label] for s in storages for label, _, _ in inputs]
    if anyvar10 is not None:
        anyvar10.ratio = 1.0
        for r in [*ordered, *populated]:
            r.ratio = r.rate / anyvar10.rate
    for r in ordered:
        if r.records_out != r.records:
            failures.append(f"{r.name}: {r.records_out:,} records came back, {r.records:,} sent")
        if r.storage != "none" and not r.alleles_rows:
            failures.append(f"{r.name}: the alleles table is empty after the request")
    for label, _, _ in inputs:
        stored = {s: results[s, label].alleles_rows for s in storages if s != "none"}
        if len(set(stored.values())) > 1:
            failures.append(f"alleles rows differ between storages on the {label} file: {stored}")
    if anyvar10 is not None and anyvar10.records_out != anyvar10.records:
        failures.append(
            f"AnyVar 1.0 returned {anyvar10.records_out:,} records of {anyvar10.records:,}"
        )

    print()
    print(f"our server: {available_cores()} core(s) available, ANYVAR_THREADS unset (all cores)")
    full = {s: results[s, "full"] for s in storages}
    if anyvar10 is not None:
        print(
            "ratio = our records/s on the whole file / AnyVar 1.0's records/s "
            f"(PUT /vcf, PostgreSQL, first {anyvar10.records:,} records: {anyvar10.rate:,.0f}/s)"
        )
        for s, r in full.items():
            target = f"  (target >= {RATIO_TARGET:.0f}x: {verdict(r.ratio >= RATIO_TARGET)})"
            print(f"  {s:<9} {r.ratio:8.1f}x{target if s == 'postgres' else ''}")
    else:
        print(f"AnyVar 1.0: no numbers: {anyvar10_error}")
    scale = "" if full_n == TARGET_RECORDS else f" (targets are for {TARGET_RECORDS:,} records)"
    for s, goal in TARGETS.items():
        if s in full:
            r = full[s]
            print(
                f"target {s} >= {goal:,} records/s on {full_n:,} records: "
                f"{r.rate:,.0f} records/s, {verdict(r.rate >= goal)}{scale}"
            )
    print()
    print(table([*ordered, *([anyvar10] if anyvar10 else [])]))
    if populated:
        print()
        print("then, into the database holding the whole file (same server):")
        print(table(populated))
    print()
    flatness = {}
    for s in storages:
        small, big = results[s, "prefix"], results[s, "full"]
        growth = big.peak_rss_mb / max(small.peak_rss_mb, 1e-9)
        flatness[s] = {
            "prefix_records": small.records,
            "prefix_peak_rss_mb": small.peak_rss_mb,
            "full_records": big.records,
            "full_peak_rss_mb": big.peak_rss_mb,
            "growth": growth,
            "flat": growth <= FLAT_LIMIT,
        }
        print(
            f"memory flatness ({s}): {small.records:,} records {small.peak_rss_mb:.0f} MB, "
            f"{big.records:,} records {big.peak_rss_mb:.0f} MB ({growth:.2f}x the memory for "
            f"{big.records / max(small.records, 1):.0f}x the records)"
            + ("" if growth <= FLAT_LIMIT else "  NOT FLAT")
        )
    for s in storages:
        if flatness[s]["flat"]:
            continue
        if flatness[s]["prefix_records"] >= FLAT_MIN_PREFIX:
            failures.append(f"peak RSS of the {s} server grows with the input")
        else:
            print(
                f"  note ({s}): a {flatness[s]['prefix_records']:,}-record prefix may not fill "
                f"the bounded buffers; the check counts from {FLAT_MIN_PREFIX:,} (full run)"
            )
    if anyvar10_error and not args.skip_anyvar:
        print(f"AnyVar 1.0 not run: {anyvar10_error}")
    for line in failures:
        print(f"FAILED: {line}")

    if args.json:
        payload = {
            "records": full_n,
            "seed": args.seed,
            "cores": available_cores(),
            "storages": storages,
            "results": [
                {**asdict(r), "records_per_second": r.rate}
                for r in [*ordered, *populated, *([anyvar10] if anyvar10 else [])]
            ],
            "anyvar10": None
            if anyvar10 is None
            else {"records_per_second": anyvar10.rate, "spec": ANYVAR10_SPEC},
            "anyvar10_error": anyvar10_error,
            "targets": {
                **{f"{s}_records_per_second": goal for s, goal in TARGETS.items()},
                "postgres_ratio": RATIO_TARGET,
                "for_records": TARGET_RECORDS,
            },
            "memory_flatness": flatness,
            "failures": failures,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # the finally blocks have stopped servers and dropped databases
        log("interrupted")
        sys.exit(130)
