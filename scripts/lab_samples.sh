#!/usr/bin/env bash
# Makes samples/lab: the groove lab (groovae lab) with the committed models that magenta.js runs, exported 8-bit:
# groovae_4bar (samples, interpolates), groovae_4bar_humanize (humanizes), groovae_4bar_tap2drum (drumifies).
# The hierarchical and hits-as-controls models are not among them: magenta.js cannot run those (groovae export says why).
# Rerun it only when one of these models changes; the same models give the same files.
#
#   bash scripts/lab_samples.sh [OUT]        # default samples/lab (replaced whole)
#   MAGENTA_JS=path/to/magentamusic.js ...   # a local @magenta/music instead of the pinned CDN URL (offline use)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$(realpath -m "${1:-$ROOT/samples/lab}")"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
MODELS=(groovae_4bar groovae_4bar_humanize groovae_4bar_tap2drum)
cd "$ROOT"
for name in "${MODELS[@]}"; do
  if [[ ! -e "checkpoints/$name/run.json" ]]; then
    echo "lab_samples.sh: checkpoints/$name is not committed yet (scripts/train_committed.sh makes it)" >&2; exit 1
  fi
done
EXPORTS="$(mktemp -d)"; trap 'rm -rf "$EXPORTS"' EXIT
for name in "${MODELS[@]}"; do  # the export folder's name is the model's name on the page
  "$PYTHON" -m groovae export "checkpoints/$name" --format magenta-js --quantize 8 --output_dir "$EXPORTS/$name" \
    > /dev/null
done
"$PYTHON" -m groovae lab "${MODELS[@]/#/$EXPORTS/}" --output_dir "$OUT" --title "groove lab: the models trained here" ${MAGENTA_JS:+--magenta_js "$MAGENTA_JS"}
du -sh "$OUT" "$OUT"/models/*
