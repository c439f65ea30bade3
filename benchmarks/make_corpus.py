"""A synthetic drum corpus for the "bigger corpora" benchmark: N MIDI files cut from the Groove MIDI Dataset.

    python benchmarks/make_corpus.py --output_dir CORPUS_DIR --n_files 100000 [--gmd ZIP] [--seed 0]

Each file is 8 to 16 bars of a 4/4 GMD performance (from a random bar), varied:
its tempo scaled by 0.8-1.25 (notes moved with it), one drum voice dropped in
a third of the files, swing (off-beat 16ths delayed by up to a third of a
16th) in a quarter; one file in 500 is deliberately broken (truncated) so
that the report has something to say.  Files go into nested folders
(``d012/e3/f012345.mid``), as a studio archive would have them; no info.csv,
so ``groovae preprocess --source`` reads it as your own drums (split by
path hash).  Deterministic for a seed.
"""
import argparse
import os
import sys
import time

import numpy as np
import pretty_midi

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
GMD_ZIP = os.path.join(ROOT, "..", "shared", "data", "groove-v1.0.0-midionly.zip")
VOICES = ((36,), (38, 40, 37), (42, 44, 22), (46, 26), (43, 58, 41), (47, 45), (50, 48), (49, 55, 57, 52), (51, 59, 53))


def sources(gmd_zip, cache_dir, limit=400):
    """(notes as [start, end, pitch, velocity] arrays, bpm) of up to ``limit`` 4/4 GMD files of 16+ bars."""
    from groovae import gmd
    data_dir = gmd.get_data(gmd_zip, cache_dir, allow_unverified=True, progress=False)
    found = []
    for row in gmd.read_info(data_dir):
        bpm = int(row["bpm"])
        if row["time_signature"] != "4-4" or float(row["duration"]) < 16 * 4 * 60 / bpm:
            continue
        pm = pretty_midi.PrettyMIDI(os.path.join(data_dir, row["midi_filename"]))
        notes = np.array([[n.start, n.end, n.pitch, n.velocity] for i in pm.instruments for n in i.notes])
        found.append((notes[np.argsort(notes[:, 0])], bpm))
        if len(found) == limit:
            break
    return found


def make_file(notes, bpm, rng):
    """A PrettyMIDI: a random 8-16 bar stretch of ``notes`` at a scaled tempo, maybe a voice dropped, maybe swung."""
    bar = 4 * 60.0 / bpm
    bars = int(rng.randint(8, 17))
    last = max(0, int(notes[-1, 0] // bar) - bars)
    start = rng.randint(0, last + 1) * bar
    take = notes[(notes[:, 0] >= start) & (notes[:, 0] < start + bars * bar)].copy()
    take[:, :2] -= start
    if rng.rand() < 0.25:  # swing: off-beat 16ths late
        step = bar / 16
        odd = np.round(take[:, 0] / step) % 2 == 1
        take[odd, :2] += rng.uniform(0.1, 0.33) * step
    if rng.rand() < 1 / 3:  # one voice dropped
        take = take[~np.isin(take[:, 2], VOICES[rng.randint(len(VOICES))])]
    factor = rng.uniform(0.8, 1.25)
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm * factor)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    drums.notes = [pretty_midi.Note(int(v), int(p), s / factor, max(e, s + 0.01) / factor) for s, e, p, v in take]
    pm.instruments.append(drums)
    return pm


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--n_files", type=int, default=100000)
    parser.add_argument("--gmd", default=GMD_ZIP)
    parser.add_argument("--cache_dir", default=None, help="where the GMD is extracted (default: beside output_dir)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    started = time.time()
    found = sources(args.gmd, args.cache_dir or args.output_dir.rstrip("/") + ".gmd_cache")
    rng = np.random.RandomState(args.seed)
    for i in range(args.n_files):
        folder = os.path.join(args.output_dir, f"d{i // 1000:03d}", f"e{i // 100 % 10}")
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, f"f{i:06d}.mid")
        notes, bpm = found[rng.randint(len(found))]
        make_file(notes, bpm, rng).write(path)
        if i % 500 == 499:  # a broken file now and then
            with open(path, "r+b") as f:
                f.truncate(40)
    print(f"make_corpus: {args.n_files} files from {len(found)} GMD performances in {args.output_dir} "
          f"({time.time() - started:.0f} s)")


if __name__ == "__main__":
    main()
