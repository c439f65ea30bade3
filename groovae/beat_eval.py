"""How close the your-beat models come to the drummers, beside what a DAW would do.

On the GMD test split, every window goes through each model's own input
transform (its config's converter made the tensors: humanize flattens,
tapify squashes onto one instrument, hits-as-controls keeps the hits as
controls), the model plays it, and the result is compared with what the
drummer played:

* humanize and hits-as-controls: the share of the drummer's hits the model
  plays (humanize decodes its own hits and may leave some out); velocity MAE
  (MIDI units) and timing MAE (ms, each window at its tempo) on the
  drummer's hits, pooled and per drum class (a hit left out counts with the
  velocity and offset the model plays there: near 0); each class's timing
  and velocity spread, over the hits the model plays, against the data's;
* drumify: hit F1 against the drummer's hits and hits per bar per class.

Humanize and hits-as-controls are scored greedy (z the posterior mean, or for
hits as controls the prior's mean: no reference feel) and as the commands play
them by default (z drawn at T = 0.5: humanize, humanize --keep_hits).

Baselines on the same hits: the quantized beat as is (one velocity: the
training split's mean; on the grid); a groove template (mean velocity and
offset per class and 16th step of the bar over the training split: a DAW's
groove quantize); random jitter with the data's per-class spread.
"""
import numpy as np

from groovae import data, files
from groovae.configs import check_windows_fit, load_config
from groovae.metrics import (GREEDY_TEMPERATURE, STEPS_PER_BAR, as_floats, hit_density_per_bar, hit_prf,
                             split_groove, step_seconds)

BASELINES = ("quantized", "template", "jitter")


def on_hits(true, pred):
    """``pred``'s velocities and offsets on ``true``'s hits: a [N, T, 27] tensor with the drummer's hit pattern."""
    hits, _, _ = split_groove(true)
    _, velocities, offsets = split_groove(pred)
    hits = hits.astype(np.float32)
    return np.concatenate([hits, velocities * hits, offsets * hits], -1)


def feel_errors(true, pred, bpm):
    """Per class and pooled: velocity MAE (MIDI) and timing MAE (ms) of ``pred`` on the drummer's hits."""
    hits, true_vel, true_off = split_groove(true)
    _, pred_vel, pred_off = split_groove(pred)
    ms = 1000.0 * step_seconds(np.asarray(bpm, np.float64))[:, None, None]
    velocity = np.abs(pred_vel - true_vel) * 127
    timing = np.abs(pred_off - true_off) / 2.0 * ms
    per_class = {"velocity_mae_per_class": [float(velocity[..., k][hits[..., k]].mean()) if hits[..., k].any() else None
                                  for k in range(hits.shape[-1])],
                 "timing_mae_ms_per_class": [float(timing[..., k][hits[..., k]].mean()) if hits[..., k].any() else None
                                   for k in range(hits.shape[-1])]}
    return {"velocity_mae": float(velocity[hits].mean()), "timing_mae_ms": float(timing[hits].mean()), **per_class}


def spreads(tensors, bpm):
    """Per class: the standard deviation of hit timing (ms) and of hit velocity (MIDI) [k] each."""
    hits, velocities, offsets = split_groove(tensors)
    ms = (offsets / 2.0 * 1000.0 * step_seconds(np.asarray(bpm, np.float64))[:, None, None])
    timing = [float(ms[..., k][hits[..., k]].std()) if hits[..., k].sum() > 1 else None for k in range(hits.shape[-1])]
    velocity = [float(velocities[..., k][hits[..., k]].std() * 127) if hits[..., k].sum() > 1 else None
                for k in range(hits.shape[-1])]
    return {"timing_spread_ms": timing, "velocity_spread": velocity}


# ---------------------------------------------------------------- baselines

