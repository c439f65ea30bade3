"""How magenta's decoder loop is built and its outputs read: the decoding policies GrooveModel applies.

magenta's GrooveLstmDecoder is trained by squared error against 0 wherever
there is no hit, so at each step its velocity and offset are p * E[value |
hit], p its hit probability there: soft and near the grid wherever it is
unsure.  'magenta' reads them as they are (magenta's own sampling);
'given_hit' reads E[value | hit], the output over p, at the hits it played
(the same hits: only velocities and offsets change).  A hits-as-controls
model always reads its outputs that way, at the hits it is given.
"""
import contextlib
import functools

import numpy as np

from groovae.errors import RequestError

# TensorFlow and magenta are imported where a graph is built (groovae.model
# has loaded them, shims first), so the CLI reads DECODINGS without them.

DECODINGS = ("magenta", "given_hit")


def check_decoding(decoding):
    if decoding not in DECODINGS:
        raise RequestError(f"unknown decoding '{decoding}'; one of {', '.join(DECODINGS)}")
    return decoding


@contextlib.contextmanager
def sequential_decoding():
    """Builds magenta's decoder loops with parallel_iterations=1.

    The hit sampling in each decoder step draws a seed from a stateful RNG
    that depends on nothing in the step, so with parallel iterations the
    steps race for the RNG stream and a seeded sample varies run to run.
    """
    from magenta.contrib import seq2seq
    original = seq2seq.dynamic_decode
    seq2seq.dynamic_decode = functools.partial(original, parallel_iterations=1)
    try:
        yield
    finally:
        seq2seq.dynamic_decode = original


MIN_HIT_PROBABILITY = 0.05  # below it, dividing by the hit probability only amplifies noise


def played_as_given(outputs, hit_probabilities, hits, num_drums):
    """Grooves [n, 64, 27] playing ``hits`` (a hits-as-controls model's controls, or the hits the decoder sampled),
    each velocity and offset the one the decoder expects given a hit.

    Trained by squared error against 0 where there is no hit, the decoder
    plays p * E[velocity | hit] (p its own hit probability: 0.74 on average
    where the flat model samples a hit at T = 0.5, and input dropout keeps it
    at 0.57 on average where a hits-as-controls model is given one); the hit
    being played, E[velocity | hit] is that over p (the same for the offset).
    Feeding the divided values back into the loop measured no better (flat
    model, 256 samples at T = 0.5: timing spread 11.6-13.2 ms against 12.1-13.8
    read afterwards), so they are read afterwards.
    """
    k = num_drums
    played = np.array(outputs, np.float32)
    p = np.maximum(hit_probabilities, MIN_HIT_PROBABILITY)
    played[..., :k] = np.broadcast_to(hits[..., :k], played[..., :k].shape)
    played[..., k:2 * k] = np.clip(played[..., k:2 * k] / p, 0, 1)
    played[..., 2 * k:] = np.clip(played[..., 2 * k:] / p, -1, 1)
    return played


@contextlib.contextmanager
def hits_fed_as_given(control, num_drums=9):
    """Builds magenta's sampling loop so that the hits fed back after each step are ``control``'s, the hits given.

    A hits-as-controls model trains with input dropout (keep 0.3), so it never
    learns to copy the hits it is given: sampled freely, its own hits miss
    many of them, and the velocities and offsets it plays next follow its own
    hits, not the beat's.  Fed back the given hits, the history's hits are
    the beat's; its velocities and offsets stay the decoder's own (feeding
    back those of played_as_given measured worse: velocity MAE 25.8 vs 22.5,
    timing 26.7 vs 21.2 ms on 600 test windows).  None: magenta's loop as it is.
    """
    import tensorflow.compat.v1 as tf
    if control is None:
        yield
        return

    def rewrite(helper):
        next_inputs_fn = helper["next_inputs_fn"]

        def next_inputs_given_hits(time, outputs, state, sample_ids):
            given = tf.tile(control[time][None, :num_drums], [tf.shape(sample_ids)[0], 1])
            return next_inputs_fn(time, outputs, state, tf.concat([given, sample_ids[:, num_drums:]], -1))
        return dict(helper, next_inputs_fn=next_inputs_given_hits)
    with _sampling_loops_built_with(rewrite):
        yield


@contextlib.contextmanager
def _sampling_loops_built_with(rewrite):
    """While a graph is built, each magenta.contrib.seq2seq.CustomHelper (the helper of magenta's sampling loop,
    looked up on the module when a loop is built) is made from ``rewrite``(its keyword arguments)."""
    from magenta.contrib import seq2seq
    original = seq2seq.CustomHelper
    seq2seq.CustomHelper = lambda **helper: original(**rewrite(helper))
    try:
        yield
    finally:
        seq2seq.CustomHelper = original
