#!/usr/bin/env bash
# Makes a committed samples set (samples/private, samples/private_hier) from a trained run dir:
#   5 grooves at temperature 0.5, 3 at 0.3, 3 at 1.0, 5 at 0.5 read given the hit; five test-split grooves (test_grooves/);
#   a 5-step interpolation between the first two of them and reconstructions of the other three;
#   the manifest (to regenerate every file) and training_summary.json.
#
#   bash scripts/private_samples.sh RUN_DIR DATA_DIR [CONFIG] [OUT]
#     DATA_DIR: the preprocess output (test.npz); defaults: groovae_4bar, samples/private
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${1:?usage: private_samples.sh RUN_DIR DATA_DIR [CONFIG] [OUT]}"
DATA="${2:?usage: private_samples.sh RUN_DIR DATA_DIR [CONFIG] [OUT]}"
CONFIG="${3:-groovae_4bar}"
OUT="${4:-samples/private}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
if [[ -e "$OUT/manifest.json" ]]; then
  echo "private_samples.sh: $OUT already holds a set; move it away (or git rm it) first" >&2; exit 1
fi
groovae() { "$PYTHON" -m groovae "$@"; }
gen() { groovae generate --config "$CONFIG" --checkpoint private --run_dir "$RUN_DIR" --output_dir "$OUT" \
          --no_progress "$@" > /dev/null; }

gen --n 5 --temperature 0.5 --seed 0
gen --n 3 --temperature 0.3 --seed 0
gen --n 3 --temperature 1.0 --seed 0
# The first 5 again (the same hits), velocities and timing read given the hit (generate --decoding given_hit).
gen --n 5 --temperature 0.5 --seed 0 --decoding given_hit
# Real grooves from the test split (never trained on), kept in the set so the manifest's inputs are too.
mapfile -t originals < <(groovae windows --data "$DATA" --split test --n 5 --seed 0 --config "$CONFIG" \
                           --output_dir "$OUT/test_grooves" | grep '\.mid$')
gen --mode interpolate --inputs "${originals[0]}" "${originals[1]}" --steps 5 --temperature 0.5
for original in "${originals[@]:2:3}"; do
  gen --mode reconstruct --inputs "$original" --temperature 0.5
done
groovae summary --run_dir "$RUN_DIR" --output "$OUT/training_summary.json" > /dev/null
# The listening page above the set (samples/index.html), now with the training summary too.
if [[ -f "$(dirname "$OUT")/index.html" ]]; then groovae listen "$(dirname "$OUT")" > /dev/null; fi
du -sh "$OUT"
