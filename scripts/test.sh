#!/usr/bin/env bash
# The whole test suite, as CI runs it: set-up, services, Rust checks and tests, a short run of
# each fuzz target, Python lint and tests (against real Redis/PostgreSQL/Celery workers, and
# vrs-python as the oracle).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
bash scripts/services.sh

cargo fmt --all --check
cargo clippy --locked --all-targets -- -D warnings
# --include-ignored: also the storage tests that need PostgreSQL (started above)
cargo test --locked -- --include-ignored
bash scripts/fuzz.sh
.venv/bin/ruff check python tests benchmarks
.venv/bin/ruff format --check python tests benchmarks
.venv/bin/pytest "$@"