def baseline_feels(train, test, seed=0):
    """{name: [N, T, 27]} of the three baselines on the test windows' hits (what they need from the train split)."""
    hits, _, _ = split_groove(test)
    t_hits, t_vel, t_off = split_groove(train)
    k = hits.shape[-1]
    mean_velocity = t_vel[t_hits].mean()
    step_of_bar = np.arange(train.shape[1]) % STEPS_PER_BAR
    template_vel, template_off = np.zeros((STEPS_PER_BAR, k)), np.zeros((STEPS_PER_BAR, k))
    for s in range(STEPS_PER_BAR):
        h = t_hits[:, step_of_bar == s]
        counts = np.maximum(h.sum((0, 1)), 1)
        template_vel[s] = (t_vel[:, step_of_bar == s] * h).sum((0, 1)) / counts
        template_off[s] = (t_off[:, step_of_bar == s] * h).sum((0, 1)) / counts
    class_vel_mean = np.array([t_vel[..., c][t_hits[..., c]].mean() if t_hits[..., c].any() else mean_velocity
                               for c in range(k)])
    class_vel_std = np.array([t_vel[..., c][t_hits[..., c]].std() if t_hits[..., c].sum() > 1 else 0 for c in range(k)])
    class_off_std = np.array([t_off[..., c][t_hits[..., c]].std() if t_hits[..., c].sum() > 1 else 0 for c in range(k)])
    rng = np.random.RandomState(seed)
    test_steps = np.arange(test.shape[1]) % STEPS_PER_BAR
    feels = {
        "quantized": (np.full(hits.shape, mean_velocity), np.zeros(hits.shape)),
        "template": (np.broadcast_to(template_vel[test_steps], hits.shape), np.broadcast_to(template_off[test_steps],
                                                                                             hits.shape)),
        "jitter": (np.clip(class_vel_mean + class_vel_std * rng.randn(*hits.shape), 0, 1),
                   np.clip(class_off_std * rng.randn(*hits.shape), -1, 1)),
    }
    return {name: np.concatenate([hits, v * hits, o * hits], -1).astype(np.float32) for name, (v, o) in feels.items()}


# ---------------------------------------------------------------- the models

def play_windows(model, tensors, seed=0, temperature=GREEDY_TEMPERATURE, own_feel=False):
    """The model's performances [N, T, 27] of test windows, as the commands play them (model.perform).

    Greedy (the default temperature): z is the posterior mean of the
    transformed input, or for hits as controls the prior's mean, 0 (no
    reference feel).  With ``own_feel`` (hits as controls), z is the window's
    own code (an oracle: the drummer's feel is given).
    """
    from groovae.model import perform
    controls = tensors.get(data.CONTROLS)
    if own_feel:
        return model.decode_each(model.encode(tensors["inputs"], seed, controls), controls, GREEDY_TEMPERATURE, seed)
    return perform(model, tensors["inputs"], controls, 1, temperature, seed)[0]


def compare(true, played, bpm, data_spreads, drumify=False):
    """The numbers of one model or baseline against the drummers."""
    if drumify:
        hits, _, _ = split_groove(true)
        played_hits, _, _ = split_groove(played)
        prf = hit_prf(hits, played_hits)
        return {"hit_f1": prf["micro_f1"], "per_class_f1": as_floats(prf["f1"]),
                "hits_per_bar": as_floats(hit_density_per_bar(played))}
    feel = on_hits(true, played)
    result = feel_errors(true, feel, bpm)  # a drummer's hit the model leaves out counts with what it plays there
    true_hits, played_hits = split_groove(true)[0], split_groove(played)[0]
    kept = true_hits & played_hits
    result["hits_kept"] = float(kept.sum() / max(true_hits.sum(), 1))
    if kept.any():  # the feel where it plays the drummer's hit: what a dropped hit does not blur
        on_kept = feel_errors(np.concatenate([kept, true[..., 9:]], -1), feel, bpm)
        result["on_hits_played"] = {k: on_kept[k] for k in ("velocity_mae", "timing_mae_ms")}
    # The spreads of the feel it plays: on the drummer's hits that it plays too.
    result.update(spreads(np.concatenate([kept, feel[..., 9:18] * kept, feel[..., 18:] * kept], -1), bpm))
    for spread, of_data in (("timing_spread_ms", "timing_spread_vs_data"),
                            ("velocity_spread", "velocity_spread_vs_data")):
        result[of_data] = [None if m is None or d in (None, 0) else m / d - 1
                           for m, d in zip(result[spread], data_spreads[spread])]
    return result


# ---------------------------------------------------------------- the whole evaluation and its report

