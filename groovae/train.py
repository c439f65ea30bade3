"""Stage 2: train a MusicVAE config on precomputed window tensors.

Same graph as magenta's music_vae_train (``model.build`` + ``model.train``:
losses, KL/free bits, learning-rate decay; then global-norm clipping with the
clip-to-zero guard), so checkpoints are variable-compatible with magenta's
TrainedModel and the public checkpoints.  Batches are numpy arrays fed per
step, a pure function of (seed, step) (groovae.training_data: rows of an .npz
by data.batch_indices, or TFRecord shards streamed by groovae.stream), which
makes a resumed run deterministic.

What a run dir holds, and who may train in it, is groovae.runs'.
"""
import contextlib
import math
import os
import sys
import time

import numpy as np

from groovae import compat  # first: shims and the stderr filter before TensorFlow loads

import tensorflow.compat.v1 as tf  # noqa: E402

from groovae import checkpoints, files, runs  # noqa: E402
from groovae.device import choose_precision, describe_device, session_config
from groovae.graphs import TrainGraph, ValidationGraph, summary_values
from groovae.training_data import load_training_data
from groovae.model import feed, guess_config, model_variables, restore
from groovae.errors import (GenerateError, GroovaeError, Terminated, TrainError, terminate_as_interrupt,
                            write_errors)
from groovae.configs import check_windows_fit, load_config

ETA_AFTER_STEPS = 3  # steps timed after the first (which includes warm-up) before the estimate


def resolve_init(spec, run_dir, config_name, hparams=None, public_url=None, cache_dir=None, progress=True,
                 check=True):
    """(checkpoint prefix, run.json record) of --init_from: 'public', 'private', a run dir, a .tar or a prefix.

    The record is portable: 'public' (or the --public_url), or the path
    relative to the run dir, with the checkpoint's sha256 and step, and the
    model variables it does not hold (``fresh``; initialised), if any.
    ``check`` (a new run) refuses a checkpoint that shares no variable with
    the config before anything is written.
    """
    try:
        prefix = checkpoints.resolve_checkpoint(spec, None, public_url, cache_dir, progress, config=config_name)
    except GroovaeError as e:
        raise TrainError(f"--init_from: {e}") from None
    own = os.path.realpath(run_dir)
    if os.path.realpath(prefix).startswith(own + os.sep):
        raise TrainError(f"--init_from {spec}: is this run's own checkpoint; leave --init_from out to resume")
    name = checkpoints.portable_name(checkpoints.requested_source(spec, public_url), prefix, run_dir)
    record = {"checkpoint": name, "sha256": checkpoints.checkpoint_sha256(prefix), "step": checkpoints.step_of(prefix)}
    if check:
        fresh = init_plan(config_name, hparams, prefix)
        if fresh:
            record["fresh"] = fresh
    return prefix, record


# --init_from must give at least this share of the config's parameters: a model that shares its encoder
# (the hierarchical from the flat one, hits-as-controls from plain) gives a third or more, another size ~0.
MIN_INIT_SHARE = 0.1


def init_plan(config_name, hparams, prefix):
    """The config's weights that --init_from ``prefix`` cannot give (absent, or another shape), sorted.

    TrainError when it gives under a tenth of the config's parameters: then
    it is a checkpoint of another model, not a start point for this one.
    """
    stored = checkpoints.read_checkpoint_variables(prefix)
    wanted = {n: s for n, s in model_variables(config_name, hparams).items() if n != "global_step"}
    fresh = sorted(n for n, shape in wanted.items() if stored.get(n) != shape)
    total = sum(int(np.prod(shape)) for shape in wanted.values())
    given = total - sum(int(np.prod(wanted[n])) for n in fresh)
    if given < MIN_INIT_SHARE * total:
        looks_like = guess_config(stored)
        raise TrainError(f"--init_from: {prefix}: gives {given:,} of the {total:,} parameters of '{config_name}' "
                         f"(same name and shape); not a start point for it"
                         + (f"; it looks like '{looks_like}'" if looks_like else ""))
    return fresh


