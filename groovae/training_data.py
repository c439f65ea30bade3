"""The windows a training run reads: an .npz in memory, or TFRecord shards streamed (groovae.stream).

``load_training_data`` gives the training split as a ``TrainingWindows``
(count, fingerprint for run.json, and ``batches(batch_size).batch(step)``:
the step's batch, a pure function of (seed, step) either way) and the
validation windows.
"""
import os

from groovae import data, shards
from groovae.errors import TrainError
from groovae.graphs import MAX_VALIDATION_WINDOWS


def resolve_data(data_path, validation_path=None):
    """(train .npz, validation .npz or None) from a preprocess dir or an .npz path."""
    if os.path.isdir(data_path):
        train_path = os.path.join(data_path, "train.npz")
        if validation_path is None and os.path.exists(os.path.join(data_path, "validation.npz")):
            validation_path = os.path.join(data_path, "validation.npz")
        return train_path, validation_path
    return data_path, validation_path


def load_training_data(data_path, validation_path=None, seed=0):
    """(training windows, validation tensors or None) of a preprocess dir (.npz or shards) or an .npz path."""
    if shards.is_sharded(data_path):
        windows, validation = sharded_training_data(data_path, seed)
        if validation_path:
            validation = data.load_tensors(validation_path)
    else:
        train_path, validation_path = resolve_data(data_path, validation_path)
        windows = TrainingWindows.of_tensors(data.load_tensors(train_path), train_path, seed)
        validation = data.load_tensors(validation_path) if validation_path else None
    if windows.count == 0:
        raise TrainError(f"{windows.path}: holds no training windows")
    if validation is not None and not len(validation["lengths"]):
        validation = None
    return windows, validation


def sharded_training_data(folder, seed):
    """(training windows streamed from shards, the validation windows ValidationGraph would keep of the whole
    split: all of them, or its fixed subset read in one pass)."""
    manifest = shards.read_manifest(folder)
    entry = shards.check_split(folder, "train", manifest)
    windows = TrainingWindows(int(entry["windows"]), shards.fingerprint(entry),
                              lambda batch_size: stream_batches(folder, entry, batch_size, seed),
                              os.path.join(folder, shards.MANIFEST) + " (train shards, streamed)")
    validation = None
    if manifest["splits"].get("validation", {}).get("windows"):
        held = shards.check_split(folder, "validation", manifest)
        n = int(held["windows"])
        validation = (shards.pick(folder, held, data.batch_indices(n, MAX_VALIDATION_WINDOWS, seed, 0))
                      if n > MAX_VALIDATION_WINDOWS else shards.load_split(folder, "validation", check=False))
    return windows, validation


def stream_batches(folder, entry, batch_size, seed):
    from groovae.stream import ShardBatches
    return ShardBatches(folder, entry, batch_size, seed)


class TrainingWindows:
    """The training split as the loop sees it: a window count, a fingerprint (run.json), a path to name, and
    ``batches(batch_size)``, an object whose ``batch(step)`` is the step's batch (a pure function of seed and
    step) and ``close()`` frees it."""

    def __init__(self, count, fingerprint, batches, path):
        self.count, self.fingerprint, self.batches, self.path = count, fingerprint, batches, path

    @classmethod
    def of_tensors(cls, tensors, path, seed):
        return cls(int(len(tensors["lengths"])), data.fingerprint(tensors), lambda b: InMemoryBatches(tensors, b, seed),
                   path)


class InMemoryBatches:
    """Batches of tensors in memory (an .npz): data.batch_indices' rows."""

    def __init__(self, tensors, batch_size, seed):
        self.tensors, self.batch_size, self.seed = tensors, batch_size, seed

    def batch(self, step):
        return data.batch(self.tensors, data.batch_indices(len(self.tensors["lengths"]), self.batch_size, self.seed,
                                                            step))

    def close(self):
        pass
