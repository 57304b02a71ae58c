#!/usr/bin/env bash
# A sandbox to try the reconciler by hand: the emulator the tests use (moto
# with its gaps filled, tests/support/harness.py) on loopback, seeded with the
# demo account. Prints the `export` lines for the CLI and stays up until
# Ctrl-C. Arguments go to the demo: `single` seeds one template named by an
# SSM parameter instead of tag mode.
set -euo pipefail
cd "$(dirname "$0")/.."
AMI_RECONCILER_PYTHON=$(scripts/python-env.sh)
export AMI_RECONCILER_PYTHON
echo "Building (the first build compiles the AWS SDK: several minutes)..." >&2
cargo build --quiet --bins --example demo
exec target/debug/examples/demo sandbox "$@"
