#!/usr/bin/env bash
# Creates/updates the virtual environment with the pinned stack.
#   PYTHON=python3.12 VENV=.venv-312 bash scripts/setup.sh [--test] [--beam]
# --beam adds the [beam] extra (apache-beam, for preprocess --runner beam); --test installs it too.
# Source it (`. scripts/setup.sh`) to stay in the venv afterwards.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$ROOT/.venv}"
REQS=("$ROOT/requirements.txt" "$ROOT/requirements-nodeps.txt")
[[ " $* " == *" --test "* ]] && REQS+=("$ROOT/requirements-test.txt")
BEAM=""
[[ " $* " == *" --beam "* || " $* " == *" --test "* ]] && BEAM=1 && REQS+=("$ROOT/requirements-beam.txt")

# Debian/Ubuntu packages, installed when missing (as root; otherwise the command to run is printed):
# python3-venv where the interpreter lacks venv/ensurepip, and FluidSynth with a General MIDI
# SoundFont for the WAV files (without them `groovae generate` writes MIDI and PNG only).
apt_packages=()
"$PYTHON" -c "import ensurepip, venv" 2>/dev/null || apt_packages+=(python3-venv)
command -v fluidsynth >/dev/null || apt_packages+=(fluidsynth)
[[ -e /usr/share/sounds/sf2/FluidR3_GM.sf2 ]] || apt_packages+=(fluid-soundfont-gm)
# With --test: Debian's Chromium and its WebDriver for the listening page's browser test (tests/test_listen.py).
if [[ " $* " == *" --test "* ]]; then
  [[ -x /usr/bin/chromium ]] || apt_packages+=(chromium)
  [[ -x /usr/bin/chromedriver ]] || apt_packages+=(chromium-driver)
  command -v npm >/dev/null || apt_packages+=(nodejs npm)  # @magenta/music for the magenta.js agreement test
fi
if ((${#apt_packages[@]})); then
  if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
    echo "setup: apt-get install ${apt_packages[*]}" >&2
    if ! (export DEBIAN_FRONTEND=noninteractive; apt-get update -qq &&
          apt-get install -y -qq --no-install-recommends "${apt_packages[@]}" >/dev/null); then
      echo "setup: warning: apt-get install ${apt_packages[*]} failed" >&2
    fi
  else
    echo "setup: missing Debian packages; run: sudo apt-get install ${apt_packages[*]}" >&2
  fi
fi

if [[ ! -x "$VENV/bin/python" ]]; then
  "$PYTHON" -m venv "$VENV"
fi
# Skip pip when nothing changed since the last successful install.
STAMP="$VENV/.groovae-installed"
WANT="$(cat "${REQS[@]}" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [[ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]]; then
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements.txt"
  # magenta's and note-seq's declared deps are uninstallable today; ours cover what they import.
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r "$ROOT/requirements-nodeps.txt"
  if [[ " $* " == *" --test "* ]]; then
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements-test.txt"
  fi
  if [[ -n "$BEAM" ]]; then  # the [beam] extra, beside the pins above (protobuf 6.33.6 is one both accept)
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$ROOT/requirements.txt" \
      -r "$ROOT/requirements-beam.txt"
  fi
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e "$ROOT"
  echo "$WANT" > "$STAMP"
fi
# With --test: @magenta/music from npm (never committed), for the test that runs an export in the browser.
MAGENTA_JS_VERSION="$(sed -n 's/^MAGENTA_JS_VERSION = "\([^"]*\)".*/\1/p' "$ROOT/groovae/lab.py")"  # one pin: the lab's
MAGENTA_JS_DIR="$ROOT/.cache/magenta-js"
if [[ " $* " == *" --test "* ]] && command -v npm >/dev/null &&
   [[ "$(cat "$MAGENTA_JS_DIR/.version" 2>/dev/null)" != "$MAGENTA_JS_VERSION" ]]; then
  if npm install -s --prefix "$MAGENTA_JS_DIR" --no-audit --no-fund --ignore-scripts \
       "@magenta/music@$MAGENTA_JS_VERSION" >/dev/null; then
    echo "$MAGENTA_JS_VERSION" > "$MAGENTA_JS_DIR/.version"
  else
    echo "setup: warning: npm install @magenta/music@$MAGENTA_JS_VERSION failed" >&2
  fi
fi
"$VENV/bin/python" -c "import groovae.compat, tensorflow as tf, magenta; print('groovae ready: tensorflow', tf.__version__, '| magenta', magenta.__version__)" >&2 || true
