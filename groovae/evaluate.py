"""Stage 4: how good is a checkpoint?  Reconstruction, samples vs data, latent health.

Three groups of numbers, computed on a test split of 4-bar window tensors:

* **Reconstruction** (test windows -> posterior mean z -> decoder): hit
  accuracy and per-class hit precision / recall / F1, velocity MAE on true
  hits, micro-timing offset MAE on true hits (in 16th-note steps and in ms at
  each window's tempo), both *teacher-forced* (the decoder sees the true
  previous step, as in training) and *free-running* (the decoder feeds back
  its own near-greedy output), plus magenta's loss terms at z = posterior
  mean and the KL in bits.
* **Samples vs data**: for samples at each temperature and for the test
  windows, per-class hit density per bar and histograms of velocities,
  offsets, inter-onset intervals and hits per bar, compared by overlapping
  area and KL divergence (as in Yang & Lerch's objective evaluation of
  generated music); and novelty: Hamming distance of each sample's hit
  pattern to the nearest training window, with the rate of exact duplicates;
  and two guards against copying: each groove's best hit F1 against all
  training windows (median, share above 0.9) and the mean hit F1 between two
  samples (diversity), beside the same for the test windows.  Samples come
  from N(0, I) or, with ``priors`` including 'data', from the checkpoint's
  data prior (groovae.prior) too: one result per prior, sharing the rest.
* **Latent health**: active units (variance over the test set of the
  posterior mean above 0.01, Burda et al.) and KL per dimension -- the
  posterior-collapse signal.

The metric functions (groovae.metrics) take plain numpy arrays; this module
runs the model over the test split and samples from it, and groovae.report
writes the numbers up.
"""
import math
import os
import time

import numpy as np

from groovae import checkpoints, data, prior as priors, shards
from groovae.configs import check_windows_fit
from groovae.decoding import check_decoding
from groovae.model import MAX_GROOVES, GrooveModel, check_request, sample
from groovae.errors import DataError, RequestError
from groovae.metrics import (ACTIVE_UNIT_THRESHOLD, DEFAULT_TEMPERATURES, GREEDY_TEMPERATURE, activate,
    reconstruction_metrics, loss_terms, kl_per_dim, active_units, groove_statistics,
    compare_statistics, novelty, as_floats, copying, diversity)


def model_loss(terms, mu, sigma, hparams, global_step):
    """magenta's loss terms (means over windows) at z = posterior mean.

    loss = mean r_loss + beta * mean max(KL - free_bits * ln 2, 0), with
    beta = (1 - beta_rate^step) * max_beta at the checkpoint's step.
    """
    kl_nats = kl_per_dim(mu, sigma).sum(-1)
    kl_cost = np.maximum(kl_nats - hparams.free_bits * math.log(2.0), 0.0)
    beta = (1.0 - hparams.beta_rate ** global_step) * hparams.max_beta
    r_loss = float(np.mean(terms["r_loss"]))
    return {"loss": r_loss + beta * float(np.mean(kl_cost)), "r_loss": r_loss,
            "hits_loss": float(np.mean(terms["hits_loss"])),
            "velocities_loss": float(np.mean(terms["velocities_loss"])),
            "offsets_loss": float(np.mean(terms["offsets_loss"])),
            "kl_loss": float(np.mean(kl_cost)), "kl_bits": float(np.mean(kl_nats) / math.log(2.0)),
            "kl_beta": float(beta)}


# ---------------------------------------------------------------- what to evaluate

def data_paths(data_dir=None, test_path=None, train_path=None):
    """(test .npz, train .npz or None) from a preprocess dir and/or explicit paths, checked to exist."""
    if data_dir and shards.is_sharded(data_dir):  # windows as shards: checked now, read by load_split
        shards.check_split(data_dir, "test", hash_files=False)  # files there; their sha256 when they are read
        test_path = test_path or shards.split_ref(data_dir, "test")
        train_path = train_path or shards.split_ref(data_dir, "train")
    elif data_dir:
        test_path = test_path or os.path.join(data_dir, "test.npz")
        if train_path is None and os.path.exists(os.path.join(data_dir, "train.npz")):
            train_path = os.path.join(data_dir, "train.npz")
    if not test_path:
        raise RequestError("give --data (a preprocess output dir) or --test (a tensor .npz)")
    for path in (test_path, train_path):
        if path and not os.path.isfile(path) and not path.endswith("-*.tfrecord"):  # before any checkpoint download
            raise DataError(f"{path}: no such tensor file (run `groovae preprocess` first)")
    return test_path, train_path


