"""Stage 2: train a MusicVAE config on precomputed window tensors.

Same graph as magenta's music_vae_train (``model.build`` + ``model.train``:
losses, KL/free bits, learning-rate decay; then global-norm clipping with the
clip-to-zero guard), so checkpoints are variable-compatible with magenta's
TrainedModel and the public checkpoints.  Batches are numpy arrays fed per
step (groovae.data.batch_indices), which makes a resumed run deterministic.
"""
import json
import math
import os
import time

import tensorflow.compat.v1 as tf

from groovae import data
from groovae.configs import load_config

RUN_INFO = "run.json"


class TrainError(RuntimeError):
    """A training run cannot continue; the message says why."""


class TrainGraph:
    """Placeholders, model and train op for one config."""

    def __init__(self, config, seed=0):
        hp = config.hparams
        converter = config.data_converter
        tf.set_random_seed(seed)
        self.model = config.model
        self.model.build(hp, converter.output_depth, is_training=True)
        batch, steps = hp.batch_size, hp.max_seq_len
        self.inputs = tf.placeholder(tf.float32, [batch, steps, converter.input_depth], "inputs")
        self.outputs = tf.placeholder(tf.float32, [batch, steps, converter.output_depth], "outputs")
        self.lengths = tf.placeholder(tf.int32, [batch], "lengths")
        optimizer = self.model.train(self.inputs, self.outputs, self.lengths)
        grads, variables = zip(*optimizer.compute_gradients(self.model.loss))
        global_norm = tf.global_norm(grads)
        tf.summary.scalar("global_norm", global_norm)
        if hp.clip_mode == "value":
            clipped = [tf.clip_by_value(g, -hp.grad_clip, hp.grad_clip) for g in grads]
        elif hp.clip_mode == "global_norm":
            # magenta's rule: a step whose gradient norm explodes is skipped.
            clipped = tf.cond(
                global_norm < hp.grad_norm_clip_to_zero,
                lambda: tf.clip_by_global_norm(grads, hp.grad_clip, use_norm=global_norm)[0],
                lambda: [tf.zeros(tf.shape(g)) for g in grads])
        else:
            raise ValueError(f"unknown clip_mode: {hp.clip_mode}")
        self.train_op = optimizer.apply_gradients(
            list(zip(clipped, variables)), global_step=self.model.global_step, name="train_step")
        self.global_step = self.model.global_step
        self.loss = self.model.loss
        self.summaries = tf.summary.merge_all()

    def feed(self, window_batch):
        return {self.inputs: window_batch["inputs"], self.outputs: window_batch["outputs"],
                self.lengths: window_batch["lengths"]}


def check_run_dir(run_dir, config_name, hparams):
    """Refuses a run dir that holds another config's run; records ours."""
    info_path = os.path.join(run_dir, RUN_INFO)
    info = {"config": config_name, "hparams": hparams}
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
    elif tf.train.latest_checkpoint(run_dir):
        raise TrainError(f"{run_dir}: holds checkpoints of an unknown run (no {RUN_INFO}); use another --run_dir")
    else:
        data.atomic_write(info_path, lambda f: json.dump(info, f, indent=1), mode="w")


def train(config_name, train_path, run_dir, num_steps, hparams=None, seed=0,
          checkpoint_every_secs=120, summary_every=10, progress=True):
    """Trains until global step ``num_steps``, resuming from ``run_dir``.

    Returns a dict with the steps done, final loss and timings.
    """
    config = load_config(config_name, hparams)
    hp = config.hparams
    tensors = data.load_tensors(train_path)
    num_examples = len(tensors["lengths"])
    if num_examples == 0:
        raise TrainError(f"{train_path}: holds no training windows")
    os.makedirs(run_dir, exist_ok=True)
    check_run_dir(run_dir, config_name, hp.values())

    with tf.Graph().as_default():
        graph = TrainGraph(config, seed)
        saver = tf.train.Saver(max_to_keep=5, keep_checkpoint_every_n_hours=1)
        writer = tf.summary.FileWriter(run_dir)
        with tf.Session() as sess:
            latest = tf.train.latest_checkpoint(run_dir)
            if latest:
                saver.restore(sess, latest)
            else:
                sess.run(tf.global_variables_initializer())
            step = int(sess.run(graph.global_step))
            start_step, start_time = step, time.time()
            last_save, loss, losses = time.time(), float("nan"), []
            bar = _progress(step, num_steps, progress)
            while step < num_steps:
                window_batch = data.batch(tensors, data.batch_indices(num_examples, hp.batch_size, seed, step))
                fetches = [graph.train_op, graph.loss]
                want_summary = graph.summaries is not None and (step + 1) % summary_every == 0
                if want_summary:
                    fetches.append(graph.summaries)
                results = sess.run(fetches, graph.feed(window_batch))
                loss, step = float(results[1]), step + 1
                losses.append(loss)
                if not math.isfinite(loss):
                    raise TrainError(
                        f"{run_dir}: loss is {loss} at step {step}; stopped without saving "
                        f"(last checkpoint: {tf.train.latest_checkpoint(run_dir)})")
                if want_summary:
                    writer.add_summary(results[2], step)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}")
                if time.time() - last_save >= checkpoint_every_secs:
                    saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=step)
                    last_save = time.time()
            bar.close()
            saver.save(sess, os.path.join(run_dir, "model.ckpt"), global_step=step)
        writer.close()
    wall = time.time() - start_time
    steps_done = step - start_step
    return {"config": config_name, "global_step": step, "steps_this_run": steps_done,
            "first_loss": losses[0] if losses else None, "final_loss": loss, "wall_seconds": wall,
            "seconds_per_step": wall / steps_done if steps_done else None,
            "checkpoint": tf.train.latest_checkpoint(run_dir)}


def _progress(step, num_steps, enabled):
    from tqdm.auto import tqdm
    return tqdm(total=num_steps, initial=step, disable=not enabled, unit="step",
                dynamic_ncols=True, desc="train")


def checkpoint_variables(checkpoint):
    """{name: shape} of the variables stored in a checkpoint (for diagnostics)."""
    return dict(tf.train.list_variables(checkpoint))


