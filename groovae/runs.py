"""A training run directory: its layout, its ``run.json`` (the model it trains), its metrics.

The one owner of what a run dir holds:

    run.json            config, hparams, seed, data fingerprint, init_from (written by train)
    model.ckpt-N.*      checkpoints (the newest complete one is the run's model)
    metrics.csv         one row per (step, split) with loss terms and training seconds
    eval/               validation TensorBoard events

``model_of`` answers "which config and hparams does this checkpoint need" from
the run.json beside it, so ``generate``/``evaluate``/``export`` need no
``--config`` for a run of any config, and a given one that disagrees is an
error naming both (nanoGPT's checkpoint carries its model arguments too).
"""
import csv
import io
import json
import os
import time

from groovae import checkpoints, files
from groovae.errors import GroovaeError, RequestError, TrainError

RUN_JSON = "run.json"
METRICS_CSV = "metrics.csv"
CHECKPOINT_NAME = "model.ckpt"  # saved as model.ckpt-STEP
EVAL_DIR = "eval"
STOPPED_GAP_SECONDS = 900  # metrics.csv gap longer than this: no training process was running


def save_prefix(run_dir):
    """What a Saver saves under (it appends -STEP)."""
    return os.path.join(run_dir, CHECKPOINT_NAME)


def metrics_path(run_dir):
    return os.path.join(run_dir, METRICS_CSV)


def run_json_path(run_dir):
    return os.path.join(run_dir, RUN_JSON)


def newest_checkpoint(run_dir):
    """The newest complete checkpoint prefix in the run dir, or None."""
    return checkpoints.newest_checkpoint(run_dir)


def read_run_info(run_dir):
    """The run's run.json as a dict, or None where there is none; GroovaeError if unreadable."""
    path = run_json_path(run_dir)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            info = json.load(f)
        if not isinstance(info, dict) or not isinstance(info.get("config"), str):
            raise ValueError("no 'config'")
        return info
    except (OSError, ValueError) as e:
        raise GroovaeError(f"{path}: not a groovae run.json ({e})") from None


def write_run_info(run_dir, info):
    files.atomic_write(run_json_path(run_dir), lambda f: json.dump(info, f, indent=1), mode="w")


def run_dir_of(prefix):
    """The folder of a checkpoint prefix when it is a run dir (holds run.json), else None."""
    folder = os.path.dirname(prefix) or "."
    return folder if os.path.isfile(run_json_path(folder)) else None


def hparams_overrides(config_name, hparams):
    """The override string ('a=1,b=[2, 3]') of the hparams in ``hparams`` (a dict) that differ from the config's.

    ``batch_size`` is left out: it is a training setting, and every graph that
    restores a checkpoint chooses its own.
    """
    from groovae.configs import load_config
    defaults = load_config(config_name).hparams.values()
    changed = {k: v for k, v in sorted(hparams.items()) if k != "batch_size" and defaults.get(k) != v}
    return ",".join(f"{k}={json.dumps(v) if isinstance(v, list) else v}" for k, v in changed.items())


def model_of(prefix, config=None, hparams=None):
    """(config name, hparams override string) that the checkpoint at ``prefix`` needs.

    From the run.json beside the checkpoint when there is one: a ``config``
    given too must be the same (else RequestError naming both); given
    ``hparams`` must agree with the run's.  Without run.json (the public
    checkpoint, an old run): ``config``, by default the public checkpoint's.
    """
    from groovae.configs import DEFAULT_CONFIG  # configs load magenta: only when asked
    run_dir = run_dir_of(prefix)
    info = read_run_info(run_dir) if run_dir else None
    if info is None:
        return config or DEFAULT_CONFIG, hparams or ""
    recorded = hparams_overrides(info["config"], info.get("hparams", {}))
    if config and config != info["config"]:
        raise RequestError(f"--config {config} disagrees with {run_json_path(run_dir)}, which says "
                           f"'{info['config']}'; leave --config out")
    if hparams and hparams != recorded:
        raise RequestError(f"--hparams '{hparams}' disagrees with {run_json_path(run_dir)} "
                           f"('{recorded or 'none'}'); leave --hparams out")
    return info["config"], recorded


# ---------------------------------------------------------------- ownership of a run dir by one run


