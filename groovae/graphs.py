"""magenta's training and validation graphs of a config (what groovae.train runs).

The same graph as magenta's music_vae_train (``model.build`` + ``model.train``:
losses, KL/free bits, learning-rate decay; then global-norm clipping with the
clip-to-zero guard), so checkpoints are variable-compatible with magenta's
TrainedModel; validation is magenta's ``model.eval`` over a whole split.
"""
from groovae import compat  # first: shims and the stderr filter before TensorFlow loads

import tensorflow.compat.v1 as tf  # noqa: E402

from groovae import data  # noqa: E402
from groovae.configs import load_config  # noqa: E402
from groovae.device import session_config  # noqa: E402
from groovae.model import control_placeholder, feed, restore  # noqa: E402


MAX_VALIDATION_WINDOWS = 4096  # validated in one batch; larger splits use a fixed subset


def summary_values(serialized):
    """{tag: value} of a serialized Summary proto (train or validation)."""
    return {v.tag: float(v.simple_value) for v in tf.Summary.FromString(serialized).value}


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
        self.controls = control_placeholder(converter, batch, steps)
        optimizer = self.model.train(self.inputs, self.outputs, self.lengths, self.controls)
        grads, variables = zip(*optimizer.compute_gradients(self.model.loss))
        global_norm = tf.global_norm(grads)
        tf.summary.scalar("gradient_norm", global_norm)
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


class ValidationGraph:
    """magenta's ``model.eval`` metrics over a whole split, in one batch.

    Built once in its own graph (is_training=False: no dropout); each call
    restores a checkpoint and returns {metric: value} plus the Summary proto.
    """

    def __init__(self, config_name, hparams, tensors, seed=0, precision="fp32"):
        n = len(tensors["lengths"])
        if n > MAX_VALIDATION_WINDOWS:  # a fixed subset, the same at every validation
            keep = data.batch_indices(n, MAX_VALIDATION_WINDOWS, seed, 0)
            tensors = data.batch(tensors, keep)
            n = MAX_VALIDATION_WINDOWS
        self.tensors = data.batch(tensors, slice(None))
        with compat.magenta_graph() as self.graph:
            config = load_config(config_name, hparams)
            config.hparams.batch_size = n
            tf.set_random_seed(seed)
            self.model = config.model
            self.model.build(config.hparams, config.data_converter.output_depth, is_training=False)
            steps = config.hparams.max_seq_len
            self.inputs = tf.placeholder(tf.float32, [n, steps, config.data_converter.input_depth])
            self.outputs = tf.placeholder(tf.float32, [n, steps, config.data_converter.output_depth])
            self.lengths = tf.placeholder(tf.int32, [n])
            self.controls = control_placeholder(config.data_converter, n, steps)
            self.updates = self.model.eval(self.inputs, self.outputs, self.lengths, self.controls)
            self.summary = tf.summary.merge_all()
            self.init_metrics = tf.local_variables_initializer()
            self.saver = tf.train.Saver()
        self.session = tf.Session(graph=self.graph, config=session_config(precision, fast_start=True))

    def run(self, checkpoint):
        restore(self.saver, self.session, checkpoint)
        self.session.run(self.init_metrics)
        self.session.run(self.updates, feed(self, self.tensors))
        serialized = self.session.run(self.summary)
        return summary_values(serialized), serialized

    def close(self):
        self.session.close()
