#!/usr/bin/env bash
# Creates .venv with the pinned test dependencies (moto server and its
# gap fills need them), once per change of tests/support/requirements.txt.
# Prints the interpreter's path.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=tests/support/requirements.txt
stamp=.venv/.requirements.sha256
want=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "Installing test dependencies into .venv (moto server, pinned)..." >&2
    python3 -m venv .venv >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
    echo "$want" > "$stamp"
fi
echo "$PWD/.venv/bin/python"