def parse_compare(item):
    """(label or None, config or None, checkpoint) of a --compare item '[label=][config:]checkpoint'."""
    from groovae.configs import config_names
    label, rest = item.split("=", 1) if "=" in item.split(":", 1)[0] else (None, item)
    config, sep, checkpoint = rest.partition(":")
    if not sep or config not in config_names():
        config, checkpoint = None, rest
    if not checkpoint or label == "":
        raise RequestError(f"--compare takes [label=][config:]checkpoint, got '{item}'")
    return label, config, checkpoint


def check_labels(labels):
    if len(set(labels)) != len(labels):
        raise RequestError(f"--compare: labels must differ ({', '.join(labels)}); name them label=checkpoint")


# ---------------------------------------------------------------- evaluate a checkpoint

def evaluate_checkpoint(config, checkpoint, test_path, train_path=None, n_samples=256,
                        temperatures=DEFAULT_TEMPERATURES, seed=0, batch_size=256, hparams=None,
                        label=None, log=None, priors=("standard",), decodings=("magenta",)):
    """All evaluation numbers of one checkpoint on a test split: a JSON-friendly dict per prior in ``priors``
    and decoding in ``decodings`` (groovae.decoding).

    ``config`` is a config name, ``checkpoint`` a checkpoint prefix (see
    runs.resolve_model), ``test_path`` a tensor .npz (per-window ``bpm`` adds
    ms timing errors); ``train_path`` (optional) enables the novelty check.
    ``n_samples`` samples are drawn at each temperature from z ~ N(0, I) or the
    data prior with ``seed``.  With several priors or decodings the labels
    say which (``label · data prior · given_hit``); the teacher-forced pass
    is shared, the free-running one is each decoding's.
    """
    log = log or (lambda *a, **k: None)
    temperatures = check_settings(temperatures, n_samples, batch_size, seed)
    priors = list(dict.fromkeys(priors))  # each once
    decodings = [check_decoding(d) for d in dict.fromkeys(decodings)]
    timings, start = {}, time.time()
    test, train, bpm = load_split(test_path, train_path)
    target = np.asarray(test["outputs"], np.float32)
    timings["load"] = time.time() - start
    models = {d: GrooveModel(config, checkpoint, hparams, d) for d in decodings}  # checks the checkpoint fits
    model = models[decodings[0]]
    check_windows_fit(test_path, config, model.config)
    mixtures = {name: _mixture(name, checkpoint, model.z_size) for name in priors}  # before the long work

    shared, examples, mu = reconstruction(model, test, target, bpm, batch_size, seed, timings, log)
    decoded = {d: free_running(m, mu, target, bpm, seed, timings, log) for d, m in models.items()}
    t = time.time()
    data_stats = groove_statistics(target)
    by_row = {(name, d): sample_statistics(m, data_stats, train, n_samples, temperatures, seed, mixture)
              for name, mixture in mixtures.items() for d, m in models.items()}
    timings["samples"] = time.time() - t
    log(f"evaluate: {n_samples} samples x {len(temperatures)} temperatures x {len(by_row)} prior(s) and "
        f"decoding(s) in {timings['samples']:.1f}s")

    t = time.time()
    test_novelty, train_stats = data_reference(target, train, data_stats)
    test_guards = guards(target, train)
    if train is not None:
        timings["train_reference"] = time.time() - t
    timings["total"] = time.time() - start
    shared.update({"config": config, "checkpoint": checkpoint,
                   "checkpoint_sha256": checkpoints.checkpoint_sha256(checkpoint), "test_path": test_path,
                   "train_path": train_path, "n_test": len(target), "n_samples": n_samples,
                   "temperatures": temperatures, "seed": seed, "has_bpm": bpm is not None,
                   "test_statistics": data_stats, "test_novelty": test_novelty, "test_guards": test_guards,
                   "train_statistics": train_stats, "timings": {k: round(v, 2) for k, v in timings.items()}})
    label = label or config
    return [{"label": label + (f" · {name} prior" if len(priors) > 1 else "") + (
                f" · {d}" if len(decodings) > 1 else ""), "model": label, "prior": name, "decoding": d,
             **shared, "reconstruction": {**shared["reconstruction"], "free_running": decoded[d][0]},
             "samples": samples, "examples": {**examples, "free_running": decoded[d][1], "samples": sampled}}
            for (name, d), (samples, sampled) in by_row.items()]


