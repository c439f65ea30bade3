"""Stage 2: train a MusicVAE config on precomputed window tensors.

Same graph as magenta's music_vae_train (``model.build`` + ``model.train``:
losses, KL/free bits, learning-rate decay; then global-norm clipping with the
clip-to-zero guard), so checkpoints are variable-compatible with magenta's
TrainedModel and the public checkpoints.  Batches are numpy arrays fed per
step (groovae.data.batch_indices), which makes a resumed run deterministic.

A run dir holds: run.json (config + hparams), model.ckpt-N.* checkpoints,
TensorBoard events (train in the dir, validation in eval/), metrics.csv.
"""
import csv
import hashlib
import io
import json
import math
import os
import sys
import time

import numpy as np

from groovae import compat  # first: shims and the stderr filter before TensorFlow loads

import tensorflow.compat.v1 as tf  # noqa: E402

from groovae import checkpoints, data, files  # noqa: E402
from groovae.model import (TrainGraph, ValidationGraph, choose_precision, describe_device, feed, session_config,
                           summary_values)
from groovae.errors import GroovaeError, TrainError
from groovae.configs import load_config

RUN_INFO = "run.json"
METRICS_CSV = "metrics.csv"
STOPPED_GAP_SECONDS = 900  # metrics.csv gap longer than this: no training process was running
ETA_AFTER_STEPS = 3  # steps timed after the first (which includes warm-up) before the estimate


def data_fingerprint(tensors):
    """What identifies the training data: window count and a sha256 of the model's arrays."""
    digest = hashlib.sha256()
    for key in data.TENSOR_KEYS:
        digest.update(np.ascontiguousarray(tensors[key]).tobytes())
    return {"windows": int(len(tensors["lengths"])), "sha256": digest.hexdigest()}


def check_run_dir(run_dir, config_name, hparams, seed=0, fingerprint=None, init=None):
    """Refuses a run dir that holds another run (config, hparams, seed, data or init); records ours.

    Also refuses a run dir whose checkpoints are gone while its metrics.csv
    says it trained: restarting would silently drop that history.  ``init``
    is the --init_from record (resolve_init); a run that has checkpoints
    resumes from them, so it must come with the same one or none.
    """
    info_path = os.path.join(run_dir, RUN_INFO)
    info = {"config": config_name, "hparams": hparams, "seed": seed, "data": fingerprint}
    if init:
        info["init_from"] = init
    new_run = "rerun with the same --config/--hparams/--seed/--data, or start a new run with another --run_dir"
    if os.path.exists(info_path):
        with open(info_path) as f:
            old = json.load(f)
        if old.get("config") != config_name:
            raise TrainError(f"{run_dir}: holds a run of config '{old.get('config')}', "
                             f"not '{config_name}'; use another --run_dir")
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
        if "seed" not in old or ("data" not in old and fingerprint):  # run dirs from before these were recorded
            files.atomic_write(info_path, lambda f: json.dump({**old, **info}, f, indent=1), mode="w")
        trained = [r for r in read_metrics(os.path.join(run_dir, METRICS_CSV)) if r.get("step")]
        if trained and not checkpoints.newest_checkpoint(run_dir):
            raise TrainError(f"{run_dir}: {METRICS_CSV} records training up to step {trained[-1]['step']} but no "
                             f"complete checkpoint (model.ckpt-N.index + .data) is left; restore those files, "
                             f"or start a new run with another --run_dir")
        _check_init(run_dir, info_path, old, info, init)
    elif checkpoints.newest_checkpoint(run_dir):
        raise TrainError(f"{run_dir}: holds checkpoints of an unknown run (no {RUN_INFO}); use another --run_dir")
    else:
        files.atomic_write(info_path, lambda f: json.dump(info, f, indent=1), mode="w")


class MetricsLog:
    """metrics.csv in the run dir: one row per (step, split) with loss terms.

    On resume, rows past the restored step (written after the last
    checkpoint of a killed run) are dropped, so each step appears once.
    Each row carries ``train_seconds``: wall time spent training the run so
    far, summed over resumed sessions (time while no process ran excluded).
    """

    def __init__(self, run_dir, resume_step):
        self.path = os.path.join(run_dir, METRICS_CSV)
        self.rows = [r for r in read_metrics(self.path) if int(r["step"]) <= resume_step]
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

    def _write(self):
        columns = []
        for row in self.rows:
            columns += [k for k in row if k not in columns]
        out = io.StringIO()
        writer = csv.DictWriter(out, columns)
        writer.writeheader()
        writer.writerows(self.rows)
        files.atomic_write(self.path, lambda f: f.write(out.getvalue()), mode="w")


