"""The hand-written stubs of ``anyvar._core`` say what the extension exports, with its
signatures: mypy's stubtest compares them with the built module."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_stubs_match_the_extension():
    checked = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "anyvar._core"],
        cwd=REPO / "python",
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
