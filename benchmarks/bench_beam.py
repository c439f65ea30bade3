"""Benchmark: preprocess as a Beam pipeline and sharded windows, against the local process pool and .npz.

    python benchmarks/bench_beam.py [--work DIR] [--gmd ZIP] [--n_files 100000] [--workers 2]
                                    [--only gmd,train_equal,step_time,corpus,train_rss,train_scaled] [--scale 10]

Sections (each prints its numbers; all of them go to WORK/results.json):

* ``gmd``: the whole GMD through ``preprocess`` with the local runner (.npz)
  and with ``--runner beam --shards 4``: wall time and peak PSS of each
  process tree (Beam's worker processes included), and the tensors' sha256
  per split (data.fingerprint of the .npz vs of the shards laid end to end):
  they must be equal.
* ``train_equal``: ``groovae_tiny`` for ``--tiny_steps`` steps from the GMD's
  .npz and from its shards, ``--seeds`` each (0,1,2,3; the seed-to-seed
  spread is the noise): validation loss at the last step, mean and sd.
* ``step_time``: ``groovae_4bar`` for ``--big_steps`` steps from .npz and from
  shards, one after the other: steady s/step (after the first step).
* ``corpus``: ``benchmarks/make_corpus.py --n_files N`` (once, kept), then
  preprocess with the local runner and with Beam (both ``--shards max(8, N/2500)``):
  files/s, peak PSS, equal manifests.
* ``train_rss``: ``groovae_tiny`` for a few steps on the corpus's shards and on
  the same windows as .npz (written from the shards): peak PSS.
* ``train_scaled``: the same on the GMD's training windows (from ``gmd``'s
  shards) at 1x and ``--scale``x (repeated: shard files listed again,
  arrays concatenated): how peak PSS grows with the corpus.

Every command runs as a subprocess (TF start-up included); the load average
before and after each is printed, since the machine may be shared.
"""
import argparse
import json
import os
import shutil
import subprocess
import tempfile
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
import bench_preprocess  # noqa: E402
from bench_preprocess import GMD_ZIP  # noqa: E402

SAMPLE_EVERY = 2.0  # s between PSS samples: reading smaps of TF processes costs CPU, which a shared machine lacks


def run_measured(cmd, env=None):
    """bench_preprocess's, sampled less often (Beam's workers start as new processes: PSS counts what each holds,
    forked or not)."""
    return bench_preprocess.run_measured(cmd, env, SAMPLE_EVERY)

SECTIONS = ("gmd", "train_equal", "step_time", "corpus", "train_rss", "train_scaled")


def groovae(args, work):
    """(wall s, peak PSS bytes, parsed last stdout line, load averages before/after) of ``groovae args``."""
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2")
    before = os.getloadavg()[0]
    wall, peak, out = run_measured([sys.executable, "-m", "groovae"] + args, env=env)
    last = out.strip().splitlines()[-1] if out.strip() else "{}"
    try:
        parsed = json.loads(last)
    except ValueError:
        parsed = {"stdout": last}
    return {"seconds": round(wall, 1), "peak_pss_gb": round(peak / 1e9, 2), "result": parsed,
            "load": [round(before, 2), round(os.getloadavg()[0], 2)]}


def split_hashes(folder):
    """{split: sha256 of the model arrays} of an output folder, .npz or shards alike."""
    import groovae.compat  # noqa: F401
    from groovae import data, gmd, shards
    load = (lambda s: shards.load_split(folder, s)) if shards.is_sharded(folder) else (
        lambda s: data.load_tensors(os.path.join(folder, f"{s}.npz")))
    return {s: data.fingerprint(load(s)) for s in gmd.SPLITS}


def preprocess_both(source, work, name, workers, shards_local, shards_beam, extra=()):
    out = {}
    for runner, n in (("local", shards_local), ("beam", shards_beam)):
        folder = os.path.join(work, f"{name}_{runner}")
        shutil.rmtree(folder, ignore_errors=True)
        args = ["preprocess", "--source", source, "--output_dir", folder, "--workers", str(workers), "--force",
                "--runner", runner, *extra] + (["--shards", str(n)] if n else [])
        out[runner] = groovae(args, work)
        out[runner]["folder"] = folder
        print(f"{name}: {runner}: {out[runner]['seconds']} s, peak {out[runner]['peak_pss_gb']} GB PSS, "
              f"load {out[runner]['load']}", flush=True)
    return out


