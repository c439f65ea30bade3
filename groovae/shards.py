"""Sharded window files: a split's window tensors as TFRecord shards with a manifest of counts and sha256s.

``preprocess --shards N`` writes, per split, ``<split>-00000-of-0000N.tfrecord``
… (one ``tf.train.Example`` per window: every per-window array of the
``.npz`` layout -- inputs, outputs, lengths, controls where the config has
them, bpm, source_id, start_bar -- as the raw bytes of its row) and one
``shards.json``: per split the window count, each array's dtype and row shape,
and per shard its file, window count, sha256 of the file and sha256 of its
model arrays.  Shard k of a split holds the split's files
``[k * F / N, (k + 1) * F / N)`` in their order (``shard_of``), so the
shards laid end to end are the split's ``.npz`` rows in the same order,
whichever runner wrote them.

Reading: ``check_split`` (every shard there, sha256 as recorded: one line
naming the file otherwise), ``load_split`` (a small split whole: evaluate,
tests), ``pick`` (given rows, one pass: the validation subset) and
groovae.stream (training batches).
"""
import hashlib
import json
import os

import numpy as np

from groovae import data, files
from groovae.errors import DataError

MANIFEST = "shards.json"
FORMAT = 1
STRING_KEYS = ("source_id",)


def shard_name(split, k, num_shards):
    return f"{split}-{k:05d}-of-{num_shards:05d}.tfrecord"


def sequence_shard_name(split, k, num_shards):
    """The NoteSequences of the same files as window shard k (whole-file protos, as ``<split>.tfrecord``)."""
    return f"{split}.sequences-{k:05d}-of-{num_shards:05d}.tfrecord"


def shard_of(index, count, num_shards):
    """The shard of the ``index``-th of a split's ``count`` files: contiguous runs of files, in order."""
    return index * num_shards // max(count, 1)


def _row_layout(tensors):
    """{key: [dtype, row shape]} of a split's arrays (strings as 'str')."""
    return {k: ["str" if k in STRING_KEYS else str(v.dtype), list(v.shape[1:])] for k, v in sorted(tensors.items())}


def _model_digest(tensors):
    return data.fingerprint(tensors)["sha256"]


def encode(tensors):
    """One serialized tf.train.Example per window of ``tensors`` (its rows' raw bytes, strings as UTF-8), its map
    of features in key order (deterministic: the same bytes in every process)."""
    import tensorflow as tf
    keys = sorted(tensors)
    arrays = {k: tensors[k] if k in STRING_KEYS else np.ascontiguousarray(tensors[k]) for k in keys}
    for i in range(len(tensors["lengths"])):
        feature = {}
        for k in keys:
            row = str(arrays[k][i]).encode("utf-8") if k in STRING_KEYS else arrays[k][i].tobytes()
            feature[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[row]))
        yield tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def write_shard(path, tensors):
    """Writes one shard (atomically) and returns its manifest entry."""
    import tensorflow as tf
    with files.atomic_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for record in encode(tensors):
            writer.write(record)
    return {"file": os.path.basename(path), "windows": int(len(tensors["lengths"])),
            "sha256": files.sha256_of(path), "model_sha256": _model_digest(tensors), "layout": _row_layout(tensors)}


def split_entry(shards):
    """A split's manifest entry from its shards' entries (in shard order)."""
    layouts = [s["layout"] for s in shards if s["windows"]] or [shards[0]["layout"]]
    return {"windows": sum(s["windows"] for s in shards), "layout": layouts[0],
            "shards": [{k: v for k, v in s.items() if k != "layout"} for s in shards]}


def write_manifest(folder, splits):
    """shards.json in ``folder``: ``splits`` is {split: split_entry(...)}."""
    manifest = {"format": FORMAT, "splits": splits}
    files.atomic_write(os.path.join(folder, MANIFEST), lambda f: f.write(json.dumps(manifest, indent=1)), mode="w")
    return manifest


def is_sharded(folder):
    return os.path.isdir(folder) and os.path.isfile(os.path.join(folder, MANIFEST))


def read_manifest(folder):
    """shards.json of a preprocess output folder; DataError in one line when missing or damaged."""
    path = os.path.join(folder, MANIFEST)
    try:
        with open(path) as f:
            manifest = json.load(f)
        if manifest.get("format") != FORMAT or not isinstance(manifest.get("splits"), dict):
            raise ValueError(f"format {manifest.get('format')!r}")
    except OSError as e:
        raise DataError(f"{path}: cannot read the shard manifest ({e.strerror}); rerun `groovae preprocess "
                        f"--shards N`") from None
    except (ValueError, AttributeError) as e:
        raise DataError(f"{path}: not a groovae shard manifest ({e})") from None
    return manifest


def split_of(folder, split, manifest=None):
    """The manifest entry of ``split``; DataError if the folder has none."""
    manifest = manifest or read_manifest(folder)
    entry = manifest["splits"].get(split)
    if entry is None:
        raise DataError(f"{os.path.join(folder, MANIFEST)}: no '{split}' split (has {', '.join(manifest['splits'])})")
    return entry