def claim(run_dir, config_name, hparams, seed=0, fingerprint=None, init=None):
    """Refuses a run dir that holds another run (config, hparams, seed, data or init); records ours.

    Also refuses a run dir whose checkpoints are gone while its metrics.csv
    says it trained: restarting would silently drop that history.  ``init``
    is the --init_from record; a run that has checkpoints resumes from them,
    so it must come with the same one or none.
    """
    info = {"config": config_name, "hparams": hparams, "seed": seed, "data": fingerprint}
    if init:
        info["init_from"] = init
    old = read_run_info(run_dir)
    if old is None:
        if newest_checkpoint(run_dir):
            raise TrainError(f"{run_dir}: holds checkpoints of an unknown run (no {RUN_JSON}); use another --run_dir")
        write_run_info(run_dir, info)
        return
    _check_same_run(run_dir, old, info)
    if "seed" not in old or ("data" not in old and fingerprint):  # run dirs from before these were recorded
        write_run_info(run_dir, {**old, **info})
    trained = [r for r in read_metrics(metrics_path(run_dir)) if r.get("step")]
    if trained and not newest_checkpoint(run_dir):
        raise TrainError(f"{run_dir}: {METRICS_CSV} records training up to step {trained[-1]['step']} but no "
                         f"complete checkpoint (model.ckpt-N.index + .data) is left; restore those files, "
                         f"or start a new run with another --run_dir")
    _check_init(run_dir, old, info, init)


def _check_same_run(run_dir, old, info):
    config_name, hparams, seed, fingerprint = info["config"], info["hparams"], info["seed"], info["data"]
    new_run = "rerun with the same --config/--hparams/--seed/--data, or start a new run with another --run_dir"
    if old["config"] != config_name:
        raise TrainError(f"{run_dir}: holds a run of config '{old['config']}', not '{config_name}'; use another --run_dir")
    old_hp = old.get("hparams", {})
    changed = sorted(k for k in set(hparams) | set(old_hp) if hparams.get(k) != old_hp.get(k))
    if changed:
        raise TrainError(f"{run_dir}: holds a {config_name} run with other hparams "
                         f"({', '.join(changed)}); use another --run_dir")
    if old.get("seed", seed) != seed:
        raise TrainError(f"{run_dir}: was trained with --seed {old['seed']}, not {seed}; {new_run}")
    if old.get("data") and fingerprint and old["data"] != fingerprint:
        raise TrainError(f"{run_dir}: was trained on other data ({old['data']['windows']} windows, sha256 "
                         f"{old['data']['sha256'][:12]}; now {fingerprint['windows']}, "
                         f"{fingerprint['sha256'][:12]}); {new_run}")


def _check_init(run_dir, old, info, init):
    """The --init_from part of ``claim`` for an existing run.json."""
    old_init = old.get("init_from")
    if newest_checkpoint(run_dir):  # it resumes from its own checkpoints
        if init and (old_init or {}).get("sha256") != init["sha256"]:
            began = (f"was started from {old_init['checkpoint']} (sha256 {old_init['sha256'][:12]}), not from "
                     f"{init['checkpoint']} ({init['sha256'][:12]})" if old_init
                     else "holds a run trained from scratch")
            raise TrainError(f"{run_dir}: {began}; --init_from starts a new run: use another --run_dir "
                             f"(or leave --init_from out to resume this one)")
    elif old_init and not init:
        raise TrainError(f"{run_dir}: was started with --init_from {old_init['checkpoint']} and has no checkpoint "
                         f"yet; pass --init_from again (or use another --run_dir)")
    elif init and init != old_init:  # nothing trained yet: the new start point is recorded
        write_run_info(run_dir, {**old, **info})


# ---------------------------------------------------------------- metrics.csv


class MetricsLog:
    """metrics.csv in the run dir: one row per (step, split) with loss terms.

    On resume, rows past the restored step (written after the last
    checkpoint of a killed run) are dropped, so each step appears once.
    Each row carries ``train_seconds``: wall time spent training the run so
    far, summed over resumed sessions (time while no process ran excluded).
    """

    def __init__(self, run_dir, resume_step):
        self.run_dir = run_dir
        self.rows = [r for r in read_metrics(run_dir) if int(r["step"]) <= resume_step]
        self.base_seconds = training_seconds(self.rows)
        self.session_start = time.time()
        self._write()

    def add(self, step, split, values):
        now = time.time()
        row = {"step": step, "split": split, "time": round(now, 1),
               "train_seconds": round(self.base_seconds + now - self.session_start, 1)}
        row.update({k.split("/")[-1]: round(v, 6) for k, v in values.items()})
        self.rows.append(row)
        self._write()

    def last_is_validation_at(self, step):
        return bool(self.rows) and self.rows[-1]["split"] == "validation" and int(self.rows[-1]["step"]) == step

    def _write(self):
        write_metrics(self.run_dir, self.rows)


