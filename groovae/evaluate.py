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
  pattern to the nearest training window, with the rate of exact duplicates.
* **Latent health**: active units (variance over the test set of the
  posterior mean above 0.01, Burda et al.) and KL per dimension -- the
  posterior-collapse signal.

Metric functions take plain numpy arrays; the model pass and the report are
built on top of them.  Tensor layout (GrooveConverter): [..., 0:9] hits,
[9:18] velocities (0..1), [18:27] offsets (-1..1), the played onset being at
``step - offset / 2`` in 16th-note steps.
"""
import json
import math
import os
import re
import time

import numpy as np

from groovae import compat, data

STEPS_PER_BAR = 16
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. (2016), variance of E_q[z] over the data
DEFAULT_TEMPERATURES = (0.3, 0.5, 1.0, 1.5)
GREEDY_TEMPERATURE = 1e-3  # free-running decoding: Bernoulli(sigmoid(logit / 1e-3)) is greedy but for |logit| < ~1e-2
LOG_LOSS_EPSILON = 1e-7  # tf.losses.log_loss's default, so the loss terms match magenta's

HISTOGRAM_BINS = {
    "velocity": np.linspace(0.0, 1.0, 21),
    "offset": np.linspace(-1.0, 1.0, 21),
    "ioi": np.arange(0.5, 17.5, 1.0),  # inter-onset interval in steps: 1..16
    "hits_per_bar": np.arange(-0.5, 49.5, 2.0),
}


# ---------------------------------------------------------------- tensors

split_groove = data.split_groove


def activate(logits):
    """GrooveLstmDecoder's output activations on raw decoder outputs [..., 27]:
    hit probability (sigmoid), velocity (sigmoid), offset (tanh)."""
    logits = np.asarray(logits, np.float64)
    k = logits.shape[-1] // 3
    sigmoid = 1.0 / (1.0 + np.exp(-logits[..., :2 * k]))
    return np.concatenate([sigmoid, np.tanh(logits[..., 2 * k:])], axis=-1).astype(np.float32)


def step_seconds(bpm):
    """Length of a 16th-note step in seconds at ``bpm`` quarter notes per minute."""
    return 60.0 / np.asarray(bpm, np.float64) / 4.0


# ---------------------------------------------------------------- reconstruction metrics

def hit_accuracy(true_hits, pred_hits):
    """Fraction of (window, step, class) cells whose hit/no-hit is right."""
    true_hits, pred_hits = np.asarray(true_hits, bool), np.asarray(pred_hits, bool)
    return float(np.mean(true_hits == pred_hits)) if true_hits.size else float("nan")


def _prf(tp, fp, fn):
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), np.nan)
        recall = np.where(tp + fn > 0, tp / np.maximum(tp + fn, 1), np.nan)
        f1 = np.where(2 * tp + fp + fn > 0, 2 * tp / np.maximum(2 * tp + fp + fn, 1), np.nan)
    return precision, recall, f1


def hit_prf(true_hits, pred_hits):
    """Per-class and pooled hit precision, recall and F1.

    ``true_hits``/``pred_hits`` are [..., k] booleans.  Returns a dict with
    per-class arrays ``precision``, ``recall``, ``f1``, ``support`` (true
    hits), ``predicted``, and pooled (micro-averaged over all classes)
    ``micro_precision``, ``micro_recall``, ``micro_f1``, and the unweighted
    mean of the per-class F1s ``macro_f1`` (classes with no true and no
    predicted hit are left out).  An undefined ratio (0/0) is NaN.
    """
    true_hits, pred_hits = np.asarray(true_hits, bool), np.asarray(pred_hits, bool)
    k = true_hits.shape[-1]
    t, p = true_hits.reshape(-1, k), pred_hits.reshape(-1, k)
    tp = np.sum(t & p, axis=0).astype(np.float64)
    fp = np.sum(~t & p, axis=0).astype(np.float64)
    fn = np.sum(t & ~p, axis=0).astype(np.float64)
    precision, recall, f1 = _prf(tp, fp, fn)
    micro = _prf(tp.sum(), fp.sum(), fn.sum())
    return {"precision": precision, "recall": recall, "f1": f1,
            "support": (tp + fn).astype(np.int64), "predicted": (tp + fp).astype(np.int64),
            "micro_precision": float(micro[0]), "micro_recall": float(micro[1]), "micro_f1": float(micro[2]),
            "macro_f1": float(np.nanmean(f1)) if np.any(~np.isnan(f1)) else float("nan")}


def velocity_mae(true_tensors, pred_tensors):
    """Mean |velocity error| (0..1 scale, x127 for MIDI units) over the true hits."""
    true_hits, true_vel, _ = split_groove(true_tensors)
    _, pred_vel, _ = split_groove(pred_tensors)
    return float(np.mean(np.abs(pred_vel - true_vel)[true_hits])) if true_hits.any() else float("nan")


def onset_errors_steps(true_tensors, pred_tensors):
    """|played-onset error| in steps of every true hit (flat array): |offset error| / 2."""
    true_hits, _, true_off = split_groove(true_tensors)
    _, _, pred_off = split_groove(pred_tensors)
    return (np.abs(pred_off - true_off) / 2.0)[true_hits]


def offset_mae_steps(true_tensors, pred_tensors):
    """Micro-timing MAE over the true hits, in 16th-note steps."""
    errors = onset_errors_steps(true_tensors, pred_tensors)
    return float(errors.mean()) if errors.size else float("nan")


def offset_mae_ms(true_tensors, pred_tensors, bpm):
    """Micro-timing MAE over the true hits in milliseconds, each window at its own tempo.

    ``bpm`` is one tempo per window (or a scalar for all of them).
    """
    true_hits, _, true_off = split_groove(true_tensors)
    _, _, pred_off = split_groove(pred_tensors)
    ms_per_step = 1000.0 * step_seconds(np.broadcast_to(np.asarray(bpm, np.float64), true_hits.shape[:1]))
    errors = np.abs(pred_off - true_off) / 2.0 * ms_per_step[:, None, None]
    errors = errors[true_hits]
    return float(errors.mean()) if errors.size else float("nan")


def reconstruction_metrics(true_tensors, pred_tensors, bpm=None):
    """All reconstruction numbers of predicted vs true groove tensors [N, T, 27].

    Hits of ``pred_tensors`` are thresholded at 0.5 (probabilities or 0/1).
    ``bpm`` (per window) adds the timing MAE in ms; without it that is None.
    """
    true_hits, _, _ = split_groove(true_tensors)
    pred_hits, _, _ = split_groove(pred_tensors)
    prf = hit_prf(true_hits, pred_hits)
    return {"hit_accuracy": hit_accuracy(true_hits, pred_hits),
            "hit_precision": prf["micro_precision"], "hit_recall": prf["micro_recall"], "hit_f1": prf["micro_f1"],
            "hit_macro_f1": prf["macro_f1"],
            "per_class": {key: _floats(prf[key]) for key in ("precision", "recall", "f1", "support", "predicted")},
            "velocity_mae": velocity_mae(true_tensors, pred_tensors),
            "offset_mae_steps": offset_mae_steps(true_tensors, pred_tensors),
            "offset_mae_ms": None if bpm is None else offset_mae_ms(true_tensors, pred_tensors, bpm)}


def loss_terms(true_tensors, probabilities):
    """magenta's GrooveLstmDecoder loss terms, per window [N].

    ``probabilities`` are activated decoder outputs (see ``activate``).  Per
    step and summed over classes: hits log loss, velocities and offsets
    squared error; each window's ``r_loss`` is the sum of the three over its
    steps, the other three are means per step (magenta's metrics/*_loss).
    """
    true_hits, true_vel, true_off = split_groove(true_tensors)
    probabilities = np.asarray(probabilities, np.float64)
    k = probabilities.shape[-1] // 3
    p, vel, off = probabilities[..., :k], probabilities[..., k:2 * k], probabilities[..., 2 * k:]
    y = true_hits.astype(np.float64)
    hits = -(y * np.log(p + LOG_LOSS_EPSILON) + (1 - y) * np.log(1 - p + LOG_LOSS_EPSILON)).sum(-1)
    velocities = ((vel - true_vel) ** 2).sum(-1)
    offsets = ((off - true_off) ** 2).sum(-1)
    return {"r_loss": (hits + velocities + offsets).sum(-1), "hits_loss": hits.mean(-1),
            "velocities_loss": velocities.mean(-1), "offsets_loss": offsets.mean(-1)}


# ---------------------------------------------------------------- latent space

def kl_per_dim(mu, sigma):
    """KL(N(mu, sigma^2) || N(0, 1)) in nats, per window and dimension [N, D]."""
    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    return 0.5 * (mu ** 2 + sigma ** 2 - 1.0) - np.log(sigma)


def kl_bits(mu, sigma):
    """Total KL of each window's posterior from the prior, in bits [N]."""
    return kl_per_dim(mu, sigma).sum(-1) / math.log(2.0)


def active_units(mu, threshold=ACTIVE_UNIT_THRESHOLD):
    """(number of active dimensions, variance per dimension) of the posterior means [N, D]."""
    variance = np.var(np.asarray(mu, np.float64), axis=0)
    return int(np.sum(variance > threshold)), variance


# ---------------------------------------------------------------- sample statistics

def hit_density_per_bar(tensors, steps_per_bar=STEPS_PER_BAR):
    """Mean number of hits per bar for each drum class [k]."""
    hits, _, _ = split_groove(tensors)
    n, steps, k = hits.shape
    if n == 0:
        return np.full(k, np.nan)
    return hits.reshape(n, steps // steps_per_bar, steps_per_bar, k).sum(2).mean((0, 1))


def hits_per_bar(tensors, steps_per_bar=STEPS_PER_BAR):
    """Number of hits (all classes) in every bar of every window, flat."""
    hits, _, _ = split_groove(tensors)
    n, steps, k = hits.shape
    return hits.reshape(n, steps // steps_per_bar, steps_per_bar * k).sum(-1).ravel()


def hit_velocities(tensors):
    hits, velocities, _ = split_groove(tensors)
    return velocities[hits]


def hit_offsets(tensors):
    hits, _, offsets = split_groove(tensors)
    return offsets[hits]


def inter_onset_intervals(tensors):
    """Intervals in steps between consecutive grid steps that hold any hit, within each window."""
    hits, _, _ = split_groove(tensors)
    rows, steps = np.nonzero(hits.any(-1))  # row-major: sorted by window, then step
    same_window = rows[1:] == rows[:-1]
    return np.diff(steps)[same_window]


def histogram(values, bins):
    """Probability mass of ``values`` in ``bins`` (edges); values outside are clipped into the end bins."""
    values = np.clip(np.asarray(values, np.float64).ravel(), bins[0], bins[-1])
    counts, _ = np.histogram(values, bins)
    total = counts.sum()
    return counts / total if total else np.zeros(len(bins) - 1)


def overlapping_area(p, q):
    """Shared probability mass of two histograms (1 = identical, 0 = disjoint)."""
    return float(np.minimum(p, q).sum())


def histogram_kl(p, q, epsilon=1e-6):
    """KL(p || q) in nats of two histograms, both smoothed by ``epsilon`` per bin."""
    p = (np.asarray(p, np.float64) + epsilon) / (np.sum(p) + epsilon * len(p))
    q = (np.asarray(q, np.float64) + epsilon) / (np.sum(q) + epsilon * len(q))
    return float(np.sum(p * np.log(p / q)))


FEATURES = {"velocity": hit_velocities, "offset": hit_offsets, "ioi": inter_onset_intervals,
            "hits_per_bar": hits_per_bar}


def groove_statistics(tensors):
    """Per-class hit density per bar and the feature histograms of a set of grooves."""
    return {"n": len(tensors), "hit_density_per_bar": _floats(hit_density_per_bar(tensors)),
            "histograms": {name: _floats(histogram(fn(tensors), HISTOGRAM_BINS[name]))
                           for name, fn in FEATURES.items()}}


def compare_statistics(stats, reference):
    """Overlapping area and KL(reference || stats) per feature histogram, and density error."""
    out = {}
    for name in HISTOGRAM_BINS:
        p, q = np.asarray(reference["histograms"][name]), np.asarray(stats["histograms"][name])
        out[name] = {"overlap": overlapping_area(p, q), "kl": histogram_kl(p, q)}
    density = np.asarray(stats["hit_density_per_bar"]) - np.asarray(reference["hit_density_per_bar"])
    out["hit_density_mae"] = float(np.mean(np.abs(density)))
    return out


def nearest_hamming(query_hits, reference_hits, chunk=1024):
    """Hamming distance of each query hit pattern to its nearest reference pattern, and its index.

    ``query_hits`` [N, ...] and ``reference_hits`` [M, ...] are boolean hit
    patterns (e.g. [N, 64, 9]).  With x, y in {0, 1}^d the distance is
    |x| + |y| - 2 x.y, so each chunk of queries is one matrix product.
    """
    if len(reference_hits) == 0:
        raise data.DataError("no reference (training) windows to compare against")
    q = np.asarray(query_hits, bool).reshape(len(query_hits), -1).astype(np.float32)
    r = np.asarray(reference_hits, bool).reshape(len(reference_hits), -1).astype(np.float32)
    if q.shape[1] != r.shape[1]:
        raise ValueError(f"hit patterns differ in size: {q.shape[1]} vs {r.shape[1]}")
    r_norm, rt = r.sum(1), np.ascontiguousarray(r.T)
    distances, indices = np.empty(len(q), np.int64), np.empty(len(q), np.int64)
    for start in range(0, len(q), chunk):
        block = q[start:start + chunk]
        d = block.sum(1)[:, None] + r_norm[None, :] - 2.0 * (block @ rt)  # exact: integers < 2^24
        best = np.argmin(d, axis=1)
        indices[start:start + chunk] = best
        distances[start:start + chunk] = np.rint(d[np.arange(len(block)), best]).astype(np.int64)
    return distances, indices


def novelty(query_tensors, train_tensors, chunk=1024):
    """Nearest-training-window Hamming distances of hit patterns and the duplicate rate (distance 0)."""
    query_hits, _, _ = split_groove(query_tensors)
    train_hits, _, _ = split_groove(train_tensors)
    distances, indices = nearest_hamming(query_hits, train_hits, chunk)
    return {"duplicate_rate": float(np.mean(distances == 0)) if len(distances) else float("nan"),
            "near_duplicate_rate": float(np.mean(distances <= 2)) if len(distances) else float("nan"),
            "mean_distance": float(np.mean(distances)) if len(distances) else float("nan"),
            "median_distance": float(np.median(distances)) if len(distances) else float("nan"),
            "distances": distances.tolist(), "nearest": indices.tolist()}


def _floats(values):
    """A JSON-friendly list (NaN -> None)."""
    return [None if isinstance(v, float) and math.isnan(v) else v for v in np.asarray(values).tolist()]


# ---------------------------------------------------------------- the model pass

class ModelPass:
    """Posterior and teacher-forced decoder outputs of a checkpoint, in fixed-size batches.

    One graph (is_training=False, so no dropout) with batch ``batch_size``:
    the encoder's posterior mean and sigma, and magenta's
    ``decoder.reconstruction_loss`` (the training-time teacher-forced pass)
    run with z = posterior mean, giving the raw decoder outputs and magenta's
    r_loss per window.  A split is run in chunks; the last one is padded
    with empty windows that are dropped again.
    """

    def __init__(self, config_name, checkpoint, batch_size=256, hparams=None, seed=0):
        import tensorflow.compat.v1 as tf

        from groovae.configs import load_config
        config = load_config(config_name, hparams)
        self.hparams = config.hparams
        self.hparams.batch_size = batch_size
        self.batch_size, self.length = batch_size, self.hparams.max_seq_len
        converter = config.data_converter
        self.input_depth, self.output_depth = converter.input_depth, converter.output_depth
        with compat.magenta_graph() as self.graph:
            tf.set_random_seed(seed)
            model = config.model
            model.build(self.hparams, self.output_depth, is_training=False)
            self.inputs = tf.placeholder(tf.float32, [batch_size, self.length, self.input_depth], "inputs")
            self.outputs = tf.placeholder(tf.float32, [batch_size, self.length, self.output_depth], "outputs")
            self.lengths = tf.placeholder(tf.int32, [batch_size], "lengths")
            posterior = model.encode(self.inputs, self.lengths)
            mu = posterior.loc
            # decoder inputs: the target shifted right by one step, a zero frame first (as in training)
            x_input = tf.pad(self.outputs[:, :self.length - 1], [(0, 0), (1, 0), (0, 0)])
            r_loss, _, decoded = model.decoder.reconstruction_loss(x_input, self.outputs, self.lengths, mu)[:3]
            self.fetches = {"mu": mu, "sigma": posterior.stddev(), "logits": decoded.rnn_output, "r_loss": r_loss}
            self.global_step = model.global_step
            check_checkpoint(config_name, checkpoint, {v.op.name: v.shape.as_list() for v in tf.global_variables()})
            self.saver = tf.train.Saver()
            self.session = tf.Session(graph=self.graph)
            self.saver.restore(self.session, checkpoint)
            self.step = int(self.session.run(self.global_step))

    def run(self, tensors):
        """{mu, sigma [N, z], logits [N, T, 27] (raw), r_loss [N]} for window tensors."""
        n = len(tensors["lengths"])
        parts = []
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            pad = self.batch_size - (stop - start)
            feed = {}
            for placeholder, key in ((self.inputs, "inputs"), (self.outputs, "outputs")):
                chunk = np.asarray(tensors[key][start:stop], np.float32)
                feed[placeholder] = np.concatenate([chunk, np.zeros((pad,) + chunk.shape[1:], np.float32)])
            feed[self.lengths] = np.concatenate([np.minimum(tensors["lengths"][start:stop], self.length),
                                                 np.full(pad, self.length)]).astype(np.int32)
            values = self.session.run(self.fetches, feed)
            parts.append({k: v[:stop - start] for k, v in values.items()})
        if not parts:
            raise data.DataError("no test windows to evaluate")
        return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}

    def close(self):
        self.session.close()


def check_checkpoint(config_name, checkpoint, wanted):
    """GenerateError unless the checkpoint holds every variable in ``wanted`` ({name: shape})."""
    from groovae import generate
    generate.check_compatible(config_name, checkpoint, generate.read_checkpoint_variables(checkpoint), wanted)


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


# ---------------------------------------------------------------- evaluate a checkpoint

def evaluate_checkpoint(config, checkpoint, test_path, train_path=None, n_samples=256,
                        temperatures=DEFAULT_TEMPERATURES, seed=0, batch_size=256, hparams=None,
                        label=None, log=None):
    """All evaluation numbers of one checkpoint on a test split; a JSON-friendly dict.

    ``config`` is a config name, ``checkpoint`` a checkpoint prefix (see
    generate.resolve_checkpoint), ``test_path`` a tensor .npz (per-window
    ``bpm`` adds ms timing errors); ``train_path`` (optional) enables the
    novelty check.  ``n_samples`` samples are drawn at each temperature from
    z ~ N(0, I) with ``seed``.
    """
    from groovae import generate
    log = log or (lambda *a, **k: None)
    temperatures = [float(t) for t in temperatures]
    for t in temperatures:
        generate.check_request(1, t, seed)
    if not 0 <= n_samples <= generate.MAX_GROOVES * 10:
        raise ValueError(f"n_samples must be 0..{generate.MAX_GROOVES * 10}, got {n_samples}")
    if not 1 <= batch_size <= 4096:
        raise ValueError(f"batch_size must be 1..4096, got {batch_size}")
    timings, start = {}, time.time()
    test = data.load_tensors(test_path)
    n = len(test["lengths"])
    if n == 0:
        raise data.DataError(f"{test_path}: holds no windows")
    train = data.load_tensors(train_path) if train_path else None
    bpm = test.get("bpm")
    if bpm is not None and not np.all(np.asarray(bpm) > 0):
        bpm = None
    target = np.asarray(test["outputs"], np.float32)
    timings["load"] = time.time() - start

    t = time.time()
    tf_pass = ModelPass(config, checkpoint, min(batch_size, n), hparams, seed)  # checks the checkpoint fits
    model = generate.GrooveModel(config, checkpoint, hparams)
    try:
        out = tf_pass.run(test)
    finally:
        tf_pass.close()
    timings["teacher_forced"] = time.time() - t
    log(f"evaluate: teacher-forced pass over {n} windows in {timings['teacher_forced']:.1f}s")

    probabilities = activate(out["logits"])
    terms = loss_terms(target, probabilities)
    losses = model_loss(terms, out["mu"], out["sigma"], tf_pass.hparams, tf_pass.step)
    losses["magenta_r_loss"] = float(np.mean(out["r_loss"]))  # from magenta's graph; equals r_loss

    t = time.time()
    free = model.decode(out["mu"], GREEDY_TEMPERATURE, seed)
    timings["free_running"] = time.time() - t
    log(f"evaluate: free-running decoding of {n} windows in {timings['free_running']:.1f}s")

    kl_dims = kl_per_dim(out["mu"], out["sigma"]).mean(0)
    active, variance = active_units(out["mu"])
    latent = {"z_size": int(out["mu"].shape[1]), "active_units": active, "threshold": ACTIVE_UNIT_THRESHOLD,
              "mu_variance": _floats(variance), "kl_per_dim_bits": _floats(kl_dims / math.log(2.0)),
              "kl_bits": float(kl_dims.sum() / math.log(2.0)),
              "dims_with_kl_over_0.1_bits": int(np.sum(kl_dims / math.log(2.0) > 0.1))}

    t = time.time()
    data_stats = groove_statistics(target)
    samples, examples = {}, {"test": target[:2].tolist(), "teacher_forced": probabilities[:2].tolist(),
                             "free_running": free[:2].tolist(), "samples": {}}
    for temperature in temperatures if n_samples else ():
        grooves = generate.sample(model, n_samples, temperature, seed)
        stats = groove_statistics(grooves)
        entry = {"statistics": stats, "vs_test": compare_statistics(stats, data_stats)}
        if train is not None:
            entry["novelty"] = novelty(grooves, train["outputs"])
        samples[f"{temperature:g}"] = entry
        examples["samples"][f"{temperature:g}"] = grooves[:2].tolist()
    timings["samples"] = time.time() - t
    log(f"evaluate: {n_samples} samples x {len(temperatures)} temperatures in {timings['samples']:.1f}s")

    test_novelty, train_stats = None, None
    if train is not None:  # the data's own numbers, as the ceiling for the samples'
        t = time.time()
        test_novelty = novelty(target, train["outputs"])
        train_stats = groove_statistics(train["outputs"])
        train_stats["vs_test"] = compare_statistics(train_stats, data_stats)
        timings["train_reference"] = time.time() - t
    timings["total"] = time.time() - start
    return {"label": label or config, "config": config, "checkpoint": checkpoint,
            "checkpoint_sha256": generate.checkpoint_sha256(checkpoint), "global_step": tf_pass.step,
            "test_path": test_path, "train_path": train_path, "n_test": n, "n_samples": n_samples,
            "temperatures": temperatures, "seed": seed, "has_bpm": bpm is not None,
            "free_running_temperature": GREEDY_TEMPERATURE,
            "reconstruction": {"teacher_forced": reconstruction_metrics(target, probabilities, bpm),
                               "free_running": reconstruction_metrics(target, free, bpm)},
            "losses": losses, "latent": latent, "test_statistics": data_stats, "samples": samples,
            "test_novelty": test_novelty, "train_statistics": train_stats, "examples": examples,
            "timings": {k: round(v, 2) for k, v in timings.items()}}


# ---------------------------------------------------------------- reports

def _fmt(value, digits=3):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (int, np.integer)):
        return str(value)
    return f"{value:.{digits}f}"


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _reconstruction_rows(results):
    rows = []
    for mode in ("teacher_forced", "free_running"):
        r = results["reconstruction"][mode]
        rows.append([mode.replace("_", "-"), _fmt(r["hit_accuracy"]), _fmt(r["hit_precision"]),
                     _fmt(r["hit_recall"]), _fmt(r["hit_f1"]), _fmt(r["hit_macro_f1"]),
                     _fmt(r["velocity_mae"] * 127, 1), _fmt(r["offset_mae_steps"], 4), _fmt(r["offset_mae_ms"], 1)])
    return rows


RECONSTRUCTION_HEADER = ["decoding", "hit acc", "hit P", "hit R", "hit F1", "macro F1", "velocity MAE (MIDI)",
                         "timing MAE (steps)", "timing MAE (ms)"]


def _sample_rows(results):
    rows = []
    if results.get("train_statistics"):
        c, tn = results["train_statistics"]["vs_test"], results["test_novelty"]
        rows.append(["training windows (reference)"]
                    + [f"{_fmt(c[f]['overlap'])} / {_fmt(c[f]['kl'])}" for f in HISTOGRAM_BINS]
                    + [_fmt(c["hit_density_mae"]), _fmt(tn["duplicate_rate"]) + " (test)",
                       _fmt(tn["mean_distance"], 1) + " (test)"])
    for temperature, entry in results["samples"].items():
        c = entry["vs_test"]
        novelty_cells = ["–", "–"]
        if "novelty" in entry:
            novelty_cells = [_fmt(entry["novelty"]["duplicate_rate"]), _fmt(entry["novelty"]["mean_distance"], 1)]
        rows.append([temperature] + [f"{_fmt(c[f]['overlap'])} / {_fmt(c[f]['kl'])}" for f in HISTOGRAM_BINS]
                    + [_fmt(c["hit_density_mae"])] + novelty_cells)
    return rows


SAMPLE_HEADER = (["temperature"] + [f"{f} OA / KL" for f in HISTOGRAM_BINS]
                 + ["density MAE (hits/bar)", "duplicate rate", "mean Hamming to train"])


def plot_per_class_f1(results_list):
    from groovae.plots import DRUM_NAMES, plt
    fig, ax = plt.subplots(figsize=(9, 3), dpi=100)
    width = 0.8 / (2 * len(results_list))
    x = np.arange(len(DRUM_NAMES))
    i = 0
    for results in results_list:
        for mode in ("teacher_forced", "free_running"):
            f1 = [np.nan if v is None else v for v in results["reconstruction"][mode]["per_class"]["f1"]]
            ax.bar(x + (i - len(results_list) + 0.5) * width, f1, width, label=f"{results['label']} {mode}")
            i += 1
    ax.set_xticks(x)
    ax.set_xticklabels(DRUM_NAMES, fontsize=7)
    ax.set_ylabel("hit F1")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_distributions(results):
    from groovae.plots import plt
    fig, axes = plt.subplots(1, len(HISTOGRAM_BINS), figsize=(14, 3), dpi=100)
    for ax, name in zip(axes, HISTOGRAM_BINS):
        bins = HISTOGRAM_BINS[name]
        centers = (bins[:-1] + bins[1:]) / 2
        ax.plot(centers, results["test_statistics"]["histograms"][name], "k-", lw=2, label="test data")
        for temperature, entry in results["samples"].items():
            ax.plot(centers, entry["statistics"]["histograms"][name], "-", lw=1, label=f"T={temperature}")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_density(results):
    from groovae.plots import DRUM_NAMES, plt
    fig, ax = plt.subplots(figsize=(9, 3), dpi=100)
    series = [("test data", results["test_statistics"]["hit_density_per_bar"])]
    series += [(f"T={t}", e["statistics"]["hit_density_per_bar"]) for t, e in results["samples"].items()]
    width = 0.8 / len(series)
    x = np.arange(len(DRUM_NAMES))
    for i, (name, density) in enumerate(series):
        ax.bar(x + (i - len(series) / 2 + 0.5) * width, density, width, label=name)
    ax.set_xticks(x)
    ax.set_xticklabels(DRUM_NAMES, fontsize=7)
    ax.set_ylabel("hits per bar")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_latent(results_list):
    from groovae.plots import plt
    fig, axes = plt.subplots(1, 2, figsize=(10, 3), dpi=100)
    for results in results_list:
        latent = results["latent"]
        axes[0].plot(sorted(latent["mu_variance"], reverse=True), label=results["label"])
        axes[1].plot(sorted(latent["kl_per_dim_bits"], reverse=True), label=results["label"])
    axes[0].axhline(ACTIVE_UNIT_THRESHOLD, color="k", ls=":", lw=1)
    axes[0].set_yscale("log")
    axes[0].set_title("variance of posterior mean per dim (sorted)", fontsize=9)
    axes[1].set_title("KL per dim, bits (sorted)", fontsize=9)
    for ax in axes:
        ax.set_xlabel("dimension rank", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_examples(results):
    from groovae.plots import drum_roll, plt
    ex = results["examples"]
    panels = [("test window 0", ex["test"][0]), ("teacher-forced reconstruction", ex["teacher_forced"][0]),
              ("free-running reconstruction", ex["free_running"][0])]
    panels += [(f"sample T={t}", grooves[0]) for t, grooves in ex["samples"].items()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels)), dpi=100)
    for ax, (title, tensor) in zip(np.atleast_1d(axes), panels):
        drum_roll(np.asarray(tensor), title=title, ax=ax)
    fig.tight_layout()
    return fig


