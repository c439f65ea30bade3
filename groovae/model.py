"""The model: magenta's MusicVAE graphs for a named config, restored from checkpoints.

The shared layer the stages build on: the reproducible encode / decode /
sample wrapper and the teacher-forced pass (generate, beat, evaluate), the
variables a config's inference graph restores, and the one check of a
checkpoint against a config.  Training and validation graphs: groovae.graphs.
"""
import contextlib
import math

import numpy as np

from groovae import compat  # first: shims and the stderr filter before TensorFlow loads

import tensorflow.compat.v1 as tf  # noqa: E402

from groovae import checkpoints, data  # noqa: E402
from groovae.decoding import check_decoding, hits_fed_as_given, played_as_given, sequential_decoding
from groovae.configs import load_config
from groovae.errors import GenerateError, tf_problem


@contextlib.contextmanager
def inference_graph(config_name, hparams=None, seed=0):
    """A graph holding every variable a config's sampling and encoding restore (batch 1); yields it."""
    config = load_config(config_name, hparams)
    config.hparams.batch_size = 1
    with compat.magenta_graph() as graph:
        tf.set_random_seed(seed)
        config.model.build(config.hparams, config.data_converter.output_depth, is_training=False)
        steps, converter = config.hparams.max_seq_len, config.data_converter
        controls = control_placeholder(converter, 1, steps)
        config.model.sample(1, max_length=steps, z=tf.zeros([1, config.hparams.z_size]), temperature=1.0,
                            c_input=None if controls is None else controls[0])
        config.model.encode(tf.zeros([1, steps, converter.input_depth]), tf.ones([1], tf.int32), controls)
        yield graph


def graph_variables():
    """{name: shape} of the default graph's global variables."""
    return {v.op.name: v.shape.as_list() for v in tf.global_variables()}


def model_variables(config_name, hparams=None):
    """{name: shape} of the variables an inference graph of the config restores (what magenta's TrainedModel restores)."""
    with inference_graph(config_name, hparams):
        return graph_variables()


def check_checkpoint(config_name, prefix, wanted=None, stored=None, hparams=None):
    """GenerateError unless the checkpoint holds every variable the config restores, with equal shapes.

    The one check of a checkpoint against a config.  ``wanted`` ({name:
    shape}) defaults to the config's inference variables; ``stored`` to the
    checkpoint's.  The error names the config the checkpoint looks like.
    """
    stored = checkpoints.read_checkpoint_variables(prefix) if stored is None else stored
    wanted = model_variables(config_name, hparams) if wanted is None else wanted
    mismatched = [n for n, shape in wanted.items() if stored.get(n) != shape]
    if mismatched:
        looks_like = guess_config(stored)
        hint = f"it looks like '{looks_like}'" if looks_like else "it matches no config in configs/"
        raise GenerateError(f"{prefix}: not a '{config_name}' checkpoint ({len(mismatched)} variables differ, "
                            f"e.g. {mismatched[0]}); {hint}")


def guess_config(stored):
    """Name of the config whose variables all are in ``stored`` ({name: shape}) with equal shapes, or None."""
    from groovae.configs import config_names
    for name in config_names():
        if all(stored.get(n) == shape for n, shape in model_variables(name).items()):
            return name
    return None