def evaluate_your_beat(models, data_dirs, max_windows=None, seed=0, log=None):
    """All numbers: {mode: (config, checkpoint prefix, hparams)} on {mode: preprocess dir of that config}.

    The test windows are the same in every dir (one config's converter each);
    the training split of the first dir gives the baselines.
    """
    import os
    from groovae.model import GrooveModel
    log = log or (lambda message: None)
    first = data_dirs[next(iter(models))]
    test = data.load_tensors(os.path.join(first, "test.npz"))
    n = len(test["lengths"]) if max_windows is None else min(max_windows, len(test["lengths"]))
    true, bpm = test["outputs"][:n], np.asarray(test["bpm"][:n], np.float64)
    train = data.load_tensors(os.path.join(first, "train.npz"))["outputs"]
    data_spreads = spreads(true, bpm)
    results = {"windows": n, "data": {**data_spreads, "hits_per_bar": as_floats(hit_density_per_bar(true))},
               "baselines": {}, "models": {}}
    for name, feel in baseline_feels(train, true, seed).items():
        results["baselines"][name] = compare(true, feel, bpm, data_spreads)
    for mode, (config, _, hparams) in models.items():  # every folder checked before the long work
        check_windows_fit(data_dirs[mode], config, load_config(config, hparams))
    for mode, (config, prefix, hparams) in models.items():
        tensors = data.load_tensors(os.path.join(data_dirs[mode], "test.npz"))
        tensors = {k: v[:n] for k, v in tensors.items() if k in data.model_keys(tensors)}
        if not np.array_equal(tensors["outputs"], true):
            raise data.DataError(f"{data_dirs[mode]}: its test windows are not those of {first}")
        model = GrooveModel(config, prefix, hparams)
        log(f"evaluate-beat: {mode} ({config}) on {n} windows")
        results["models"][mode] = {"config": config, "checkpoint_step": _step(prefix),
                                   **compare(true, play_windows(model, tensors, seed), bpm, data_spreads,
                                             drumify=mode == "drumify")}
        if mode != "drumify":  # what the commands play by default: feels drawn at their temperature
            results["models"][f"{mode}_at_{COMMAND_TEMPERATURE:g}"] = {"config": config, **compare(
                true, play_windows(model, tensors, seed, COMMAND_TEMPERATURE), bpm, data_spreads)}
        if model.has_controls:  # the oracle: the drummer's own feel given, as an upper bound
            results["models"][mode + "_own_feel"] = {"config": config, **compare(
                true, play_windows(model, tensors, seed, own_feel=True), bpm, data_spreads)}
    return results


def _step(prefix):
    from groovae.checkpoints import step_of
    return step_of(prefix)


COMMAND_TEMPERATURE = 0.5  # groovae humanize's default
LABELS = {"humanize": "humanize (greedy: z = mu)",
          f"humanize_at_{COMMAND_TEMPERATURE:g}": f"humanize at T = {COMMAND_TEMPERATURE:g}",
          "transfer": "hits as controls, no reference (z = 0: humanize --keep_hits, greedy)",
          f"transfer_at_{COMMAND_TEMPERATURE:g}": f"hits as controls, z = T eps (humanize --keep_hits at T = "
                                                  f"{COMMAND_TEMPERATURE:g})",
          "transfer_own_feel": "hits as controls, the drummer's own feel (an oracle)"}
TARGET_SPREAD = 0.30  # timing spread per class within +-30 % of the data's
TABLE_CLASSES = (0, 1, 2, 8)  # kick, snare, closed hi-hat, ride


def feel_table(results):
    """Markdown: velocity and timing MAE, and the timing spread of four classes against the data's, per row."""
    from groovae.plots import DRUM_NAMES
    names = [DRUM_NAMES[k] for k in TABLE_CLASSES]
    header = (["", "drummer's hits played", "velocity MAE (MIDI)", "timing MAE (ms)", "both MAEs on the hits played"]
              + [f"timing spread {c} (ms, vs data)" for c in names])
    rows = [["drummers (test data)", "100 %", "0", "0", "0 / 0"]
            + [_ms(results["data"]["timing_spread_ms"][k]) for k in TABLE_CLASSES]]
    entries = [(f"baseline: {name}", r) for name, r in results["baselines"].items()]
    entries += [(LABELS.get(name, name), r) for name, r in results["models"].items() if "velocity_mae" in r]
    for name, r in entries:
        played = r.get("on_hits_played")
        rows.append([name, f"{r['hits_kept']:.1%}", f"{r['velocity_mae']:.1f}", f"{r['timing_mae_ms']:.1f}",
                     f"{played['velocity_mae']:.1f} / {played['timing_mae_ms']:.1f}" if played else "–"]
                    + [f"{_ms(r['timing_spread_ms'][k])} ({_pct(r['timing_spread_vs_data'][k])})" for k in TABLE_CLASSES])
    return _markdown(header, rows)


