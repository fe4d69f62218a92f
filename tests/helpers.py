"""What tests share besides fixtures: paths, the VRS INFO fields, VCF readers, the CLI runner,
SeqRepo building and AnyVar 1.0.0's source distribution. Fixtures are in conftest.py."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

VECTORS = REPO / "tests" / "data" / "vectors"
"""The spec's test vectors, copied from shared/spec/vectors so a bare clone carries them."""
SEQREPO_CLI = Path(sys.executable).with_name("seqrepo")
OLD_VRS_PYTHON = REPO / ".venv-vrs-python-2.2" / "bin" / "python"
"""vrs-python 2.2.0's virtualenv (scripts/setup.sh), for tests/vrs_python_oracle.py."""
SDIST = "anyvar==1.0.0"
"""AnyVar's source distribution (PyPI): its REST tests and test data."""
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "anyvar-tests"

VRS_KEYS = (
    "VRS_Allele_IDs",
    "VRS_Error",
    "VRS_Starts",
    "VRS_Ends",
    "VRS_States",
    "VRS_Lengths",
    "VRS_RepeatSubunitLengths",
)
"""The INFO keys the annotator writes."""
ALLELE_KEYS = tuple(k for k in VRS_KEYS if k != "VRS_Error")


def info_entries(info: str) -> list[str]:
    """The entries of an INFO column (none for `.`)."""
    return [] if info == "." else info.split(";")


def vrs_info(info: str) -> dict[str, str | None]:
    """The VRS INFO entries of an INFO column, in file order (None for a bare key)."""
    out: dict[str, str | None] = {}
    for entry in info_entries(info):
        key, eq, value = entry.partition("=")
        if key in VRS_KEYS:
            out[key] = value if eq else None
    return out


def build_seqrepo(fasta: Path, root: Path, instance: str = "test") -> Path:
    """A SeqRepo instance loaded from ``fasta`` with its names (``chr1``) and their numeric
    forms (``1``) as GRCh38 aliases, built by the ``seqrepo`` CLI. Returns the instance dir."""
    if shutil.which("bgzip") is None:
        pytest.fail("bgzip is not on PATH (Debian package tabix); .ci/run installs it")
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run([SEQREPO_CLI, "-r", root, "init", "-i", instance], check=True)
    numeric = root / "numeric.fa"
    with fasta.open() as src, numeric.open("w") as dst:
        for line in src:
            if line.startswith(">chr"):
                line = ">" + line[4:]
            dst.write(line)
    for f in (fasta, numeric):
        subprocess.run(
            [SEQREPO_CLI, "-r", root, "load", "-i", instance, "-n", "GRCh38", f],
            check=True,
            capture_output=True,
        )
    return root / instance


ANYVAR_CLI = Path(sys.executable).with_name("anyvar")


def read_text(path: Path) -> str:
    """A VCF's text, gunzipped when it is gzip/BGZF-compressed (detected by content)."""
    import gzip

    data = Path(path).read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    return data.decode()


def data_lines(path: Path) -> list[list[str]]:
    """The tab-split data lines of a VCF (line endings stripped)."""
    return [
        line.split("\t")
        for line in read_text(path).splitlines()
        if line and not line.startswith("#")
    ]


def info_of(fields: list[str]) -> dict[str, str]:
    """INFO of a split data line as a dict (flags map to "")."""
    if fields[7] == ".":
        return {}
    return dict((kv.split("=", 1) + [""])[:2] for kv in fields[7].split(";"))


def vrs_ids(fields: list[str]) -> list[str | None] | None:
    """The VRS_Allele_IDs entries of a split data line (None for `.`), None if absent."""
    info = info_of(fields)
    if "VRS_Allele_IDs" not in info:
        return None
    return [None if v == "." else v for v in info["VRS_Allele_IDs"].split(",")]


def run_cli(
    *args: str | Path, stdin: bytes | None = None, env: dict | None = None, cwd: Path | None = None
):
    """Runs the installed ``anyvar`` script without SEQREPO_DATAPROXY_URI unless ``env`` sets
    it; returns the CompletedProcess (bytes)."""
    import os

    full_env = {k: v for k, v in os.environ.items() if k != "SEQREPO_DATAPROXY_URI"}
    full_env.update(env or {})
    return subprocess.run(
        [ANYVAR_CLI, *map(str, args)],
        input=stdin,
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )


def fetch_sdist() -> Path:
    """AnyVar 1.0.0's source distribution, downloaded from PyPI once."""
    target = CACHE / "sdist"
    found = sorted(target.glob("anyvar-1.0.0.tar.gz"))
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-binary",
                ":all:",
                "--no-deps",
                SDIST,
                "-d",
                str(target),
            ],
            check=True,
            timeout=300,
        )
        found = sorted(target.glob("anyvar-1.0.0.tar.gz"))
    return found[0]
