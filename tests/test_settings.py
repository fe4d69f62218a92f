"""Every setting is parsed and range-checked once at start: a bad value stops the API, the
Celery worker and ``anyvar serve`` with one line per bad setting (naming the variable, the value
and what is allowed) and exit status 3, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from anyvar.config import Settings
from anyvar.processes import clean_env, free_port

BIN = Path(sys.executable).parent

# Each bad value, and what its line must say is allowed.
BAD = {
    "ANYVAR_THREADS": ("abc", "valid integer"),
    "ANYVAR_VCF_ASYNC_FAILURE_STATUS_CODE": ("999", "less than or equal to 599"),
    "ANYVAR_MAX_LINE_BYTES": ("-1", "greater than 0"),
    "CELERY_TASK_ACKS_LATE": ("maybe", "valid boolean"),
    "ANYVAR_VRS_PYTHON_OUTPUT": ("3", "'2.3' or '2.2'"),
}


def command(program: str) -> list[str]:
    port = str(free_port())
    if program == "api":
        return [str(BIN / "uvicorn"), "anyvar.restapi.main:app", "--port", port]
    if program == "worker":
        app = "anyvar.queueing.celery_worker:celery_app"
        return [str(BIN / "celery"), "-A", app, "worker", "--pool", "solo"]
    return [str(BIN / "anyvar"), "serve", "--port", port]


@pytest.mark.parametrize("program", ["api", "worker", "serve"])
def test_bad_settings_stop_the_start_with_one_line_each(program, tmp_path, vector_seqrepo_uri):
    env = {
        "SEQREPO_DATAPROXY_URI": vector_seqrepo_uri,
        "ANYVAR_STORAGE_URI": "",
        "TMPDIR": str(tmp_path),
        **{name: value for name, (value, _) in BAD.items()},
    }
    done = subprocess.run(
        command(program),
        cwd=tmp_path,
        env=clean_env(env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 3, output
    assert "Traceback" not in output
    lines = [line for line in done.stderr.splitlines() if line.startswith("AnyVar cannot start: ")]
    assert len(lines) == len(BAD), done.stderr
    for name, (value, allowed) in BAD.items():
        (line,) = [line for line in lines if f"{name}={value!r}" in line]
        assert allowed in line, line


@pytest.mark.parametrize("processes", [1, 2, 3, 64])
def test_threads_are_the_cores_shared_among_processes_unless_set(processes: int) -> None:
    """The one sizing of the core's threads: ``ANYVAR_THREADS`` where set, else each of
    ``processes`` processes gets its share of the cores this process may use (at least one)."""
    cores = len(os.sched_getaffinity(0))
    assert Settings(ANYVAR_THREADS=0).annotation_threads(processes) == max(1, cores // processes)
    assert Settings(ANYVAR_THREADS=5).annotation_threads(processes) == 5