def drumify_table(results):
    from groovae.plots import DRUM_NAMES
    names = [DRUM_NAMES[k] for k in TABLE_CLASSES]
    header = ["", "hit F1"] + [f"{c} hits/bar" for c in names]
    rows = [["drummers (test data)", "1"] + [f"{results['data']['hits_per_bar'][k]:.2f}" for k in TABLE_CLASSES]]
    for name, r in results["models"].items():
        if "hit_f1" in r:
            rows.append([name, f"{r['hit_f1']:.3f}"] + [f"{r['hits_per_bar'][k]:.2f}" for k in TABLE_CLASSES])
    return _markdown(header, rows)


PER_CLASS = (("velocity_mae_per_class", "velocity MAE per class (MIDI)", None),
             ("timing_mae_ms_per_class", "timing MAE per class (ms)", None),
             ("velocity_spread", "velocity spread per class (MIDI; vs the drummers')", "velocity_spread_vs_data"),
             ("timing_spread_ms", "timing spread per class (ms; vs the drummers')", "timing_spread_vs_data"))


def per_class_table(results, key, versus=None):
    """Markdown: one figure per drum class and row (baselines, models; for spreads, the drummers' first)."""
    from groovae.plots import DRUM_NAMES
    entries = [("drummers (test data)", {key: results["data"][key]})] if versus else []
    entries += [(f"baseline: {name}", r) for name, r in results["baselines"].items()]
    entries += [(LABELS.get(name, name), r) for name, r in results["models"].items() if key in r]
    rows = [[name] + [_ms(v) + (f" ({_pct(r[versus][k])})" if versus and versus in r and v is not None else "")
                      for k, v in enumerate(r[key])] for name, r in entries]
    return _markdown([""] + list(DRUM_NAMES), rows)


def targets(results):
    """{model: verdict line}: beats every baseline on both MAEs, and every class's timing spread within +-30 %
    of the drummers' (the classes the test windows play)."""
    from groovae.plots import DRUM_NAMES
    best = {m: min(r[m] for r in results["baselines"].values()) for m in ("velocity_mae", "timing_mae_ms")}
    played = [k for k, d in enumerate(results["data"]["timing_spread_ms"]) if d]
    lines = {}
    for name, r in results["models"].items():
        if "velocity_mae" not in r or name.endswith("_own_feel"):
            continue
        beats = all(r[m] < best[m] for m in best)
        vs_data = r["timing_spread_vs_data"]
        off = [f"{DRUM_NAMES[k]} {_pct(vs_data[k])}" for k in played
               if vs_data[k] is None or abs(vs_data[k]) > TARGET_SPREAD]
        lines[LABELS.get(name, name)] = (
            f"{'✓' if beats else '✗'} beats every baseline on both MAEs; {'✗' if off else '✓'} timing spread within "
            f"±30 % for {len(played) - len(off)} of {len(played)} classes"
            + (f" (not: {', '.join(off)})" if off else ""))
    return lines


def write_beat_report(results, out_dir, command=None):
    """report.md and results.json in ``out_dir``; returns the report's path."""
    import json
    import os
    files.make_folder(out_dir)
    files.atomic_write(os.path.join(out_dir, "results.json"), lambda f: json.dump(results, f, indent=1), mode="w")
    text = ["# Your beat, played by the models, against the drummers", "",
            f"GMD test split, {results['windows']} windows; each model's own input transform; greedy unless a row says T.", "",
            "## Humanize and hits as controls: the feel on the drummer's hits", "", feel_table(results), "",
            "Targets:", ""] + [f"- {name}: {line}" for name, line in targets(results).items()]
    for key, title, versus in PER_CLASS:
        text += ["", f"### {title}", "", per_class_table(results, key, versus)]
    if any("hit_f1" in r for r in results["models"].values()):
        text += ["", "## Drumify: hits against the drummer's", "", drumify_table(results)]
    if command:
        text += ["", f"Made with `{command}`."]
    path = os.path.join(out_dir, "report.md")
    files.atomic_write(path, lambda f: f.write("\n".join(text) + "\n"), mode="w")
    return path


def _ms(value):
    return "–" if value is None else f"{value:.1f}"


def _pct(value):
    return "–" if value is None else f"{value:+.0%}"


def _markdown(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])