def write_metrics(run_dir, rows):
    """Replaces the run's metrics.csv with ``rows`` (columns in order of first appearance)."""
    columns = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    out = io.StringIO()
    writer = csv.DictWriter(out, columns)
    writer.writeheader()
    writer.writerows(rows)
    files.atomic_write(metrics_path(run_dir), lambda f: f.write(out.getvalue()), mode="w")


def read_metrics(path):
    """Rows of a metrics.csv (a file, or the run dir holding it) as dicts (values as strings; '' if absent)."""
    if os.path.isdir(path):
        path = metrics_path(path)
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def curve_of(prefix):
    """The metrics rows of the run a checkpoint belongs to, up to its step ([] outside a run dir)."""
    step = checkpoints.step_of(prefix)
    folder = os.path.dirname(prefix) or "."
    return [row for row in read_metrics(folder) if step is None or int(row["step"]) <= step]


def training_seconds(rows, max_gap=STOPPED_GAP_SECONDS):
    """Wall seconds spent training up to the last of ``rows`` (metrics.csv dicts).

    Uses the last row's ``train_seconds`` when it has one; rows written
    before that column existed are timed by their ``time`` stamps, counting
    gaps up to ``max_gap`` (a row is logged every few minutes at most, so a
    longer gap means no process was running).
    """
    if not rows:
        return 0.0
    if rows[-1].get("train_seconds") not in (None, ""):
        return float(rows[-1]["train_seconds"])
    total, previous = 0.0, None
    for row in rows:
        if row.get("train_seconds") not in (None, ""):
            total, previous = float(row["train_seconds"]), float(row["time"])
            continue
        now = float(row["time"])
        if previous is not None and now - previous <= max_gap:
            total += now - previous
        previous = now
    return total


def _numbers(row):
    return {k: float(v) for k, v in row.items()
            if k not in ("step", "split", "time", "train_seconds") and v not in (None, "")}


def _mean_of_rows(rows):
    values = [_numbers(r) for r in rows]
    means = {}
    for key in sorted({k for v in values for k in v}):
        column = [v[key] for v in values if key in v]
        means[key] = round(sum(column) / len(column), 4)
    return means


def summarize_run(run_dir, tail=5, checkpoint=None):
    """A small dict describing a training run: config, steps, wall time, losses, last validation.

    Up to ``checkpoint`` (default: the newest).  ``final_train`` averages the
    last ``tail`` logged train rows (single batches are noisy);
    ``final_validation`` is the newest validation row.
    """
    info = read_run_info(run_dir)
    if info is None:
        raise TrainError(f"{run_dir}: no {RUN_JSON}; not a training run dir")
    checkpoint = checkpoint or newest_checkpoint(run_dir)
    if not checkpoint:
        raise TrainError(f"{run_dir}: holds no checkpoint")
    step = checkpoints.step_of(checkpoint)
    rows = [r for r in read_metrics(run_dir) if int(r["step"]) <= step]
    train_rows = [r for r in rows if r["split"] == "train"][-tail:]
    validation_rows = [r for r in rows if r["split"] == "validation"]
    batch_size = info["hparams"]["batch_size"]
    return {
        "config": info["config"], "init_from": info.get("init_from"), "hparams_batch_size": batch_size,
        "global_step": step,
        "examples_seen": step * batch_size, "checkpoint": os.path.basename(checkpoint),
        "train_hours": round(training_seconds(rows) / 3600, 2),
        "final_train": {"steps": [int(r["step"]) for r in train_rows], **_mean_of_rows(train_rows)},
        "final_validation": ({"step": int(validation_rows[-1]["step"]),
                              **{k: round(v, 4) for k, v in _numbers(validation_rows[-1]).items()}}
                             if validation_rows else None),
        "validation_curve": [{"step": int(r["step"]), "loss": round(float(r["loss"]), 3)} for r in validation_rows],
    }


def resolve_model(spec=None, run_dir=None, config=None, hparams=None, public_url=None, cache_dir=None, progress=True):
    """(checkpoint prefix, config name, hparams overrides) of a model request, as every command takes it.

    ``spec``: 'public', 'private' (newest in ``run_dir``, or the committed model
    of ``config``), a run dir, a .tar or a prefix; default 'private' with a
    ``run_dir``, else 'public'.  Config and hparams come from the run.json
    beside the checkpoint (``config``, if given, must agree); without one,
    ``config`` or the public checkpoint's.
    """
    spec = spec or ("private" if run_dir else "public")
    prefix = checkpoints.resolve_checkpoint(spec, run_dir, public_url, cache_dir, progress, config=config)
    config, hparams = model_of(prefix, config, hparams)
    return prefix, config, hparams
