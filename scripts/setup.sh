#!/usr/bin/env bash
# Sets up a development environment from a fresh clone: Debian packages the tests need, a
# virtualenv in .venv with the package (Rust extension built by maturin) and its test extras.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v bgzip >/dev/null || need_apt+=(tabix)          # seqrepo's loader calls bgzip
command -v redis-server >/dev/null || need_apt+=(redis-server)
command -v pg_ctlcluster >/dev/null || need_apt+=(postgresql)
# tests/test_page.py drives it headless through Playwright (no `playwright install` download)
command -v chromium >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "setup: installing ${need_apt[*]} from Debian" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null; then
    echo "setup: cargo (Rust) is required" >&2
    exit 1
fi

# Runs the fuzz targets (scripts/fuzz.sh), with stable Rust.
if ! command -v cargo-fuzz >/dev/null; then
    echo "setup: installing cargo-fuzz" >&2
    cargo install -q cargo-fuzz --version 0.13.2 --locked
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv" >&2
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
# pip shows nothing while maturin compiles the Rust core (minutes the first time): say that it
# is still at work rather than look hung.
echo "setup: installing the package and its extras (building the Rust extension)" >&2
started=$SECONDS
( while sleep 30 >/dev/null 2>&1; do echo "setup: ... still installing ($((SECONDS - started)) s)" >&2; done ) &
ticker=$!
trap 'kill $ticker 2>/dev/null || true' EXIT
.venv/bin/python -m pip install -q -e '.[queueing,postgres,gunicorn,test]'
# The older vrs-python release whose output ANYVAR_VRS_PYTHON_OUTPUT=2.2 reproduces: the
# differential tests run it in a virtualenv of its own (it cannot sit beside 2.3 in .venv).
if ! .venv-vrs-python-2.2/bin/python -c 'import ga4gh.vrs.extras.annotator.vcf' 2>/dev/null; then
    echo "setup: installing vrs-python 2.2.0 into .venv-vrs-python-2.2 (test oracle)" >&2
    python3 -m venv .venv-vrs-python-2.2
    # hgvs, which it imports, still needs pkg_resources (setuptools < 81)
    .venv-vrs-python-2.2/bin/python -m pip install -q 'ga4gh.vrs[extras]==2.2.0' 'setuptools<81'
fi
# AnyVar 1.0.0 itself (PyPI): the oracle for sharing a database with AnyVar
# (tests/test_interop.py) and the peer of benchmarks/bench_variations.py.
if ! .venv-anyvar-1.0/bin/python -c 'import anyvar.storage.postgres' 2>/dev/null; then
    echo "setup: installing AnyVar 1.0.0 into .venv-anyvar-1.0 (test oracle)" >&2
    python3 -m venv .venv-anyvar-1.0
    # agct 0.2.0: the newest release with wheels (0.2.1 is a source release needing a Rust build)
    .venv-anyvar-1.0/bin/python -m pip install -q 'anyvar[postgres]==1.0.0' 'agct==0.2.0' 'setuptools<81'
fi
kill $ticker 2>/dev/null || true
echo "setup: ready (.venv, $((SECONDS - started)) s)" >&2
