"""Training batches streamed from TFRecord shards with tf.data, in an order that is a pure function of (seed, step).

Epoch e of a split reads its shards in a seeded order (a stateless shuffle
of the shard list by ``(seed, e)``), interleaved ``CYCLE`` at a time, through a
shuffle buffer seeded by ``(seed, e)``; the epochs follow one another and
batches are cut from that stream (a batch may straddle two epochs, as
data.batch_indices' batches do).  Batch ``step`` is therefore the same on
every run: a run resumed at step s builds the stream from the epoch holding
window ``s * batch_size`` and skips to it (reading, not parsing, the records
before it in that epoch).  The pipeline holds at most the shuffle buffer, the
interleave's open blocks and ``PREFETCH`` parsed batches: never the corpus.

It runs in its own graph and session (training's graph is magenta's, fed
numpy batches), so the training loop is the same for ``.npz`` and shards.
"""
import numpy as np

from groovae import compat  # noqa: F401  (first: shims before TensorFlow loads)
from groovae import data, shards  # noqa: E402

SHUFFLE_BUFFER = 8192  # windows (~14 KB each serialized: ~115 MB)
CYCLE = 4  # shards read at once
PREFETCH = 2  # parsed batches ready ahead of the step


def epoch_order(num_shards, seed, epoch):
    """The shard order of an epoch (numpy mirror of the graph's, for tests and the README's claim)."""
    import tensorflow as tf
    keys = tf.random.stateless_uniform([num_shards], seed=[seed, epoch])
    return np.argsort(keys.numpy(), kind="stable")


def build_dataset(paths, layout, num_windows, batch_size, seed, step, buffer=SHUFFLE_BUFFER, cycle=CYCLE,
                  prefetch=PREFETCH, tap=None):
    """The tf.data pipeline of batches from ``step`` on (graph or eager).  ``tap`` (tests) is a graph function
    called on every record read from disk, before the shuffle buffer."""
    import tensorflow as tf
    if num_windows <= 0:
        raise data.DataError("no training windows")
    files = tf.constant(paths)
    epoch, offset = divmod(step * batch_size, num_windows)
    seed = int(seed)

    def one_epoch(e):
        keys = tf.random.stateless_uniform([len(paths)], seed=tf.stack([tf.constant(seed, tf.int64), e]))
        ordered = tf.gather(files, tf.argsort(keys, stable=True))
        records = tf.data.Dataset.from_tensor_slices(ordered).interleave(
            tf.data.TFRecordDataset, cycle_length=min(cycle, len(paths)), block_length=1,
            num_parallel_calls=min(cycle, len(paths)), deterministic=True)
        if tap is not None:
            records = records.map(tap)
        return records.shuffle(buffer, seed=e * 1000003 + seed, reshuffle_each_iteration=False)

    stream = tf.data.Dataset.range(epoch, 2 ** 62).flat_map(one_epoch).skip(offset)
    return stream.batch(batch_size, drop_remainder=True).map(shards.parse_function(layout)).prefetch(prefetch)


class ShardBatches:
    """``batch(step)``: the numpy batch of ``step`` from a sharded split (sequential steps read on; any other
    step rebuilds the pipeline there)."""

    def __init__(self, folder, entry, batch_size, seed, buffer=SHUFFLE_BUFFER):
        self.folder, self.entry, self.batch_size, self.seed, self.buffer = folder, entry, batch_size, seed, buffer
        self.num_windows = int(entry["windows"])
        self._next_step, self._session = None, None

    def _open(self, step):
        import tensorflow.compat.v1 as tf1
        self.close()
        self.graph = tf1.Graph()
        with self.graph.as_default():
            dataset = build_dataset(shards.shard_paths(self.folder, self.entry), self.entry["layout"],
                                    self.num_windows, self.batch_size, self.seed, step, self.buffer)
            self._get_next = tf1.data.make_one_shot_iterator(dataset).get_next()
        self._session = tf1.Session(graph=self.graph)
        self._next_step = step

    def batch(self, step):
        if step != self._next_step:
            self._open(step)
        batch = self._session.run(self._get_next)
        self._next_step = step + 1
        return {k: batch[k] for k in data.model_keys(batch)}

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None