def _definitions():
    return (
        "Definitions: *teacher-forced* = the decoder sees the true previous step (as in training), z = posterior "
        "mean; *free-running* = the decoder feeds back its own output, z = posterior mean, hits near-greedy "
        f"(temperature {GREEDY_TEMPERATURE:g}). Hit P/R/F1 are pooled over all classes and cells (macro F1: mean "
        "of per-class F1). Velocity and timing MAE are over the true hits; timing error = |offset error| / 2 in "
        "16th-note steps, in ms at each window's tempo. Loss terms are magenta's, at z = posterior mean "
        "(deterministic; magenta's own eval samples z). Active units: dims whose posterior-mean variance over "
        f"the test set exceeds {ACTIVE_UNIT_THRESHOLD} (Burda et al. 2016). OA = overlapping area of the "
        "histograms of samples and test data (1 = same), KL = KL(test || samples) in nats (Yang & Lerch 2020). "
        "Histograms: velocities and offsets of hits (20 bins), inter-onset intervals between grid steps with any "
        "hit (1..16 steps, longer ones in the last bin), hits per bar (all classes, bins of 2, 48+ in the last). "
        "Duplicate rate: samples whose hit pattern equals a training window's; Hamming distance over the "
        "64 x 9 hit grid.")


def single_report_markdown(results, images):
    r = results
    lines = [f"# Evaluation: {r['label']}", "",
             f"- config `{r['config']}`, checkpoint `{r['checkpoint']}` (global step {r['global_step']})",
             f"- test windows: {r['n_test']} from `{r['test_path']}`" + ("" if r["has_bpm"] else
                                                                          " (no tempo: no ms timing)"),
             (f"- samples: {r['n_samples']} per temperature, seed {r['seed']}; training windows for novelty: "
              f"`{r['train_path']}`"),
             "- seconds: " + ", ".join(f"{k} {v:.1f}" for k, v in r["timings"].items()), "",
             "## Reconstruction (test split)", "", _table(RECONSTRUCTION_HEADER, _reconstruction_rows(r)), "",
             f"![per-class F1]({images['f1']})", "", "### Per-class hit F1", "",
             _per_class_table([r]), "", "## Loss terms and KL (test split)", "",
             _table(list(r["losses"]), [[_fmt(v) for v in r["losses"].values()]]), "",
             "## Latent space", "",
             (f"Active units: **{r['latent']['active_units']} / {r['latent']['z_size']}**; mean KL "
              f"{_fmt(r['latent']['kl_bits'], 1)} bits; dims carrying > 0.1 bit: "
              f"{r['latent']['dims_with_kl_over_0.1_bits']}."), "", f"![latent]({images['latent']})", ""]
    if r["samples"]:
        lines += ["## Samples vs test data", "", _table(SAMPLE_HEADER, _sample_rows(r)), "",
                  _density_table(r), "", f"![distributions]({images['distributions']})", "",
                  f"![density]({images['density']})", ""]
    if r.get("test_novelty"):
        lines += [("The reference row compares the training windows' histograms with the test windows' (the best "
                   "a model can hope for); its duplicate rate and Hamming distance are the test windows' own, "
                   "against the training windows."), ""]
    lines += ["## Examples", "", f"![examples]({images['examples']})", "", _definitions(), ""]
    return "\n".join(lines)


