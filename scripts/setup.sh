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

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[queueing,postgres,gunicorn,test]'
echo "setup: ready (.venv)" >&2