def restore_weights(sess, prefix):
    """Restores the model's weights (trainable variables) that the checkpoint holds with the same shape.

    Not the step, not the optimizer's slots; the rest keep their initial
    values.  Returns the names restored.
    """
    stored = checkpoints.read_checkpoint_variables(prefix)
    var_list = {v.op.name: v for v in tf.trainable_variables() if stored.get(v.op.name) == v.shape.as_list()}
    tf.train.Saver(var_list=var_list).restore(sess, prefix)
    return sorted(var_list)


def describe_init(restored, init):
    """'all 24 weights' or '20 of 24 weights (same name and shape); initialised: a, b, ...'."""
    fresh = init.get("fresh", [])
    if not fresh:
        return f"all {len(restored)} weights"
    shown = ", ".join(fresh[:4]) + (f" (+{len(fresh) - 4} more)" if len(fresh) > 4 else "")
    return f"{len(restored)} of {len(restored) + len(fresh)} weights (same name and shape); initialised: {shown}"


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


def train(config_name, data_path, run_dir, num_steps, hparams=None, seed=0, validation_path=None,
          validate_every=250, checkpoint_every_secs=180, summary_every=10, precision="auto", progress=True,
          log=print, init_from=None, public_url=None, cache_dir=None):
    """Trains until global step ``num_steps``, resuming from ``run_dir``.

    ``data_path`` is a preprocess output dir (train.npz, validation.npz) or a
    tensor file.  ``init_from`` ('public', 'private' (the committed model of
    the config), a run dir, a checkpoint .tar or prefix) starts a new run
    from that checkpoint's weights (every variable whose name and shape
    match; the rest initialised), with a fresh optimizer and step 0
    (fine-tuning); the run then resumes from its own checkpoints.
    ``precision`` is 'auto' (bf16 on CPUs with bf16 units, else fp32),
    'fp32' or 'bf16' (fp32 where bf16 would be no faster; said so).  Returns
    a dict with steps, losses, timings and the last validation metrics.
    """
    check_numbers(num_steps=num_steps, validate_every=validate_every, checkpoint_every_secs=checkpoint_every_secs,
                  summary_every=summary_every, seed=seed)
    files.check_folder(run_dir, "--run_dir")
    config = load_config(config_name, hparams)
    check_windows_fit(data_path, config_name, config)
    windows, validation = load_training_data(data_path, validation_path, seed)
    resuming = runs.newest_checkpoint(run_dir)
    init_prefix, init = (resolve_init(init_from, run_dir, config_name, hparams, public_url, cache_dir, progress,
                                      check=not resuming) if init_from else (None, None))
    os.makedirs(run_dir, exist_ok=True)
    runs.claim(run_dir, config_name, config.hparams.values(), seed, windows.fingerprint, init)
    precision, why = choose_precision(precision)
    log(f"train: {config_name} on {windows.count} windows ({windows.path}), batch {config.hparams.batch_size}, "
        f"device {describe_device()}, {precision} ({why})", file=sys.stderr)
    session, loop = TrainingSession(config, config_name, hparams, run_dir, validation, seed, precision), None
    try:
        with write_errors(lambda: kept_checkpoint(run_dir)):  # a full disk: the last checkpoint saved stays whole
            session.start(resuming, init_prefix, init, log)
            loop = TrainingLoop(session, windows.batches(session_batch_size(session)), summary_every, log)
            with terminate_as_interrupt():
                try:
                    loop.run(num_steps, validate_every, checkpoint_every_secs, progress)
                except (KeyboardInterrupt, Terminated):  # Ctrl-C, Colab's "Interrupt execution", SIGTERM: keep steps
                    step, checkpoint = session.save_at_interrupt()
                    log(f"train: interrupted at step {step}; checkpoint saved ({os.path.basename(checkpoint)}); "
                        f"rerun to resume", file=sys.stderr)
                    raise
            checkpoint = session.save_and_validate()
    finally:
        session.close()
        if loop is not None:
            loop.batches.close()
    return {"config": config_name, "global_step": session.step, "steps_this_run": loop.steps_done,
            "first_loss": loop.losses[0] if loop.losses else None, "final_loss": loop.loss,
            "wall_seconds": round(time.time() - loop.start_time, 2),
            "setup_seconds": round(loop.start_time - session.setup_start, 2),
            "first_step_seconds": loop.first_step_seconds, "seconds_per_step": loop.seconds_per_step(),
            "validation": session.last_validation, "checkpoint": checkpoint, "device": describe_device(),
            "precision": precision, "init_from": init}


