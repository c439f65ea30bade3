#!/usr/bin/env bash
# Sets up the venv with test tools and runs the fast test suite.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
VENV="$VENV" bash "$ROOT/scripts/setup.sh" --test
cd "$ROOT"
exec "$VENV/bin/python" -m pytest "$@"
