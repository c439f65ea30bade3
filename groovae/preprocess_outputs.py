"""Stage 1's outputs: per-file results grouped by split (and shard), written as one group at a time.

The one writer both runners use (groovae.preprocess's process pool and
groovae.beam_pipeline): ``plan`` gives every input file its split, its index
in the split and its shard; ``write_group`` writes one (split, shard)'s files,
in index order, as ``<split>.tfrecord`` + ``<split>.npz`` (no shards) or as
NoteSequence and window shards (groovae.shards), and returns what the report
and the manifest need of it; ``check_accounted`` makes sure every input file
came back exactly once, converted or with its reason.
"""
import collections
import os

import numpy as np

from groovae import data, files, shards
from groovae.errors import PipelineError
from groovae.gmd import SPLITS
from groovae.preprocess_report import hits_per_class

_CONVERTER = {}


def converter_of(config_name):
    """The config's data converter, loaded once per process."""
    if config_name not in _CONVERTER:
        from groovae.configs import load_config
        _CONVERTER[config_name] = load_config(config_name).data_converter
    return _CONVERTER[config_name]


def id_dtype(ids):
    """Unicode width of source_id: 64 (the GMD's, unchanged) or the longest corpus path."""
    return f"U{max([64] + [len(i) for i in ids])}"


def write_tfrecord(path, records):
    """Writes serialized protos to a TFRecord atomically (temp name + rename)."""
    import tensorflow as tf
    with files.atomic_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for record in records:
            writer.write(record)


def split_tensors(results, converter):
    """The tensors of ``results`` (one split's or shard's files, in order) laid end to end, with per-window
    bpm, source_id and start_bar."""
    parts = [r["tensors"] for r in results if r["tensors"] is not None and len(r["tensors"]["lengths"])]
    tensors = data.concat_tensors(parts, converter)
    n = len(tensors["lengths"])
    ids = [i for p in parts for i in p["source_id"][:1]]
    for key, dtype in (("bpm", np.float32), ("source_id", id_dtype(ids)), ("start_bar", np.int32)):
        tensors[key] = (np.concatenate([p[key] for p in parts]) if parts
                        else np.zeros(0, dtype)).astype(dtype).reshape(n)
    return tensors


Slot = collections.namedtuple("Slot", "split index shard")
Slot.__doc__ = """Where an input file's outputs go: its split, its index among the split's files, its shard."""


def plan(rows, num_shards=None):
    """A Slot per row (in row order); without ``num_shards`` every split is one group (shard 0)."""
    counts = collections.Counter(row["split"] for row in rows)
    seen, slots = collections.Counter(), []
    for row in rows:
        split = row["split"]
        index = seen[split]
        seen[split] += 1
        slots.append(Slot(split, index, shards.shard_of(index, counts[split], num_shards) if num_shards else 0))
    return slots


def groups_of(num_shards):
    """Every (split, shard) group the outputs have, written even when no file falls into it."""
    return [(split, k) for split in SPLITS for k in range(num_shards or 1)]


def write_group(staging, config, split, shard, num_shards, results):
    """Writes one group's outputs into ``staging`` from its files' results (in their order within the split);
    returns its record: files (ids), tensor count, hits per class and, for a shard, its manifest entry."""
    tensors = split_tensors(results, converter_of(config))
    sequences = [r["sequence"] for r in results if r["sequence"] is not None]
    entry = None
    if num_shards:
        write_tfrecord(os.path.join(staging, shards.sequence_shard_name(split, shard, num_shards)), sequences)
        entry = shards.write_shard(os.path.join(staging, shards.shard_name(split, shard, num_shards)), tensors)
    else:
        write_tfrecord(os.path.join(staging, f"{split}.tfrecord"), sequences)
        data.save_tensors(os.path.join(staging, f"{split}.npz"), tensors)
    return {"split": split, "shard": shard, "files": [r["id"] for r in results],
            "tensors": int(len(tensors["lengths"])), "hits_per_class": hits_per_class(tensors), "shard_entry": entry}


def check_accounted(rows, summaries, groups, where):
    """PipelineError unless every input row came back exactly once as a per-file summary (converted or with its
    reason) and every group holds exactly the files planned for it."""
    want = collections.Counter((row["split"], row["id"]) for row in rows)
    got = collections.Counter((s["split"], s["id"]) for s in summaries)
    written = collections.Counter((g["split"], i) for g in groups for i in g["files"])
    for what, have in (("converted or reported", got), ("written to a split", written)):
        if have != want:
            lost, extra = want - have, have - want
            example = next(iter(lost or extra))[1]
            raise PipelineError(f"{where}: {sum(lost.values())} of {len(rows)} input files not {what}"
                                f"{f', {sum(extra.values())} twice' if extra else ''} (e.g. {example}); "
                                f"outputs not written")


def split_stats(groups):
    """{split: {tensors, hits_per_class}} summed over its groups."""
    stats = {split: {"tensors": 0, "hits_per_class": collections.Counter()} for split in SPLITS}
    for g in groups:
        stats[g["split"]]["tensors"] += g["tensors"]
        stats[g["split"]]["hits_per_class"].update(g["hits_per_class"])
    return {split: {"tensors": s["tensors"], "hits_per_class": dict(s["hits_per_class"])} for split, s in stats.items()}


def shard_manifest(staging, groups, num_shards):
    """Writes shards.json from the groups' shard entries (every split, shards in order)."""
    by_key = {(g["split"], g["shard"]): g["shard_entry"] for g in groups}
    return shards.write_manifest(staging, {split: shards.split_entry([by_key[(split, k)] for k in range(num_shards)])
                                           for split in SPLITS})


def output_names(report):
    """The files a preprocess output folder holds, from its report (for the up-to-date check)."""
    n = (report.get("inputs") or {}).get("shards")
    if not n:
        return ["report.json"] + [f"{split}.{ext}" for split in SPLITS for ext in ("tfrecord", "npz")]
    return ["report.json", shards.MANIFEST] + [name(split, k, n) for split in SPLITS for k in range(n)
                                              for name in (shards.shard_name, shards.sequence_shard_name)]
