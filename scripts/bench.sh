#!/usr/bin/env bash
# The benchmark: ami-reconciler against the boto3 peer on moto (see
# docs/performance.md). Builds the release binaries first (a cold release
# build of the AWS SDK takes a while). Extra arguments go to bench.py, e.g.
#   scripts/bench.sh --runs 5 --write-docs
#   scripts/bench.sh --quick
set -euo pipefail
cd "$(dirname "$0")/.."
python=$(scripts/python-env.sh)
cargo build --release --bins --example measure
exec "$python" benchmark/bench.py --cli target/release/ami-reconciler "$@"
