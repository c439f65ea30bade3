#!/usr/bin/env bash
# The main job: set up the venv, then Groove MIDI Dataset -> windows -> model -> grooves.
#
#   bash scripts/main.sh                               # full size: groovae_4bar, 2721 steps (hours on a CPU)
#   CONFIG=groovae_tiny NUM_STEPS=200 bash scripts/main.sh       # a few minutes: every stage, tiny model
#   GMD_SOURCE=/path/groove-v1.0.0-midionly.zip ALLOW_UNVERIFIED=1 bash scripts/main.sh   # a local/repacked zip
#
# Outputs go to $WORK (default ./work): data/gmd, runs/$CONFIG, samples/$CONFIG.
# Rerunning resumes training from the newest checkpoint.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
WORK="${WORK:-$ROOT/work}"
CONFIG="${CONFIG:-groovae_4bar}"
NUM_STEPS="${NUM_STEPS:-2721}"
VENV="$VENV" bash "$ROOT/scripts/setup.sh"
cd "$ROOT"
groovae() { "$VENV/bin/python" -m groovae "$@"; }

source=()  # default: the official GMD URL (groovae/preprocess.py)
[[ -n "${GMD_SOURCE:-}" ]] && source=(--source "$GMD_SOURCE")
[[ -n "${ALLOW_UNVERIFIED:-}" ]] && source+=(--allow_unverified)
groovae preprocess "${source[@]}" --output_dir "$WORK/data/gmd" --cache_dir "$WORK/cache"
if [[ "$CONFIG" == groovae_4bar* ]] && ! command -v nvidia-smi >/dev/null; then
  echo "main: no GPU: training $CONFIG for $NUM_STEPS steps takes hours on a CPU (train prints an estimate" \
       "after its first steps; rerunning resumes). Every stage in minutes: CONFIG=groovae_tiny NUM_STEPS=200 bash scripts/main.sh" >&2
fi
groovae train --config "$CONFIG" --data "$WORK/data/gmd" --run_dir "$WORK/runs/$CONFIG" --num_steps "$NUM_STEPS"
groovae generate --config "$CONFIG" --checkpoint private --run_dir "$WORK/runs/$CONFIG" \
  --output_dir "$WORK/samples/$CONFIG" --n 5 --temperature 0.5
echo "grooves (MIDI, WAV, PNG, manifest.json) in $WORK/samples/$CONFIG"
