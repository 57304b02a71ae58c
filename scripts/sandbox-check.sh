#!/usr/bin/env bash
# The sandbox as an operator uses it: it comes up, the CLI plans against it
# with the export lines it printed, and it stops. Needs the debug build of the
# CLI and the demo (scripts/test.sh builds them) and AMI_RECONCILER_PYTHON.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp)
target/debug/examples/demo sandbox >"$out" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 1 240); do
    grep -q '^export LAUNCH_TEMPLATE_TAG=' "$out" && break
    kill -0 "$pid" 2>/dev/null || { cat "$out" >&2; echo "the sandbox stopped" >&2; exit 1; }
    sleep 0.5
done
eval "$(grep '^export ' "$out")"
target/debug/ami-reconciler plan >"$out.plan"
tail -n 1 "$out.plan"
rm -f "$out.plan"
kill "$pid"
wait "$pid" 2>/dev/null || true
echo "sandbox: up, planned against, stopped" >&2
