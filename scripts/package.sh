#!/usr/bin/env bash
# Builds the deployable Lambda zip with cargo-lambda (from PyPI, with zig from
# the ziglang package, both in .venv-tools/cargo-lambda) and prints its size.
#
# The template deploys arm64. That needs the aarch64-unknown-linux-gnu Rust
# target; without it the arm64 build is skipped (said, not failed) and the
# x86_64 zip is built instead, as proof that the function packages.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bin=$(scripts/tools-env.sh cargo-lambda cargo-lambda==1.9.2 ziglang==0.17.1)
# `--tools-only`: install the tools and stop (CI installs them early).
if [ "${1:-}" = "--tools-only" ]; then
    exit 0
fi
# cargo-lambda finds zig as `python3 -m ziglang` of the venv.
export PATH="$bin:$PATH"

if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
    arch=--arm64
    echo "== cargo lambda build --release --arm64 (what template.yaml deploys)" >&2
else
    arch=--x86-64
    echo "== SKIPPED the arm64 build: the Rust target aarch64-unknown-linux-gnu is not installed" >&2
    echo "   (rustup target add aarch64-unknown-linux-gnu). Building x86_64 as a stand-in;" >&2
    echo "   deploy it with Architectures: [x86_64], or build arm64 where the target exists." >&2
fi
cargo lambda build --release "$arch" --output-format zip --bin ami-reconciler-lambda
zip=target/lambda/ami-reconciler-lambda/bootstrap.zip
echo "== $zip ($arch): $(stat -c %s "$zip") bytes, built in $(( $(date +%s) - start )) s" >&2
