"""Generation: modes, outputs, manifest reproducibility, checkpoints, bad input."""
import io
import os
import re
import shutil
import tarfile

import note_seq
import numpy as np
import pretty_midi
import pytest
import tensorflow.compat.v1 as tf

from groovae import checkpoints, data, files, generate, manifest, model, synthetic, train
from groovae.errors import DataError
from tests.conftest import interrupt, needs_audio, run_with_fault, start_with_fault, tree, wait_for_marker


@pytest.fixture(scope="module")
def tiny_model(tiny_run):
    run_dir, _ = tiny_run
    return model.GrooveModel("groovae_tiny", checkpoints.resolve_checkpoint("private", run_dir))


@pytest.fixture(scope="module")
def four_bar_midi(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    paths = {}
    for name, bars, seed in (("a", 4, 1), ("b", 4, 2), ("long", 8, 3), ("short", 2, 4)):
        paths[name] = str(folder / f"{name}.mid")
        synthetic.make_groove(bars=bars, seed=seed).write(paths[name])
    return paths


def _generate_argv(tiny_run, out):
    """The command line of a quick generate run of the tiny model into ``out``."""
    return ["generate", "--config", "groovae_tiny", "--checkpoint", "private", "--run_dir", tiny_run[0], "--no_wav",
            "--no_progress", "--output_dir", str(out)]


@needs_audio
def test_sample_outputs_and_manifest_regenerate_bit_for_bit(tiny_model, tmp_path):
    out = str(tmp_path / "a")
    entry = generate.generate("groovae_tiny", tiny_model.checkpoint, out, "sample", n=3, temperature=0.5, seed=7,
                              model=tiny_model)
    prefix = entry["prefix"]
    assert re.fullmatch(r"sample_t0\.5_s7_[0-9a-f]{6}", prefix)
    names = sorted(entry["files"])
    assert names == sorted(f"{prefix}_{i:02d}.{ext}" for i in range(3) for ext in ("mid", "wav", "png"))
    assert sorted(os.listdir(out)) == sorted(names + ["manifest.json"])  # no staging left behind
    for name in names:
        assert os.path.getsize(os.path.join(out, name)) > 100
    sequence = note_seq.midi_file_to_note_sequence(os.path.join(out, f"{prefix}_00.mid"))  # the file as written
    assert sequence.notes and all(n.is_drum for n in sequence.notes)
    recorded = manifest.read_manifest(out)[0]
    assert recorded["checkpoint_sha256"] == checkpoints.checkpoint_sha256(tiny_model.checkpoint)
    assert recorded["versions"]["tensorflow"] and recorded["versions"]["magenta"] == "2.1.4"
    again = generate.regenerate(recorded, str(tmp_path / "b"), out)  # a fresh model, as a user would
    assert again["files"] == recorded["files"]


def test_manifest_regenerates_after_moving_everything(tiny_run, four_bar_midi, tmp_path):
    """Checkpoint and inputs are recorded relative to the manifest, with sha256 and hparams."""
    run_dir, _ = tiny_run
    project = tmp_path / "project"
    shutil.copytree(run_dir, project / "run")
    shutil.copy(four_bar_midi["a"], project / "a.mid")
    shutil.copy(four_bar_midi["b"], project / "b.mid")
    out = project / "samples"
    prefix = checkpoints.resolve_checkpoint("private", str(project / "run"))
    generate.generate("groovae_tiny", prefix, str(out), "interpolate", inputs=[str(project / "a.mid"),
                      str(project / "b.mid")], steps=3, wav=False, source="private")
    entry = manifest.read_manifest(str(out))[0]
    assert entry["checkpoint"] == os.path.join("..", "run", os.path.basename(prefix))
    assert [i["path"] for i in entry["inputs"]] == [os.path.join("..", "a.mid"), os.path.join("..", "b.mid")]
    assert entry["hparams"] == "" and entry["checkpoint_step"] == 40
    assert str(tmp_path) not in open(out / "manifest.json").read()
    moved = tmp_path / "elsewhere" / "project"
    shutil.move(str(project), str(moved))
    again = generate.regenerate(entry, str(tmp_path / "again"), str(moved / "samples"))
    assert again["files"] == entry["files"]
    with open(moved / "a.mid", "ab") as f:
        f.write(b"\0")
    with pytest.raises(generate.GenerateError, match="a.mid: input missing or changed"):
        generate.regenerate(entry, str(tmp_path / "again2"), str(moved / "samples"))


def test_regenerate_refuses_another_checkpoint(tiny_run, tiny_tensors_path, tmp_path):
    run_dir, _ = tiny_run
    out = str(tmp_path / "out")
    generate.generate("groovae_tiny", checkpoints.resolve_checkpoint("private", run_dir), out, n=1, wav=False, png=False)
    entry = manifest.read_manifest(out)[0]
    other = str(tmp_path / "other")
    train.train("groovae_tiny", tiny_tensors_path, other, num_steps=2, progress=False)
    with pytest.raises(generate.GenerateError, match="is not the .* this manifest's grooves came from"):
        generate.regenerate(entry, str(tmp_path / "x"), out, checkpoint=other)


def test_rerun_replaces_its_files_and_other_runs_stay(tiny_model, tmp_path):
    out = str(tmp_path)
    first = generate.generate("groovae_tiny", tiny_model.checkpoint, out, n=4, wav=False, model=tiny_model)
    other = generate.generate("groovae_tiny", tiny_model.checkpoint, out, n=2, seed=1, wav=False, model=tiny_model)
    again = generate.generate("groovae_tiny", tiny_model.checkpoint, out, n=2, wav=False, model=tiny_model)
    assert again["prefix"] == first["prefix"] != other["prefix"]
    assert sorted(os.listdir(out)) == sorted(["manifest.json", *again["files"], *other["files"]])  # _02, _03 gone
    assert [r["prefix"] for r in manifest.read_manifest(out)] == [other["prefix"], again["prefix"]]


def test_failed_run_leaves_no_files(tiny_model, tmp_path, monkeypatch):
    from groovae import plots
    out = str(tmp_path)
    generate.generate("groovae_tiny", tiny_model.checkpoint, out, n=1, seed=5, wav=False, model=tiny_model)
    before = sorted(os.listdir(out))

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")
    monkeypatch.setattr(plots, "save_figure", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        generate.generate("groovae_tiny", tiny_model.checkpoint, out, n=3, wav=False, model=tiny_model)
    assert sorted(os.listdir(out)) == before


@pytest.mark.parametrize("signum, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_run_removes_its_staging_and_keeps_the_folder(tiny_run, tmp_path, signum, code):
    """Ctrl-C (to the whole process group, as a terminal sends it) or SIGTERM while a run writes its files:
    its staging folder is removed, the folder keeps the earlier run whole, one line, the shell's exit code."""
    from groovae import cli
    out = str(tmp_path / "out")
    argv = _generate_argv(tiny_run, out)
    assert cli.main(argv + ["--n", "2"]) == 0
    before = tree(out)
    marker = tmp_path / "stalled"
    proc = start_with_fault(argv + ["--n", "3", "--seed", "1"], "groovae.plots.save_figure", "stall", marker)
    err = interrupt(proc, signum, marker)
    assert proc.returncode == code, err[-2000:]
    lines = err.strip().splitlines()
    assert lines[-1] == f"groovae generate: interrupted; nothing written, {out} as before", err[-2000:]
    assert "Traceback" not in err
    assert tree(out) == before  # no staging folder, no file of the stopped run, the manifest as it was


def test_an_interrupt_while_the_run_is_put_in_place_waits_for_it(tiny_run, tmp_path):
    """SIGTERM arriving while a run's files are moved in and its manifest not yet written: held until the manifest
    is written, then acted on, and the line says the folder has the run, whole."""
    out = str(tmp_path / "out")
    marker = tmp_path / "committing"
    proc = start_with_fault(_generate_argv(tiny_run, out) + ["--n", "2"], "groovae.manifest.write_manifest", "wait",
                            marker)
    wait_for_marker(proc, marker)
    proc.terminate()
    (tmp_path / "committing.go").touch()
    err = proc.communicate(timeout=300)[1]
    assert proc.returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == f"groovae generate: interrupted; {out} has this run's outputs, whole " \
                                           "(they were being put in place)"
    [run] = manifest.read_manifest(out)
    assert sorted(os.listdir(out)) == sorted(["manifest.json", *run["files"]])
    assert all(files.sha256_of(os.path.join(out, name)) == sha for name, sha in run["files"].items())


@pytest.mark.parametrize("target, fault, reason", [
    ("groovae.plots.save_figure", "fsize@2", "File too large"),  # a real failed write, met on flush
    ("groovae.files.atomic_write", "ENOSPC", "No space left on device")])
def test_a_full_disk_is_one_line_naming_the_file_and_the_folder_keeps_the_earlier_run(tiny_run, tmp_path, target,
                                                                                     fault, reason):
    from groovae import cli
    out = str(tmp_path / "out")
    argv = _generate_argv(tiny_run, out)
    assert cli.main(argv + ["--n", "2"]) == 0
    before = tree(out)
    code, err = run_with_fault(argv + ["--n", "3", "--seed", "1"], target, fault, tmp_path / "marker")
    assert code == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(rf"groovae generate: error: {re.escape(out)}/\S+\.(png|mid): cannot write \({reason}\); "
                        rf"nothing written, {re.escape(out)} as before", last), last
    assert "Traceback" not in err
    assert tree(out) == before


def test_staging_of_a_killed_run_is_cleaned_by_the_next_run_and_a_live_runs_is_not(tiny_run, tmp_path):
    """A run stalled while writing holds its .staging-*.tmp: another run into the folder leaves it alone; once it
    is killed (-9), the next run removes it, and a staging folder left by a killed older version too."""
    import signal
    from groovae import cli
    out = tmp_path / "out"
    argv = _generate_argv(tiny_run, out)
    marker = tmp_path / "stalled"
    proc = start_with_fault(argv + ["--n", "3"], "groovae.plots.save_figure", "stall", marker)
    wait_for_marker(proc, marker)
    live = sorted(name for name in os.listdir(out) if name.startswith(".staging-"))
    assert [name.rsplit(".", 1)[1] for name in live] == ["lock", "tmp"], live
    assert cli.main(argv + ["--seed", "1"]) == 0  # a run beside it
    assert set(live) <= set(os.listdir(out))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (out / ".staging-0ld_vers").mkdir()  # as tempfile.TemporaryDirectory named them before the locks
    (out / ".staging-0ld_vers" / "sample_00.mid").write_bytes(b"MThd")
    assert cli.main(argv + ["--seed", "2"]) == 0
    runs = manifest.read_manifest(str(out))
    assert sorted(os.listdir(out)) == sorted(["manifest.json"] + [f for r in runs for f in r["files"]])
    assert [r["seed"] for r in runs] == [1, 2]


def test_two_runs_into_one_folder_at_once_both_get_their_entry(tiny_run, tmp_path):
    """Two real processes commit into one folder at the same time: the second waits for the first's commit (the
    folder's lock) and reads its entry, so neither is lost."""
    out = tmp_path / "out"
    argv = _generate_argv(tiny_run, out)
    first, second = tmp_path / "first", tmp_path / "second"
    a = start_with_fault(argv + ["--seed", "1"], "groovae.manifest.write_manifest", "wait", first)
    wait_for_marker(a, first)  # a's files are in the folder, its manifest about to be written
    b = start_with_fault(argv + ["--seed", "2"], "groovae.outputs.replace_run", "touch", second)
    wait_for_marker(b, second)  # b has written its files and commits them now
    (tmp_path / "first.go").touch()
    for proc in (a, b):
        err = proc.communicate(timeout=300)[1]
        assert proc.returncode == 0, err[-2000:]
    runs = manifest.read_manifest(str(out))
    assert sorted(r["seed"] for r in runs) == [1, 2]
    assert sorted(os.listdir(out)) == sorted(["manifest.json"] + [f for r in runs for f in r["files"]])


def test_a_run_killed_in_its_commit_is_undone_by_the_next_run(tiny_run, tmp_path):
    """kill -9 after a rerun moved its files in (two replacing the earlier run's, one new) and before its manifest
    was written: the next run into the folder puts the earlier run's files back and removes the unlisted one."""
    import signal
    from groovae import cli
    out = tmp_path / "out"
    argv = _generate_argv(tiny_run, out)
    assert cli.main(argv + ["--n", "2"]) == 0
    before = tree(out)
    [earlier] = manifest.read_manifest(str(out))
    marker = tmp_path / "committing"
    proc = start_with_fault(argv + ["--n", "3"], "groovae.manifest.write_manifest", "wait", marker)  # same prefix
    wait_for_marker(proc, marker)
    assert os.path.exists(out / f"{earlier['prefix']}_02.mid")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert cli.main(argv + ["--seed", "5"]) == 0
    runs = manifest.read_manifest(str(out))
    assert runs[0] == earlier and [r["seed"] for r in runs] == [0, 5]
    after = tree(out)
    assert {k: v for k, v in after.items() if k not in runs[1]["files"] and k != "manifest.json"} == \
        {k: v for k, v in before.items() if k != "manifest.json"}


def test_a_full_disk_at_the_commit_puts_the_folder_back(tiny_run, tmp_path):
    """The manifest cannot be written (the commit): the rerun's files, moved in already, go out again and the
    earlier run's come back."""
    from groovae import cli
    out = tmp_path / "out"
    argv = _generate_argv(tiny_run, out)
    assert cli.main(argv + ["--n", "2"]) == 0
    before = tree(out)
    code, err = run_with_fault(argv + ["--n", "3"], "groovae.manifest.write_manifest", "ENOSPC", tmp_path / "m")
    assert code == 2, err[-2000:]
    assert err.strip().splitlines()[-1] == (f"groovae generate: error: {out}: cannot write (No space left on "
                                            f"device); nothing written, {out} as before")
    assert tree(out) == before


def test_same_seed_same_grooves_other_seed_other_grooves(tiny_model):
    a = generate.sample(tiny_model, n=2, temperature=1.0, seed=3)
    b = generate.sample(tiny_model, n=2, temperature=1.0, seed=3)
    c = generate.sample(tiny_model, n=2, temperature=1.0, seed=4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (2, 64, 27)


def test_interpolate_and_reconstruct(tiny_model, four_bar_midi, tmp_path):
    entry = generate.generate("groovae_tiny", tiny_model.checkpoint, str(tmp_path), "interpolate", steps=4,
                              inputs=[four_bar_midi["a"], four_bar_midi["long"]], windows=[None, 1],
                              wav=False, model=tiny_model)
    assert len([f for f in entry["files"] if f.endswith(".mid")]) == 4
    assert entry["inputs"][1]["window"] == 1
    entry = generate.generate("groovae_tiny", tiny_model.checkpoint, str(tmp_path), "reconstruct",
                              inputs=[four_bar_midi["b"]], wav=False, png=False, model=tiny_model)
    assert list(entry["files"]) == [entry["prefix"] + "_00.mid"] and entry["prefix"].startswith("recon_t0.5_s0_")


def test_inputs_on_another_channel_or_kit_read_with_drum_channel_and_drum_map(tiny_run, four_bar_midi, tmp_path,
                                                                              capsys):
    """The same groove on MIDI channel 1, or on a kit's own pitches: refused as preprocess refuses it, read with
    --drum_channel / --drum_map into the same grooves, recorded so that regenerate reads it alike."""
    from groovae import cli
    from groovae.gmd import DRUM_CLASSES
    channel1, kit = pretty_midi.PrettyMIDI(four_bar_midi["a"]), pretty_midi.PrettyMIDI(four_bar_midi["a"])
    channel1.instruments[0].is_drum = False
    channel1.write(str(tmp_path / "channel1.mid"))
    pitches = sorted({n.pitch for n in kit.instruments[0].notes})
    for note in kit.instruments[0].notes:
        note.pitch = 60 + pitches.index(note.pitch)
    kit.write(str(tmp_path / "kit.mid"))
    (tmp_path / "kit.csv").write_text("".join(f"{60 + k},{DRUM_CLASSES[data.default_drum_map()[p]]}\n"
                                              for k, p in enumerate(pitches)))
    argv = ["generate", "--config", "groovae_tiny", "--checkpoint", "private", "--run_dir", tiny_run[0], "--mode",
            "reconstruct", "--no_wav", "--no_png", "--no_progress"]
    out = str(tmp_path / "out")
    assert cli.main(argv + ["--inputs", four_bar_midi["a"], "--output_dir", out]) == 0
    assert cli.main(argv + ["--inputs", str(tmp_path / "channel1.mid"), "--output_dir", out]) == 2
    assert "channel1.mid: no drum notes" in capsys.readouterr().err
    assert cli.main(argv + ["--inputs", str(tmp_path / "channel1.mid"), "--drum_channel", "1", "--output_dir", out]) == 0
    assert cli.main(argv + ["--inputs", str(tmp_path / "kit.mid"), "--drum_map", str(tmp_path / "kit.csv"),
                            "--output_dir", out]) == 0
    runs = manifest.read_manifest(out)
    grooves = [open(os.path.join(out, f"{r['prefix']}_00.mid"), "rb").read() for r in runs]
    assert len({r["prefix"] for r in runs}) == 3 and grooves[1] == grooves[0] == grooves[2]
    assert runs[1]["drum_channel"] == 1 and runs[2]["drum_map"] and "drum_map" not in runs[0]
    for entry in runs[1:]:
        assert generate.regenerate(entry, str(tmp_path / "again"), out)["files"] == entry["files"]
    assert cli.main([a for a in argv if a not in ("--mode", "reconstruct")] + ["--drum_channel", "1", "--output_dir",
                                                                             out]) == 2
    assert "sample mode has none" in capsys.readouterr().err


def test_dataset_windows_export_as_midi_that_reads_back_as_the_same_grooves(tiny_model, tiny_tensors_path, tmp_path):
    from groovae import cli
    from groovae.metrics import split_groove
    tensors = data.load_tensors(tiny_tensors_path)
    tensors["source_id"] = np.arange(16) // 2  # two windows per file, as preprocess records them
    picked = generate.pick_windows(tensors, 3, seed=0, min_hits_per_bar=1)
    assert picked == generate.pick_windows(tensors, 3, seed=0, min_hits_per_bar=1) and picked == sorted(picked)
    assert len(set(tensors["source_id"][picked])) == 3  # from distinct files
    with pytest.raises(generate.GenerateError, match="only 8 windows from distinct files"):
        generate.pick_windows(tensors, 9, seed=0, min_hits_per_bar=1)
    names = generate.export_windows("groovae_tiny", tiny_tensors_path, str(tmp_path), indices=picked, wav=False)
    assert names == [f"train_window_{i:05d}.{ext}" for i in picked for ext in ("mid", "png")]
    [run] = manifest.read_manifest(str(tmp_path))  # recorded, so the listening page says what they are
    assert run["mode"] == "windows" and run["data"] == "train.npz" and run["seed"] is None  # indices given
    assert [w["index"] for w in run["windows"]] == picked and sorted(run["files"]) == sorted(names)
    assert [w["midi"] for w in run["windows"]] == [f"train_window_{i:05d}.mid" for i in picked]
    assert run["data_sha256"] == files.sha256_of(tiny_tensors_path) and run["bars"] == 4
    assert all("source_id" not in w for w in run["windows"])  # a bare tensor file records none
    with pytest.raises(generate.GenerateError, match=r"holds windows of train.npz, not a model's grooves; write them "
                       r"again with groovae windows --data DATA_DIR --split train --config groovae_tiny --indices "
                       + " ".join(map(str, picked)) + " --output_dir OUT_DIR --no_wav$"):
        generate.regenerate(run, str(tmp_path / "again"), str(tmp_path))
    for index in picked:
        groove = generate.pick_window(str(tmp_path / f"train_window_{index:05d}.mid"), tiny_model.converter)
        hits, velocities, offsets = split_groove(groove)
        want_hits, want_velocities, want_offsets = split_groove(tensors["outputs"][index])
        np.testing.assert_array_equal(hits, want_hits)
        np.testing.assert_allclose(velocities[hits], want_velocities[want_hits], atol=1 / 127)
        later = hits.copy()
        later[0] = False  # a first-step hit played early would start before the file does; MIDI clips it to 0
        np.testing.assert_allclose(offsets[later], want_offsets[later], atol=0.02)
    entry = generate.generate("groovae_tiny", tiny_model.checkpoint, str(tmp_path), "reconstruct", wav=False,
                              inputs=[str(tmp_path / f"train_window_{picked[0]:05d}.mid")], model=tiny_model)
    assert entry["inputs"][0]["path"] == f"train_window_{picked[0]:05d}.mid"  # inside the folder: portable
    # regenerate rebuilds the model's run and checks the windows where they are
    manifest_file = str(tmp_path / "manifest.json")
    assert cli.main(["regenerate", manifest_file, "--output_dir", str(tmp_path / "again")]) == 0
    with open(tmp_path / f"train_window_{picked[1]:05d}.mid", "ab") as f:
        f.write(b"\0")
    assert cli.main(["regenerate", manifest_file, "--output_dir", str(tmp_path / "again2")]) != 0
    assert cli.main(["windows", "--data", tiny_tensors_path, "--config", "groovae_tiny", "--indices", "99",
                     "--output_dir", str(tmp_path / "bad"), "--no_wav"]) != 0


def test_picked_windows_record_their_seed_and_a_rerun_replaces_the_last(tiny_tensors_path, tmp_path):
    from groovae import cli
    out = str(tmp_path / "test_grooves")
    args = ["windows", "--data", tiny_tensors_path, "--config", "groovae_tiny", "--output_dir", out, "--no_wav",
            "--no_png"]
    assert cli.main(args + ["--n", "3", "--seed", "1"]) == 0
    [run] = manifest.read_manifest(out)
    first = [w["index"] for w in run["windows"]]
    assert run["seed"] == 1 and len(first) == 3
    assert first == generate.pick_windows(data.load_tensors(tiny_tensors_path), 3, seed=1, min_hits_per_bar=8)
    assert cli.main(args + ["--indices", str(first[0]), str(first[0])]) == 0  # duplicates once
    [run] = manifest.read_manifest(out)  # one entry per tensor file: no file claimed twice
    assert run["seed"] is None and list(run["files"]) == [f"train_window_{first[0]:05d}.mid"]
    assert sorted(os.listdir(out)) == ["manifest.json", f"train_window_{first[0]:05d}.mid"]


def test_slerp_endpoints_and_norm():
    a, b = np.array([2.0, 0.0]), np.array([0.0, 2.0])
    np.testing.assert_allclose(generate.slerp(a, b, 0), a)
    np.testing.assert_allclose(generate.slerp(a, b, 1), b, atol=1e-12)
    np.testing.assert_allclose(generate.slerp(a, b, 0.5), [np.sqrt(2), np.sqrt(2)])  # on the circle, not inside
    np.testing.assert_allclose(generate.slerp(a, a, 0.3), a)  # parallel: no division by zero


def test_input_windows_zero_or_several(tiny_model, four_bar_midi, tmp_path):
    with pytest.raises(generate.GenerateError, match=r"has 2 4-bar windows .* window=0\.\.1"):
        generate.pick_window(four_bar_midi["long"], tiny_model.converter)
    with pytest.raises(generate.GenerateError, match="no 4-bar window"):
        generate.pick_window(four_bar_midi["short"], tiny_model.converter)
    piano = pretty_midi.PrettyMIDI()
    piano.instruments.append(pretty_midi.Instrument(0))
    piano.instruments[0].notes.append(pretty_midi.Note(80, 60, 0, 1))
    piano.write(str(tmp_path / "piano.mid"))
    with pytest.raises(generate.GenerateError, match="piano.mid: no drum notes"):
        generate.pick_window(str(tmp_path / "piano.mid"), tiny_model.converter)
    waltz = synthetic.make_groove(bars=4)
    waltz.time_signature_changes = [pretty_midi.TimeSignature(3, 4, 0)]
    waltz.write(str(tmp_path / "waltz.mid"))
    with pytest.raises(generate.GenerateError, match=r"waltz.mid: time signature \[\(3, 4\)\] is not 4/4"):
        generate.pick_window(str(tmp_path / "waltz.mid"), tiny_model.converter)


def test_bad_requests(tiny_model, tmp_path, monkeypatch):
    with pytest.raises(generate.GenerateError, match="nothing to decode"):
        generate.sample(tiny_model, n=0)
    with pytest.raises(generate.GenerateError, match="n must be 1..1000"):  # a generate run writes files
        generate.generate("groovae_tiny", tiny_model.checkpoint, str(tmp_path / "many"), n=1001, model=tiny_model)
    with pytest.raises(generate.GenerateError, match="temperature must be a positive number"):
        generate.sample(tiny_model, n=1, temperature=0)
    with pytest.raises(generate.GenerateError, match="no checkpoint"):
        checkpoints.resolve_checkpoint(str(tmp_path))
    monkeypatch.setattr(checkpoints, "COMMITTED_DIR", str(tmp_path / "checkpoints"))  # a clone without models
    with pytest.raises(generate.GenerateError, match="checkpoints/groovae_tiny, and there is none"):
        checkpoints.resolve_checkpoint("private", config="groovae_tiny")


def test_corrupt_checkpoint_and_wrong_config(tiny_run, tiny_tensors_path, tmp_path):
    run_dir, _ = tiny_run
    prefix = tf.train.latest_checkpoint(run_dir)
    broken = str(tmp_path / "model.ckpt-1")
    with open(broken + ".index", "wb") as f:
        f.write(b"not a checkpoint")
    with pytest.raises(generate.GenerateError, match="unreadable checkpoint"):
        model.GrooveModel("groovae_tiny", broken)
    with pytest.raises(generate.GenerateError, match="not a 'groovae_tiny_hier' checkpoint .* looks like 'groovae_tiny'"):
        generate.sample(model.GrooveModel("groovae_tiny_hier", prefix), n=1)  # checked when the graph is built


def test_a_checkpoint_that_fails_to_restore_is_one_line_and_leaves_no_session_open(tiny_run, tmp_path,
                                                                                   monkeypatch):
    """Its .data file cut short (the index, which the config check reads, intact): GrooveModel and ModelPass
    (evaluate's pass) say so in one line and close every TensorFlow session they opened."""
    run_dir, _ = tiny_run
    prefix = checkpoints.newest_checkpoint(run_dir)
    broken = str(tmp_path / os.path.basename(prefix))
    for name in os.listdir(run_dir):
        if name.startswith(os.path.basename(prefix) + "."):
            shutil.copy(os.path.join(run_dir, name), tmp_path / name)
            if ".data-" in name:
                with open(tmp_path / name, "r+b") as f:
                    f.truncate(100)
    opened = []

    class CountedSession(tf.Session):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

        def close(self):
            super().close()
            if self in opened:
                opened.remove(self)
    monkeypatch.setattr(tf, "Session", CountedSession)
    groove_model = model.GrooveModel("groovae_tiny", broken)
    with pytest.raises(generate.GenerateError, match=r"model.ckpt-40: cannot restore the checkpoint \(OutOfRangeError"):
        generate.sample(groove_model, n=1)
    with pytest.raises(generate.GenerateError, match="cannot restore the checkpoint"):
        model.ModelPass("groovae_tiny", broken, batch_size=2)
    assert opened == []


def _tar(path, members):
    with tarfile.open(path, "w") as tar:
        for name, payload, kind in members:
            info = tarfile.TarInfo(name)
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, payload
                tar.addfile(info)
            else:
                info.size = len(payload)
                tar.addfile(info, io.BytesIO(payload))


@pytest.mark.parametrize("name,payload,kind,problem", [
    ("/etc/evil", b"x", "file", "outside the target folder"),
    ("ckpt/../../evil", b"x", "file", "outside the target folder"),
    ("ckpt/link", "/etc/passwd", "symlink", "is a link"),
])
def test_unsafe_tar_members_are_refused(tmp_path, name, payload, kind, problem):
    tar_path = str(tmp_path / "bad.tar")
    _tar(tar_path, [("model.ckpt-1.index", b"x", "file"), (name, payload, kind)])
    with pytest.raises(DataError, match=problem):
        files.safe_extract_tar(tar_path, str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out") and not os.path.exists(tmp_path.parent / "evil")


def test_public_checkpoint_path_end_to_end_from_file_url(tiny_tensors_path, tmp_path):
    """A groovae_4bar checkpoint (same variables as Google's) packed like groovae_4bar.tar."""
    run_dir = str(tmp_path / "run")
    train.train("groovae_4bar", tiny_tensors_path, run_dir, num_steps=1, hparams="batch_size=2", progress=False)
    prefix = tf.train.latest_checkpoint(run_dir)
    tar_path = str(tmp_path / "groovae_4bar.tar")
    with tarfile.open(tar_path, "w") as tar:
        for f in os.listdir(run_dir):
            if f.startswith(os.path.basename(prefix) + "."):
                tar.add(os.path.join(run_dir, f), arcname=f)
    cache = str(tmp_path / "cache")
    got = checkpoints.resolve_checkpoint("public", public_url="file://" + tar_path, cache_dir=cache, progress=False)
    assert got.endswith("model.ckpt-1") and got.startswith(cache)
    assert checkpoints.checkpoint_sha256(got) == checkpoints.checkpoint_sha256(prefix)
    shutil.rmtree(run_dir)  # the cache is all that is left
    entry = generate.generate("groovae_4bar", got, str(tmp_path / "out"), n=2, wav=False, png=False)
    assert len(entry["files"]) == 2
    again = checkpoints.resolve_checkpoint("public", public_url="file:///gone/groovae_4bar.tar", cache_dir=cache)
    assert again == got  # downloaded once, then from the cache


def _checkpoint_tar_bytes(tmp_path, members=(("model.ckpt-5.index", 2000), ("model.ckpt-5.data-00000-of-00001", 90_000))):
    path = str(tmp_path / "made.tar")
    _tar(path, [(name, os.urandom(size), "file") for name, size in members])
    return open(path, "rb").read()


def test_public_tar_is_read_whole_and_a_damaged_cached_copy_is_fetched_again(http_server, tmp_path):
    whole = _checkpoint_tar_bytes(tmp_path)
    http_server.files["/groovae_4bar.tar"] = whole
    cache = str(tmp_path / "cache")
    os.makedirs(cache)
    with open(os.path.join(cache, "groovae_4bar.tar"), "wb") as f:
        f.write(whole[:len(whole) // 2])  # its first headers are fine: tarfile.is_tarfile says yes
    assert tarfile.is_tarfile(os.path.join(cache, "groovae_4bar.tar"))
    prefix = checkpoints.public_checkpoint(http_server.url + "/groovae_4bar.tar", cache, progress=False)
    assert prefix.endswith("model.ckpt-5") and os.path.getsize(prefix + ".data-00000-of-00001") == 90_000
    assert len(http_server.requests) == 1


def test_public_tar_without_a_checkpoint_is_refused_and_not_kept(http_server, tmp_path):
    http_server.files["/groovae_4bar.tar"] = _checkpoint_tar_bytes(tmp_path, [("README", 100)])
    cache = str(tmp_path / "cache")
    with pytest.raises(generate.GenerateError, match=r"holds no checkpoint \(.index and .data files\) \(removed"):
        checkpoints.public_checkpoint(http_server.url + "/groovae_4bar.tar", cache, progress=False)
    assert not os.path.exists(os.path.join(cache, "groovae_4bar.tar"))


def test_checkpoint_tar_that_unpacks_too_big_is_refused(tmp_path):
    path = str(tmp_path / "big.tar")
    with open(path, "wb") as f:
        f.write(_checkpoint_tar_bytes(tmp_path))
    with pytest.raises(DataError, match="would unpack to 92,000 bytes"):
        files.safe_extract_tar(path, str(tmp_path / "out"), max_bytes=10_000)
    assert not os.path.exists(tmp_path / "out")


def test_a_tar_checkpoint_is_recorded_by_its_own_path_not_the_cache(tmp_path):
    tar = tmp_path / "ckpts" / "groovae_4bar.tar"
    tar.parent.mkdir()
    tar.write_bytes(b"tar")
    cached = str(tmp_path / "cache" / "checkpoints" / "x" / "model.ckpt-5")
    out = str(tmp_path / "samples")
    assert checkpoints.portable_name(str(tar), cached, out) == os.path.join("..", "ckpts", "groovae_4bar.tar")
    assert checkpoints.portable_name(None, cached, out) == os.path.join("..", "cache", "checkpoints", "x", "model.ckpt-5")
    assert checkpoints.portable_name("https://host/x.tar", cached, out) == "https://host/x.tar"


@needs_audio
def test_a_wav_ends_at_most_a_bar_after_the_last_note_with_a_fade(tmp_path):
    """FluidSynth renders cymbals ringing out, and anything until the file's last event (here a controller 20 s
    after the last note): the WAV keeps up to one bar (at the file's tempo) after the last note, fading out."""
    from scipy.io import wavfile
    from groovae import audio
    groove = synthetic.make_groove(bars=4, bpm=100.0)
    last = max(note.end for note in groove.instruments[0].notes)
    groove.instruments[0].control_changes.append(pretty_midi.ControlChange(7, 100, last + 20.0))
    groove.write(str(tmp_path / "groove.mid"))
    rate, samples = wavfile.read(audio.render_wav(str(tmp_path / "groove.mid"), str(tmp_path / "groove.wav")))
    bar = 4 * 60.0 / 100.0
    assert last + bar - 0.01 <= len(samples) / rate <= last + bar + 0.01  # the kit rings for longer than a bar
    fade = int(audio.FADE_SECONDS * rate)
    level = np.abs(samples.astype(np.float64))
    assert level[-fade // 10:].max() < 0.1 * level[-2 * fade:-fade].max()  # faded, not cut mid-ring
    assert level[-1] <= 1 and level.max() > 20000


def test_dataset_windows_are_written_at_the_tempo_they_were_played_with_their_timing_in_ms(tmp_path):
    """A 90 bpm performance through preprocess and `groovae windows`: its window's MIDI is at 90 bpm and every
    hit where the drummer played it, in ms from the window's first bar line; the listening page says the tempo."""
    from groovae import listing, preprocess
    folder = tmp_path / "mine"
    folder.mkdir()
    played = synthetic.make_groove(bars=8, bpm=90.0, seed=3)
    played.write(str(folder / "take.mid"))
    preprocess.preprocess(str(folder), str(tmp_path / "data"), config="groovae_tiny", workers=1, progress=False,
                          split_ratios="1,0,0")
    tensors = data.load_tensors(str(tmp_path / "data" / "train.npz"))
    index = 2
    start_bar = int(tensors["start_bar"][index])
    generate.export_windows("groovae_tiny", str(tmp_path / "data" / "train.npz"), str(tmp_path / "out"),
                            indices=[index], wav=False, png=False)
    written = pretty_midi.PrettyMIDI(str(tmp_path / "out" / f"train_window_{index:05d}.mid"))
    np.testing.assert_allclose(written.get_tempo_changes()[1], [90.0], rtol=1e-5)  # MIDI stores microseconds per beat
    bar = 4 * 60.0 / 90.0
    t0, t1 = start_bar * bar, (start_bar + 4) * bar
    wanted = sorted(n.start - t0 for n in played.instruments[0].notes if n.start >= t0 and n.end <= t1)
    got = sorted(n.start for i in written.instruments for n in i.notes)
    assert len(got) == len(wanted) > 40
    late = [k for k, t in enumerate(wanted) if t > 0.01]  # a hit played just before the window starts is clipped
    np.testing.assert_allclose(np.array(got)[late], np.array(wanted)[late], atol=0.005)  # within 5 ms
    [entry] = listing.read_folder(str(tmp_path / "out"), "")["runs"]
    assert entry["grooves"][0]["label"] == f"take.mid, bars {start_bar + 1}–{start_bar + 4}, 90 bpm as played"
