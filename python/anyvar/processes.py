"""One way to run a process of ours (an API, a Celery worker): on a free port, in a session of
its own so that it and whatever it forks (a prefork pool, gunicorn's workers) stop together,
its output in a log file, ready once a probe says so. ``anyvar serve``, the tests and the
benchmarks start their processes through it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OWN_PREFIXES = ("ANYVAR_", "SEQREPO_", "CELERY_")
"""Variables of ours: a process under test or benchmark gets only the ones it is given, never
the developer's shell's."""


class ProcessError(Exception):
    """A process exited, or was not ready in time; the message ends with its log's tail."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This environment without our own variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_PREFIXES)}
    env.update(extra)
    return env


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL to the process group of ``proc`` (started with ``start_new_session``): it and
    what it forked, which may outlive it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def answers(url: str) -> bool:
    """Whether ``url`` answers HTTP at all (any status: it may want a token): the readiness
    probe of an API."""
    try:
        with urllib.request.urlopen(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Process:
    name: str
    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(
        cls,
        name: str,
        cmd: list[Any],
        cwd: Path,
        env: dict[str, str],
        log: Path | None = None,
        **popen: Any,
    ) -> Process:
        """Starts ``cmd`` in ``cwd`` (so that no stray ``.env`` is read) with exactly ``env``
        (see ``clean_env``), its output in ``log`` (default ``<cwd>/<name>.log``)."""
        cwd.mkdir(parents=True, exist_ok=True)
        log = log or cwd / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(c) for c in cmd],
                cwd=cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen,
            )
        return cls(name, proc, log)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def tail(self, chars: int = 6000) -> str:
        return self.text()[-chars:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str = "ready") -> None:
        """Returns once ``ready()``; raises ProcessError if the process exits first or
        ``timeout`` seconds pass."""
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.alive():
                raise ProcessError(
                    f"{self.name} exited with {self.proc.returncode} before it was {what} "
                    f"(log {self.log}):\n{self.tail()}"
                )
            if time.monotonic() > deadline:
                raise ProcessError(
                    f"{self.name} was not {what} within {timeout:.0f} s (log {self.log}):\n"
                    f"{self.tail()}"
                )
            time.sleep(0.05)

    def stop(self, grace: float = 0.0) -> None:
        """SIGTERM and up to ``grace`` seconds to finish (none: killed at once), then SIGKILL
        to its whole group, which prefork children may outlive their parent in."""
        if grace and self.alive():
            self.proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        kill_group(self.proc)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=15)
