#!/usr/bin/env bash
# The full test suite. Installs what the tests need (moto server, pinned, in
# .venv); each integration test starts its own moto server on 127.0.0.1 on a
# free port, behind the counting, fault-injecting proxy (tests/support/).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
AMI_RECONCILER_PYTHON=$(scripts/python-env.sh)
export AMI_RECONCILER_PYTHON

echo "== format" >&2
cargo fmt --all -- --check

echo "== clippy (every target, warnings are errors)" >&2
cargo clippy --all-targets --quiet -- -D warnings

echo "== moto gap fills and proxy self-check" >&2
"$AMI_RECONCILER_PYTHON" tests/support/selfcheck.py
"$AMI_RECONCILER_PYTHON" tests/support/selfcheck_refresh.py

echo "== deployment lints: template.yaml and policies/ (tools in .venv-tools)" >&2
scripts/lint.sh

echo "== Rust tests (planner, moto integration, Lambda handler, CLI)" >&2
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --all-targets --profile ci
    # nextest does not run doctests
    cargo test --doc --quiet
else
    cargo test --workspace --all-targets
fi
echo "== benchmark, quick: parity with the boto3 peer, steady-state call floor, zero mutating calls" >&2
cargo build --quiet --bins --example measure
"$AMI_RECONCILER_PYTHON" benchmark/bench.py --quick --cli target/debug/ami-reconciler

echo "== sandbox: scripts/sandbox.sh comes up, the CLI plans against it, it stops" >&2
cargo build --quiet --example demo
scripts/sandbox-check.sh

echo "== Lambda package (cargo lambda build --release)" >&2
scripts/package.sh

echo "== all tests passed in $(( $(date +%s) - start )) s" >&2
