#!/usr/bin/env bash
# The main job: set up the venv, then preprocess -> train -> generate.
# For now it runs on small synthetic drum grooves with the tiny config (a smoke
# run of every stage, ~1 minute after install); WORK=dir chooses where outputs go.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
WORK="${WORK:-$ROOT/work}"
VENV="$VENV" bash "$ROOT/scripts/setup.sh"
PY="$VENV/bin/python"

"$PY" -c "from groovae import synthetic; synthetic.write_grooves('$WORK/midi', n=16)"
"$PY" -m groovae preprocess --config groovae_tiny --source "$WORK/midi" --output "$WORK/data/train.npz"
"$PY" -m groovae train --config groovae_tiny --data "$WORK/data/train.npz" --run_dir "$WORK/runs/groovae_tiny" --num_steps 200
"$PY" -m groovae generate --config groovae_tiny --checkpoint "$WORK/runs/groovae_tiny" --output_dir "$WORK/samples" --n 5 --temperature 0.5
echo "samples written to $WORK/samples"