def _per_class_table(results_list):
    from groovae.plots import DRUM_NAMES
    header = ["model", "decoding"] + list(DRUM_NAMES)
    rows = []
    for r in results_list:
        for mode in ("teacher_forced", "free_running"):
            rows.append([r["label"], mode.replace("_", "-")]
                        + [_fmt(v) for v in r["reconstruction"][mode]["per_class"]["f1"]])
    return _table(header, rows)


def _density_table(results):
    from groovae.plots import DRUM_NAMES
    rows = [["test data"] + [_fmt(v, 2) for v in results["test_statistics"]["hit_density_per_bar"]]]
    rows += [[f"T={t}"] + [_fmt(v, 2) for v in e["statistics"]["hit_density_per_bar"]]
             for t, e in results["samples"].items()]
    return "Hits per bar by class:\n\n" + _table(["grooves"] + list(DRUM_NAMES), rows)


def _write_json(path, results):
    data.atomic_write(path, lambda f: json.dump(results, f, indent=1, default=_json_default), mode="w")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(type(value).__name__)


PATH_FIELDS = ("checkpoint", "test_path", "train_path")


def portable_paths(results, out_dir):
    """``results`` with its file paths relative to ``out_dir``: a report names no folder of the machine that made it."""
    def relative(path):
        if not path or path == "public" or re.match(r"^[a-z]+://", str(path)):
            return path
        return os.path.relpath(os.path.abspath(path), os.path.abspath(out_dir))
    return {**results, **{k: relative(results.get(k)) for k in PATH_FIELDS if k in results}}


