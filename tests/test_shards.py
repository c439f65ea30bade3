"""Sharded windows: preprocess --shards, the manifest, and training that streams them (order, resume, memory)."""
import json
import os
import threading
import time

import numpy as np
import pytest

import groovae.compat  # noqa: F401  (shims before TF)
from groovae import data, gmd, preprocess as pp, shards, stream, synthetic, train
from groovae.errors import DataError


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Own drum MIDI: 12 grooves of 8 bars in two folders, and one unreadable file."""
    root = tmp_path_factory.mktemp("corpus")
    synthetic.write_grooves(str(root / "a"), n=6, bars=8)
    synthetic.write_grooves(str(root / "b" / "c"), n=6, bars=8, seed=6)
    (root / "b" / "broken.mid").write_bytes(b"not MIDI")
    return str(root)


@pytest.fixture(scope="module")
def outputs(corpus, tmp_path_factory):
    """(npz dir, sharded dir, their reports): the same corpus preprocessed both ways (local runner)."""
    npz, sharded = str(tmp_path_factory.mktemp("npz")), str(tmp_path_factory.mktemp("sharded"))
    a = pp.preprocess(corpus, npz, workers=2, progress=False, split_ratios="0.6,0.2,0.2")
    b = pp.preprocess(corpus, sharded, workers=2, progress=False, split_ratios="0.6,0.2,0.2", num_shards=3)
    return npz, sharded, a, b


def test_shards_laid_end_to_end_are_the_npz(outputs):
    npz, sharded, a, b = outputs
    manifest = json.load(open(os.path.join(sharded, shards.MANIFEST)))
    for split in gmd.SPLITS:
        whole = data.load_tensors(os.path.join(npz, f"{split}.npz"))
        entry = manifest["splits"][split]
        assert [s["file"] for s in entry["shards"]] == [shards.shard_name(split, k, 3) for k in range(3)]
        assert entry["windows"] == len(whole["lengths"]) == sum(s["windows"] for s in entry["shards"])
        for s in entry["shards"]:
            from groovae import files
            assert files.sha256_of(os.path.join(sharded, s["file"])) == s["sha256"]
        back = shards.load_split(sharded, split)
        assert sorted(back) == sorted(whole)
        for key in whole:
            assert np.array_equal(back[key], whole[key]), (split, key)
        sequences = sum(len(pp.read_tfrecord_sequences(os.path.join(sharded, shards.sequence_shard_name(split, k, 3))))
                        for k in range(3))
        assert sequences == len(pp.read_tfrecord_sequences(os.path.join(npz, f"{split}.tfrecord")))
    assert a["totals"] == b["totals"] and a["rejected"] == b["rejected"]
    assert b["rejected"][0]["file"] == "b/broken.mid"
    assert not os.path.exists(os.path.join(sharded, "train.npz"))


def test_shard_of_gives_contiguous_runs_of_files():
    assert [shards.shard_of(i, 7, 3) for i in range(7)] == [0, 0, 0, 1, 1, 2, 2]
    assert [shards.shard_of(i, 2, 4) for i in range(2)] == [0, 2]  # fewer files than shards: some stay empty


def test_a_rerun_keeps_sharded_outputs_and_other_shard_counts_rebuild(corpus, outputs, capsys):
    _, sharded, _, b = outputs
    assert pp.preprocess(corpus, sharded, progress=False, split_ratios="0.6,0.2,0.2", num_shards=3) == b
    assert "up to date" in capsys.readouterr().err
    os.remove(os.path.join(sharded, shards.shard_name("test", 2, 3)))
    again = pp.preprocess(corpus, sharded, progress=False, split_ratios="0.6,0.2,0.2", num_shards=3)
    assert os.path.isfile(os.path.join(sharded, shards.shard_name("test", 2, 3))) and again["totals"] == b["totals"]


def _windows(n, depth=5):
    rng = np.random.RandomState(1)
    return {"inputs": rng.rand(n, 64, depth).astype(np.float32), "outputs": rng.rand(n, 64, depth).astype(np.float32),
            "lengths": np.arange(n, dtype=np.int32), "bpm": np.full(n, 100.0, np.float32),
            "source_id": np.array([f"f{i // 4}" for i in range(n)], "U64"), "start_bar": np.zeros(n, np.int32)}


@pytest.fixture(scope="module")
def many(tmp_path_factory):
    """400 windows in 5 shards, each window's ``lengths`` its row number."""
    folder = str(tmp_path_factory.mktemp("many"))
    tensors = _windows(400)
    entries = [shards.write_shard(os.path.join(folder, shards.shard_name("train", k, 5)),
                                  {key: v[k * 80:(k + 1) * 80] for key, v in tensors.items()}) for k in range(5)]
    shards.write_manifest(folder, {"train": shards.split_entry(entries)})
    return folder, shards.split_of(folder, "train")


