"""Pictures: drum rolls of groove tensors, training curves, the evaluation report's figures (matplotlib, Agg)."""
import io

import matplotlib

matplotlib.use("Agg")  # no display needed; notebooks show the saved PNGs
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from groovae import files  # noqa: E402
from groovae.gmd import DRUM_CLASSES  # noqa: E402
from groovae.metrics import ACTIVE_UNIT_THRESHOLD, HISTOGRAM_BINS, split_groove  # noqa: E402

DRUM_NAMES = tuple(c.replace("_hh", " hi-hat").replace("_", " ") for c in DRUM_CLASSES)  # "closed hi-hat", ...


def drum_roll(tensor, title=None, ax=None, steps_per_bar=16):
    """Draws a groove tensor: one row per drum class, a bar per hit.

    Darkness is velocity; each hit is drawn at its played time
    (step - offset/2, GrooveConverter's convention), so micro-timing shows
    as a shift off the 16th-note grid.
    """
    hits, velocities, offsets = split_groove(tensor)
    num_steps, num_drums = hits.shape
    own_figure = ax is None
    if own_figure:
        fig, ax = plt.subplots(figsize=(10, 3), dpi=100)
    for step in range(num_steps + 1):
        ax.axvline(step, color="#eee" if step % 4 else ("#999" if step % steps_per_bar == 0 else "#ccc"),
                   lw=1.2 if step % steps_per_bar == 0 else 0.6, zorder=0)
    cmap = plt.get_cmap("Greys")
    for step, drum in zip(*np.nonzero(hits)):
        onset = step - offsets[step, drum] / 2.0
        ax.add_patch(plt.Rectangle((onset, drum - 0.38), 0.7, 0.76,
                                   color=cmap(0.25 + 0.75 * float(np.clip(velocities[step, drum], 0, 1))),
                                   zorder=2))
    ax.set_xlim(-0.5, num_steps + 0.5)
    ax.set_ylim(-0.6, num_drums - 0.4)
    ax.set_yticks(range(num_drums))
    ax.set_yticklabels(DRUM_NAMES[:num_drums], fontsize=7)
    ax.set_xticks(range(0, num_steps + 1, steps_per_bar))
    ax.set_xticklabels([f"bar {b + 1}" for b in range(num_steps // steps_per_bar)] + [""], fontsize=7, ha="left")
    if title:
        ax.set_title(title, fontsize=9)
    if own_figure:
        fig.tight_layout()
        return fig
    return ax


def save_figure(fig, path):
    """Writes a figure as PNG atomically and closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: byte-stable
    plt.close(fig)
    files.atomic_write(path, lambda f: f.write(buffer.getvalue()))
    return path


def training_curves(rows, title=None):
    """Loss curves from a run's metrics.csv rows (train and validation)."""
    return training_curves_compared({"": rows}, title)


def training_curves_compared(runs, title=None):
    """Loss, r_loss and KL of several runs on one figure: {label: metrics.csv rows}.

    Train loss is drawn thin (every summary step), validation as points.
    """
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), dpi=100)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, key in zip(axes, ("loss", "r_loss", "kl_bits")):
        for (label, rows), color in zip(runs.items(), colors):
            for split, style, alpha in (("train", "-", 0.45), ("validation", "o-", 1.0)):
                points = [(int(r["step"]), float(r[key])) for r in rows if r["split"] == split and r.get(key)]
                if points:
                    ax.plot(*zip(*points), style, color=color, alpha=alpha, ms=3, lw=1,
                            label=f"{label} {split}".strip())
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.legend(fontsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the evaluation report's figures

def plot_per_class_f1(results_list):
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
    ex = results["examples"]
    panels = [("test window 0", ex["test"][0]), ("teacher-forced reconstruction", ex["teacher_forced"][0]),
              ("free-running reconstruction", ex["free_running"][0])]
    panels += [(f"sample T={t}", grooves[0]) for t, grooves in ex["samples"].items()]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, 2.2 * len(panels)), dpi=100)
    for ax, (title, tensor) in zip(np.atleast_1d(axes), panels):
        drum_roll(np.asarray(tensor), title=title, ax=ax)
    fig.tight_layout()
    return fig