class GrooveModel:
    """A MusicVAE config restored from a checkpoint, for encode / decode.

    Like magenta's TrainedModel, but reproducible: a (seed, request) pair
    always gives the same grooves.  Graphs are seeded, built once per (seed,
    batch size) with sequential decoder loops, and every call runs in a fresh
    session, so the hit-sampling RNG starts from the same state each time.
    ``decoding`` says how the decoder's velocities and offsets are read
    (groovae.decoding: 'magenta' as they are, 'given_hit' given the hit).
    """

    def __init__(self, config_name, checkpoint, hparams=None, decoding="magenta"):
        self.config_name, self.checkpoint, self.hparams = config_name, checkpoint, hparams
        self.decoding = check_decoding(decoding)
        self.stored_variables = checkpoints.read_checkpoint_variables(checkpoint)
        self.config = load_config(config_name, hparams)
        self.converter = self.config.data_converter
        self.converter.set_mode("infer")
        self.z_size = self.config.hparams.z_size
        self.length = self.config.hparams.max_seq_len
        self._graphs = {}
        if self.converter._hits_as_controls and decoding != "magenta":
            raise GenerateError(f"{config_name} plays the hits it is given, always read given the hit; "
                                f"decoding '{decoding}' is for models that choose their hits")

    def _graph(self, seed, batch_size):
        key = (seed, batch_size)
        if key not in self._graphs:
            config = load_config(self.config_name, self.hparams)
            config.hparams.batch_size = batch_size
            with compat.magenta_graph() as graph, sequential_decoding():
                tf.set_random_seed(seed)
                model = config.model
                model.build(config.hparams, self.converter.output_depth, is_training=False)
                t = {"temperature": tf.placeholder(tf.float32, [], "temperature"),
                     "z": tf.placeholder(tf.float32, [batch_size, self.z_size], "z"),
                     "controls": control_placeholder(self.converter, batch_size, self.length)}
                if t["controls"] is not None:  # decoding: one control sequence for the whole batch (magenta's)
                    t["control"] = tf.placeholder(tf.float32, [self.length, self.converter.control_depth], "control")
                with hits_fed_as_given(t.get("control") if self.converter._hits_as_controls else None,
                                       self.converter._num_drums):
                    t["outputs"], decoded = model.sample(batch_size, max_length=self.length, z=t["z"],
                                                         temperature=t["temperature"], c_input=t.get("control"))
                t["hit_probabilities"] = tf.sigmoid(decoded.rnn_output[..., :self.converter._num_drums])
                t["inputs"] = tf.placeholder(tf.float32, [batch_size, self.length, self.converter.input_depth],
                                             "inputs")
                t["lengths"] = tf.placeholder(tf.int32, [batch_size], "lengths")
                posterior = model.encode(t["inputs"], t["lengths"], t["controls"])
                t["mu"], t["sigma"] = posterior.loc, posterior.stddev()
                check_checkpoint(self.config_name, self.checkpoint, graph_variables(), self.stored_variables)
                t["saver"] = tf.train.Saver()
            self._graphs[key] = (graph, t)
        return self._graphs[key]

    def _run(self, seed, batch_size, fetch, feed):
        return self._run_each(seed, batch_size, fetch, [feed])[0]

    def _run_each(self, seed, batch_size, fetch, feeds):
        """``fetch`` for each feed in turn, in one session (the sampling RNG runs on from call to call)."""
        graph, t = self._graph(seed, batch_size)
        with tf.Session(graph=graph) as session:  # closed on every way out
            restore(t["saver"], session, self.checkpoint)
            fetches = tuple(t[f] for f in fetch) if isinstance(fetch, tuple) else t[fetch]
            return [session.run(fetches, {t[k]: v for k, v in feed.items()}) for feed in feeds]

    @property
    def has_controls(self):
        return bool(self.converter.control_depth)

    def decode(self, z, temperature=0.5, seed=0, control=None):
        """Groove tensors [n, 64, 27] decoded from latent vectors ``z`` [n, z_size] (any n: evaluate decodes a split).

        ``control`` [64, control_depth]: the controls every groove is decoded
        with, for a config that has them (e.g. the hits to play; those hits
        are then the grooves' hits, exactly).
        """
        check_temperature(temperature)
        if len(z) == 0:
            raise GenerateError("nothing to decode (no latent vectors)")
        values = {"z": np.asarray(z, np.float32), "temperature": temperature}
        if self.has_controls:
            if control is None:
                raise GenerateError(f"{self.config_name} decodes with controls (the hits to play); none given")
            values["control"] = np.asarray(control, np.float32)
        hits_given = self.has_controls and self.converter._hits_as_controls
        if not (hits_given or self.decoding == "given_hit"):
            return self._run(seed, len(z), "outputs", values)
        outputs, probabilities = self._run(seed, len(z), ("outputs", "hit_probabilities"), values)
        return played_as_given(outputs, probabilities, values["control"][None] if hits_given else outputs,
                               self.converter._num_drums)

    def decode_each(self, z, controls, temperature=0.5, seed=0):
        """Grooves [n, 64, 27], the i-th decoded from z[i] with controls[i] [64, depth] (e.g. each window its hits).

        One session for all (magenta decodes a batch with one control sequence,
        so each is a batch of one); a (seed, inputs) pair gives the same grooves.
        """
        check_temperature(temperature)
        feeds = [{"z": np.asarray(zi, np.float32)[None], "temperature": temperature,
                  "control": np.asarray(ci, np.float32)} for zi, ci in zip(z, controls)]
        if not self.converter._hits_as_controls:
            return np.concatenate(self._run_each(seed, 1, "outputs", feeds))
        played = self._run_each(seed, 1, ("outputs", "hit_probabilities"), feeds)
        return played_as_given(np.concatenate([o for o, _ in played]), np.concatenate([p for _, p in played]),
                               np.asarray(controls, np.float32), self.converter._num_drums)

    def teacher_forced(self, tensors, batch_size=256, seed=0):
        """(ModelPass.run's arrays, the checkpoint's global step) over window tensors, in batches."""
        model_pass = ModelPass(self.config_name, self.checkpoint, min(batch_size, len(tensors["lengths"])),
                               self.hparams, seed, self.stored_variables)
        try:
            return model_pass.run(tensors), model_pass.step
        finally:
            model_pass.close()

    def encode(self, tensors, seed=0, controls=None):
        """Posterior means [n, z_size] of groove tensors [n, 64, 27] (with their controls, where the config has them)."""
        return self._run(seed, len(tensors), "mu", self._encoder_feed(tensors, controls))

    def posterior(self, tensors, seed=0, controls=None):
        """(means, standard deviations) [n, z_size] of the posteriors of groove tensors [n, 64, 27]."""
        return self._run(seed, len(tensors), ("mu", "sigma"), self._encoder_feed(tensors, controls))

    def _encoder_feed(self, tensors, controls):
        tensors = np.asarray(tensors, np.float32)
        values = {"inputs": tensors, "lengths": np.full(len(tensors), self.length, np.int32)}
        if self.has_controls:
            if controls is None:
                raise GenerateError(f"{self.config_name} encodes with controls (the hits played); none given")
            values["controls"] = np.asarray(controls, np.float32)
        return values


