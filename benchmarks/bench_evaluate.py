"""Time to evaluate one checkpoint on a whole test split (target: <= 120 s on CPU).

    python benchmarks/bench_evaluate.py --checkpoint runs/groovae_4bar \\
        [--config groovae_4bar] [--data data/gmd] [--n_samples 256] [--temperatures 0.3 0.5 1.0 1.5]

Prints the phase timings of groovae.evaluate.evaluate_checkpoint and the
total wall time in seconds (including TensorFlow graph building, excluding
the interpreter/TF import), then a few headline numbers.
"""
import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import groovae.compat  # noqa: F401  (shims before TF)
from groovae import checkpoints, evaluate, report


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="groovae_4bar")
    parser.add_argument("--checkpoint", required=True, help="run dir, prefix, tar or 'public'")
    parser.add_argument("--data", default="data/gmd", help="dir with test.npz and train.npz")
    parser.add_argument("--n_samples", type=int, default=256)
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.3, 0.5, 1.0, 1.5])
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--output_dir", help="also write the report here")
    args = parser.parse_args()
    prefix = checkpoints.resolve_checkpoint(args.checkpoint)
    train_path = os.path.join(args.data, "train.npz")
    start = time.time()
    [results] = evaluate.evaluate_checkpoint(
        args.config, prefix, os.path.join(args.data, "test.npz"),
        train_path if os.path.exists(train_path) else None, n_samples=args.n_samples,
        temperatures=args.temperatures, batch_size=args.batch_size,
        log=lambda message: print(message, file=sys.stderr))
    seconds = time.time() - start
    if args.output_dir:
        report.write_report(results, args.output_dir)
    report_seconds = time.time() - start - seconds
    tf_rec, free = results["reconstruction"]["teacher_forced"], results["reconstruction"]["free_running"]
    print(json.dumps({"checkpoint": prefix, "global_step": results["global_step"], "n_test": results["n_test"],
                      "n_samples": args.n_samples, "temperatures": args.temperatures,
                      "phases": results["timings"], "evaluate_seconds": round(seconds, 1),
                      "report_seconds": round(report_seconds, 1) if args.output_dir else None,
                      "cpu_count": os.cpu_count(), "load_average": os.getloadavg(),
                      "teacher_forced_hit_f1": tf_rec["hit_f1"], "free_running_hit_f1": free["hit_f1"],
                      "free_running_offset_mae_ms": free["offset_mae_ms"],
                      "active_units": results["latent"]["active_units"], "kl_bits": results["losses"]["kl_bits"]},
                     indent=1))
    print(f"evaluate: {seconds:.1f} s for {results['n_test']} test windows "
          f"({'OK' if seconds <= 120 else 'over'} the 120 s target)")


if __name__ == "__main__":
    main()