def reconstruction(model, test, target, bpm, batch_size, seed, timings, log):
    """({global_step, teacher-forced reconstruction, losses, latent}, examples, posterior means) of the
    teacher-forced pass (z = posterior mean)."""
    t = time.time()
    out, step = model.teacher_forced(test, batch_size, seed)
    timings["teacher_forced"] = time.time() - t
    log(f"evaluate: teacher-forced pass over {len(target)} windows in {timings['teacher_forced']:.1f}s")
    probabilities = activate(out["logits"])
    losses = model_loss(loss_terms(target, probabilities), out["mu"], out["sigma"], model.config.hparams, step)
    losses["magenta_r_loss"] = float(np.mean(out["r_loss"]))  # from magenta's graph; equals r_loss
    results = {"global_step": step, "free_running_temperature": GREEDY_TEMPERATURE,
               "reconstruction": {"teacher_forced": reconstruction_metrics(target, probabilities, bpm)},
               "losses": losses, "latent": latent_health(out["mu"], out["sigma"])}
    examples = {"test": target[:2].tolist(), "teacher_forced": probabilities[:2].tolist()}
    return results, examples, out["mu"]


def free_running(model, mu, target, bpm, seed, timings, log):
    """(reconstruction metrics, two example grooves) of the test windows decoded greedily from their codes."""
    t = time.time()
    free = model.decode(mu, GREEDY_TEMPERATURE, seed)
    key = "free_running" + ("" if model.decoding == "magenta" else f"_{model.decoding}")
    timings[key] = time.time() - t
    log(f"evaluate: free-running decoding ({model.decoding}) of {len(target)} windows in {timings[key]:.1f}s")
    return reconstruction_metrics(target, free, bpm), free[:2].tolist()


def _mixture(name, checkpoint, z_size):
    """None for the standard prior, else the checkpoint's data prior (RequestError without one that fits)."""
    priors.check_prior(name)
    return priors.load_prior(checkpoint, z_size)[0] if name == "data" else None


def check_settings(temperatures, n_samples, batch_size, seed):
    """The temperatures as floats; RequestError for a setting out of range."""
    temperatures = [float(t) for t in temperatures]
    for t in temperatures:
        check_request(1, t, seed)
    if not 0 <= n_samples <= MAX_GROOVES * 10:
        raise RequestError(f"n_samples must be 0..{MAX_GROOVES * 10}, got {n_samples}")
    if not 1 <= batch_size <= 4096:
        raise RequestError(f"batch_size must be 1..4096, got {batch_size}")
    return temperatures


def load_split(test_path, train_path=None):
    """(test tensors, train tensors or None, per-window bpm or None where unknown)."""
    test = shards.load_windows(test_path)
    if len(test["lengths"]) == 0:
        raise data.DataError(f"{test_path}: holds no windows")
    train = shards.load_windows(train_path, keys=("outputs",)) if train_path else None  # novelty: outputs only
    bpm = test.get("bpm")
    if bpm is not None and not np.all(np.asarray(bpm) > 0):
        bpm = None
    return test, train, bpm


def latent_health(mu, sigma):
    """Active units and KL per dimension of the posteriors: the posterior-collapse signal."""
    kl_dims = kl_per_dim(mu, sigma).mean(0)
    active, variance = active_units(mu)
    return {"z_size": int(mu.shape[1]), "active_units": active, "threshold": ACTIVE_UNIT_THRESHOLD,
            "mu_variance": as_floats(variance), "kl_per_dim_bits": as_floats(kl_dims / math.log(2.0)),
            "kl_bits": float(kl_dims.sum() / math.log(2.0)),
            "dims_with_kl_over_0.1_bits": int(np.sum(kl_dims / math.log(2.0) > 0.1))}


def sample_statistics(model, data_stats, train, n_samples, temperatures, seed, mixture=None):
    """({temperature: statistics, vs_test, novelty and guards}, {temperature: two example grooves}) of samples
    from N(0, I), or from ``mixture`` (a data prior) where given."""
    samples, examples = {}, {}
    for temperature in temperatures if n_samples else ():
        if mixture is None:
            grooves = sample(model, n_samples, temperature, seed)
        else:
            grooves = model.decode(priors.sample_codes(mixture, n_samples, temperature, seed), temperature, seed)
        stats = groove_statistics(grooves)
        entry = {"statistics": stats, "vs_test": compare_statistics(stats, data_stats), **guards(grooves, train)}
        if train is not None:
            entry["novelty"] = novelty(grooves, train["outputs"])
        samples[f"{temperature:g}"] = entry
        examples[f"{temperature:g}"] = grooves[:2].tolist()
    return samples, examples


def guards(grooves, train):
    """Diversity (mean hit F1 between two grooves) and, with the training split, copying (best hit F1 to it)."""
    out = {"diversity": diversity(grooves)}
    if train is not None:
        out["copying"] = copying(grooves, train["outputs"])
    return out


def data_reference(target, train, data_stats):
    """(test windows' novelty, training split's statistics): the data's own numbers, the samples' ceiling."""
    if train is None:
        return None, None
    train_stats = groove_statistics(train["outputs"])
    train_stats["vs_test"] = compare_statistics(train_stats, data_stats)
    return novelty(target, train["outputs"]), train_stats