def restore(saver, session, prefix):
    """``saver.restore`` with a checkpoint's damage (a truncated .data file, say) as one GenerateError line."""
    try:
        saver.restore(session, prefix)
    except tf.errors.OpError as e:
        raise GenerateError(f"{prefix}: cannot restore the checkpoint ({type(e).__name__}: {tf_problem(e)}); "
                            f"its files are damaged or incomplete") from None


def random_z(n, z_size, seed):
    return np.random.RandomState(seed).randn(n, z_size).astype(np.float32)


def control_placeholder(converter, batch_size, steps):
    """[batch, steps, control_depth] controls (e.g. hits as controls), or None for a config without them."""
    if not converter.control_depth:
        return None
    return tf.placeholder(tf.float32, [batch_size, steps, converter.control_depth], "controls")


def feed(graph, window_batch):
    """Placeholders of a graph (inputs, outputs, lengths and controls, if it has them) -> a batch's arrays."""
    values = {graph.inputs: window_batch["inputs"], graph.outputs: window_batch["outputs"],
              graph.lengths: window_batch["lengths"]}
    if graph.controls is not None:
        values[graph.controls] = window_batch[data.CONTROLS]
    return values


MAX_GROOVES = 1000  # per run: each groove is three files


def check_temperature(temperature):
    if not (temperature > 0 and math.isfinite(temperature)):
        raise GenerateError(f"temperature must be a positive number, got {temperature}")


