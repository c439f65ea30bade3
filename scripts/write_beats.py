"""Writes the inputs of samples/your_beat: drum-machine beats, tapped rhythms, and quantized copies of grooves.

    python scripts/write_beats.py OUT_DIR [GROOVE.mid ...]

OUT_DIR gets beat_{rock,funk,ride}.mid (4 bars, on the 16th grid, one velocity, 100 bpm),
taps_{bass,clave,offbeat}.mid (4 bars tapped on a bass or piano key, 95 bpm), and for each GROOVE.mid
a GROOVE_quantized.mid: its drum notes snapped to the 16th grid at one velocity (what a drum machine
would play of it), at its own tempo.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from groovae import synthetic  # noqa: E402

BEATS = {"rock": synthetic.PATTERNS[0], "funk": synthetic.PATTERNS[1], "ride": synthetic.PATTERNS[3]}
TAPS = {"bass": dict(steps=(0, 3, 6, 8, 10, 12, 14), pitch=40, program=33),
        "clave": dict(steps=(0, 3, 6, 10, 12), pitch=76, program=0),
        "offbeat": dict(steps=(2, 6, 10, 14, 15), pitch=60, program=0)}


def main(out_dir, grooves):
    os.makedirs(out_dir, exist_ok=True)
    for name, pattern in BEATS.items():
        synthetic.make_beat(bars=4, bpm=100, pattern=pattern).write(os.path.join(out_dir, f"beat_{name}.mid"))
    for name, tap in TAPS.items():
        synthetic.make_taps(bars=4, bpm=95, **tap).write(os.path.join(out_dir, f"taps_{name}.mid"))
    for path in grooves:
        stem = os.path.splitext(os.path.basename(path))[0]
        synthetic.quantized(path).write(os.path.join(out_dir, f"{stem}_quantized.mid"))


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
