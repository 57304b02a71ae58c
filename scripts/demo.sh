#!/usr/bin/env bash
# The demo: moto on loopback, a drifted account, then plan / apply / plan.
# Arguments go to the demo: `single` (one template by SSM parameter), `--json`,
# `sandbox` (seed, print the export lines, stay up: scripts/sandbox.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
AMI_RECONCILER_PYTHON=$(scripts/python-env.sh)
export AMI_RECONCILER_PYTHON
echo "Building (the first build compiles the AWS SDK: several minutes)..." >&2
cargo build --quiet --bins --example demo
exec target/debug/examples/demo "$@"