def write_report(results, out_dir):
    """report.md + PNG plots + results.json of one checkpoint's evaluation in ``out_dir``; returns the .md path."""
    from groovae.plots import save_figure
    os.makedirs(out_dir, exist_ok=True)
    results = portable_paths(results, out_dir)
    images = {"f1": "per_class_f1.png", "latent": "latent.png", "examples": "examples.png",
              "distributions": "distributions.png", "density": "hit_density.png"}
    save_figure(plot_per_class_f1([results]), os.path.join(out_dir, images["f1"]))
    save_figure(plot_latent([results]), os.path.join(out_dir, images["latent"]))
    save_figure(plot_examples(results), os.path.join(out_dir, images["examples"]))
    if results["samples"]:
        save_figure(plot_distributions(results), os.path.join(out_dir, images["distributions"]))
        save_figure(plot_density(results), os.path.join(out_dir, images["density"]))
    _write_json(os.path.join(out_dir, "results.json"), results)
    path = os.path.join(out_dir, "report.md")
    text = single_report_markdown(results, images)
    data.atomic_write(path, lambda f: f.write(text), mode="w")
    return path


def better(results_list, metric="hit_f1", mode="free_running"):
    """The results with the highest ``metric`` (free-running by default)."""
    return max(results_list, key=lambda r: _nan_low(r["reconstruction"][mode][metric]))


