#!/usr/bin/env bash
# The full test suite. Installs what the tests need (moto server, pinned, in
# .venv); each integration test starts its own moto server on 127.0.0.1 on a
# free port, behind the counting, fault-injecting proxy (tests/support/).
# Prints how long each stage took, and all of them at the end (also when a
# stage fails), so a slow CI run shows where the time went.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

# `stage NAME` ends the running stage (printing "== ... took N s") and starts
# NAME; `stages_summary` ends the last one and prints every stage's duration.
durations=()
stage_name=
stage_start=$start
stage_end() {
    local took=$(( $(date +%s) - stage_start ))
    durations+=("$(printf '%6d s  %s%s' "$took" "$stage_name" "${1:+ ($1)}")")
    echo "== $stage_name took $took s${1:+ ($1)}" >&2
}
stage() {
    stage_end
    stage_name=$1
    stage_start=$(date +%s)
    echo "== $1" >&2
}
stages_summary() {
    stage_end "${1:-}"
    stage_name=
    echo "== stage durations:" >&2
    printf '%s\n' "${durations[@]}" >&2
}
trap 'rc=$?; if [ -n "${side_pid:-}" ]; then kill "$side_pid" 2>/dev/null || true; fi; if [ "$rc" -ne 0 ] && [ -n "$stage_name" ]; then stages_summary "failed, exit $rc"; fi' EXIT

stage_name="setup: Python test environment (.venv)"
AMI_RECONCILER_PYTHON=$(scripts/python-env.sh)
export AMI_RECONCILER_PYTHON

# The deployment lints and the packaging tools are Python, mostly downloads:
# they run alongside the Rust stages, whose compiles of the large SDK crates
# leave a core idle for minutes. Their output is kept and shown in their own
# stage below, which waits for them.
side_log=$(mktemp)
side_start=$(date +%s)
(
    scripts/lint.sh
    scripts/package.sh --tools-only
) >"$side_log" 2>&1 &
side_pid=$!

stage "format"
cargo fmt --all -- --check

stage "clippy (every target, warnings are errors)"
cargo clippy --all-targets --quiet -- -D warnings

stage "moto gap fills and proxy self-check"
"$AMI_RECONCILER_PYTHON" tests/support/selfcheck.py
"$AMI_RECONCILER_PYTHON" tests/support/selfcheck_refresh.py

stage "Rust tests (planner, moto integration, Lambda handler, CLI)"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-targets --profile ci
    # nextest does not run doctests
    cargo test --doc --quiet
else
    cargo test --workspace --all-targets
fi
stage "benchmark, quick: parity with the boto3 peer, steady-state call floor, zero mutating calls"
cargo build --quiet --bins --example measure
"$AMI_RECONCILER_PYTHON" benchmark/bench.py --quick --cli target/debug/ami-reconciler

stage "sandbox: scripts/sandbox.sh comes up, the CLI plans against it, it stops"
cargo build --quiet --example demo
scripts/sandbox-check.sh

stage "deployment lints: template.yaml and policies/ (tools in .venv-tools; started at setup)"
side_rc=0
wait "$side_pid" || side_rc=$?
side_pid=
cat "$side_log" >&2
echo "== the lints and tool installs ran for $(( $(date +%s) - side_start )) s alongside the stages above" >&2
rm -f "$side_log"
[ "$side_rc" -eq 0 ]

stage "Lambda package (cargo lambda build --release)"
scripts/package.sh

stages_summary
echo "== all tests passed in $(( $(date +%s) - start )) s" >&2
