#!/usr/bin/env bash
# Sets up the venv with test tools and runs the fast test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
VENV="$VENV" bash "$ROOT/scripts/setup.sh" --test
cd "$ROOT"
# Two workers (pytest-xdist), each test module on one of them (its module fixtures built once): the suite
# spends most of its time starting Python and TensorFlow in subprocesses, so two cores run it ~1.7x faster.
# TEST_WORKERS=0 (or -n 0 among the arguments) runs it in one process: --pdb needs it, and -s prints only then.
exec "$VENV/bin/python" -m pytest -n "${TEST_WORKERS:-2}" --dist loadscope "$@"
