"""Stage 3c: fit a checkpoint's data prior (groovae.prior) on the training windows' codes.

``fit_checkpoint_prior`` encodes every training and validation window,
draws one code per window from its posterior, fits the Gaussian mixture
(the number of components chosen on the validation codes) and writes
``<checkpoint>.prior.npz`` beside the checkpoint; a run dir's ``run.json``
records it under ``prior``.
"""
import os
import time

import numpy as np

from groovae import checkpoints, data, files, prior, runs
from groovae.configs import check_windows_fit
from groovae.errors import DataError
from groovae.model import GrooveModel

CHUNK = 1024  # windows per encoder batch


def posterior_codes(model, tensors, seed):
    """[n, z] codes z = mu + sigma * eps, one per window (eps from numpy RandomState(seed)), in chunks."""
    random = np.random.RandomState(seed)
    codes = []
    for start in range(0, len(tensors["inputs"]), CHUNK):
        inputs = tensors["inputs"][start:start + CHUNK]
        controls = tensors.get(data.CONTROLS)
        mu, sigma = model.posterior(inputs, seed, None if controls is None else controls[start:start + CHUNK])
        codes.append(mu + sigma * random.randn(*mu.shape).astype(np.float32))
    return np.concatenate(codes)


def split_paths(data_dir):
    """(train.npz, validation.npz) of a preprocess output dir, checked to exist."""
    paths = tuple(os.path.join(data_dir, f"{split}.npz") for split in ("train", "validation"))
    for path in paths:
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such tensor file (run `groovae preprocess` with this model's config first)")
    return paths


def fit_checkpoint_prior(config, prefix, data_dir, hparams=None, seed=0, components=prior.COMPONENTS, log=print):
    """Fits and writes ``prefix``'s data prior; returns its info dict (also stored in the file)."""
    train_path, validation_path = split_paths(data_dir)
    started = time.time()
    model = GrooveModel(config, prefix, hparams)
    check_windows_fit(data_dir, config, model.config)
    train, validation = data.load_tensors(train_path), data.load_tensors(validation_path)
    for path, tensors in ((train_path, train), (validation_path, validation)):
        if len(tensors["inputs"]) == 0:
            raise DataError(f"{path}: holds no windows; the prior is fitted on train.npz and its size chosen on "
                            f"validation.npz (preprocess with --split_ratios to fill both)")
    _check_data(prefix, train_path, data.fingerprint(train))
    train_codes = posterior_codes(model, train, seed)
    validation_codes = posterior_codes(model, validation, seed + 1)
    log(f"fit-prior: {len(train_codes)} training and {len(validation_codes)} validation codes "
        f"in {time.time() - started:.0f} s")
    mixture, scores = prior.fit_prior(train_codes, validation_codes, components, seed, log)
    info = {"checkpoint": os.path.basename(prefix), "checkpoint_sha256": checkpoints.checkpoint_sha256(prefix),
            "config": config, "codes": "one posterior draw per window (mu + sigma * eps)",
            "components": len(mixture["weights"]), "em_iterations": mixture["iterations"],
            "validation_log_likelihood": {str(k): round(v, 3) for k, v in
                                                                                scores.items()},
            "standard_normal_log_likelihood": round(_standard_log_likelihood(validation_codes), 3),
            "train": {"path": os.path.basename(train_path), "windows": len(train_codes),
                      "sha256": files.sha256_of(train_path)},
            "seed": seed, "seconds": round(time.time() - started, 1)}
    path = prior.prior_path(prefix)
    prior.save_prior(path, mixture, info)
    _record(prefix, path, info)
    log(f"fit-prior: {info['components']} components (validation log-likelihood "
        f"{scores[info['components']]:.1f} nats; N(0, I): {info['standard_normal_log_likelihood']:.1f}) -> {path}")
    return info


def _check_data(prefix, train_path, fingerprint):
    """A run's checkpoint is fitted on the windows it was trained on (another config's would give wrong codes)."""
    run_dir = runs.run_dir_of(prefix)
    trained_on = (runs.read_run_info(run_dir) or {}).get("data") if run_dir else None
    if trained_on and trained_on.get("sha256") != fingerprint["sha256"]:
        raise DataError(f"{train_path}: not the windows {os.path.basename(prefix)} was trained on "
                        f"({trained_on['windows']} windows, sha256 {trained_on['sha256'][:12]}); give --data the "
                        f"preprocess output of its config")


def _standard_log_likelihood(codes):
    """Mean log-density of ``codes`` under N(0, I): how well magenta's prior covers them, for comparison."""
    return float(np.mean(-0.5 * (codes.shape[1] * np.log(2 * np.pi) + (codes.astype(np.float64) ** 2).sum(1))))


def _record(prefix, path, info):
    run_dir = runs.run_dir_of(prefix)
    if run_dir:
        run = runs.read_run_info(run_dir)
        run["prior"] = {"file": os.path.basename(path), "sha256": files.sha256_of(path),
                        **{k: info[k] for k in ("checkpoint", "components", "validation_log_likelihood")}}
        runs.write_run_info(run_dir, run)
