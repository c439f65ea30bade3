"""Training speed on this machine: groovae's loop vs magenta's, fp32 vs bf16.

Prints the CPU/device and the GEMM peak (2048^3 matmul, fp32 and bf16), then
for groovae_4bar at batch 512: start-up, first step, steady s/step and peak
RSS for groovae's loop (fp32; bf16 where the CPU has bf16 units) and
magenta's music_vae_train, the ratios (ours fp32 / magenta, bf16 / fp32,
s/step / GEMM floor, also against the step's GEMMs timed at their own
shapes), and the validation loss after the same number of steps
for fp32 (two seeds, the noise) and bf16.

    python benchmarks/bench_train.py [--data /path/to/preprocess_out] [--steps 12] [--rounds 1] [--quality_steps 30]

Without --data it uses windows made from synthetic grooves (speed only).
"""
import argparse
import json
import os
import re
import statistics
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


def lstm_gemms(hparams, input_depth, output_depth):
    """The matmuls one LSTM cell does per time step in a flat MusicVAE (BiLSTM encoder, LSTM decoder fed z).

    Yields (name, copies, batch, k, n): [batch, k] x [k, n] with k = in + units and
    n = 4 units, `copies` times per time step (2 for the encoder's two directions).
    """
    b, depth = hparams.batch_size, input_depth
    for i, units in enumerate(hparams.enc_rnn_size):
        yield f"encoder {i + 1}", 2, b, depth + units, 4 * units
        depth = 2 * units
    depth = output_depth + hparams.z_size
    for i, units in enumerate(hparams.dec_rnn_size):
        yield f"decoder {i + 1}", 1, b, depth + units, 4 * units
        depth = units


def step_gflop(hparams, input_depth, output_depth):
    """Matmul GFLOP of one training step: forward, plus twice that backward (dW and dx)."""
    forward = sum(copies * 2 * b * k * n for _, copies, b, k, n in lstm_gemms(hparams, input_depth, output_depth))
    return 3 * forward * hparams.max_seq_len / 1e9