def check_request(n, temperature, seed=0):
    """A generate run's settings: n is capped because each groove is written as files."""
    if not 0 < n <= MAX_GROOVES:
        raise GenerateError(f"n must be 1..{MAX_GROOVES}, got {n}")
    check_temperature(temperature)
    if not 0 <= seed < 2 ** 32:
        raise GenerateError(f"seed must be 0..2**32-1, got {seed}")


def sample(model, n=5, temperature=0.5, seed=0):
    """``n`` groove tensors from z ~ N(0, I)."""
    return model.decode(random_z(n, model.z_size, seed), temperature, seed)


def perform(model, inputs, controls=None, n=1, temperature=0.5, seed=0):
    """``n`` performances [n, windows, 64, 27] of windows' transformed inputs (humanize, drumify, hits as controls).

    z = mu + temperature * sigma * eps per window and performance, mu and sigma
    the posterior of the window's input, eps from numpy's RandomState(seed);
    a hits-control model has nothing to encode (the hits are its controls:
    they are played as given), so mu and sigma are its prior's, 0 and 1.  The
    decoder samples hits at ``temperature``.
    """
    windows = len(inputs)
    if model.has_controls:
        mu, sigma = np.zeros((windows, model.z_size), np.float32), np.ones((windows, model.z_size), np.float32)
    else:
        mu, sigma = model.posterior(inputs, seed)
    eps = np.random.RandomState(seed).randn(n, windows, model.z_size).astype(np.float32)
    z = (mu[None] + temperature * sigma[None] * eps).reshape(n * windows, -1)
    decoded = (model.decode_each(z, np.tile(controls, (n, 1, 1)), temperature, seed) if model.has_controls
               else model.decode(z, temperature, seed))
    return decoded.reshape(n, windows, *decoded.shape[1:])


class ModelPass:
    """Posterior and teacher-forced decoder outputs of a checkpoint, in fixed-size batches.

    One graph (is_training=False, so no dropout) with batch ``batch_size``:
    the encoder's posterior mean and sigma, and magenta's
    ``decoder.reconstruction_loss`` (the training-time teacher-forced pass)
    run with z = posterior mean, giving the raw decoder outputs and magenta's
    r_loss per window.  A split is run in chunks; the last one is padded
    with empty windows that are dropped again.
    """

    def __init__(self, config_name, checkpoint, batch_size=256, hparams=None, seed=0, stored=None):
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
            self.controls = control_placeholder(converter, batch_size, self.length)
            posterior = model.encode(self.inputs, self.lengths, self.controls)
            mu = posterior.loc
            # decoder inputs: the target shifted right by one step, a zero frame first (as in training)
            x_input = tf.pad(self.outputs[:, :self.length - 1], [(0, 0), (1, 0), (0, 0)])
            r_loss, _, decoded = model.decoder.reconstruction_loss(x_input, self.outputs, self.lengths, mu,
                                                                   self.controls)[:3]
            self.fetches = {"mu": mu, "sigma": posterior.stddev(), "logits": decoded.rnn_output, "r_loss": r_loss}
            self.global_step = model.global_step
            check_checkpoint(config_name, checkpoint, graph_variables(), stored)
            self.saver = tf.train.Saver()
            self.session = tf.Session(graph=self.graph)
            try:
                restore(self.saver, self.session, checkpoint)
                self.step = int(self.session.run(self.global_step))
            except BaseException:  # no caller holds the object yet to close it
                self.session.close()
                raise

    def run(self, tensors):
        """{mu, sigma [N, z], logits [N, T, 27] (raw), r_loss [N]} for window tensors."""
        n = len(tensors["lengths"])
        parts = []
        for start in range(0, n, self.batch_size):
            stop = min(start + self.batch_size, n)
            pad = self.batch_size - (stop - start)
            feed = {}
            for placeholder, key in ((self.inputs, "inputs"), (self.outputs, "outputs"), (self.controls, data.CONTROLS)):
                if placeholder is None:
                    continue
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
