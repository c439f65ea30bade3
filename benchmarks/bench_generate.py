"""Generation speed for groovae_4bar on this machine.

Prints: wall time of `groovae generate` writing 5 samples as MIDI only (TF
start-up included), sample(n=64) timings in-process (first call builds the
graph; later calls import it, restore, run), and WAV + PNG time for 5 grooves.

    python benchmarks/bench_generate.py [--checkpoint PREFIX_OR_RUN_DIR]

Without --checkpoint it trains a groovae_4bar checkpoint for one step (same
variables as the public one; speed does not depend on the weights).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def make_checkpoint(folder):
    from groovae import data, synthetic, train
    from groovae.configs import load_config
    paths = synthetic.write_grooves(os.path.join(folder, "midi"), n=4, bars=4)
    tensors, _ = data.midi_files_to_tensors(paths, load_config("groovae_4bar").data_converter)
    data.save_tensors(os.path.join(folder, "train.npz"), tensors)
    result = train.train("groovae_4bar", os.path.join(folder, "train.npz"), os.path.join(folder, "run"), 1,
                         hparams="batch_size=2", progress=False)
    return result["checkpoint"]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_generate_")
    import groovae.compat  # noqa: F401  (shims before TF)
    from groovae import checkpoints, generate, outputs
    from groovae.model import GrooveModel
    checkpoint = checkpoints.resolve_checkpoint(args.checkpoint) if args.checkpoint else make_checkpoint(tmp)
    print(f"checkpoint: {checkpoint}")

    start = time.time()
    subprocess.run([sys.executable, "-m", "groovae", "generate", "--config", "groovae_4bar", "--checkpoint",
                    checkpoint, "--output_dir", os.path.join(tmp, "cli"), "--n", "5", "--no_wav", "--no_png"],
                   cwd=ROOT, check=True, capture_output=True)
    print(f"groovae generate, 5 samples, MIDI only (process start to exit): {time.time() - start:.1f} s  [target <= 10 s]")

    model = GrooveModel("groovae_4bar", checkpoint)
    for label in ("first call (builds the graph)", "second call", "third call"):
        start = time.time()
        generate.sample(model, n=64, temperature=0.5, seed=0)
        print(f"sample(n=64), {label}: {time.time() - start:.2f} s  [target <= 0.3 s]")

    tensors = generate.sample(model, n=5, temperature=0.5, seed=0)
    start = time.time()
    outputs.write_outputs(model.converter, tensors, os.path.join(tmp, "midi"), "s", wav=False, png=False)
    midi_only = time.time() - start
    start = time.time()
    outputs.write_outputs(model.converter, tensors, os.path.join(tmp, "all"), "s", wav=True, png=True)
    print(f"5 grooves: MIDI {midi_only:.2f} s; MIDI + WAV + PNG {time.time() - start:.2f} s  [target WAV + PNG <= 5 s]")
    print(f"(files in {tmp})")


if __name__ == "__main__":
    main()