# The same GEMMs timed at their own shapes (x.W, x^T.dG, dG.W^T), each alone: the step's
# matmul time if nothing else ran; small GEMMs run below the 2048^3 peak.
SHAPE_GEMMS = """
import json, sys, time
import tensorflow.compat.v1 as tf
tf.disable_eager_execution()
shapes, steps = json.loads(sys.argv[1]), int(sys.argv[2])
config = tf.ConfigProto()
config.graph_options.rewrite_options.disable_meta_optimizer = True  # nothing folded away
total = 0.0
with tf.Session(config=config) as sess:
    for name, copies, b, k, n in shapes:
        x, w, g = (tf.Variable(tf.random.normal(shape)) for shape in ([b, k], [k, n], [b, n]))
        sess.run(tf.variables_initializer([x, w, g]))
        layer = 0.0
        for product in (tf.matmul(x, w), tf.matmul(x, g, transpose_a=True), tf.matmul(g, w, transpose_b=True)):
            fetch = tf.reduce_sum(product[:1, :1])  # fetch one element: no copy of the product
            sess.run(fetch)
            reps = 30
            start = time.time()
            for _ in range(reps):
                sess.run(fetch)
            layer += (time.time() - start) / reps
        total += copies * layer * steps
        print(f"{name}: [{b}, {k}] x [{k}, {n}] fwd + 2 bwd {layer * 1e3:.1f} ms per time step x {copies}")
print(f"SECONDS {total}")
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
    parser.add_argument("--rounds", type=int, default=1, help="alternate ours and magenta's this many times")
    args = parser.parse_args()
    if args.rounds < 1 or args.steps < 1:
        parser.error("--rounds and --steps must be at least 1")
    tmp = tempfile.mkdtemp(prefix="bench_train_")
    data = args.data or synthetic_data(tmp)

    sys.path.insert(0, ROOT)
    import groovae.compat  # noqa: F401  (shims before TF)
    from groovae.configs import load_config
    from groovae.device import choose_precision, cpu_flags, describe_device
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?") \
        if os.path.exists("/proc/cpuinfo") else "?"
    bf16, why = choose_precision("bf16")
    print(f"== {cpu}; {os.cpu_count()} cores; device {describe_device()}; "
          f"bf16 units: {', '.join(sorted({'avx512_bf16', 'amx_bf16'} & cpu_flags())) or 'none'}")
    print("== GEMM peak (2048^3 matmul, TF, this device)")
    out, _, _ = run([sys.executable, "-c", "import groovae.compat\n" + GEMM], env=dict(os.environ, PYTHONPATH=ROOT))
    print(out.strip())
    peak = float(re.search(r"float32: (\d+)", out).group(1))
    config = load_config("groovae_4bar")
    gflop = step_gflop(config.hparams, config.data_converter.input_depth, config.data_converter.output_depth)

    print(f"== groovae_4bar, batch 512, {args.steps} steps; {gflop:.0f} GFLOP/step, "
          f"so the fp32 GEMM floor is {gflop / peak:.2f} s/step")
    shapes = list(lstm_gemms(config.hparams, config.data_converter.input_depth, config.data_converter.output_depth))
    runs = [("groovae fp32", ["--precision", "fp32"])]
    if bf16 == "bf16":
        runs.append(("groovae bf16", ["--precision", "bf16"]))
    else:
        print(f"groovae bf16   skipped: {why} (training would use fp32)")
    tfrecord = os.path.join(data, "train.tfrecord")
    with_magenta = not args.skip_magenta and os.path.exists(tfrecord)
    if not args.skip_magenta and not with_magenta:
        print("magenta loop: skipped (needs train.tfrecord of NoteSequences: pass --data of a preprocess run)")

    def shape_gemms(tag):
        out, _, _ = run([sys.executable, "-c", "import groovae.compat\n" + SHAPE_GEMMS, json.dumps(shapes),
                         str(config.hparams.max_seq_len)], env=dict(os.environ, PYTHONPATH=ROOT))
        if not tag:
            print(out.strip().rsplit("\n", 1)[0])
        seconds = float(re.search(r"SECONDS ([\d.]+)", out).group(1))
        print(f"{tag}the step's GEMMs at their own shapes, each alone: {seconds:.2f} s/step")
        return seconds

    def ours(tag, round_):
        for name, extra in runs:
            result, rss = groovae_train(data, os.path.join(tmp, f"{name.replace(' ', '_')}_{round_}"), args.steps, *extra)
            per_step.setdefault(name, []).append(result["seconds_per_step"])
            print(f"{tag}{name:14s} setup {result['setup_seconds']:6.1f} s | first step {result['first_step_seconds']:5.1f} s"
                  f" (start-up to first step {result['setup_seconds'] + result['first_step_seconds']:5.1f} s)"
                  f" | steady {result['seconds_per_step']:5.2f} s/step | peak RSS {rss:6.0f} MB")

    def magenta(tag, round_):
        walls = {}
        for steps in (2, 2 + args.steps):
            cmd = [sys.executable, "-c", MAGENTA_LOOP, tfrecord, os.path.join(tmp, f"magenta_{steps}_{round_}"),
                   str(steps)]
            out, rss = peak_rss_mb(cmd)
            walls[steps] = float(re.search(r"WALL ([\d.]+)", out).group(1))
        seconds = (walls[2 + args.steps] - walls[2]) / args.steps
        per_step.setdefault("magenta", []).append(seconds)
        print(f"{tag}{'magenta loop':14s} 2 steps {walls[2]:5.1f} s (start-up + first steps) | "
              f"steps 3-{2 + args.steps}: {seconds:5.2f} s/step (first pass over the data) | peak RSS {rss:6.0f} MB")

    # Each round times the GEMMs alone, ours and magenta's, in ABBA order from round to round, so that
    # a shared machine's speed drifting over minutes lands on both; the ratios are of the medians.
    per_step, shape_floors = {}, []
    for round_ in range(1, args.rounds + 1):
        tag = f"[round {round_}] " if args.rounds > 1 else ""
        shape_floors.append(shape_gemms(tag if round_ > 1 else ""))
        loops = [ours] + ([magenta] if with_magenta else [])
        for loop in (loops if round_ % 2 else loops[::-1]):
            loop(tag, round_)
    median = {name: statistics.median(values) for name, values in per_step.items()}
    shape_floor = statistics.median(shape_floors)
    fp32 = median["groovae fp32"]
    print(f"ratio  ours fp32 / GEMM floor: {fp32 / (gflop / peak):.2f} ({gflop / fp32:.0f} GFLOP/s of {peak:.0f}); "
          f"/ GEMMs at their shapes: {fp32 / shape_floor:.2f}")
    if "groovae bf16" in median:
        print(f"ratio  ours bf16 / ours fp32: {median['groovae bf16'] / fp32:.2f}")
    if "magenta" in median:
        rounds = ", ".join(f"{a / b:.2f}" for a, b in zip(per_step["groovae fp32"], per_step["magenta"]))
        print(f"ratio  ours fp32 / magenta: {fp32 / median['magenta']:.2f} (per round: {rounds}); "
              f"magenta / GEMMs at their shapes: {median['magenta'] / shape_floor:.2f}")

    if args.quality_steps:
        print(f"== validation loss after {args.quality_steps} steps (same data, same batches)")
        quality = [("fp32 seed 0", "0", ["--precision", "fp32"]), ("fp32 seed 1", "1", ["--precision", "fp32"])]
        if bf16 == "bf16":
            quality.append(("bf16 seed 0", "0", ["--precision", "bf16"]))
        for name, seed, extra in quality:
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
