#!/usr/bin/env bash
# Makes reports/your_beat_4bar: the committed your-beat models (checkpoints/groovae_4bar_{humanize,hits_control,
# tap2drum}) against the drummers of the GMD test split and three baselines (groovae evaluate-beat). Preprocesses the
# GMD with each model's converter first, into WORK/gmd_<transform> (skipped where scripts/train_committed.sh did it).
#
#   bash scripts/your_beat_report.sh [WORK] [OUT]    # WORK default ../runs (outside the repo); OUT reports/your_beat_4bar
# GMD: ../shared/data/groove-v1.0.0-midionly.zip (a repacked copy, hence --allow_unverified), or GMD_SOURCE.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK="$(mkdir -p "${1:-$ROOT/../runs}" && cd "${1:-$ROOT/../runs}" && pwd)"
OUT="$(realpath -m "${2:-$ROOT/reports/your_beat_4bar}")"
GMD_SOURCE="${GMD_SOURCE:-$ROOT/../shared/data/groove-v1.0.0-midionly.zip}"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
cd "$ROOT"
for name in groovae_4bar_humanize groovae_4bar_hits_control groovae_4bar_tap2drum; do
  if [[ ! -e "checkpoints/$name/run.json" ]]; then
    echo "your_beat_report.sh: checkpoints/$name is not committed yet (scripts/train_committed.sh makes it)" >&2; exit 1
  fi
done
data=()
for mode in humanize:humanize transfer:hits_control drumify:tap2drum; do
  config="groovae_4bar_${mode#*:}" dir="$WORK/gmd_${mode#*:}"
  [[ -e "$dir/test.npz" ]] || "$PYTHON" -m groovae preprocess --source "$GMD_SOURCE" --allow_unverified \
                                --config "$config" --output_dir "$dir"
  data+=("${mode%%:*}=$dir")
done
"$PYTHON" -m groovae evaluate-beat --data "${data[@]}" --output_dir "$(realpath -m --relative-to=. "$OUT")"
