"""Benchmark: whole-GMD preprocess (tfds windows) vs magenta's convert_dir_to_note_sequences.

    python benchmarks/bench_preprocess.py [--source ZIP] [--workers N]

Runs ``python -m groovae preprocess`` as a subprocess (TF start-up included),
samples the summed RSS of it and its workers, prints wall time, peak memory
and the counts per split beside the tfds reference figures, then times the
baseline (magenta's script on the same extracted folder, NoteSequences only).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import psutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GMD_ZIP = os.path.join(ROOT, "..", "shared", "data", "groove-v1.0.0-midionly.zip")
# tfds 4.9.10's groove/4bar-midionly on this data, and what magenta's converter keeps of it.
REFERENCE = {"windows": {"train": 17261, "validation": 2121, "test": 2033},
             "tensors": {"train": 15591, "validation": 1929, "test": 1901}}


def run_measured(cmd, env=None, sample_every=0.5):
    """(wall seconds, peak summed PSS in bytes of the process tree, stdout).

    PSS, not RSS: forked workers share the parent's pages, which RSS would count twice.  Output goes to
    files, not pipes: a progress bar would fill a pipe nobody reads until the end, and stop the process.
    Reading PSS reads smaps: ``sample_every`` seconds keeps the sampling itself cheap.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env, cwd=ROOT)
        root, peak = psutil.Process(proc.pid), 0
        while proc.poll() is None:
            try:
                tree = [root] + root.children(recursive=True)
                peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(sample_every)
        wall = time.perf_counter() - started
        out.seek(0), err.seek(0)
        if proc.returncode:
            sys.exit(f"{' '.join(cmd)} failed:\n{err.read()[-3000:]}")
        return wall, peak, out.read()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=GMD_ZIP)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--skip_baseline", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="bench_preprocess.")
    cache, out = os.path.join(work, "cache"), os.path.join(work, "out")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")

    cmd = [sys.executable, "-m", "groovae", "preprocess", "--source", args.source, "--allow_unverified",
           "--output_dir", out, "--cache_dir", cache]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    wall, peak, _ = run_measured(cmd, env)
    report = json.load(open(os.path.join(out, "report.json")))
    print(f"groovae preprocess (tfds windows, {os.cpu_count()} cores, fresh cache incl. extraction): "
          f"{wall:.1f} s wall incl. TF start-up, peak memory {peak / 2**30:.2f} GB (PSS, process + workers)")
    print(f"{'split':<11}{'windows':>9}{'tfds':>8}{'tensors':>9}{'tfds+conv':>11}")
    for split in ("train", "validation", "test"):
        s = report["splits"][split]
        print(f"{split:<11}{s['windows']:>9}{REFERENCE['windows'][split]:>8}"
              f"{s['tensors']:>9}{REFERENCE['tensors'][split]:>11}")
    same = all(report["splits"][sp][k] == REFERENCE[k][sp] for k in REFERENCE for sp in REFERENCE[k])
    print("counts equal to the reference:", same)

    if not args.skip_baseline:
        sys.path.insert(0, ROOT)
        import groovae.compat  # noqa: F401  (shims before TF)
        from groovae import gmd
        folder = gmd.get_data(args.source, cache, allow_unverified=True, progress=False)
        code = ("import groovae.compat\nfrom magenta.scripts import convert_dir_to_note_sequences as c\n"
                f"c.convert_directory({folder!r}, {os.path.join(work, 'baseline.tfrecord')!r}, recursive=True)")
        wall_b, peak_b, _ = run_measured([sys.executable, "-c", code], env)
        print(f"baseline magenta convert_dir_to_note_sequences (NoteSequences only, one file, all splits "
              f"mixed): {wall_b:.1f} s wall incl. TF start-up, peak memory {peak_b / 2**30:.2f} GB")
    print("outputs in", work)


if __name__ == "__main__":
    main()
