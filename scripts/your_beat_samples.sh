#!/usr/bin/env bash
# Makes samples/your_beat from the committed your-beat models (checkpoints/groovae_4bar_{humanize,hits_control,tap2drum}):
#   five test-split grooves of five drummers (test_grooves/: what the drummer played), each quantized to a drum-machine beat,
#   humanized twice, humanized once with every hit kept (--keep_hits), and given the feel of another drummer's
#   groove (groove transfer); three drum-machine beats written by scripts/write_beats.py, humanized; three tapped
#   rhythms, drumified.
#
#   bash scripts/your_beat_samples.sh DATA_DIR [OUT]     # DATA_DIR: the GMD preprocess output (test.npz)
#   HUMANIZE=RUN_DIR TRANSFER=RUN_DIR DRUMIFY=RUN_DIR ... # other models than the committed ones
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$(realpath -m "${1:?usage: your_beat_samples.sh DATA_DIR [OUT]}")"
OUT="$(realpath -m --relative-to="$ROOT" "${2:-$ROOT/samples/your_beat}")"  # relative, as the manifest names it
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
if [[ -e "$OUT/manifest.json" ]]; then
  echo "your_beat_samples.sh: $OUT already holds a set; move it away (or git rm it) first" >&2; exit 1
fi
groovae() { "$PYTHON" -m groovae "$@"; }
model() { if [[ -n "${1:-}" ]]; then echo "--checkpoint $1"; else echo "--checkpoint private"; fi; }
# Five busy test windows from five drummers (GMD source ids start with the drummer), so that each transfer below
# puts another drummer's feel on the beat.
indices="$("$PYTHON" -c 'import sys; from groovae import data, generate
t = data.load_tensors(sys.argv[1]); t["source_id"] = [str(s).split("/")[0] for s in t["source_id"]]
print(*generate.pick_windows(t, 5, seed=1))' "$DATA/test.npz")"
mapfile -t originals < <(groovae windows --data "$DATA" --split test --indices $indices --output_dir "$OUT/test_grooves" \
                           | grep '\.mid$')
INPUTS="$(mktemp -d)"; trap 'rm -rf "$INPUTS"' EXIT  # each run keeps a copy of its input beside its output
"$PYTHON" scripts/write_beats.py "$INPUTS" "${originals[@]}"
for k in "${!originals[@]}"; do
  beat="$INPUTS/$(basename "${originals[$k]}" .mid)_quantized.mid"
  groovae humanize "$beat" --n 2 --output_dir "$OUT" $(model "${HUMANIZE:-}") > /dev/null
  groovae humanize "$beat" --keep_hits --n 1 --output_dir "$OUT" $(model "${TRANSFER:-}") > /dev/null
  other="${originals[$(( (k + 1) % ${#originals[@]} ))]}"  # another drummer's groove: its feel on this beat
  groovae humanize "$beat" --like "$other" --output_dir "$OUT" $(model "${TRANSFER:-}") > /dev/null
done
# One feel per drum-machine beat and one kit per rhythm: the test grooves above show the spread of feels.
for beat in "$INPUTS"/beat_*.mid; do
  groovae humanize "$beat" --n 1 --output_dir "$OUT" $(model "${HUMANIZE:-}") > /dev/null
done
for taps in "$INPUTS"/taps_*.mid; do
  groovae drumify "$taps" --n 1 --output_dir "$OUT" $(model "${DRUMIFY:-}") > /dev/null
done
if [[ -f "$(dirname "$OUT")/index.html" ]]; then groovae listen "$(dirname "$OUT")" > /dev/null; fi
du -sh "$OUT"