def kept_checkpoint(run_dir):
    """What a run dir keeps after a failed write: its newest complete checkpoint, which a rerun resumes from."""
    newest = runs.newest_checkpoint(run_dir)
    if not newest:
        return "no checkpoint was saved yet"
    return f"the last checkpoint saved, {os.path.basename(newest)}, is kept: free space and rerun to resume from it"


class TrainingSession:
    """The training graph, its session and saver, the validation graph and the run's metrics log."""

    def __init__(self, config, config_name, hparams, run_dir, validation, seed, precision):
        self.run_dir, self.setup_start, self.last_validation = run_dir, time.time(), {}
        self.validator = ValidationGraph(config_name, hparams, validation, seed, precision) if validation else None
        self._scope = contextlib.ExitStack()  # the graph stays the default one until close()
        self._scope.enter_context(compat.magenta_graph())
        self.graph = TrainGraph(config, seed)
        # Relative paths in the state file: the run dir resumes after a move or copy.
        self.saver = tf.train.Saver(max_to_keep=5, keep_checkpoint_every_n_hours=1, save_relative_paths=True)
        self.writer = tf.summary.FileWriter(run_dir)
        self.eval_writer = tf.summary.FileWriter(os.path.join(run_dir, runs.EVAL_DIR)) if self.validator else None
        self.sess = tf.Session(config=session_config(precision, fast_start=True))
        self.step, self.metrics = None, None

    def _restore_newest_whole(self, newest, log):
        """Restores ``newest``, or where its files are damaged (a disk that filled, a copy cut short) the newest
        earlier checkpoint that restores, saying so; TrainError in one line when none does."""
        earlier = [p for p in reversed(checkpoints.complete_checkpoints(self.run_dir)) if p != newest]
        for prefix in [newest] + earlier:
            try:
                restore(self.saver, self.sess, prefix)
                return prefix
            except GenerateError as e:
                log(f"train: {e}; trying the checkpoint before it", file=sys.stderr)
        raise TrainError(f"{self.run_dir}: no checkpoint restores (see above); start a new run with another "
                         f"--run_dir") from None

    def start(self, resume_from, init_prefix, init, log):
        """Restores the newest checkpoint, or initialises (from --init_from's weights) and saves step 0."""
        if resume_from:
            resume_from = self._restore_newest_whole(resume_from, log)
            self.saver.recover_last_checkpoints(checkpoints.complete_checkpoints(self.run_dir))  # keep rotating them
        else:
            self.sess.run(tf.global_variables_initializer())
            if init_prefix:
                restored = restore_weights(self.sess, init_prefix)
                log(f"train: weights from {init['checkpoint']} (step {init['step']}): {describe_init(restored, init)}; "
                    f"fresh optimizer, step 0", file=sys.stderr)
        self.step = int(self.sess.run(self.graph.global_step))
        if resume_from:
            log(f"train: resumed from {resume_from}", file=sys.stderr)
        else:  # so that a run dir with metrics always has a checkpoint to resume from
            self.save()
        self.metrics = runs.MetricsLog(self.run_dir, self.step)

    def train_step(self, window_batch, want_summary):
        fetches = [self.graph.train_op, self.graph.loss] + ([self.graph.summaries] if want_summary else [])
        results = self.sess.run(fetches, feed(self.graph, window_batch))
        self.step += 1
        if want_summary:
            self.writer.add_summary(results[2], self.step)
            self.metrics.add(self.step, "train", summary_values(results[2]))
        return float(results[1])

    def save(self):
        return self.saver.save(self.sess, runs.save_prefix(self.run_dir), global_step=self.step)

    def save_at_interrupt(self):
        """(step, prefix): a checkpoint at the graph's own step (an interrupt may land after a step ran and before
        the loop counted it)."""
        self.step = int(self.sess.run(self.graph.global_step))
        return self.step, self.save()

    def save_and_validate(self):
        checkpoint = self.save()
        if self.validator and not self.metrics.last_is_validation_at(self.step):
            values, serialized = self.validator.run(checkpoint)
            self.eval_writer.add_summary(serialized, self.step)
            self.eval_writer.flush()
            self.metrics.add(self.step, "validation", values)
            self.last_validation.update(values)
        return checkpoint

    def close(self):
        self.sess.close()
        for writer in (self.writer, self.eval_writer):
            if writer:
                writer.close()
        self._scope.close()
        if self.validator:
            self.validator.close()


