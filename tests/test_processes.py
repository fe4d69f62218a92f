"""The process harness (``anyvar.processes``) that ``anyvar serve``, the tests and the
benchmarks start their processes with: readiness by probe, the log on failure, and a stop that
takes what the process forked with it."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from anyvar.processes import Process, ProcessError, answers, clean_env, free_port


def test_a_server_is_ready_when_it_answers_and_stops_with_what_it_forked(tmp_path: Path):
    port = free_port()
    # A shell that leaves a background child behind, then becomes an HTTP server.
    script = f"sleep 300 & echo $! > child.pid; exec {sys.executable} -m http.server {port}"
    p = Process.start("web", ["sh", "-c", script], tmp_path, clean_env({}))
    url = f"http://127.0.0.1:{port}/"
    p.wait_until(lambda: answers(url), timeout=30, what="answering")
    child = int((tmp_path / "child.pid").read_text())
    os.kill(child, 0)  # alive
    p.stop(grace=5)
    assert not p.alive() and not answers(url)
    with pytest.raises(ProcessLookupError):
        for _ in range(100):  # reaped by init shortly after the group's SIGKILL
            os.kill(child, 0)
            time.sleep(0.05)


def test_a_process_that_exits_early_is_reported_with_its_log(tmp_path: Path):
    p = Process.start(
        "broken", ["sh", "-c", "echo cannot start: no such file; exit 3"], tmp_path, {}
    )
    with pytest.raises(ProcessError, match=r"(?s)broken exited with 3.*cannot start: no such file"):
        p.wait_until(lambda: False, timeout=30)


def test_our_settings_do_not_leak_into_a_process(monkeypatch):
    monkeypatch.setenv("ANYVAR_STORAGE_URI", "postgresql://from-the-shell")
    env = clean_env({"SEQREPO_DATAPROXY_URI": "given"})
    assert "ANYVAR_STORAGE_URI" not in env and env["SEQREPO_DATAPROXY_URI"] == "given"
