"""A sweep of bad inputs through the CLI: each gets a one-line answer (or is skipped with its reason), never a
traceback, and nothing that was there before is lost.  The README's "What bad input gets" table lists them.

Cases run ``cli.main`` in this process (TensorFlow loads once); an unexpected exception fails the case with
its traceback.  Faults that need a separate process (kill -9) are in test_train.py and test_preprocess.py.
"""
import io
import os
import shutil
import tarfile
import zipfile

import pretty_midi
import pytest

from groovae import checkpoints, cli, data, shards, synthetic
from tests.conftest import tiny_config
from tests.test_preprocess import INFO_HEADER, make_gmd_zip


def _write_midi(path, pm):
    pm.write(str(path))
    return str(path)


@pytest.fixture(scope="module")
def bad(tmp_path_factory, tiny_run, tiny_tensors_path):
    """Paths of bad inputs, made once, plus a working run to point them at."""
    d = tmp_path_factory.mktemp("bad")
    paths = {"run": tiny_run[0], "tensors": tiny_tensors_path, "dir": str(d)}
    (d / "corrupt.mid").write_bytes(b"MThd this is not really MIDI")
    (d / "empty.mid").write_bytes(b"")
    good = io.BytesIO()
    synthetic.make_groove(bars=4).write(good)
    (d / "truncated.mid").write_bytes(good.getvalue()[:50])
    piano = pretty_midi.PrettyMIDI()
    piano.instruments.append(pretty_midi.Instrument(0))
    piano.instruments[0].notes = [pretty_midi.Note(80, 60, k * 0.5, k * 0.5 + 0.4) for k in range(32)]
    paths["piano"] = _write_midi(d / "piano.mid", piano)
    waltz = synthetic.make_groove(bars=4)
    waltz.time_signature_changes = [pretty_midi.TimeSignature(3, 4, 0)]
    paths["waltz"] = _write_midi(d / "waltz.mid", waltz)
    paths["short"] = _write_midi(d / "short.mid", synthetic.make_groove(bars=2))
    paths["huge"] = _write_midi(d / "huge.mid", synthetic.make_groove(bars=400))
    paths["groove"] = _write_midi(d / "groove.mid", synthetic.make_groove(bars=4))
    for name in ("corrupt", "empty", "truncated"):
        paths[name] = str(d / f"{name}.mid")
    (d / "not_a_zip.zip").write_bytes(b"PK\x03\x04 nope")
    paths["not_a_zip"] = str(d / "not_a_zip.zip")
    zip_ok = make_gmd_zip(d / "groove.zip")
    paths["truncated_zip"] = str(d / "truncated.zip")
    with open(zip_ok, "rb") as f:
        (d / "truncated.zip").write_bytes(f.read()[:400])
    with zipfile.ZipFile(d / "slip.zip", "w") as z:
        z.writestr("groove/info.csv", ",".join(INFO_HEADER) + "\n")
        z.writestr("../../escaped.txt", "x")
    paths["slip_zip"] = str(d / "slip.zip")
    with zipfile.ZipFile(d / "noinfo.zip", "w") as z:
        z.writestr("groove/readme.txt", "no MIDI here")
    paths["noinfo_zip"] = str(d / "noinfo.zip")
    paths["gmd_zip"] = zip_ok
    (d / "nocsv").mkdir()
    paths["nocsv"] = str(d / "nocsv")
    (d / "own").mkdir()  # a folder of own drum MIDI whose split.csv names a split that does not exist
    _write_midi(d / "own" / "groove.mid", synthetic.make_groove(bars=4))
    (d / "own" / "split.csv").write_text("file,split\ngroove.mid,dev\n")
    paths["own"] = str(d / "own")
    (d / "kit.csv").write_text("pitch,class\n60,kik\n")
    paths["bad_map"] = str(d / "kit.csv")
    for name, members in (("evil", [("../evil.index", b"x")]), ("nockpt", [("README", b"hello")])):
        with tarfile.open(d / f"{name}.tar", "w") as tar:
            for member, payload in members:
                info = tarfile.TarInfo(member)
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))
        paths[f"{name}_tar"] = str(d / f"{name}.tar")
    (d / "not.npz").write_bytes(b"not numpy")
    paths["not_npz"] = str(d / "not.npz")
    (d / "bare").mkdir()  # the run's checkpoint without its run.json (as an old run or a download)
    prefix = checkpoints.newest_checkpoint(tiny_run[0])
    for name in os.listdir(tiny_run[0]):
        if name.startswith(os.path.basename(prefix) + "."):
            shutil.copy(os.path.join(tiny_run[0], name), d / "bare" / name)
    paths["bare"] = str(d / "bare")
    shutil.copytree(d / "bare", d / "cut")  # the same checkpoint with its weights file cut short (a broken copy)
    [weights] = [name for name in os.listdir(d / "cut") if ".data-" in name]
    os.truncate(d / "cut" / weights, os.path.getsize(d / "cut" / weights) // 2)
    paths["cut"] = str(d / "cut")
    (d / "flat_windows").mkdir()  # windows that preprocess made for groovae_tiny (no transform), as its report says
    shutil.copy(tiny_tensors_path, d / "flat_windows" / "train.npz")
    (d / "flat_windows" / "report.json").write_text('{"inputs": {"config": "groovae_tiny"}}')
    paths["flat_windows"] = str(d / "flat_windows")
    paths["tiny_humanize"] = tiny_config(str(d), "groovae_4bar_humanize")
    (d / "bad.json").write_text("{ not json")
    paths["bad_manifest"] = str(d / "bad.json")
    tensors = data.load_tensors(tiny_tensors_path)
    for name in ("shard_missing", "shard_changed"):  # sharded windows (preprocess --shards) with one shard gone/changed
        (d / name).mkdir()
        entry = shards.write_shard(str(d / name / shards.shard_name("train", 0, 1)), tensors)
        shards.write_manifest(str(d / name), {"train": shards.split_entry([entry])})
        paths[name] = str(d / name)
    os.remove(d / "shard_missing" / shards.shard_name("train", 0, 1))
    with open(d / "shard_changed" / shards.shard_name("train", 0, 1), "r+b") as f:
        f.write(b"\0")
    return paths


def _out(bad, name):
    return os.path.join(bad["dir"], "out", name)


GENERATE = ["generate", "--config", "groovae_tiny", "--checkpoint", "private", "--no_wav", "--no_progress"]
TRAIN = ["train", "--config", "groovae_tiny", "--no_progress"]

# (id, argv from the bad paths, expected exit code, text expected in the last stderr line)
CASES = [
    ("midi corrupt", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "reconstruct", "--inputs", b["corrupt"],
                                           "--output_dir", _out(b, "x")], 2, "corrupt.mid: unreadable MIDI"),
    ("midi empty", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "reconstruct", "--inputs", b["empty"],
                                         "--output_dir", _out(b, "x")], 2, "empty.mid: empty MIDI file"),
    ("midi truncated", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "reconstruct", "--inputs",
                                             b["truncated"], "--output_dir", _out(b, "x")], 2, "unreadable MIDI"),
    ("midi non-drum", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "reconstruct", "--inputs", b["piano"],
                                            "--output_dir", _out(b, "x")], 2, "piano.mid: no drum notes"),
    ("midi 3/4", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "reconstruct", "--inputs", b["waltz"],
                                       "--output_dir", _out(b, "x")], 2, "is not 4/4"),
    ("midi too short", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "reconstruct", "--inputs", b["short"],
                                             "--output_dir", _out(b, "x")], 2, "no 4-bar window"),
    ("midi huge", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "reconstruct", "--inputs", b["huge"],
                                        "--output_dir", _out(b, "x")], 2, "has 100 4-bar windows"),
    ("midi missing", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "reconstruct", "--inputs",
                                           b["dir"] + "/none.mid", "--output_dir", _out(b, "x")], 2, "cannot read"),
    ("midi is a folder", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "reconstruct", "--inputs", b["dir"],
                                               "--output_dir", _out(b, "x")], 2, "cannot read"),
    ("window out of range", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "reconstruct", "--inputs",
                                                  b["groove"], "--window", "3", "--output_dir", _out(b, "x")],
     2, "window 3 out of range"),
    ("interpolate one input", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "interpolate", "--inputs",
                                                    b["groove"], "--output_dir", _out(b, "x")], 2, "takes 2 input"),
    ("interpolate 1 step", lambda b: GENERATE + ["--run_dir", b["run"], "--mode", "interpolate", "--inputs",
                                                 b["groove"], b["groove"], "--steps", "1", "--output_dir",
                                                 _out(b, "x")], 2, "at least 2 steps"),
    ("n 0", lambda b: GENERATE + ["--run_dir", b["run"], "--n", "0", "--output_dir", _out(b, "x")], 2,
     "n must be 1..1000"),
    ("n huge", lambda b: GENERATE + ["--run_dir", b["run"], "--n", "100000000", "--output_dir", _out(b, "x")], 2,
     "n must be 1..1000"),
    ("temperature 0", lambda b: GENERATE + ["--run_dir", b["run"], "--temperature", "0", "--output_dir",
                                            _out(b, "x")], 2, "temperature must be a positive number"),
    ("temperature inf", lambda b: GENERATE + ["--run_dir", b["run"], "--temperature", "inf", "--output_dir",
                                              _out(b, "x")], 2, "temperature must be a positive number"),
    ("seed negative", lambda b: GENERATE + ["--run_dir", b["run"], "--seed", "-1", "--output_dir", _out(b, "x")], 2,
     "seed must be"),
    ("checkpoint missing", lambda b: ["generate", "--config", "groovae_tiny", "--checkpoint", b["dir"] + "/no/ckpt",
                                      "--output_dir", _out(b, "x")], 2, "no such checkpoint"),
    ("checkpoint of another config", lambda b: ["generate", "--config", "groovae_tiny_hier", "--checkpoint",
                                                b["bare"], "--output_dir", _out(b, "x"), "--no_wav"], 2,
     "looks like 'groovae_tiny'"),
    ("config disagrees with run.json", lambda b: ["generate", "--config", "groovae_tiny_hier", "--checkpoint",
                                                  b["run"], "--output_dir", _out(b, "x"), "--no_wav"], 2,
     "--config groovae_tiny_hier disagrees with"),
    ("hparams disagree with run.json", lambda b: ["generate", "--hparams", "z_size=8", "--checkpoint", b["run"],
                                                  "--output_dir", _out(b, "x"), "--no_wav"], 2,
     "--hparams 'z_size=8' disagrees with"),
    ("tar escaping its folder", lambda b: ["generate", "--config", "groovae_tiny", "--checkpoint", b["evil_tar"],
                                           "--output_dir", _out(b, "x"), "--cache_dir", _out(b, "cache")], 2,
     "outside the target folder"),
    ("tar without checkpoint", lambda b: ["generate", "--config", "groovae_tiny", "--checkpoint", b["nockpt_tar"],
                                          "--output_dir", _out(b, "x"), "--cache_dir", _out(b, "cache")], 2,
     "no checkpoint"),
    ("private without run dir or committed model", lambda b: ["generate", "--config", "groovae_tiny", "--checkpoint",
                                                              "private", "--output_dir", _out(b, "x")], 2,
     "means the model committed in checkpoints/groovae_tiny, and there is none"),
    ("source missing", lambda b: ["preprocess", "--source", b["dir"] + "/none.zip", "--output_dir", _out(b, "p")], 2,
     "no such file, folder or URL"),
    ("source not a zip", lambda b: ["preprocess", "--source", b["not_a_zip"], "--allow_unverified", "--output_dir",
                                    _out(b, "p"), "--cache_dir", _out(b, "cache")], 2, "not a readable zip"),
    ("source truncated zip", lambda b: ["preprocess", "--source", b["truncated_zip"], "--allow_unverified",
                                        "--output_dir", _out(b, "p"), "--cache_dir", _out(b, "cache")], 2,
     "not a readable zip"),
    ("zip slip", lambda b: ["preprocess", "--source", b["slip_zip"], "--allow_unverified", "--output_dir",
                            _out(b, "p"), "--cache_dir", _out(b, "cache")], 2, "outside the target folder"),
    ("zip without info.csv or MIDI", lambda b: ["preprocess", "--source", b["noinfo_zip"], "--output_dir",
                                                _out(b, "p"), "--cache_dir", _out(b, "cache")], 2, "no MIDI files"),
    ("unofficial zip unverified", lambda b: ["preprocess", "--source", b["truncated_zip"], "--output_dir",
                                             _out(b, "p"), "--cache_dir", _out(b, "cache")], 2, "allow_unverified"),
    ("folder without info.csv or MIDI", lambda b: ["preprocess", "--source", b["nocsv"], "--output_dir",
                                                   _out(b, "p")], 2, "no MIDI files"),
    ("split.csv unknown split", lambda b: ["preprocess", "--source", b["own"], "--output_dir", _out(b, "p")], 2,
     "split.csv: line 2: unknown split 'dev'"),
    ("split_ratios bad", lambda b: ["preprocess", "--source", b["own"], "--split_ratios", "1,x,1", "--output_dir",
                                    _out(b, "p")], 2, "--split_ratios is '1,x,1'"),
    ("split_ratios for the GMD", lambda b: ["preprocess", "--source", b["gmd_zip"], "--allow_unverified",
                                            "--split_ratios", "1,0,0", "--output_dir", _out(b, "p")], 2,
     "keeps its own split"),
    ("drum_map bad class", lambda b: ["preprocess", "--source", b["own"], "--drum_map", b["bad_map"], "--output_dir",
                                      _out(b, "p")], 2, "kit.csv: line 2: unknown class 'kik'"),
    ("drum_map missing", lambda b: ["preprocess", "--source", b["own"], "--drum_map", b["dir"] + "/none.csv",
                                    "--output_dir", _out(b, "p")], 2, "cannot read the drum map"),
    ("drum_channel 0", lambda b: ["preprocess", "--source", b["own"], "--drum_channel", "0", "--output_dir",
                                  _out(b, "p")], 2, "--drum_channel is 0"),
    ("max_files 0", lambda b: ["preprocess", "--source", b["nocsv"], "--max_files", "0", "--output_dir",
                               _out(b, "p")], 2, "--max_files"),
    ("shards 0", lambda b: ["preprocess", "--source", b["nocsv"], "--shards", "0", "--output_dir", _out(b, "p")], 2,
     "--shards is 0"),
    ("beam_options unparsable", lambda b: ["preprocess", "--source", b["nocsv"], "--runner", "beam",
                                           "--beam_options=--runner='Dataflow", "--output_dir", _out(b, "p")], 2,
     "cannot parse (No closing quotation)"),
    ("beam_options without --runner beam", lambda b: ["preprocess", "--source", b["nocsv"],
                                                      "--beam_options=--runner=DataflowRunner", "--output_dir", _out(b, "p")], 2,
     "--beam_options is for --runner beam"),
    ("train shard missing", lambda b: TRAIN + ["--data", b["shard_missing"], "--run_dir", _out(b, "r1"),
                                               "--num_steps", "1"], 2, "train-00000-of-00001.tfrecord: shard missing"),
    ("train shard with another sha256", lambda b: TRAIN + ["--data", b["shard_changed"], "--run_dir", _out(b, "r1"),
                                                           "--num_steps", "1"], 2,
     "train-00000-of-00001.tfrecord: sha256 differs from shards.json's"),
    ("evaluate shards without a test split", lambda b: ["evaluate", "--config", "groovae_tiny", "--run_dir", b["run"],
                                                        "--data", b["shard_changed"], "--output_dir", _out(b, "e")], 2,
     "shards.json: no 'test' split"),
    ("windows of sharded data", lambda b: ["windows", "--data", b["shard_changed"], "--split", "train", "--output_dir",
                                           _out(b, "w")], 2, "the windows there are TFRecord shards"),
    ("workers 0", lambda b: ["preprocess", "--source", b["nocsv"], "--workers", "0", "--output_dir", _out(b, "p")], 2,
     "--workers"),
    ("train data missing", lambda b: TRAIN + ["--data", b["dir"] + "/none.npz", "--run_dir", _out(b, "r1"),
                                              "--num_steps", "1"], 2, "no such tensor file"),
    ("train data not npz", lambda b: TRAIN + ["--data", b["not_npz"], "--run_dir", _out(b, "r1"), "--num_steps", "1"],
     2, "not a groovae tensor file"),
    ("validate_every 0", lambda b: TRAIN + ["--data", b["tensors"], "--run_dir", _out(b, "r1"), "--num_steps", "1",
                                            "--validate_every", "0"], 2, "--validate_every is 0"),
    ("num_steps negative", lambda b: TRAIN + ["--data", b["tensors"], "--run_dir", _out(b, "r1"), "--num_steps",
                                              "-5"], 2, "--num_steps is -5"),
    ("checkpoint_every_secs negative", lambda b: TRAIN + ["--data", b["tensors"], "--run_dir", _out(b, "r1"),
                                                          "--num_steps", "1", "--checkpoint_every_secs", "-1"], 2,
     "--checkpoint_every_secs is -1"),
    ("unknown config", lambda b: TRAIN[:1] + ["--config", "nope", "--data", b["tensors"], "--run_dir", _out(b, "r1"),
                                              "--num_steps", "1"], 2, "unknown config 'nope'"),
    ("bad hparams", lambda b: TRAIN + ["--data", b["tensors"], "--run_dir", _out(b, "r1"), "--num_steps", "1",
                                       "--hparams", "no_such_thing=3"], 2, "bad --hparams"),
    ("init_from missing", lambda b: TRAIN + ["--data", b["tensors"], "--run_dir", _out(b, "r2"), "--num_steps", "1",
                                             "--init_from", b["dir"] + "/none"], 2, "no such checkpoint"),
    ("init_from of another model", lambda b: ["train", "--config", "groovae_4bar", "--data", b["tensors"],
                                                "--run_dir", _out(b, "r2"), "--num_steps", "1", "--init_from",
                                                b["run"], "--no_progress"], 2,
     "of 'groovae_4bar' (same name and shape); not a start point for it; it looks like 'groovae_tiny'"),
    ("init_from private without a committed model", lambda b: TRAIN + ["--data", b["tensors"], "--run_dir",
                                                                        _out(b, "r2"), "--num_steps", "1",
                                                                        "--init_from", "private"], 2,
     "--init_from: 'private' without a run dir means the model committed in checkpoints/groovae_tiny"),
    ("export into a folder with other files", lambda b: ["export", b["run"], "--output_dir", b["dir"]], 2,
     "exists with other files"),
    ("export a checkpoint cut short", lambda b: ["export", b["cut"], "--config", "groovae_tiny", "--output_dir",
                                                 _out(b, "x1")], 2, "cut/model.ckpt-40: unreadable checkpoint"),
    ("export a checkpoint cut short to magenta.js", lambda b: ["export", b["cut"], "--config", "groovae_tiny",
                                                               "--format", "magenta-js", "--output_dir", _out(b, "x2")],
     2, "cut/model.ckpt-40: unreadable checkpoint"),
    ("export a missing checkpoint", lambda b: ["export", b["dir"] + "/none", "--output_dir", _out(b, "x1")], 2,
     "no such checkpoint"),
    ("export with an unknown config", lambda b: ["export", b["bare"], "--config", "nope", "--format", "magenta-js",
                                                 "--output_dir", _out(b, "x2")], 2, "unknown config 'nope'"),
    ("train on windows made for another converter", lambda b: ["train", "--config", b["tiny_humanize"], "--data",
                                                               b["flat_windows"], "--run_dir", _out(b, "r3"),
                                                               "--num_steps", "1", "--no_progress"], 2,
     "windows made for groovae_tiny, whose converter differs from"),
    ("export into a file", lambda b: ["export", b["run"], "--output_dir", b["tensors"]], 2, "is a file"),
    ("lab of a folder that is not an export", lambda b: ["lab", b["dir"], "--output_dir", _out(b, "lab")], 2,
     "not a magenta.js export (config.json missing"),
    ("lab of a training run", lambda b: ["lab", b["run"], "--output_dir", _out(b, "lab")], 2,
     "not a magenta.js export"),
    ("fit-prior without windows", lambda b: ["fit-prior", b["run"], "--data", b["dir"]], 2,
     "train.npz: no such tensor file"),
    ("fit-prior on a tensor file", lambda b: ["fit-prior", b["run"], "--data", b["tensors"]], 2,
     "no such tensor file"),
    ("sample a data prior never fitted", lambda b: GENERATE + ["--run_dir", b["run"], "--prior", "data",
                                                               "--output_dir", _out(b, "p")], 2,
     "no data prior beside it"),
    ("init_from its own run", lambda b: TRAIN + ["--data", b["tensors"], "--run_dir", b["run"], "--num_steps", "50",
                                                 "--init_from", b["run"]], 2, "this run's own checkpoint"),
    ("run dir of another config", lambda b: ["train", "--config", "groovae_tiny_hier", "--data", b["tensors"],
                                             "--run_dir", b["run"], "--num_steps", "50", "--no_progress"], 2,
     "holds a run of config 'groovae_tiny'"),
    ("summary of a non-run", lambda b: ["summary", "--run_dir", b["dir"]], 2, "not a training run dir"),
    ("evaluate test missing", lambda b: ["evaluate", "--config", "groovae_tiny", "--run_dir", b["run"], "--test",
                                         b["dir"] + "/none.npz", "--output_dir", _out(b, "e")], 2,
     "no such tensor file"),
    ("evaluate temperature 0", lambda b: ["evaluate", "--config", "groovae_tiny", "--run_dir", b["run"], "--test",
                                          b["tensors"], "--temperatures", "0.5", "0", "--output_dir", _out(b, "e")], 2,
     "temperature must be a positive number"),
    ("evaluate n_samples negative", lambda b: ["evaluate", "--config", "groovae_tiny", "--run_dir", b["run"],
                                               "--test", b["tensors"], "--n_samples", "-1", "--output_dir",
                                               _out(b, "e")], 2, "n_samples must be"),
    ("evaluate batch_size 0", lambda b: ["evaluate", "--config", "groovae_tiny", "--run_dir", b["run"], "--test",
                                         b["tensors"], "--batch_size", "0", "--output_dir", _out(b, "e")], 2,
     "batch_size must be"),
    ("humanize a beat that is missing", lambda b: ["humanize", b["dir"] + "/none.mid", "--run_dir", b["run"],
                                                   "--output_dir", _out(b, "h")], 2, "none.mid: cannot read"),
    ("humanize a 3/4 beat", lambda b: ["humanize", b["waltz"], "--run_dir", b["run"], "--output_dir", _out(b, "h")], 2,
     "time signature 3/4; the models' bars are 4/4"),
    ("humanize with a flat model", lambda b: ["humanize", b["groove"], "--run_dir", b["run"], "--output_dir",
                                              _out(b, "h")], 2, "humanize needs one trained on that transform"),
    ("drumify a file without notes", lambda b: ["drumify", b["empty"], "--run_dir", b["run"], "--output_dir",
                                                _out(b, "h")], 2, "empty MIDI file"),
    ("drumify a 2-bar rhythm", lambda b: ["drumify", b["short"], "--run_dir", b["run"], "--output_dir", _out(b, "h")],
     2, "2 bars at 120 bpm; the models play 4-bar windows"),
    ("evaluate-beat unknown mode", lambda b: ["evaluate-beat", "--data", f"groove={b['dir']}", "--output_dir",
                                               _out(b, "eb")], 2, "unknown mode groove; modes: humanize"),
    ("evaluate-beat data without a mode", lambda b: ["evaluate-beat", "--data", b["dir"], "--output_dir",
                                                      _out(b, "eb")], 2, "--data takes MODE=VALUE items"),
    ("windows data missing", lambda b: ["windows", "--data", b["dir"] + "/none.npz", "--output_dir", _out(b, "w")], 2,
     "no such tensor file"),
    ("windows index out of range", lambda b: ["windows", "--data", b["tensors"], "--config", "groovae_tiny", "--indices",
                                              "99", "--output_dir", _out(b, "w"), "--no_wav"], 2,
     "window index 99 out of range"),
    ("generate into a file", lambda b: GENERATE + ["--run_dir", b["run"], "--output_dir", b["groove"]], 2,
     "groove.mid: is a file; --output_dir must be a folder"),
    ("generate into a folder below a file", lambda b: GENERATE + ["--run_dir", b["run"], "--output_dir",
                                                                  b["groove"] + "/out"], 2,
     "groove.mid is a file, so no folder can be made there"),
    ("humanize into a file", lambda b: ["humanize", b["groove"], "--run_dir", b["run"], "--output_dir", b["groove"]],
     2, "groove.mid: is a file"),
    ("drumify into a file", lambda b: ["drumify", b["groove"], "--run_dir", b["run"], "--output_dir", b["groove"]], 2,
     "groove.mid: is a file"),
    ("windows into a file", lambda b: ["windows", "--data", b["tensors"], "--config", "groovae_tiny", "--output_dir",
                                       b["groove"], "--no_wav"], 2, "groove.mid: is a file"),
    ("preprocess into a file", lambda b: ["preprocess", "--source", b["own"], "--output_dir", b["groove"]], 2,
     "groove.mid: is a file"),
    ("evaluate into a file", lambda b: ["evaluate", "--config", "groovae_tiny", "--run_dir", b["run"], "--test",
                                        b["tensors"], "--output_dir", b["groove"]], 2, "groove.mid: is a file"),
    ("train run dir is a file", lambda b: TRAIN + ["--data", b["tensors"], "--run_dir", b["groove"], "--num_steps",
                                                   "1"], 2, "groove.mid: is a file; --run_dir must be a folder"),
    ("regenerate missing manifest", lambda b: ["regenerate", b["dir"] + "/none.json", "--output_dir", _out(b, "g")],
     2, "no such manifest"),
    ("regenerate corrupt manifest", lambda b: ["regenerate", b["bad_manifest"], "--output_dir", _out(b, "g")], 2,
     "not a groovae manifest"),
]


class _AnyPath(dict):
    """Stands in for the ``bad`` fixture where only a case's command is read."""

    def __missing__(self, key):
        return "x"


BAD_NAMES = _AnyPath()


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_line(case, bad, capsys):
    name, argv, code, message = case
    before = sorted(os.listdir(bad["run"]))
    try:
        got = cli.main(argv(bad))
    except SystemExit as e:  # argparse's own usage errors
        got = e.code
    err = capsys.readouterr().err.strip().splitlines()
    assert got == code, err[-3:]
    assert err and message in err[-1], err[-3:]
    assert "Traceback" not in "\n".join(err)
    assert sorted(os.listdir(bad["run"])) == before  # the run it pointed at lost nothing


def test_sweep_reaches_every_command_that_reads_input():
    """Every command but listen (a folder of our own outputs; tests/test_listen.py) has bad-input cases."""
    swept = {argv(BAD_NAMES)[0] for _, argv, _, _ in CASES}
    commands = set(cli.command_names())
    assert commands - swept == {"listen"}, commands - swept
