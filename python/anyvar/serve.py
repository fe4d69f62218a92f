"""``anyvar serve``: the REST API, its Celery workers and (when no broker is configured) a
private Redis, started with one configuration and supervised by one command.

Every child runs in a session of its own: a Ctrl-C at the terminal reaches only this process,
which then stops the children in order (SIGTERM, then SIGKILL of each child's process group
after a timeout, so no prefork pool process is left behind).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from anyvar.config import CANNOT_START, Settings, available_cores, load_settings, say_cannot_start
from anyvar.exceptions import SettingsError
from anyvar.processes import answers, free_port, kill_group

CELERY_APP = "anyvar.queueing.celery_worker:celery_app"
API_APP = "anyvar.restapi.main:app"
DEMO_RECORDS = 2000
API_RETRIES = 3
"""Restarts of an API that dies before answering, before giving up."""

_print_lock = threading.Lock()


class ServeError(Exception):
    """A problem to report in one line (and exit 1)."""


def say(message: str) -> None:
    """Progress and supervision lines of this command itself."""
    emit(f"serve | {message}")


def emit(line: str) -> None:
    with _print_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def check_port(host: str, port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise ServeError(
                f"cannot listen on {host}:{port} ({e.strerror}): choose another --port"
            ) from None


@dataclass
class Child:
    """One supervised process; its output is shown line by line behind ``name | ``."""

    name: str
    cmd: list[str]
    env: dict[str, str]
    proc: subprocess.Popen | None = None
    started: float = 0.0
    quick_deaths: int = 0
    """Deaths in a row within a minute of starting: the backoff grows with them."""
    restart_at: float | None = None
    reader: threading.Thread | None = field(default=None, repr=False)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.cmd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            errors="replace",
            bufsize=1,
        )
        self.started = time.monotonic()
        self.restart_at = None
        self.reader = threading.Thread(
            target=self._relay, args=(self.proc,), name=f"serve-{self.name}", daemon=True
        )
        self.reader.start()
        say(f"started {self.name} (pid {self.proc.pid})")

    def _relay(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            emit(f"{self.name} | {line.rstrip()}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill_group(self) -> None:
        """SIGKILL to the child's process group: the child and whatever it forked."""
        if self.proc is not None:
            kill_group(self.proc)

    def terminate(self) -> None:
        if self.alive():
            try:
                self.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass

    def wait(self, deadline: float) -> None:
        """Waits for the child until ``deadline`` (monotonic), then kills its group; its
        group is killed in any case, for pool processes that outlived their parent."""
        if self.proc is not None:
            try:
                self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{self.name} did not stop in time: killing it")
            self.kill_group()
            self.proc.wait()
        if self.reader is not None:
            self.reader.join(timeout=2)


def exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


# --- configuration ----------------------------------------------------------------------------


def data_dir(args) -> Path:
    if args.data_dir:
        return Path(args.data_dir)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "anyvar"


def demo_data(directory: Path) -> tuple[Path, Path]:
    """The synthetic reference and VCF, generated once (into a temporary directory, renamed
    when complete, so an interrupted generation is never mistaken for a finished one)."""
    fasta, vcf = directory / "ref.fa", directory / "input.vcf"
    if fasta.exists() and vcf.exists():
        say(f"demo data: {directory} (generated before)")
        return fasta, vcf
    from anyvar.synthetic import generate

    say(f"generating demo data ({DEMO_RECORDS:,}-record VCF, synthetic reference) in {directory}")
    directory.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".demo-", dir=directory.parent))
    try:
        generate(scratch, DEMO_RECORDS)
        if directory.exists():  # a partial directory left by someone else
            shutil.rmtree(directory)
        scratch.rename(directory)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return fasta, vcf


def example_variant(fasta: Path, uri: str) -> tuple[str, str] | None:
    """A gnomAD-style definition that matches the demo reference, and its VRS id, for the
    ``PUT /variation`` and ``GET /object`` examples."""
    from anyvar import allele_ids

    with fasta.open() as f:
        name = f.readline()[1:].split()[0]
        bases = f.readline().strip()
    for i, base in enumerate(bases[10:], start=11):
        if base in "ACGT":
            alt = "G" if base != "G" else "A"
            try:
                [va] = allele_ids([name], [i], [base], [alt], dataproxy_uri=uri, threads=1)
            except Exception:  # only an example: the lines are printed without it
                return None
            return f"{name}-{i}-{base}-{alt}", va
    return None