class TrainingLoop:
    """Steps with per-(seed, step) batches, periodic checkpoints and validation, timings and the estimate."""

    def __init__(self, session, batches, summary_every, log):
        self.session, self.batches, self.summary_every, self.log = session, batches, summary_every, log
        self.start_step, self.start_time = session.step, time.time()
        self.first_step_seconds = self.steady_start = self.end_time = None
        self.validation_seconds, self.loss, self.losses = 0.0, float("nan"), []

    @property
    def steps_done(self):
        return self.session.step - self.start_step

    def run(self, num_steps, validate_every, checkpoint_every_secs, progress):
        session = self.session
        last_save, bar = time.time(), _progress(session.step, num_steps, progress)
        while session.step < num_steps:
            window_batch = self.batches.batch(session.step)
            self.loss = session.train_step(window_batch, (session.step + 1) % self.summary_every == 0)
            self.losses.append(self.loss)
            self._after_step(num_steps)
            bar.update(1)
            bar.set_postfix(loss=f"{self.loss:.2f}")
            if session.validator and session.step % validate_every == 0:
                t = time.time()
                session.save_and_validate()
                self.validation_seconds += time.time() - t
                last_save = time.time()
                bar.set_postfix(loss=f"{self.loss:.2f}", val=f"{session.last_validation['loss']:.2f}")
            elif time.time() - last_save >= checkpoint_every_secs:
                session.save()
                last_save = time.time()
        bar.close()
        self.end_time = time.time()

    def _after_step(self, num_steps):
        """The first-step line, the loss check and the time estimate."""
        step, log = self.session.step, self.log
        if self.first_step_seconds is None:
            self.first_step_seconds, self.steady_start = time.time() - self.start_time, time.time()
            setup = self.start_time - self.session.setup_start
            log(f"train: first step done {setup + self.first_step_seconds:.1f} s after start-up "
                f"({setup:.1f} s building graphs and session, {self.first_step_seconds:.1f} s the step)",
                file=sys.stderr)
        if not math.isfinite(self.loss):
            raise TrainError(f"{self.session.run_dir}: loss is {self.loss} at step {step}; stopped without saving "
                             f"(last checkpoint: {runs.newest_checkpoint(self.session.run_dir)})")
        if step - self.start_step == 1 + ETA_AFTER_STEPS and step < num_steps:
            seconds = (time.time() - self.steady_start) / ETA_AFTER_STEPS
            log(f"train: {seconds:.2f} s/step on {describe_device().split(' (')[0]}; "
                f"{num_steps - step} steps to go take about {format_duration(seconds * (num_steps - step))}",
                file=sys.stderr)

    def seconds_per_step(self):
        """Steady seconds per step: after the first, validation excluded."""
        if self.steps_done <= 1:
            return None
        return (self.end_time - self.steady_start - self.validation_seconds) / (self.steps_done - 1)


def session_batch_size(session):
    return session.graph.inputs.shape.as_list()[0]


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
