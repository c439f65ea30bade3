"""Pictures: drum rolls of groove tensors, training curves (matplotlib, Agg)."""
import io

import matplotlib

matplotlib.use("Agg")  # no display needed; notebooks show the saved PNGs
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from groovae import files  # noqa: E402
from groovae.gmd import DRUM_CLASSES  # noqa: E402
from groovae.metrics import split_groove  # noqa: E402

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