@dataclass
class Plan:
    env: dict[str, str]
    """Of every child."""
    worker_env: dict[str, str]
    """Of the workers: ``env`` with their thread count."""
    workers: int
    concurrency: int
    demo_vcf: Path | None = None
    example: tuple[str, str] | None = None
    own_redis: bool = False


def plan(args, settings: Settings) -> Plan:
    """The children's one environment: this process's environment (and the ``.env`` file,
    which the children read too, from the same working directory) with what serve fills in."""
    configured = settings.model_fields_set
    env = dict(os.environ)
    home = data_dir(args)
    if args.storage_uri is not None:
        env["ANYVAR_STORAGE_URI"] = args.storage_uri
    demo_vcf = example = None
    if "seqrepo_dataproxy_uri" not in configured:
        if not args.demo:
            raise ServeError(
                "no reference sequences: set SEQREPO_DATAPROXY_URI (seqrepo+file:///path or "
                "fasta+file:///ref.fa?assembly=GRCh38), or try it with anyvar serve --demo"
            )
        fasta, demo_vcf = demo_data(home / "demo")
        uri = f"fasta+file://{fasta.resolve()}?assembly=GRCh38"
        env["SEQREPO_DATAPROXY_URI"] = uri
        if args.storage_uri is None and "storage_uri" not in configured:
            # The demo registers into a database of its own, not the user's default one.
            env["ANYVAR_STORAGE_URI"] = f"sqlite:///{(home / 'demo' / 'anyvar.sqlite3').resolve()}"
        example = example_variant(fasta, uri)
    elif args.demo:
        say("--demo: SEQREPO_DATAPROXY_URI is set, serving that reference (no demo data)")
    work_dir = args.work_dir or settings.vcf_async_work_dir or home / "work"
    work_dir = Path(work_dir).resolve()
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ServeError(f"cannot create the work directory {work_dir}: {e.strerror}") from None
    env["ANYVAR_VCF_ASYNC_WORK_DIR"] = str(work_dir)
    cores = available_cores()
    concurrency = args.concurrency or max(1, cores // args.workers)
    worker_env = dict(env)
    if "threads" not in configured:
        # workers × concurrency × threads ≤ cores (a worker alone would size its processes by
        # its own concurrency only, not knowing about the other workers). The API keeps all
        # cores for its synchronous runs.
        worker_env["ANYVAR_THREADS"] = str(settings.annotation_threads(args.workers * concurrency))
    return Plan(env, worker_env, args.workers, concurrency, demo_vcf, example)


def check_broker(url: str) -> None:
    """A dead broker stops the start with its setting named (Redis URLs; other transports
    are left to Celery)."""
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return
    import redis

    from anyvar.restapi.runs import _redacted

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except Exception as e:
        raise ServeError(
            f"cannot reach the broker at CELERY_BROKER_URL={_redacted(url)}: {e}"
        ) from None


# --- supervision ------------------------------------------------------------------------------


class Supervisor:
    def __init__(self, args, stop: threading.Event) -> None:
        self.args = args
        self.stop = stop
        self.redis: Child | None = None
        self.redis_dir: Path | None = None
        self.api: Child | None = None
        self.workers: list[Child] = []
        self.url = ""

    def children(self) -> list[Child]:
        return [c for c in (self.api, *self.workers, self.redis) if c is not None]

    def start_redis(self, env: dict[str, str], home: Path) -> str:
        """Starts a Redis of this command's own and returns its URL."""
        if shutil.which("redis-server") is None:
            raise ServeError(
                "no CELERY_BROKER_URL is configured and redis-server is not on PATH: install "
                "Redis (apt-get install redis-server, brew install redis) or set "
                "CELERY_BROKER_URL=redis://host:6379/0"
            )
        import redis

        port = free_port()
        home.mkdir(parents=True, exist_ok=True)
        self.redis_dir = Path(tempfile.mkdtemp(prefix="redis-", dir=home))
        say(f"no CELERY_BROKER_URL configured: starting a private Redis on port {port}")
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        cmd += ["--appendonly", "no", "--dir", str(self.redis_dir)]
        self.redis = Child("redis", cmd, env)
        self.redis.start()
        url = f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            try:
                client.ping()
                break
            except redis.RedisError:
                if not self.redis.alive() or time.monotonic() > deadline:
                    raise ServeError(
                        "the private Redis did not start (see the redis | lines)"
                    ) from None
                time.sleep(0.05)
            finally:
                client.close()
        return url

    def run(self) -> int:
        args = self.args
        settings = load_settings()
        try:
            import celery  # noqa: F401
        except ImportError:
            raise ServeError(
                "anyvar serve needs Celery for its workers: pip install 'anyvar[queueing]'"
            ) from None
        check_port(args.host, args.port)
        p = plan(args, settings)
        env = p.env
        if "celery_broker_url" in settings.model_fields_set:
            check_broker(settings.celery_broker_url)
        else:
            url = self.start_redis(env, data_dir(args))
            for e in (env, p.worker_env):
                e["CELERY_BROKER_URL"] = e["CELERY_BACKEND_URL"] = url
        if self.stop.is_set():
            return 0
        say(f"starting the API on {args.host}:{args.port}")
        api_cmd = [sys.executable, "-m", "uvicorn", API_APP]
        self.api = Child("api", api_cmd + ["--host", args.host, "--port", str(args.port)], env)
        self.api.start()
        say(
            f"starting {p.workers} worker(s): {p.concurrency} process(es) each, "
            f"ANYVAR_THREADS={p.worker_env.get('ANYVAR_THREADS')}"
        )
        for i in range(1, p.workers + 1):
            cmd = [sys.executable, "-m", "celery", "-A", CELERY_APP, "worker"]
            cmd += ["--pool=prefork", f"--concurrency={p.concurrency}", "-l", "info"]
            cmd += ["-n", f"worker-{i}@%h"]
            worker = Child(f"worker-{i}", cmd, p.worker_env)
            worker.start()
            self.workers.append(worker)
        host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
        self.url = f"http://{host}:{args.port}"
        if not self.wait_for_api():
            return 0 if self.stop.is_set() else 1
        print_banner(self.url, p)
        return self.supervise()

    def wait_for_api(self) -> bool:
        """Polls GET /service-info until the API answers; an API that dies first is started
        again a few times unless it said it cannot start."""
        say(f"waiting for the API to answer at {self.url}/service-info")
        attempts = 0
        while not self.stop.is_set():
            if not self.api.alive():
                code = self.api.proc.returncode
                attempts += 1
                if code == CANNOT_START or attempts > API_RETRIES:
                    raise ServeError(
                        f"the API cannot start ({exit_description(code)}): see the api | lines "
                        "above"
                    )
                say(f"api exited during start-up ({exit_description(code)}); starting it again")
                self.api.kill_group()
                time.sleep(1)
                self.api.start()
            if answers(f"{self.url}/service-info"):
                return True
            self.check_redis()
            time.sleep(0.2)
        return False

    def check_redis(self) -> None:
        if self.redis is not None and not self.redis.alive():
            code = self.redis.proc.returncode
            raise ServeError(f"the private Redis exited ({exit_description(code)}); stopping")

    def supervise(self) -> int:
        while not self.stop.wait(0.2):
            self.check_redis()
            for child in [self.api, *self.workers]:
                self.check(child)
        return 0

    def check(self, child: Child) -> None:
        now = time.monotonic()
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.start()
            return
        if child.alive():
            if child.quick_deaths and now - child.started > 60:
                child.quick_deaths = 0
            return
        code = child.proc.returncode
        child.kill_group()  # its pool processes, if it was killed before them
        if child is self.api and code == CANNOT_START:
            raise ServeError("the API exited: it cannot start (see the api | lines above)")
        if now - child.started < 60:
            child.quick_deaths += 1
            if child is self.api and child.quick_deaths > API_RETRIES:
                raise ServeError("the API keeps exiting: stopping (see the api | lines above)")
        delay = min(30, 2 ** max(0, child.quick_deaths - 1))
        say(f"{child.name} exited ({exit_description(code)}); restarting it in {delay} s")
        child.restart_at = now + delay

    def shutdown(self, timeout: float) -> None:
        """Workers and the API first (they finish what they are storing), Redis last."""
        running = [c for c in (self.api, *self.workers) if c is not None and c.alive()]
        if running or (self.redis and self.redis.alive()):
            say("stopping: " + ", ".join(c.name for c in self.children() if c.alive()))
        deadline = time.monotonic() + timeout
        for child in (self.api, *self.workers):
            if child is not None:
                child.terminate()
        for child in (self.api, *self.workers):
            if child is not None:
                child.wait(deadline)
        if self.redis is not None:
            self.redis.terminate()
            self.redis.wait(time.monotonic() + 10)
        if self.redis_dir is not None:
            shutil.rmtree(self.redis_dir, ignore_errors=True)
        say("stopped")


def print_banner(url: str, p: Plan) -> None:
    # Quoted: the lines are pasted into a shell, and a data directory may hold a space.
    vcf = shlex.quote(f"vcf=@{p.demo_vcf or 'your.vcf'}")
    definition, va = p.example or ("19-82664-C-T", "<the id PUT /variation returned>")
    lines = [
        "",
        f"AnyVar is ready: API {url}",
        f"  docs:  {url}/docs",
        f"  page:  {url}/",
        "",
        "Try it:",
        f"  curl -s -X PUT -F {vcf} '{url}/vcf' -o annotated.vcf",
        f"  curl -s -X PUT -F {vcf} '{url}/vcf?run_async=true&run_id=try-1'",
        f"  curl -s -o async.vcf -w '%{{http_code}}\\n' '{url}/vcf/try-1'"
        "   # 202 while running, 200 with the VCF",
        f"  curl -s -X PUT -H 'Content-Type: application/json' "
        f"-d '{{\"definition\": \"{definition}\"}}' '{url}/variation'",
        f"  curl -s '{url}/object/{va}'",
        f"  curl -s '{url}/runs'",
        f"  curl -s '{url}/metrics'",
        "",
        "Ctrl-C stops everything.",
        "",
    ]
    with _print_lock:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


def serve(args) -> int:
    """Runs until SIGTERM or Ctrl-C (exit 0), or until something cannot be (re)started
    (one line saying what, exit 1)."""
    stop = threading.Event()

    def on_signal(signum, _frame) -> None:
        if not stop.is_set():
            say(f"received {signal.Signals(signum).name}")
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    supervisor = Supervisor(args, stop)
    try:
        return supervisor.run()
    except ServeError as e:
        print(f"anyvar serve: error: {e}", file=sys.stderr, flush=True)
        return 1
    except SettingsError as e:  # found before anything was started
        say_cannot_start(e)
        return CANNOT_START
    finally:
        supervisor.shutdown(args.stop_timeout)
        for s, handler in previous.items():
            signal.signal(s, handler)


def add_parser(sub) -> None:
    s = sub.add_parser(
        "serve",
        help="run the REST API and Celery workers (and a Redis when none is configured)",
    )
    s.add_argument("--host", default="127.0.0.1", help="address the API listens on (127.0.0.1)")
    s.add_argument("--port", type=_port, default=8000, help="port of the API (8000)")
    s.add_argument("--workers", type=_positive, default=1, help="Celery worker processes (1)")
    s.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        help="prefork processes per worker (default: cores / workers)",
    )
    s.add_argument(
        "--work-dir",
        default=None,
        help="shared directory of async runs (default: $ANYVAR_VCF_ASYNC_WORK_DIR, else "
        "DATA_DIR/work)",
    )
    s.add_argument(
        "--storage-uri", default=None, help="registry database (default: $ANYVAR_STORAGE_URI)"
    )
    s.add_argument(
        "--data-dir",
        default=None,
        help="where serve keeps demo data, the work dir and Redis (default: $XDG_DATA_HOME/anyvar)",
    )
    s.add_argument(
        "--demo",
        action="store_true",
        help="without SEQREPO_DATAPROXY_URI: serve a generated reference and example VCF",
    )
    s.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        help="seconds the processes get to stop before they are killed (30)",
    )
    s.set_defaults(run=serve)


def _positive(text: str) -> int:
    import argparse

    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _port(text: str) -> int:
    import argparse

    value = _positive(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return value
