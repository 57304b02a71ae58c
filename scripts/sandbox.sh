#!/usr/bin/env bash
# A sandbox to try the reconciler by hand: the emulator the tests use (moto
# with its gaps filled, tests/support/harness.py) on loopback, seeded with the
# demo account. Prints the `export` lines for the CLI and stays up until
# Ctrl-C. Arguments go to the demo: `single` seeds one template named by an
# SSM parameter instead of tag mode.
exec "$(dirname "$0")/demo.sh" sandbox "$@"
