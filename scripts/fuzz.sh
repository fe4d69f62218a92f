#!/usr/bin/env bash
# A short run of each fuzz target (fuzz/fuzz_targets/) from its committed seeds: every seed must
# pass, and some seconds of mutation must find no panic and no broken round trip. The test
# command runs it; `scripts/fuzz.sh 60 vcf_record` runs one target for longer.
#
# Stable Rust: no sanitizer (`-s none`; the core has no unsafe code), and the dev profile, which
# compiles in well under half the time of cargo-fuzz's optimized build (a run of seconds would
# not win that back). New inputs the runs find stay in fuzz/corpus/ (not committed); an input
# that fails is written to fuzz/artifacts/TARGET/.
#
# Usage: scripts/fuzz.sh [SECONDS per target, default 5] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-5}
shift || true
if ! command -v cargo-fuzz >/dev/null; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --version 0.13.2 --locked
fi
# Beside the workspace's own build output, so that build scripts and proc macros are shared.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}

started=$SECONDS
# The top workspace's `cargo fmt --all` does not reach this workspace.
cargo fmt --manifest-path fuzz/Cargo.toml --check
cargo fuzz build --fuzz-dir fuzz -s none --dev
echo "fuzz: targets built in $((SECONDS - started)) s" >&2

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
log=$(mktemp)
# The targets write their reference and scratch files under TMPDIR and cannot remove them
# (libFuzzer ends the process with exit): they go with this directory.
scratch=$(mktemp -d)
trap 'rm -rf "$log" "$scratch"' EXIT
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    if ! TMPDIR=$scratch cargo fuzz run --fuzz-dir fuzz -s none --dev "$target" \
        "fuzz/corpus/$target" "fuzz/seeds/$target" \
        -- -max_total_time="$seconds" -timeout=10 >"$log" 2>&1; then
        tail -n 60 "$log"
        echo "fuzz: $target failed; the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    echo "fuzz: $target: $(grep -E '^#[0-9]+' "$log" | tail -n 1)"
done
echo "fuzz: ${#targets[@]} targets in $((SECONDS - started)) s" >&2
