#!/usr/bin/env bash
# Trains the models committed in checkpoints/, one at a time, with the settings they were committed with
# (seed 0, fp32, validation every 250 steps, a checkpoint every 5 minutes, nice 10). Every step resumes:
# rerun the same command after any interruption and finished steps are skipped.
#   1. groovae_4bar (flat) to 2,721 steps -> checkpoints/groovae_4bar (weights only, `groovae export`)
#   2. groovae_4bar_{humanize,tap2drum,hits_control} from it, BEAT_STEPS steps each -> checkpoints/<config>
#   3. groovae_4bar_hier to 2,721 steps -> checkpoints/groovae_4bar_hier
#
#   bash scripts/train_committed.sh [WORK]            run dirs and data in WORK (default: ../runs, outside the repo)
#   bash scripts/train_committed.sh --snapshot [WORK] copies the unfinished run's newest checkpoint (with its optimizer
#                                                     state) to checkpoints/unfinished/<config>, to carry it to another
#                                                     machine in the repo; a run dir without checkpoints starts from it.
# GMD: ../shared/data/groove-v1.0.0-midionly.zip (a repacked copy, hence --allow_unverified), or GMD_SOURCE.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SNAPSHOT=0; [[ "${1:-}" == --snapshot ]] && { SNAPSHOT=1; shift; }
WORK="$(mkdir -p "${1:-$ROOT/../runs}" && cd "${1:-$ROOT/../runs}" && pwd)"
GMD_SOURCE="${GMD_SOURCE:-$ROOT/../shared/data/groove-v1.0.0-midionly.zip}"
BEAT_STEPS="${BEAT_STEPS:-1000}"
FULL_STEPS=2721  # the official groovae_4bar budget
G=("$ROOT/.venv/bin/python" -m groovae)
TRAIN=(--seed 0 --validate_every 250 --checkpoint_every_secs 300 --precision fp32 --no_progress)
UNFINISHED="$ROOT/checkpoints/unfinished"
log() { echo "[$(date -u +%FT%TZ)] train_committed: $*"; }
newest() { sed -n 's/^model_checkpoint_path: "\(.*\)"$/\1/p' "$1/checkpoint" 2>/dev/null; }

snapshot() {  # the run in progress (a run dir with checkpoints whose model is not committed yet)
  local name ckpt
  for name in groovae_4bar groovae_4bar_humanize groovae_4bar_tap2drum groovae_4bar_hits_control groovae_4bar_hier; do
    ckpt="$(newest "$WORK/$name")"
    [[ -n "$ckpt" && ! -e "$ROOT/checkpoints/$name/run.json" ]] || continue
    rm -rf "$UNFINISHED/$name.tmp" && mkdir -p "$UNFINISHED/$name.tmp"
    cp "$WORK/$name/$ckpt".{index,data-00000-of-00001} "$WORK/$name"/{run.json,metrics.csv} "$UNFINISHED/$name.tmp/"
    printf 'model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' "$ckpt" "$ckpt" > "$UNFINISHED/$name.tmp/checkpoint"
    rm -rf "$UNFINISHED/$name" && mv "$UNFINISHED/$name.tmp" "$UNFINISHED/$name"
    log "$name: $ckpt -> checkpoints/unfinished/$name ($(du -sh "$UNFINISHED/$name" | cut -f1))"
  done
}

train() {  # train NAME DATA STEPS [extra args]: resumes; seeds an empty run dir from its committed snapshot
  local name=$1 data=$2 steps=$3; shift 3
  if [[ -z "$(newest "$WORK/$name")" && -n "$(newest "$UNFINISHED/$name")" ]]; then
    log "$name: starting from checkpoints/unfinished/$name ($(newest "$UNFINISHED/$name"))"
    mkdir -p "$WORK/$name" && cp "$UNFINISHED/$name"/* "$WORK/$name/"
  fi
  log "$name to step $steps"
  nice -n 10 "${G[@]}" train --config "$name" --data "$data" --run_dir "$WORK/$name" --num_steps "$steps" \
    "${TRAIN[@]}" "$@"
  if [[ ! -e "$ROOT/checkpoints/$name/run.json" ]]; then
    "${G[@]}" export "$WORK/$name" --output_dir "$ROOT/checkpoints/$name"
    rm -rf "$UNFINISHED/$name"
  fi
}

preprocess() {  # preprocess CONFIG OUT
  [[ -e "$2/train.npz" ]] && return
  log "preprocess $1 -> $2"
  nice -n 10 "${G[@]}" preprocess --source "$GMD_SOURCE" --allow_unverified --config "$1" --output_dir "$2"
}

if ((SNAPSHOT)); then snapshot; exit; fi
preprocess groovae_4bar "$WORK/gmd"
train groovae_4bar "$WORK/gmd" "$FULL_STEPS"
for beat in humanize tap2drum hits_control; do
  preprocess "groovae_4bar_$beat" "$WORK/gmd_$beat"
  train "groovae_4bar_$beat" "$WORK/gmd_$beat" "$BEAT_STEPS" --init_from "$ROOT/checkpoints/groovae_4bar"
done
train groovae_4bar_hier "$WORK/gmd" "$FULL_STEPS"
log "done: $(cd "$ROOT" && du -sh checkpoints/groovae_4bar* | tr '\n' ' ')"
