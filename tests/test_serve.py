"""``anyvar serve``: the whole service from one command, as a newcomer runs it (a private Redis,
the demo reference, the printed curl lines), supervised (a killed worker comes back) and
stopped by SIGTERM or Ctrl-C leaving no process behind. Everything real: the command itself,
its uvicorn, Celery prefork workers and redis-server."""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from async_service import BIN, REDIS_URL, Process, free_port, redis_client, wait_for
from service import id_entries

ANYVAR = BIN / "anyvar"
READY = "AnyVar is ready"


@dataclass
class Serve:
    process: Process
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def text(self) -> str:
        return self.process.text()

    def wait_ready(self, timeout: float = 120) -> None:
        def ready() -> bool:
            if not self.process.alive():
                self.process.fail(f"anyvar serve exited with {self.process.proc.returncode}")
            return READY in self.text()

        wait_for(ready, timeout, lambda: f"anyvar serve to be ready:\n{self.text()[-4000:]}")

    def started_pid(self, name: str, after: int = 0) -> int:
        """The pid of the latest ``started NAME (pid N)`` line other than ``after``."""
        pids = [int(p) for p in re.findall(rf"serve \| started {name} \(pid (\d+)\)", self.text())]
        pids = [p for p in pids if p != after]
        return pids[-1] if pids else 0

    def descendants(self) -> set[int]:
        return descendants(self.process.proc.pid)

    def stop_with(self, signum: int, timeout: float = 60) -> int:
        os.kill(self.process.proc.pid, signum)
        try:
            return self.process.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.fail(f"anyvar serve did not stop within {timeout}s of {signum}")
            raise


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (children in sessions of their own included)."""
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"


def start_serve(
    root: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Serve:
    port = port or free_port()
    cmd = [ANYVAR, "serve", "--port", str(port), "--data-dir", root / "data", *args]
    return Serve(Process.start("serve", cmd, root, env or {}), port)


def curl_lines(banner: str) -> dict[str, str]:
    """The ``curl`` lines the banner printed, by what each does."""
    lines = [line.strip() for line in banner.splitlines() if line.strip().startswith("curl ")]
    named: dict[str, str] = {}
    for line in lines:
        command = line.split("   #")[0]
        if "run_async=true" in command:
            named["submit"] = command
        elif " -F " in command:
            named["sync"] = command
        elif "/vcf/" in command:
            named["poll"] = command
        elif "/variation" in command:
            named["variation"] = command
        elif "/object/" in command:
            named["object"] = command
        else:
            named[command.rsplit("/", 1)[1].strip("'")] = command
    return named


def curl(command: str, cwd: Path) -> str:
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (command, done.stderr)
    return done.stdout


def vcf_path(command: str) -> Path:
    [field] = [w for w in shlex.split(command) if w.startswith("vcf=@")]
    return Path(field.removeprefix("vcf=@"))


def cli_annotation(vcf: Path, out: Path) -> str:
    fasta = vcf.with_name("ref.fa").resolve()
    cmd = [ANYVAR, "annotate", vcf, "-o", out, "-q"]
    cmd += ["--dataproxy-uri", f"fasta+file://{fasta}?assembly=GRCh38"]
    subprocess.run([str(c) for c in cmd], check=True, timeout=120)
    return out.read_text()


def no_traceback(serve: Serve) -> None:
    assert "Traceback" not in serve.text(), serve.text()[-6000:]


def test_demo_runs_every_printed_line_survives_a_dead_worker_and_stops_clean(tmp_path):
    serve = start_serve(tmp_path, "--demo")
    serve.wait_ready()
    text = serve.text()
    assert "serve | no CELERY_BROKER_URL configured: starting a private Redis" in text
    for page in ("/docs", "/"):
        assert f"{serve.url}{page}\n" in text

    # Every curl line of the banner, run as printed, from a directory of the user's.
    lines = curl_lines(text)
    assert set(lines) == {"sync", "submit", "poll", "variation", "object", "runs", "metrics"}
    user = tmp_path / "user"
    user.mkdir()
    curl(lines["sync"], user)
    sync = (user / "annotated.vcf").read_text()
    vcf = vcf_path(lines["sync"])
    cli = cli_annotation(vcf, tmp_path / "cli.vcf")
    assert len(id_entries(sync)) >= 2000
    assert id_entries(sync) == id_entries(cli)

    submitted = httpx.Response(200, content=curl(lines["submit"], user)).json()
    assert submitted["status"] == "PENDING"
    assert submitted["run_id"] == "try-1"
    codes: list[str] = []

    def polled() -> bool:
        codes.append(curl(lines["poll"], user).strip())
        return codes[-1] == "200"

    wait_for(polled, 120, lambda: f"the async run to finish (codes {codes})", interval=0.3)
    assert set(codes) <= {"202", "200"}
    assert (user / "async.vcf").read_bytes() == (user / "annotated.vcf").read_bytes()

    variation = httpx.Response(200, content=curl(lines["variation"], user)).json()
    va = variation["object"]["id"]
    assert va.startswith("ga4gh:VA.")
    assert va in lines["object"]  # the banner's GET /object line names the id it registers
    assert httpx.Response(200, content=curl(lines["object"], user)).json()["data"]["id"] == va
    listed = httpx.Response(200, content=curl(lines["runs"], user)).json()
    assert [r["run_id"] for r in listed["runs"]] == ["try-1"]
    assert 'anyvar_runs{state="succeeded"} 1.0' in curl(lines["metrics"], user)

    # A worker killed outright is started again, and the next run completes on the new one.
    old = serve.started_pid("worker-1")
    pool = descendants(old)
    assert pool, "the worker has its prefork processes"
    os.kill(old, signal.SIGKILL)
    new = wait_for(lambda: serve.started_pid("worker-1", after=old), 30, "a new worker-1")
    assert "serve | worker-1 exited (killed by SIGKILL); restarting it in 1 s" in serve.text()
    wait_for(lambda: not any(running(p) for p in pool), 15, "the dead worker's pool to be gone")
    client = httpx.Client(base_url=serve.url, timeout=60)
    r = client.put(
        "/vcf",
        params={"run_async": "true", "run_id": "after-restart"},
        files={"vcf": ("input.vcf", vcf.read_bytes())},
    )
    assert r.status_code == 202, r.text
    done = wait_for(
        lambda: (r := client.get("/vcf/after-restart")).status_code == 200 and r,
        120,
        "the run submitted after the restart",
        interval=0.3,
    )
    assert done.content == (user / "annotated.vcf").read_bytes()
    assert new in descendants(serve.process.proc.pid)

    # SIGTERM: everything stops, nothing stays behind (not even the private Redis' directory).
    everything = serve.descendants()
    assert len(everything) >= 4  # api, worker, its pool, redis
    assert serve.stop_with(signal.SIGTERM) == 0
    assert not [p for p in everything if running(p)]
    assert "serve | stopped" in serve.text()
    assert not list((tmp_path / "data").glob("redis-*"))
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{serve.url}/service-info", timeout=2)
    no_traceback(serve)


def test_ctrl_c_with_the_configured_broker(tmp_path):
    """With CELERY_BROKER_URL set, serve uses that broker (no private Redis); Ctrl-C (SIGINT
    to the terminal's process group, which holds only serve) stops it all."""
    redis_client().flushdb()
    env = {"CELERY_BROKER_URL": REDIS_URL, "CELERY_BACKEND_URL": REDIS_URL}
    serve = start_serve(tmp_path, "--demo", "--workers", "2", "--concurrency", "1", env=env)
    serve.wait_ready()
    text = serve.text()
    assert "private Redis" not in text
    assert "starting 2 worker(s): 1 process(es) each, ANYVAR_THREADS=1" in text
    assert serve.started_pid("worker-1") and serve.started_pid("worker-2")
    vcf = vcf_path(curl_lines(text)["sync"])
    client = httpx.Client(base_url=serve.url, timeout=60)
    r = client.put(
        "/vcf", params={"run_async": "true"}, files={"vcf": ("in.vcf", vcf.read_bytes())}
    )
    assert r.status_code == 202, r.text
    run_id = r.json()["run_id"]
    assert redis_client().exists(f"anyvar:run:{run_id}")  # the configured Redis holds it
    done = wait_for(
        lambda: (r := client.get(f"/vcf/{run_id}")).status_code == 200 and r, 120, "the run"
    )
    assert id_entries(done.text) == id_entries(cli_annotation(vcf, tmp_path / "cli.vcf"))

    everything = serve.descendants()
    os.killpg(serve.process.proc.pid, signal.SIGINT)
    assert serve.process.proc.wait(timeout=60) == 0
    assert "serve | received SIGINT" in serve.text()
    assert not [p for p in everything if running(p)]
    no_traceback(serve)


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("no reference", "no reference sequences: set SEQREPO_DATAPROXY_URI"),
        ("port taken", "cannot listen on 127.0.0.1:{port}"),
        ("dead broker", "cannot reach the broker at CELERY_BROKER_URL=redis://127.0.0.1:{dead}/0"),
        ("no redis-server", "redis-server is not on PATH"),
    ],
)
def test_cannot_start_says_why_in_one_line(tmp_path, case, expected):
    args: list[str] = [] if case == "no reference" else ["--demo"]
    env: dict[str, str] = {}
    dead = free_port()
    if case == "dead broker":
        env["CELERY_BROKER_URL"] = f"redis://127.0.0.1:{dead}/0"
    if case == "no redis-server":
        env["PATH"] = f"{BIN}:/nonexistent"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        if case == "port taken":
            taken.listen()
        port = taken.getsockname()[1] if case == "port taken" else None
        serve = start_serve(tmp_path, *args, env=env, port=port)
        code = serve.process.proc.wait(timeout=120)
    out = serve.text()
    assert code == 1, out
    message = expected.format(port=serve.port, dead=dead)
    [line] = [line for line in out.splitlines() if line.startswith("anyvar serve: error: ")]
    assert message in line, out
    assert "Traceback" not in out
    assert "started api" not in out  # it gave up before starting anything it would leave


def test_quoted_paths_in_the_printed_lines(tmp_path):
    """The banner's lines are pasted into a shell: a data directory with a space in its name
    must still give lines that work."""
    root = tmp_path / "with space"
    serve = start_serve(root, "--demo")
    try:
        serve.wait_ready()
        line = curl_lines(serve.text())["sync"]
        assert " " in str(vcf_path(line))
        curl(line, root)
        assert id_entries((root / "annotated.vcf").read_text())
    finally:
        assert serve.stop_with(signal.SIGTERM) == 0