def _nan_low(value):
    return -math.inf if value is None or (isinstance(value, float) and math.isnan(value)) else value


def _winner(scores):
    """The label with the highest score, or 'tie (a, b)' if several share it."""
    top = max(scores.values())
    best = [k for k, v in scores.items() if v == top]
    return best[0] if len(best) == 1 else f"tie ({', '.join(best)})"


def comparison_verdict(results_list):
    """One or two sentences on which model wins test hit F1 and timing MAE (free-running and teacher-forced)."""
    if len(results_list) < 2:
        return ""
    sentences = []
    for mode in ("free_running", "teacher_forced"):
        f1 = {r["label"]: r["reconstruction"][mode]["hit_f1"] for r in results_list}
        timing_key = "offset_mae_ms" if all(r["has_bpm"] for r in results_list) else "offset_mae_steps"
        unit = "ms" if timing_key == "offset_mae_ms" else "steps"
        timing = {r["label"]: r["reconstruction"][mode][timing_key] for r in results_list}
        best_f1 = _winner({k: _nan_low(v) for k, v in f1.items()})
        best_timing = _winner({k: _nan_low(None if v is None else -v) for k, v in timing.items()})
        sentences.append(
            f"{mode.replace('_', '-')}: best hit F1 **{best_f1}** ("
            + ", ".join(f"{k} {_fmt(v)}" for k, v in f1.items()) + f"); best timing MAE **{best_timing}** ("
            + ", ".join(f"{k} {_fmt(v, 2 if unit == 'ms' else 4)} {unit}" for k, v in timing.items()) + ").")
    steps = {r["label"]: r["global_step"] for r in results_list}
    if len(set(steps.values())) > 1:
        sentences.append("Note: the checkpoints differ in training steps (" +
                         ", ".join(f"{k} {v}" for k, v in steps.items()) + "): not an equal-budget comparison.")
    return " ".join(sentences)


