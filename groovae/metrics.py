"""Evaluation metrics on plain numpy arrays of groove tensors (no TensorFlow).

Tensor layout (GrooveConverter): [..., 0:9] hits, [9:18] velocities (0..1),
[18:27] offsets (-1..1), the played onset being at ``step - offset / 2`` in
16th-note steps.  Reconstruction: hit accuracy / precision / recall / F1,
velocity and micro-timing errors; samples vs data: per-class densities and
histograms compared by overlapping area and KL (Yang & Lerch 2020);
novelty: Hamming distance to the nearest training window; latent health:
KL per dimension and active units (Burda et al. 2016).
"""
import math

import numpy as np

from groovae.errors import DataError

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
            "per_class": {key: as_floats(prf[key]) for key in ("precision", "recall", "f1", "support", "predicted")},
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


def per_class_velocity(tensors):
    """Mean velocity of each drum class's hits, in MIDI units (0-127) [k]; nan for a class with none."""
    hits, velocities, _ = split_groove(tensors)
    counts = hits.sum((0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, (velocities * hits).sum((0, 1)) / counts * 127, np.nan)


def per_class_timing_spread(tensors):
    """Standard deviation of each class's hit timing off the grid, in 16th-note steps [k]; nan if < 2 hits.

    A hit's offset is played time relative to its step in half steps
    (GrooveConverter), so offset / 2 is in steps.
    """
    hits, _, offsets = split_groove(tensors)
    spread = np.full(hits.shape[-1], np.nan)
    for k in range(hits.shape[-1]):
        values = offsets[..., k][hits[..., k]] / 2.0
        if values.size > 1:
            spread[k] = values.std()
    return spread


def groove_statistics(tensors):
    """Per-class hit density per bar, velocity and timing spread, and the feature histograms of a set of grooves."""
    return {"n": len(tensors), "hit_density_per_bar": as_floats(hit_density_per_bar(tensors)),
            "velocity_per_class": as_floats(per_class_velocity(tensors)),
            "timing_spread_per_class": as_floats(per_class_timing_spread(tensors)),
            "histograms": {name: as_floats(histogram(fn(tensors), HISTOGRAM_BINS[name]))
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
        raise DataError("no reference (training) windows to compare against")
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


def best_hit_f1(query_tensors, reference_tensors, chunk=1024):
    """Each query groove's best hit F1 against the reference grooves: 2 x.y / (|x| + |y|) over the hit grid."""
    q = split_groove(query_tensors)[0].reshape(len(query_tensors), -1).astype(np.float32)
    r = split_groove(reference_tensors)[0].reshape(len(reference_tensors), -1).astype(np.float32)
    if len(r) == 0:
        raise DataError("no reference (training) windows to compare against")
    r_norm, rt = r.sum(1), np.ascontiguousarray(r.T)
    best = np.empty(len(q))
    for start in range(0, len(q), chunk):
        block = q[start:start + chunk]
        sizes = block.sum(1)[:, None] + r_norm[None, :]
        f1 = np.where(sizes > 0, 2.0 * (block @ rt) / np.maximum(sizes, 1), 1.0)  # two empty grooves agree
        best[start:start + chunk] = f1.max(1)
    return best


NEAR_COPY_F1 = 0.9


def copying(query_tensors, train_tensors):
    """A guard against copying the training data: the median best hit F1 against it, and the share above 0.9."""
    best = best_hit_f1(query_tensors, train_tensors)
    return {"best_f1_median": float(np.median(best)), "near_copy_share": float(np.mean(best > NEAR_COPY_F1)),
            "threshold": NEAR_COPY_F1}


def diversity(tensors, chunk=1024):
    """Mean hit F1 between two different grooves of a set (lower: more diverse)."""
    hits = split_groove(tensors)[0].reshape(len(tensors), -1).astype(np.float32)
    if len(hits) < 2:
        return float("nan")
    norms, total = hits.sum(1), 0.0
    for start in range(0, len(hits), chunk):
        block = hits[start:start + chunk]
        sizes = block.sum(1)[:, None] + norms[None, :]
        f1 = np.where(sizes > 0, 2.0 * (block @ hits.T) / np.maximum(sizes, 1), 1.0)
        f1[np.arange(len(block)), start + np.arange(len(block))] = 0.0
        total += f1.sum()
    return float(total / (len(hits) * (len(hits) - 1)))


def as_floats(values):
    """A JSON-friendly list (NaN -> None)."""
    return [None if isinstance(v, float) and math.isnan(v) else v for v in np.asarray(values).tolist()]


def split_groove(tensors):
    """[..., 3k] GrooveConverter tensors -> hits (bool), velocities (0..1), offsets (-1..1), each [..., k].

    An offset is 2 x (grid time - played time) / step, so a hit was played at step - offset / 2.
    """
    tensors = np.asarray(tensors)
    k = tensors.shape[-1] // 3
    return tensors[..., :k] > 0.5, tensors[..., k:2 * k], tensors[..., 2 * k:]