def _rows(batches, steps):
    return [list(batches.batch(step)["lengths"]) for step in steps]


def test_stream_order_is_a_pure_function_of_seed_and_step(many):
    folder, entry = many
    whole = stream.ShardBatches(folder, entry, 8, seed=3, buffer=32)
    straight = _rows(whole, range(120))
    resumed = stream.ShardBatches(folder, entry, 8, seed=3, buffer=32)
    assert _rows(resumed, range(70, 120)) == straight[70:]  # a run resumed at step 70 (mid-epoch) goes on alike
    assert _rows(resumed, range(10, 12)) == straight[10:12]  # any step asked again gets its batch again
    flat = sum(straight, [])
    assert sorted(flat[:400]) == list(range(400)) and sorted(flat[400:800]) == list(range(400))  # each once per epoch
    assert flat[:400] != flat[400:800]  # epochs differ
    assert _rows(stream.ShardBatches(folder, entry, 8, seed=4, buffer=32), range(3)) != straight[:3]
    whole.close(), resumed.close()


def test_the_stream_holds_the_buffer_and_a_few_batches_never_the_split(many):
    """Records read from disk when 3 batches have been taken: at most the shuffle buffer, the interleave's blocks
    and the prefetched batches ahead of them, however large the split."""
    import tensorflow as tf
    folder, entry = many
    read, lock = [0], threading.Lock()

    def count(record):
        def bump(x):
            with lock:
                read[0] += 1
            return x
        return tf.py_function(bump, [record], tf.string)
    dataset = stream.build_dataset(shards.shard_paths(folder, entry), entry["layout"], entry["windows"], 4, 0, 0,
                                   buffer=16, cycle=2, prefetch=2, tap=count)
    iterator = iter(dataset)
    for _ in range(3):
        next(iterator)
    time.sleep(1.0)  # let the prefetching settle where it stops
    bound = 16 + (3 + 2 + 2) * 4 + 2 * 2  # buffer + (taken + prefetched + two being cut) batches + cycle blocks
    assert 3 * 4 <= read[0] <= bound < entry["windows"] // 4, read[0]


def test_train_streams_shards_and_a_resumed_run_sees_the_same_batches(outputs, tmp_path, monkeypatch):
    _, sharded, _, _ = outputs
    seen = {}
    original = train.TrainingSession.train_step

    def record(self, window_batch, want_summary):
        seen.setdefault(self.run_dir, []).append(data.fingerprint(window_batch)["sha256"])
        return original(self, window_batch, want_summary)
    monkeypatch.setattr(train.TrainingSession, "train_step", record)
    monkeypatch.setattr(data, "load_tensors", lambda path: pytest.fail(f"loaded {path} whole"))
    straight, stopped = str(tmp_path / "straight"), str(tmp_path / "stopped")
    result = train.train("groovae_tiny", sharded, straight, 12, progress=False, validate_every=6)
    train.train("groovae_tiny", sharded, stopped, 5, progress=False, validate_every=6)
    train.train("groovae_tiny", sharded, stopped, 12, progress=False, validate_every=6)
    assert seen[stopped] == seen[straight] and len(set(seen[straight])) > 1
    assert result["validation"]["loss"] > 0  # the validation split, read from its shards
    run = json.load(open(os.path.join(straight, "run.json")))
    assert run["data"]["sha256"].startswith("shards:") and run["data"]["windows"] == outputs[3]["splits"]["train"][
        "tensors"]


def test_a_missing_or_changed_shard_is_one_line(outputs, tmp_path):
    import shutil
    _, sharded, _, _ = outputs
    copy = str(tmp_path / "copy")
    shutil.copytree(sharded, copy)
    name = shards.shard_name("train", 1, 3)
    with open(os.path.join(copy, name), "ab") as f:
        f.write(b"x")
    with pytest.raises(DataError, match=f"{name}: sha256 differs from shards.json"):
        train.train("groovae_tiny", copy, str(tmp_path / "r"), 1, progress=False)
    os.remove(os.path.join(copy, name))
    with pytest.raises(DataError, match=f"{name}: shard missing"):
        train.train("groovae_tiny", copy, str(tmp_path / "r"), 1, progress=False)
    assert not os.path.exists(str(tmp_path / "r"))


def test_evaluate_reads_sharded_splits(outputs, tiny_run, tmp_path):
    from groovae import evaluate
    _, sharded, _, _ = outputs
    test_path, train_path = evaluate.data_paths(sharded)
    assert test_path == shards.split_ref(sharded, "test") and train_path == shards.split_ref(sharded, "train")
    test, train_windows, _ = evaluate.load_split(test_path, train_path)
    assert len(test["lengths"]) == outputs[3]["splits"]["test"]["tensors"] and list(train_windows) == ["outputs"]
