"""Training speed on this machine: groovae's loop vs magenta's, fp32 vs bf16.

Prints: GEMM peak (2048^3 matmul, fp32 and bf16), then for groovae_4bar at
batch 512: setup, time to first step, steady s/step and peak RSS for
groovae's loop (fp32, bf16) and magenta's music_vae_train (with the unbatch
guard), and the validation loss after the same number of steps for fp32
(two seeds, the noise) and bf16.

    python benchmarks/bench_train.py [--data /path/to/preprocess_out] [--steps 12] [--quality_steps 30]

Without --data it uses windows made from synthetic grooves (speed only).
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd, **kwargs):
    """Runs cmd; returns (stdout, wall seconds, stderr)."""
    start = time.time()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)
    out, err = proc.communicate()
    wall = time.time() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{err[-3000:]}")
    return out, wall, err


def peak_rss_mb(cmd):
    out = subprocess.run(["/usr/bin/time", "-v", *cmd], cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{out.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1)) / 1024
    return out.stdout, rss


GEMM = """
import time, tensorflow as tf
for dtype in (tf.float32, tf.bfloat16):
    a = tf.random.normal([2048, 2048], dtype=tf.float32)
    a = tf.cast(a, dtype)
    f = tf.function(lambda x: tf.matmul(x, x))
    f(a).numpy()
    t = time.time(); n = 10
    for _ in range(n):
        f(a).numpy()
    dt = (time.time() - t) / n
    print(f"{dtype.name}: {2 * 2048 ** 3 / dt / 1e9:.0f} GFLOP/s")
"""

MAGENTA_LOOP = """
import sys, time, groovae.compat
import tensorflow.compat.v1 as tf
tf.disable_v2_behavior()  # as magenta's music_vae_train console entry point does
from magenta.models.music_vae import data as mdata, music_vae_train
from groovae.configs import load_config
config = load_config("groovae_4bar")._replace(train_examples_path=sys.argv[1])
start = time.time()
music_vae_train.train(sys.argv[2], config, lambda: mdata.get_dataset(config, is_training=True),
                      num_steps=int(sys.argv[3]))
print("WALL", time.time() - start)
"""


def groovae_train(data, run_dir, steps, *extra):
    cmd = [sys.executable, "-m", "groovae", "train", "--config", "groovae_4bar", "--data", data,
           "--run_dir", run_dir, "--num_steps", str(steps), "--no_progress", "--checkpoint_every_secs", "1e9",
           "--validate_every", "1000000", *extra]
    out, rss = peak_rss_mb(cmd)
    return json.loads(out.strip().splitlines()[-1]), rss


def synthetic_data(folder):
    sys.path.insert(0, ROOT)
    import groovae.compat  # noqa: F401  (shims before TF)
    from groovae import data, synthetic
    from groovae.configs import load_config
    paths = synthetic.write_grooves(os.path.join(folder, "midi"), n=300, bars=8)
    tensors, _ = data.midi_files_to_tensors(paths, load_config("groovae_4bar").data_converter)
    data.save_tensors(os.path.join(folder, "train.npz"), tensors)
    data.save_tensors(os.path.join(folder, "validation.npz"), {k: v[:512] for k, v in tensors.items()})
    return folder


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", help="preprocess output dir (train.npz, validation.npz, train.tfrecord)")
    parser.add_argument("--steps", type=int, default=12, help="steps per speed run")
    parser.add_argument("--quality_steps", type=int, default=30, help="steps per fp32/bf16 quality run (0: skip)")
    parser.add_argument("--skip_magenta", action="store_true")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_train_")
    data = args.data or synthetic_data(tmp)

    print("== GEMM peak (2048^3 matmul, TF, this CPU)")
    out, _, _ = run([sys.executable, "-c", "import groovae.compat\n" + GEMM], env=dict(os.environ, PYTHONPATH=ROOT))
    print(out.strip())

    print(f"== groovae_4bar, batch 512, {args.steps} steps")
    rows = {}
    for name, extra in (("groovae fp32", []), ("groovae bf16", ["--bf16"])):
        result, rss = groovae_train(data, os.path.join(tmp, name.replace(" ", "_")), args.steps, *extra)
        rows[name] = result
        print(f"{name:14s} setup {result['setup_seconds']:6.1f} s | first step {result['first_step_seconds']:5.1f} s"
              f" | steady {result['seconds_per_step']:5.2f} s/step | peak RSS {rss:6.0f} MB")

    tfrecord = os.path.join(data, "train.tfrecord")
    if not args.skip_magenta and os.path.exists(tfrecord):
        walls = {}
        for steps in (2, 2 + args.steps):
            cmd = [sys.executable, "-c", MAGENTA_LOOP, tfrecord, os.path.join(tmp, f"magenta_{steps}"), str(steps)]
            out, rss = peak_rss_mb(cmd)
            walls[steps] = float(re.search(r"WALL ([\d.]+)", out).group(1))
        per_step = (walls[2 + args.steps] - walls[2]) / args.steps
        print(f"{'magenta loop':14s} 2 steps {walls[2]:5.1f} s (start-up + first steps) | "
              f"steps 3-{2 + args.steps}: {per_step:5.2f} s/step (first pass over the data) | peak RSS {rss:6.0f} MB")
    elif not args.skip_magenta:
        print("magenta loop: skipped (needs train.tfrecord of NoteSequences: pass --data of a preprocess run)")

    if args.quality_steps:
        print(f"== validation loss after {args.quality_steps} steps (same data, same batches)")
        for name, seed, extra in (("fp32 seed 0", "0", []), ("fp32 seed 1", "1", []), ("bf16 seed 0", "0", ["--bf16"])):
            cmd_extra = ["--seed", seed, *extra]
            run_dir = os.path.join(tmp, "quality_" + name.replace(" ", "_"))
            cmd = [sys.executable, "-m", "groovae", "train", "--config", "groovae_4bar", "--data", data,
                   "--run_dir", run_dir, "--num_steps", str(args.quality_steps), "--no_progress",
                   "--checkpoint_every_secs", "1e9", "--validate_every", str(args.quality_steps), *cmd_extra]
            out, _, _ = run(cmd)
            result = json.loads(out.strip().splitlines()[-1])
            v = result["validation"]
            print(f"{name}: validation loss {v.get('loss', float('nan')):.3f} | r_loss {v.get('losses/r_loss', float('nan')):.3f}"
                  f" | hits_loss {v.get('metrics/hits_loss', float('nan')):.4f} | {result['seconds_per_step']:.2f} s/step")
    print(f"(work files in {tmp})")


if __name__ == "__main__":
    main()