def write_comparison_report(results_list, out_dir, title="Flat vs hierarchical decoder"):
    """report.md comparing several evaluations (e.g. flat vs hier) + the temperature sweep of the best one.

    Each evaluation also gets its own single report in ``out_dir/<label>/``.
    Returns the path of the comparison report.md.
    """
    from groovae.plots import save_figure
    if not results_list:
        raise ValueError("nothing to compare")
    labels = [r["label"] for r in results_list]
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must differ: {labels}")
    os.makedirs(out_dir, exist_ok=True)
    for r in results_list:
        write_report(r, os.path.join(out_dir, _safe_name(r["label"])))
    results_list = [portable_paths(r, out_dir) for r in results_list]
    save_figure(plot_per_class_f1(results_list), os.path.join(out_dir, "per_class_f1.png"))
    save_figure(plot_latent(results_list), os.path.join(out_dir, "latent.png"))
    best = better(results_list)
    rows, loss_rows, latent_rows = [], [], []
    for r in results_list:
        for row in _reconstruction_rows(r):
            rows.append([r["label"], str(r["global_step"])] + row)
        loss_rows.append([r["label"]] + [_fmt(r["losses"].get(k)) for k in
                                         ("loss", "r_loss", "hits_loss", "velocities_loss", "offsets_loss",
                                          "kl_bits")])
        latent_rows.append([r["label"], f"{r['latent']['active_units']} / {r['latent']['z_size']}",
                            _fmt(r["latent"]["kl_bits"], 1), str(r["latent"]["dims_with_kl_over_0.1_bits"])])
    lines = [f"# {title}", "", comparison_verdict(results_list), "", "## Reconstruction (test split)", "",
             _table(["model", "step"] + RECONSTRUCTION_HEADER, rows), "", "![per-class F1](per_class_f1.png)", "",
             _per_class_table(results_list), "", "## Loss terms (z = posterior mean)", "",
             _table(["model", "loss", "r_loss", "hits_loss", "velocities_loss", "offsets_loss", "KL bits"],
                    loss_rows), "", "## Latent space", "",
             _table(["model", "active units", "KL (bits)", "dims > 0.1 bit"], latent_rows), "",
             "![latent](latent.png)", ""]
    if best["samples"]:
        lines += [f"## Temperature sweep: {best['label']} (best free-running hit F1)", "",
                  _table(SAMPLE_HEADER, _sample_rows(best)), "", _density_table(best), "",
                  f"![distributions]({_safe_name(best['label'])}/distributions.png)", ""]
    lines += ["Per-model details: " + ", ".join(f"[{r['label']}]({_safe_name(r['label'])}/report.md)"
                                                for r in results_list) + ".", "", _definitions(), ""]
    _write_json(os.path.join(out_dir, "comparison.json"),
                {"results": [{k: v for k, v in r.items() if k != "examples"} for r in results_list]})
    path = os.path.join(out_dir, "report.md")
    text = "\n".join(lines)
    data.atomic_write(path, lambda f: f.write(text), mode="w")
    return path


def _safe_name(label):
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)