def read_metrics(path):
    """Rows of a run's metrics.csv as dicts (values as strings; '' if absent)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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


def summarize_run(run_dir, tail=5):
    """A small dict describing a training run: config, steps, wall time, losses, last validation.

    ``final_train`` averages the last ``tail`` logged train rows (single
    batches are noisy); ``final_validation`` is the newest validation row.
    """
    info_path = os.path.join(run_dir, RUN_INFO)
    if not os.path.exists(info_path):
        raise TrainError(f"{run_dir}: no {RUN_INFO}; not a training run dir")
    with open(info_path) as f:
        info = json.load(f)
    checkpoint = checkpoints.newest_checkpoint(run_dir)
    if not checkpoint:
        raise TrainError(f"{run_dir}: holds no checkpoint")
    step = checkpoints.step_of(checkpoint)
    rows = [r for r in read_metrics(os.path.join(run_dir, METRICS_CSV)) if int(r["step"]) <= step]

    def numbers(row):
        return {k: float(v) for k, v in row.items() if k not in ("step", "split", "time", "train_seconds")
                and v not in (None, "")}

    train_rows = [r for r in rows if r["split"] == "train"][-tail:]
    validation_rows = [r for r in rows if r["split"] == "validation"]
    train_values = [numbers(r) for r in train_rows]
    final_train = {}
    for key in sorted({k for values in train_values for k in values}):
        column = [values[key] for values in train_values if key in values]
        final_train[key] = round(sum(column) / len(column), 4)
    batch_size = info["hparams"]["batch_size"]
    return {
        "config": info["config"], "init_from": info.get("init_from"), "hparams_batch_size": batch_size,
        "global_step": step,
        "examples_seen": step * batch_size, "checkpoint": os.path.basename(checkpoint),
        "train_hours": round(training_seconds(rows) / 3600, 2),
        "final_train": {"steps": [int(r["step"]) for r in train_rows], **final_train},
        "final_validation": ({"step": int(validation_rows[-1]["step"]),
                              **{k: round(v, 4) for k, v in numbers(validation_rows[-1]).items()}}
                             if validation_rows else None),
        "validation_curve": [{"step": int(r["step"]), "loss": round(float(r["loss"]), 3)} for r in validation_rows],
    }


def _check_init(run_dir, info_path, old, info, init):
    """The --init_from part of check_run_dir for an existing run.json."""
    old_init = old.get("init_from")
    if checkpoints.newest_checkpoint(run_dir):  # it resumes from its own checkpoints
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
        files.atomic_write(info_path, lambda f: json.dump({**old, **info}, f, indent=1), mode="w")


def resolve_init(spec, run_dir, public_url=None, cache_dir=None, progress=True):
    """(checkpoint prefix, run.json record) of --init_from: 'public', a run dir, a checkpoint .tar or prefix.

    The record is portable: 'public' (or the --public_url), or the path
    relative to the run dir, with the checkpoint's sha256 and step.
    """
    if spec == "private":
        raise TrainError("--init_from private: name the run dir (or checkpoint) to start from instead")
    try:
        prefix = checkpoints.resolve_checkpoint(spec, None, public_url, cache_dir, progress)
    except GroovaeError as e:
        raise TrainError(f"--init_from: {e}") from None
    own = os.path.realpath(run_dir)
    if os.path.realpath(prefix).startswith(own + os.sep):
        raise TrainError(f"--init_from {spec}: is this run's own checkpoint; leave --init_from out to resume")
    if spec == "public":
        name = public_url or "public"
    else:
        name = os.path.relpath(spec if os.path.isfile(spec) else prefix, run_dir)  # a .tar by its own name
    return prefix, {"checkpoint": name, "sha256": checkpoints.checkpoint_sha256(prefix),
                    "step": checkpoints.step_of(prefix)}


def check_init_compatible(config_name, hparams, prefix):
    """TrainError unless the checkpoint holds every model variable of the config (same shapes)."""
    from groovae.model import model_variables
    stored = checkpoints.read_checkpoint_variables(prefix)
    try:
        checkpoints.check_compatible(config_name, prefix, stored, model_variables(config_name, hparams))
    except GroovaeError as e:
        raise TrainError(f"--init_from: {e}") from None


def restore_weights(sess, prefix):
    """Restores only the model's weights (trainable variables): not the step, not the optimizer's slots."""
    tf.train.Saver(var_list=tf.trainable_variables()).restore(sess, prefix)


def check_numbers(**values):
    """TrainError naming the first setting that is not a usable number."""
    minimum = {"num_steps": 0, "seed": 0, "validate_every": 1, "summary_every": 1}
    for name, value in values.items():
        if name == "checkpoint_every_secs":
            ok = isinstance(value, (int, float)) and math.isfinite(value) and value >= 0
            wanted = "a number of seconds >= 0 (0: after every step)"
        else:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum[name]
            wanted = f"a whole number >= {minimum[name]}"
        if not ok:
            raise TrainError(f"--{name} is {value!r}; it must be {wanted}")


def resolve_data(data_path, validation_path=None):
    """(train .npz, validation .npz or None) from a preprocess dir or an .npz path."""
    if os.path.isdir(data_path):
        train_path = os.path.join(data_path, "train.npz")
        if validation_path is None and os.path.exists(os.path.join(data_path, "validation.npz")):
            validation_path = os.path.join(data_path, "validation.npz")
        return train_path, validation_path
    return data_path, validation_path


def train(config_name, data_path, run_dir, num_steps, hparams=None, seed=0, validation_path=None,
          validate_every=250, checkpoint_every_secs=180, summary_every=10, precision="auto", progress=True,
          log=print, init_from=None, public_url=None, cache_dir=None):
    """Trains until global step ``num_steps``, resuming from ``run_dir``.

    ``data_path`` is a preprocess output dir (train.npz, validation.npz) or a
    tensor file.  ``init_from`` ('public', a run dir, a checkpoint .tar or
    prefix) starts a new run from that checkpoint's weights, with a fresh
    optimizer and step 0 (fine-tuning); the run then resumes from its own
    checkpoints.  ``precision`` is 'auto' (bf16 on CPUs with bf16 units,
    else fp32), 'fp32' or 'bf16' (fp32 where bf16 would be no faster; said
    so).  Returns a dict with steps, losses, timings and the last
    validation metrics.
    """
    check_numbers(num_steps=num_steps, validate_every=validate_every, checkpoint_every_secs=checkpoint_every_secs,
                  summary_every=summary_every, seed=seed)
    config = load_config(config_name, hparams)
    hp = config.hparams
    train_path, validation_path = resolve_data(data_path, validation_path)
    tensors = data.load_tensors(train_path)
    num_examples = len(tensors["lengths"])
    if num_examples == 0:
        raise TrainError(f"{train_path}: holds no training windows")
    validation = data.load_tensors(validation_path) if validation_path else None
    init_prefix, init = resolve_init(init_from, run_dir, public_url, cache_dir, progress) if init_from else (None, None)
    if init_prefix and not checkpoints.newest_checkpoint(run_dir):  # checked before anything is written
        check_init_compatible(config_name, hparams, init_prefix)
    os.makedirs(run_dir, exist_ok=True)
    check_run_dir(run_dir, config_name, hp.values(), seed, data_fingerprint(tensors), init)
    precision, why = choose_precision(precision)
    log(f"train: {config_name} on {num_examples} windows ({train_path}), batch {hp.batch_size}, "
        f"device {describe_device()}, {precision} ({why})", file=sys.stderr)

    setup_start = time.time()
    validator = None
    if validation is not None and len(validation["lengths"]):
        validator = ValidationGraph(config_name, hparams, validation, seed, precision)
    last_validation = {}
    with compat.magenta_graph():
        graph = TrainGraph(config, seed)
        # Relative paths in the state file: the run dir resumes after a move or copy.
        saver = tf.train.Saver(max_to_keep=5, keep_checkpoint_every_n_hours=1, save_relative_paths=True)
        writer = tf.summary.FileWriter(run_dir)
        eval_writer = tf.summary.FileWriter(os.path.join(run_dir, "eval")) if validator else None
        with tf.Session(config=session_config(precision, fast_start=True)) as sess:
            latest = checkpoints.newest_checkpoint(run_dir)
            if latest:
                saver.restore(sess, latest)
                saver.recover_last_checkpoints(checkpoints.complete_checkpoints(run_dir))  # keep rotating them
            else:
                sess.run(tf.global_variables_initializer())
                if init_prefix:
                    restore_weights(sess, init_prefix)
                    log(f"train: weights from {init['checkpoint']} (step {init['step']}); fresh optimizer, step 0",
                        file=sys.stderr)
            step = int(sess.run(graph.global_step))
            if latest:
                log(f"train: resumed from {latest}", file=sys.stderr)
            else:  # so that a run dir with metrics always has a checkpoint to resume from
                saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=step)
            metrics = MetricsLog(run_dir, step)

            def save_and_validate():
                checkpoint = saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=step)
                if validator and (not metrics.rows or metrics.rows[-1]["split"] != "validation"
                                  or int(metrics.rows[-1]["step"]) != step):
                    values, serialized = validator.run(checkpoint)
                    eval_writer.add_summary(serialized, step)
                    eval_writer.flush()
                    metrics.add(step, "validation", values)
                    last_validation.update(values)
                return checkpoint

            start_step, start_time = step, time.time()
            setup_seconds = start_time - setup_start  # graphs built, checkpoint restored
            first_step_seconds, steady_start, validation_seconds = None, None, 0.0
            last_save, loss, losses = time.time(), float("nan"), []
            bar = _progress(step, num_steps, progress)
            while step < num_steps:
                window_batch = data.batch(tensors, data.batch_indices(num_examples, hp.batch_size, seed, step))
                want_summary = (step + 1) % summary_every == 0
                fetches = [graph.train_op, graph.loss] + ([graph.summaries] if want_summary else [])
                results = sess.run(fetches, feed(graph, window_batch))
                loss, step = float(results[1]), step + 1
                losses.append(loss)
                if first_step_seconds is None:
                    first_step_seconds, steady_start = time.time() - start_time, time.time()
                    log(f"train: first step done {setup_seconds + first_step_seconds:.1f} s after start-up "
                        f"({setup_seconds:.1f} s building graphs and session, {first_step_seconds:.1f} s the step)",
                        file=sys.stderr)
                if not math.isfinite(loss):
                    raise TrainError(
                        f"{run_dir}: loss is {loss} at step {step}; stopped without saving "
                        f"(last checkpoint: {checkpoints.newest_checkpoint(run_dir)})")
                if want_summary:
                    writer.add_summary(results[2], step)
                    metrics.add(step, "train", summary_values(results[2]))
                if step - start_step == 1 + ETA_AFTER_STEPS and step < num_steps:
                    seconds = (time.time() - steady_start) / ETA_AFTER_STEPS
                    log(f"train: {seconds:.2f} s/step on {describe_device().split(' (')[0]}; "
                        f"{num_steps - step} steps to go take about {format_duration(seconds * (num_steps - step))}",
                        file=sys.stderr)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.2f}")
                if validator and step % validate_every == 0:
                    t = time.time()
                    save_and_validate()
                    validation_seconds += time.time() - t
                    last_save = time.time()
                    bar.set_postfix(loss=f"{loss:.2f}", val=f"{last_validation['loss']:.2f}")
                elif time.time() - last_save >= checkpoint_every_secs:
                    saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=step)
                    last_save = time.time()
            bar.close()
            end_time = time.time()
            checkpoint = save_and_validate()
        writer.close()
        if eval_writer:
            eval_writer.close()
    if validator:
        validator.close()
    steps_done = step - start_step
    steady = (end_time - steady_start - validation_seconds) / (steps_done - 1) if steps_done > 1 else None
    return {"config": config_name, "global_step": step, "steps_this_run": steps_done,
            "first_loss": losses[0] if losses else None, "final_loss": loss,
            "wall_seconds": round(time.time() - start_time, 2),
            "setup_seconds": round(setup_seconds, 2), "first_step_seconds": first_step_seconds,
            "seconds_per_step": steady,
            "validation": last_validation, "checkpoint": checkpoint, "device": describe_device(),
            "precision": precision, "init_from": init}


def format_duration(seconds):
    """'45 s', '12 min', '3.4 h'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _progress(step, num_steps, enabled):
    from tqdm.auto import tqdm
    return tqdm(total=num_steps, initial=step, disable=not enabled, unit="step",
                dynamic_ncols=True, desc="train")
