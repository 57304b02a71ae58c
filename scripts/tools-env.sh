#!/usr/bin/env bash
# Creates .venv-tools/NAME with exactly the given pinned packages, once per
# change of the pins, and prints its bin directory. Each tool gets its own
# virtual environment: aws-sam-cli and checkov pin different boto3 versions.
# Usage: scripts/tools-env.sh NAME PACKAGE==VERSION...
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
shift
venv=.venv-tools/$name
want="$*"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.pins" 2>/dev/null)" != "$want" ]; then
    echo "Installing $name into $venv ($want)..." >&2
    start=$(date +%s)
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" >&2
    echo "$want" > "$venv/.pins"
    echo "  installed in $(( $(date +%s) - start )) s" >&2
fi
echo "$PWD/$venv/bin"
