#!/usr/bin/env bash
# Makes the committed samples/private set from a trained run dir:
#   5 grooves at temperature 0.5, 3 at 0.3, 3 at 1.0, a 5-step interpolation between two of
#   the 0.5 grooves, the manifest (to regenerate every file) and training_summary.json.
#
#   bash scripts/private_samples.sh RUN_DIR [CONFIG] [OUT]     # defaults: groovae_4bar, samples/private
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${1:?usage: private_samples.sh RUN_DIR [CONFIG] [OUT]}"
CONFIG="${2:-groovae_4bar}"
OUT="${3:-samples/private}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
groovae() { "$PYTHON" -m groovae "$@"; }
gen() { groovae generate --config "$CONFIG" --checkpoint private --run_dir "$RUN_DIR" --output_dir "$OUT" \
          --no_progress "$@" > /dev/null; }

gen --n 5 --temperature 0.5 --seed 0
gen --n 3 --temperature 0.3 --seed 0
gen --n 3 --temperature 1.0 --seed 0
# Interpolate between two committed grooves, so the manifest's inputs are in the repo too.
first=$(ls "$OUT"/sample_t0.5_s0_*_00.mid | head -1)
gen --mode interpolate --inputs "$first" "${first%_00.mid}_03.mid" --steps 5 --temperature 0.5
groovae summary --run_dir "$RUN_DIR" --output "$OUT/training_summary.json" > /dev/null
# The listening page above the set (samples/index.html), now with the training summary too.
if [[ -f "$(dirname "$OUT")/index.html" ]]; then groovae listen "$(dirname "$OUT")" > /dev/null; fi
du -sh "$OUT"
