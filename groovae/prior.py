"""A data prior: where the codes of real grooves live, to sample from instead of N(0, I).

A VAE decodes prior samples z ~ N(0, I), but with free bits the encoder's
codes need not fill that prior, and prior samples land between grooves.
Ex-post density estimation (Ghosh et al. 2020, "From variational to
deterministic autoencoders") fits a density to the codes of the training
data after training and samples from it; the model stays as it is.

Here the codes are draws from each training window's posterior,
z = mu + sigma * eps (the aggregate posterior the decoder was trained on), the
density a Gaussian mixture with full covariances fitted by EM, its number of
components chosen by the validation windows' mean log-likelihood.  The prior
of checkpoint ``model.ckpt-N`` is the file ``model.ckpt-N.prior.npz`` beside
it.  Sampling at temperature T draws a component by weight and
z = mean + T * L eps (L the Cholesky factor of its covariance): T scales the
density's spread, as it scales the hits' randomness in the decoder.

Plain numpy: no TensorFlow here.
"""
import json
import math
import os

import numpy as np

from groovae import checkpoints, files
from groovae.errors import RequestError

COMPONENTS = (1, 2, 4, 8, 16)
SUFFIX = ".prior.npz"
PRIORS = ("standard", "data")
REGULARIZATION = 1e-4  # added to each covariance's diagonal: keeps it invertible where a dimension is unused


def prior_path(prefix):
    return prefix + SUFFIX


def _log_densities(codes, weights, means, chols):
    """[n, k] log(weight_k * N(code | mean_k, L_k L_k^T))."""
    from scipy.linalg import solve_triangular  # here: the CLI imports this module for PRIORS, and scipy is slow
    n, d = codes.shape
    out = np.empty((n, len(weights)))
    for k, (mean, chol) in enumerate(zip(means, chols)):
        solved = solve_triangular(chol, (codes - mean).T, lower=True)  # L^-1 (x - m): [d, n]
        log_det = 2.0 * np.log(np.diag(chol)).sum()
        out[:, k] = math.log(weights[k]) - 0.5 * (d * math.log(2 * math.pi) + log_det + (solved ** 2).sum(0))
    return out


def _log_sum_exp(values):
    top = values.max(1, keepdims=True)
    return (top + np.log(np.exp(values - top).sum(1, keepdims=True)))[:, 0]


def mean_log_likelihood(prior, codes):
    """Mean log-density (nats) of ``codes`` [n, d] under a fitted mixture."""
    codes = np.asarray(codes, np.float64)
    return float(_log_sum_exp(_log_densities(codes, prior["weights"], prior["means"], prior["chols"])).mean())


def fit_mixture(codes, components, seed=0, iterations=100, tolerance=1e-4):
    """A Gaussian mixture (weights [k], means [k, d], Cholesky factors [k, d, d]) fitted to ``codes`` by EM;
    ``iterations`` in the dict says how many EM steps it took (as many as allowed: it had not converged)."""
    codes = np.asarray(codes, np.float64)
    n, d = codes.shape
    random = np.random.RandomState(seed)
    means = codes[random.choice(n, components, replace=False)]
    cov = np.cov(codes.T) + REGULARIZATION * np.eye(d)
    chols = np.repeat(np.linalg.cholesky(cov)[None], components, 0)
    weights = np.full(components, 1.0 / components)
    previous = -np.inf
    for step in range(1, iterations + 1):
        log_dens = _log_densities(codes, weights, means, chols)
        total = _log_sum_exp(log_dens)
        resp = np.exp(log_dens - total[:, None])  # E-step: each code's share in each component
        counts = resp.sum(0) + 1e-10
        weights = counts / n  # M-step
        means = (resp.T @ codes) / counts[:, None]
        for k in range(components):
            centred = codes - means[k]
            cov = (resp[:, k, None] * centred).T @ centred / counts[k] + REGULARIZATION * np.eye(d)
            chols[k] = np.linalg.cholesky(cov)
        if total.mean() - previous < tolerance:
            break
        previous = total.mean()
    return {"weights": weights, "means": means, "chols": chols, "iterations": step}