def section_gmd(args, results):
    out = preprocess_both(args.gmd, args.work, "gmd", args.workers, None, 4, ["--allow_unverified"])
    a, b = split_hashes(out["local"]["folder"]), split_hashes(out["beam"]["folder"])
    out["equal"] = a == b
    out["windows"] = {s: v["windows"] for s, v in a.items()}
    print(f"gmd: tensors per split {out['windows']}; beam (shards) == local (npz), hash per split: {out['equal']}")
    results["gmd"] = out


def train_run(args, data_dir, config, steps, seed, name, extra=()):
    run_dir = os.path.join(args.work, "runs", name)
    shutil.rmtree(run_dir, ignore_errors=True)
    r = groovae(["train", "--config", config, "--data", data_dir, "--run_dir", run_dir, "--num_steps", str(steps),
                 "--seed", str(seed), "--no_progress", *extra], args.work)
    summary = {k: r["result"].get(k) for k in ("seconds_per_step", "first_step_seconds", "final_loss")}
    summary["validation_loss"] = (r["result"].get("validation") or {}).get("loss")
    print(f"{name}: {summary}, peak {r['peak_pss_gb']} GB PSS, load {r['load']}", flush=True)
    return {**r, **summary}


def section_train_equal(args, results):
    npz, sharded = os.path.join(args.work, "gmd_local"), os.path.join(args.work, "gmd_beam")
    every = ["--validate_every", str(args.tiny_steps)]
    out = {}
    for seed in args.seeds:
        for kind, folder in (("npz", npz), ("shards", sharded)):
            out[f"{kind}_seed{seed}"] = train_run(args, folder, "groovae_tiny", args.tiny_steps, seed,
                                                  f"tiny_{kind}_s{seed}", every)
    for kind in ("npz", "shards"):
        losses = [out[f"{kind}_seed{seed}"]["validation_loss"] for seed in args.seeds]
        out[kind] = {"mean": float(np.mean(losses)), "std": float(np.std(losses, ddof=1)) if len(losses) > 1 else None}
        print(f"train_equal: {kind}: validation loss at step {args.tiny_steps} over seeds {args.seeds}: "
              f"{[round(v, 2) for v in losses]} mean {out[kind]['mean']:.2f} sd {out[kind]['std']}")
    results["train_equal"] = out


def section_step_time(args, results):
    npz, sharded = os.path.join(args.work, "gmd_local"), os.path.join(args.work, "gmd_beam")
    no_validation = ["--validate_every", str(10 ** 6), "--precision", "fp32"]
    results["step_time"] = {
        "npz": train_run(args, npz, "groovae_4bar", args.big_steps, 0, "4bar_npz", no_validation),
        "shards": train_run(args, sharded, "groovae_4bar", args.big_steps, 0, "4bar_shards", no_validation)}
    a, b = (results["step_time"][k]["seconds_per_step"] for k in ("npz", "shards"))
    print(f"step_time: groovae_4bar s/step npz {a:.2f}, shards {b:.2f} (shards / npz = {b / a:.3f})")