def shard_paths(folder, entry):
    return [os.path.join(folder, s["file"]) for s in entry["shards"]]


def check_split(folder, split, manifest=None, hash_files=True):
    """The split's manifest entry, once every shard file is there with the recorded sha256 (one line otherwise)."""
    entry = split_of(folder, split, manifest)
    for shard, path in zip(entry["shards"], shard_paths(folder, entry)):
        if not os.path.isfile(path):
            raise DataError(f"{path}: shard missing (listed in {MANIFEST}); rerun `groovae preprocess`")
        if hash_files and files.sha256_of(path) != shard["sha256"]:
            raise DataError(f"{path}: sha256 differs from {MANIFEST}'s (damaged or replaced); rerun "
                            f"`groovae preprocess`")
    return entry


def fingerprint(entry):
    """What identifies a sharded split (run.json's data): its window count and a sha256 of its shards' model
    arrays (not equal to data.fingerprint of the same windows as one .npz)."""
    digest = hashlib.sha256("".join(s["model_sha256"] for s in entry["shards"]).encode())
    return {"windows": int(entry["windows"]), "sha256": "shards:" + digest.hexdigest()}


def parse_function(layout):
    """A graph function: a vector of serialized windows -> {key: [batch, *row shape]} tensors."""
    import tensorflow as tf
    spec = {k: tf.io.FixedLenFeature([], tf.string) for k in layout}

    def parse(serialized):
        raw = tf.io.parse_example(serialized, spec)
        out = {}
        for key, (dtype, shape) in layout.items():
            if dtype == "str":
                out[key] = raw[key]
            else:
                values = tf.io.decode_raw(raw[key], tf.dtypes.as_dtype(dtype))
                out[key] = tf.reshape(values, [-1] + shape)
        return out
    return parse


def _as_numpy(batch, layout):
    out = {}
    for key, value in batch.items():
        if layout[key][0] == "str":
            text = [v.decode("utf-8") for v in value]
            out[key] = np.array(text, dtype=f"U{max([64] + [len(t) for t in text])}").reshape(len(text))
        else:
            out[key] = value
    return out


def read_windows(folder, entry, chunk=1024, keys=None):
    """Yields the split's windows in order, ``chunk`` at a time, as numpy dicts (eager tf.data) of ``keys``
    (default: all)."""
    import tensorflow as tf
    layout = {k: v for k, v in entry["layout"].items() if keys is None or k in keys}
    dataset = tf.data.TFRecordDataset(shard_paths(folder, entry)).batch(chunk).map(parse_function(layout))
    with tf.device("/cpu:0"):
        for batch in dataset.as_numpy_iterator():
            yield _as_numpy(batch, layout)


def _concat(parts, layout, keys=None):
    if not parts:
        return {k: (np.zeros([0] + shape, dtype="U64" if dtype == "str" else dtype)) for k, (dtype, shape)
                in layout.items() if keys is None or k in keys}
    out = {}
    for key in parts[0]:
        values = [p[key] for p in parts]
        out[key] = np.concatenate(values).astype(max((v.dtype for v in values), key=lambda d: d.itemsize)) \
            if layout[key][0] == "str" else np.concatenate(values)
    return out


def load_split(folder, split, check=True, keys=None):
    """A split's windows whole (``keys`` of them, default all), as ``data.load_tensors`` gives an ``.npz``
    (for small splits: test, tests)."""
    entry = check_split(folder, split) if check else split_of(folder, split)
    return _concat(list(read_windows(folder, entry, keys=keys)), entry["layout"], keys)


def split_ref(folder, split):
    """How a sharded split is named where an .npz path would be (evaluate's --data): ``DIR/<split>-*.tfrecord``."""
    return os.path.join(folder, f"{split}-*.tfrecord")


def load_windows(path, keys=None):
    """The windows of an .npz path, or of a sharded split named by ``split_ref``."""
    folder, name = os.path.split(path)
    if name.endswith("-*.tfrecord") and is_sharded(folder):
        return load_split(folder, name[:-len("-*.tfrecord")], keys=keys)
    return data.load_tensors(path)


def pick(folder, entry, indices):
    """The windows at global row ``indices`` of a split (in that order), in one pass holding only those rows."""
    wanted = np.asarray(indices)
    order = np.argsort(wanted, kind="stable")
    parts, start, k = [], 0, 0
    for batch in read_windows(folder, entry):
        n = len(batch["lengths"])
        while k < len(order) and wanted[order[k]] < start + n:
            row = wanted[order[k]] - start  # a copy, not a view: a view would keep its whole batch alive
            parts.append((order[k], {key: v[row:row + 1].copy() for key, v in batch.items()}))
            k += 1
        start += n
    if k != len(order):
        raise DataError(f"{folder}: row {wanted[order[k]]} beyond the split's {start} windows")
    parts.sort(key=lambda p: p[0])
    return _concat([p for _, p in parts], entry["layout"])