def fit_prior(train_codes, validation_codes, components=COMPONENTS, seed=0, log=None):
    """(the best mixture on the validation codes, {k: validation mean log-likelihood}) over ``components``."""
    if not len(validation_codes):
        raise RequestError("no validation codes: the number of components is chosen on them")
    scores, best = {}, None
    for k in components:
        if k > len(train_codes):
            break
        mixture = fit_mixture(train_codes, k, seed)
        scores[k] = mean_log_likelihood(mixture, validation_codes)
        if log:
            log(f"fit-prior: {k} component{'s' if k > 1 else ''}: validation log-likelihood {scores[k]:.2f} nats "
                f"({mixture['iterations']} EM steps)")
        if best is None or scores[k] > scores[best[0]]:
            best = (k, mixture)
    return best[1], scores


def sample_codes(prior, n, temperature, seed):
    """[n, d] float32 codes: a component by weight, then mean + temperature * L eps (numpy RandomState(seed))."""
    random = np.random.RandomState(seed)
    k = random.choice(len(prior["weights"]), size=n, p=prior["weights"] / prior["weights"].sum())
    eps = random.randn(n, prior["means"].shape[1])
    z = prior["means"][k] + temperature * np.einsum("nij,nj->ni", prior["chols"][k], eps)
    return z.astype(np.float32)


def save_prior(path, prior, info):
    """Writes the mixture (float32) and ``info`` (JSON) to ``path`` atomically."""
    arrays = {name: np.asarray(prior[name], np.float32) for name in ("weights", "means", "chols")}
    files.atomic_write(path, lambda f: np.savez(f, info=np.array(json.dumps(info)), **arrays))


def load_prior(prefix, z_size=None):
    """(mixture, info) of a checkpoint's data prior; RequestError saying how to make it when there is none,
    or when the file was fitted to another checkpoint (or codes of another size than ``z_size``)."""
    path = prior_path(prefix)
    if not os.path.isfile(path):
        raise RequestError(f"{os.path.basename(prefix)}: no data prior beside it ({os.path.basename(path)}); "
                           f"make it with groovae fit-prior CHECKPOINT --data DIR")
    try:
        with np.load(path) as stored:
            prior = {name: stored[name].astype(np.float64) for name in ("weights", "means", "chols")}
            info = json.loads(str(stored["info"]))
    except (OSError, ValueError, KeyError) as e:
        raise RequestError(f"{path}: unreadable data prior ({e}); fit it again with groovae fit-prior") from None
    if info.get("checkpoint_sha256") != checkpoints.checkpoint_sha256(prefix):
        raise RequestError(f"{path}: fitted to another checkpoint than {os.path.basename(prefix)} (sha256 "
                           f"{str(info.get('checkpoint_sha256'))[:12]}); fit it again with groovae fit-prior")
    if z_size is not None and prior["means"].shape[1] != z_size:
        raise RequestError(f"{path}: codes of size {prior['means'].shape[1]}, the model's are {z_size}")
    return prior, info


def carry_prior(prefix, new_prefix):
    """Copies ``prefix``'s data prior beside ``new_prefix`` (the same weights, e.g. an export), re-tied to it;
    returns the new file's path, or None where ``prefix`` has none."""
    if not os.path.isfile(prior_path(prefix)):
        return None
    mixture, info = load_prior(prefix)
    info = {**info, "checkpoint": os.path.basename(new_prefix), "checkpoint_sha256":
            checkpoints.checkpoint_sha256(new_prefix), "copied_from": info.get("checkpoint")}
    save_prior(prior_path(new_prefix), mixture, info)
    return prior_path(new_prefix)


def check_prior(name):
    if name not in PRIORS:
        raise RequestError(f"unknown prior '{name}'; one of {', '.join(PRIORS)}")