def section_corpus(args, results):
    corpus = os.path.join(args.work, f"corpus_{args.n_files}")
    if not os.path.isdir(corpus):
        subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "make_corpus.py"), "--output_dir", corpus,
                        "--n_files", str(args.n_files), "--gmd", args.gmd], check=True)
    n_shards = max(8, args.n_files // 2500)  # ~18k training windows a shard, as the README advises
    out = preprocess_both(corpus, args.work, f"corpus{args.n_files}", args.workers, n_shards, n_shards)
    manifests = [json.load(open(os.path.join(out[r]["folder"], "shards.json"))) for r in ("local", "beam")]
    out["equal"] = manifests[0] == manifests[1]
    for runner in ("local", "beam"):
        out[runner]["files_per_second"] = round(args.n_files / out[runner]["seconds"], 1)
    out["windows"] = {s: e["windows"] for s, e in manifests[0]["splits"].items()}
    print(f"corpus: {args.n_files} files, windows {out['windows']}; files/s local {out['local']['files_per_second']}, "
          f"beam {out['beam']['files_per_second']}; beam shards == local shards: {out['equal']}")
    results["corpus"] = out


def section_train_rss(args, results):
    import groovae.compat  # noqa: F401
    from groovae import data, shards
    sharded = os.path.join(args.work, f"corpus{args.n_files}_local")
    npz = os.path.join(args.work, f"corpus{args.n_files}_npz")
    os.makedirs(npz, exist_ok=True)
    for split in ("train", "validation"):
        if not os.path.isfile(os.path.join(npz, f"{split}.npz")):
            data.save_tensors(os.path.join(npz, f"{split}.npz"), shards.load_split(sharded, split))
    every = ["--validate_every", str(args.rss_steps)]
    results["train_rss"] = {
        "npz": train_run(args, npz, "groovae_tiny", args.rss_steps, 0, "rss_npz", every),
        "shards": train_run(args, sharded, "groovae_tiny", args.rss_steps, 0, "rss_shards", every),
        "train_windows": shards.split_of(sharded, "train")["windows"]}


def section_train_scaled(args, results):
    """groovae_tiny's peak PSS on the GMD's training windows repeated ``--scale`` times (as shards: the GMD's
    shard files listed that many times; as .npz: the arrays concatenated), beside 1x: memory vs corpus size."""
    import numpy as np
    import groovae.compat  # noqa: F401
    from groovae import data, shards
    source = os.path.join(args.work, "gmd_beam")
    entry = shards.split_of(source, "train")
    out = {}
    for scale in (1, args.scale):
        folder = os.path.join(args.work, f"gmd_x{scale}")
        if not os.path.isdir(folder):
            os.makedirs(folder)
            listed = []
            for k in range(scale * len(entry["shards"])):
                shard = dict(entry["shards"][k % len(entry["shards"])])
                name = shards.shard_name("train", k, scale * len(entry["shards"]))
                os.link(os.path.join(source, shard["file"]), os.path.join(folder, name))
                listed.append({**shard, "file": name, "layout": entry["layout"]})
            validation = shards.split_of(source, "validation")
            for shard in validation["shards"]:
                os.link(os.path.join(source, shard["file"]), os.path.join(folder, shard["file"]))
            shards.write_manifest(folder, {"train": shards.split_entry(listed), "validation": validation})
            npz = os.path.join(folder, "npz")
            os.makedirs(npz)
            train = shards.load_split(source, "train")
            data.save_tensors(os.path.join(npz, "train.npz"),
                              {k: np.concatenate([v] * scale) for k, v in train.items()})
            data.save_tensors(os.path.join(npz, "validation.npz"), shards.load_split(source, "validation"))
        every = ["--validate_every", str(args.rss_steps)]
        out[f"x{scale}"] = {
            "windows": scale * entry["windows"],
            "npz": train_run(args, os.path.join(folder, "npz"), "groovae_tiny", args.rss_steps, 0, f"x{scale}_npz",
                             every),
            "shards": train_run(args, folder, "groovae_tiny", args.rss_steps, 0, f"x{scale}_shards", every)}
    results["train_scaled"] = out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "bench31"),
                        help="outputs (corpus, preprocess outputs, runs; never the repo); default: TMPDIR/bench31")
    parser.add_argument("--gmd", default=GMD_ZIP)
    parser.add_argument("--n_files", type=int, default=100000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tiny_steps", type=int, default=300)
    parser.add_argument("--seeds", type=lambda text: [int(v) for v in text.split(",")], default=[0, 1, 2, 3],
                        help="train_equal's seeds, comma-separated: their spread is the noise")
    parser.add_argument("--big_steps", type=int, default=4)
    parser.add_argument("--rss_steps", type=int, default=20)
    parser.add_argument("--scale", type=int, default=10, help="train_scaled: the GMD's windows this many times")
    parser.add_argument("--only", default=",".join(SECTIONS))
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    path = os.path.join(args.work, "results.json")
    results = json.load(open(path)) if os.path.isfile(path) else {}
    results["machine"] = {"cpus": os.cpu_count(), "load_at_start": os.getloadavg()}
    for name in args.only.split(","):
        started = time.time()
        globals()[f"section_{name}"](args, results)
        print(f"[{name}: {time.time() - started:.0f} s]", flush=True)
        with open(path, "w") as f:
            json.dump(results, f, indent=1, default=str)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
