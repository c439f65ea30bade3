"""The "your beat" models (humanize, tap2drum, hits as controls) train and decode with the tiny sizes."""
import json
import os

import numpy as np
import pytest

from groovae import checkpoints, data, runs, train
from groovae.configs import load_config
from groovae.errors import GenerateError
from groovae.model import GrooveModel, model_variables
from tests.conftest import tiny_config

@pytest.fixture(scope="module")
def beat_data(midi_dir, tmp_path_factory):
    """{config file: its tensor file} for the three tiny your-beat configs, from the synthetic grooves."""
    folder = str(tmp_path_factory.mktemp("beat"))
    paths = sorted(os.path.join(midi_dir, f) for f in os.listdir(midi_dir) if f.endswith(".mid"))
    made = {}
    for base in ("groovae_4bar_humanize", "groovae_4bar_tap2drum", "groovae_4bar_hits_control"):
        config = tiny_config(folder, base)
        tensors, skipped = data.midi_files_to_tensors(paths, load_config(config).data_converter)
        assert not skipped and len(tensors["lengths"]) == 16
        made[base] = (config, os.path.join(folder, base + ".npz"))
        data.save_tensors(made[base][1], tensors)
    return made


def test_hits_control_tensors_carry_the_hits_as_controls(beat_data):
    tensors = data.load_tensors(beat_data["groovae_4bar_hits_control"][1])
    np.testing.assert_array_equal(tensors["controls"], tensors["outputs"][..., :9])
    assert "controls" not in data.load_tensors(beat_data["groovae_4bar_humanize"][1])


@pytest.mark.parametrize("base", ["groovae_4bar_humanize", "groovae_4bar_hits_control"])
def test_your_beat_model_trains_from_the_flat_one(base, beat_data, tiny_run, tmp_path):
    config, tensors_path = beat_data[base]
    run_dir = str(tmp_path / "run")
    result = train.train(config, tensors_path, run_dir, num_steps=30, init_from=tiny_run[0], progress=False)
    assert result["global_step"] == 30 and result["final_loss"] < result["first_loss"]
    fresh = result["init_from"].get("fresh", [])
    if base.endswith("hits_control"):  # controls widen the encoder's and the decoder's first layer
        assert any(n.startswith("encoder/") for n in fresh) and any(n.startswith("decoder/") for n in fresh)
        mine, flat = model_variables(config), model_variables("groovae_tiny")
        assert all(n in flat and flat[n] != mine[n] for n in fresh)  # the same names, wider
    else:  # the same shapes: every weight
        assert fresh == []
    assert runs.model_of(result["checkpoint"]) == (config, "")


def test_hits_control_model_plays_the_given_hits_exactly(beat_data, tmp_path):
    config, tensors_path = beat_data["groovae_4bar_hits_control"]
    run_dir = str(tmp_path / "run")
    train.train(config, tensors_path, run_dir, num_steps=5, progress=False)
    model = GrooveModel(config, checkpoints.newest_checkpoint(run_dir))
    tensors = data.load_tensors(tensors_path)
    z = model.encode(tensors["inputs"][:2], controls=tensors["controls"][:2])
    assert z.shape == (2, 16)
    beat = tensors["controls"][5]
    grooves = model.decode(z, temperature=0.5, control=beat)
    np.testing.assert_array_equal(grooves[..., :9], np.broadcast_to(beat, grooves[..., :9].shape))
    # its velocities: 5 steps leave its hit probabilities under 0.05, so they all read 1 (test_committed: trained)
    with pytest.raises(GenerateError, match="decodes with controls"):
        model.decode(z)
    with pytest.raises(GenerateError, match="encodes with controls"):
        model.encode(tensors["inputs"][:2])


# ---------------------------------------------------------------- humanize / transfer / drumify on beats the tests write

@pytest.fixture(scope="module")
def beat_runs(beat_data, tmp_path_factory):
    """{mode: run dir} of the three tiny your-beat models, trained a few steps each."""
    folder = tmp_path_factory.mktemp("beat_runs")
    made = {}
    for mode, base in (("humanize", "groovae_4bar_humanize"), ("transfer", "groovae_4bar_hits_control"),
                       ("drumify", "groovae_4bar_tap2drum")):
        config, tensors_path = beat_data[base]
        made[mode] = str(folder / mode)
        train.train(config, tensors_path, made[mode], num_steps=20, progress=False)
    return made


@pytest.fixture(scope="module")
def beats(tmp_path_factory):
    from groovae import synthetic
    folder = tmp_path_factory.mktemp("beats")
    paths = {}
    for name, pm in (("eight", synthetic.make_beat(bars=8, bpm=100, velocity=64)),
                     ("six", synthetic.make_beat(bars=6, bpm=90, pattern=synthetic.PATTERNS[1])),
                     ("channel1", synthetic.make_beat(bars=4, bpm=110, program_channel=1)),
                     ("reference", synthetic.make_groove(bars=4, bpm=120, seed=2)),
                     ("taps", synthetic.make_taps(bars=4, bpm=95))):
        paths[name] = str(folder / f"{name}.mid")
        pm.write(paths[name])
    return paths


def _midi(path):
    import pretty_midi
    return pretty_midi.PrettyMIDI(path)


def _beat_cli(mode, beat_runs, *args):
    from groovae import cli
    command = "drumify" if mode == "drumify" else "humanize"
    return cli.main([command, *args, "--run_dir", beat_runs[mode], "--no_wav"])


def test_humanize_keeps_the_beats_tempo_and_length_window_by_window(beat_runs, beats, tmp_path):
    from groovae import manifest
    out = str(tmp_path / "out")
    for name, bars, bpm in (("eight", 8, 100), ("six", 6, 90)):
        assert _beat_cli("humanize", beat_runs, beats[name], "--output_dir", out, "--n", "2") == 0
        [entry] = [r for r in manifest.read_manifest(out) if r["inputs"][0]["name"] == f"{name}.mid"]
        assert entry["mode"] == "humanize" and entry["n"] == 2 and entry["bars"] == bars and entry["bpm"] == pytest.approx(bpm, rel=1e-5)
        feels = [f for f in entry["files"] if f.endswith(".mid") and "_input" not in f]
        assert len(feels) == 2
        for feel in feels:
            pm = _midi(os.path.join(out, feel))
            assert pm.get_tempo_changes()[1][0] == pytest.approx(bpm, rel=1e-5)
            notes = [n for i in pm.instruments for n in i.notes]
            assert notes and max(n.start for n in notes) < bars * 240 / bpm  # within the beat's bars
            assert max(n.start for n in notes) > (bars - 1) * 240 / bpm  # the last bar is played too
        assert open(os.path.join(out, entry["inputs"][0]["path"]), "rb").read() == open(beats[name], "rb").read()
    assert _beat_cli("humanize", beat_runs, beats["eight"], "--output_dir", out, "--window", "1", "--n", "1") == 0
    [one] = [r for r in manifest.read_manifest(out) if r.get("window") == 1]
    assert one["bars"] == 4


def test_feels_differ_and_a_run_regenerates_bit_for_bit(beat_runs, beats, tmp_path, capsys):
    from groovae import cli, model as models
    out = str(tmp_path / "out")
    assert _beat_cli("humanize", beat_runs, beats["eight"], "--output_dir", out, "--n", "3") == 0
    entry = json.load(open(os.path.join(out, "manifest.json")))["runs"][0]
    feels = sorted(f for f in entry["files"] if f.endswith(".mid") and "_input" not in f)
    assert len({open(os.path.join(out, f), "rb").read() for f in feels}) == 3  # three feels, not one
    assert _beat_cli("transfer", beat_runs, beats["eight"], "--like", beats["reference"], "--output_dir", out) == 0
    assert _beat_cli("transfer", beat_runs, beats["eight"], "--keep_hits", "--n", "2", "--output_dir", out) == 0
    assert _beat_cli("drumify", beat_runs, beats["taps"], "--output_dir", out, "--n", "1") == 0
    capsys.readouterr()
    assert cli.main(["regenerate", os.path.join(out, "manifest.json"), "--output_dir", str(tmp_path / "again")]) == 0, \
        capsys.readouterr()
    assert capsys.readouterr().out.count("identical") == 4  # humanize, transfer, keep_hits, drumify: every file
    del models


@pytest.mark.parametrize("how, feels", [(["--like", "reference"], 1), (["--keep_hits", "--n", "2"], 2)])
def test_transfer_and_keep_hits_keep_every_hit_of_the_beat(how, feels, beat_runs, beats, tmp_path):
    from groovae import beat, checkpoints, listing
    from groovae.model import GrooveModel
    out = str(tmp_path / "out")
    assert _beat_cli("transfer", beat_runs, beats["eight"], *[beats.get(a, a) for a in how], "--output_dir", out) == 0
    entry = json.load(open(os.path.join(out, "manifest.json")))["runs"][0]
    roles = ["input", "like"] if "--like" in how else ["input"]
    assert entry["mode"] == "transfer" and [i["role"] for i in entry["inputs"]] == roles and entry["n"] == feels
    model = GrooveModel(runs.read_run_info(beat_runs["transfer"])["config"],
                        checkpoints.newest_checkpoint(beat_runs["transfer"]))
    beat_tensors = beat.whole_tensors(beat.read_beat(beats["eight"]).sequence, model.converter, 128)["outputs"]
    given, beat_velocities = beat_tensors[:, :9], beat_tensors[:, 9:18][beat_tensors[:, :9] > 0]
    played = sorted(f for f in entry["files"] if f.endswith(".mid") and f[-6:-4].isdigit())
    assert len(played) == feels
    heard = [beat.whole_tensors(beat.read_beat(os.path.join(out, f)).sequence, model.converter, 128)["outputs"]
             for f in played]
    for performance in heard:
        np.testing.assert_array_equal(performance[:, :9], given)  # the same hits, step for step
        # the model's velocities, not the beat's (all 64); a 20-step model may play every hit at 127: no spread asked
        assert np.mean(performance[:, 9:18][given > 0] != beat_velocities) > 0.5
    if feels > 1:
        assert not np.array_equal(heard[0][:, 9:], heard[1][:, 9:])  # two feels, not one
    [run] = listing.read_folder(out, "")["runs"]
    labels = [g["label"] for g in run["grooves"] if not g.get("input")]
    assert labels == (["its feel on the beat"] if feels == 1 else ["feel 1", "feel 2"])
    from groovae.listen import run_title
    assert run_title(entry, lambda path: None).startswith("Groove transfer" if feels == 1 else
                                                          "Humanized, every hit kept")


def test_drumify_turns_a_bassline_into_drums(beat_runs, beats, tmp_path):
    out = str(tmp_path / "out")
    assert _beat_cli("drumify", beat_runs, beats["taps"], "--output_dir", out, "--n", "1") == 0
    entry = json.load(open(os.path.join(out, "manifest.json")))["runs"][0]
    pm = _midi(os.path.join(out, f"{entry['prefix']}_00.mid"))
    assert pm.instruments and all(i.is_drum for i in pm.instruments) and entry["bpm"] == pytest.approx(95, rel=1e-5)


@pytest.mark.parametrize("role, bars", [("drumify", 4), ("humanize", 4)])
def test_a_beat_is_as_long_as_the_notes_it_is_read_from(role, bars, beat_runs, tmp_path):
    """A rhythm of 3 bars whose last note is held through bar 4: four bars, not refused as 3.  A 4-bar drum
    beat in a song whose bass plays on for 12 bars: the beat's four bars (humanize reads the drums only)."""
    import pretty_midi
    from groovae import synthetic
    pm = synthetic.make_taps(bars=3, bpm=120) if role == "drumify" else synthetic.make_beat(bars=4, bpm=120)
    bass = pretty_midi.Instrument(program=33, name="bass")
    bass.notes = ([pretty_midi.Note(90, 40, 5.0, 8.0)] if role == "drumify"  # bar 3's middle to bar 4's end (2 s bars)
                  else [pretty_midi.Note(90, 40, 2.0 * k, 2.0 * k + 1.5) for k in range(16)])
    pm.instruments.append(bass)
    path, out = str(tmp_path / "song.mid"), str(tmp_path / "out")
    pm.write(path)
    assert _beat_cli(role, beat_runs, path, "--output_dir", out, "--n", "1") == 0
    entry = json.load(open(os.path.join(out, "manifest.json")))["runs"][0]
    assert entry["bars"] == bars


def test_a_beat_on_another_channel_with_drum_channel(beat_runs, beats, tmp_path):
    out = str(tmp_path / "out")
    assert _beat_cli("humanize", beat_runs, beats["channel1"], "--output_dir", out, "--n", "1") == 2
    assert not os.path.exists(out)
    assert _beat_cli("humanize", beat_runs, beats["channel1"], "--output_dir", out, "--n", "1",
                     "--drum_channel", "1") == 0


def test_the_listening_page_shows_the_beat_beside_its_feels(beat_runs, beats, tmp_path):
    from groovae import listing
    out = str(tmp_path / "out")
    assert _beat_cli("humanize", beat_runs, beats["eight"], "--output_dir", out, "--n", "2") == 0
    [run] = listing.read_folder(out, "")["runs"]
    labels = [g["label"] for g in run["grooves"]]
    assert labels == ["input: eight.mid", "feel 1", "feel 2"] and run["grooves"][0].get("input")


@pytest.mark.parametrize("make, message", [
    (lambda s: s.make_beat(bars=2), "2 bars at 100 bpm; the models play 4-bar windows"),
    (lambda s: _with(s.make_beat(bars=4), meter=(3, 4)), "time signature 3/4; the models' bars are 4/4"),
    (lambda s: _with(s.make_beat(bars=4), tempo_change=True), "2 tempos"),
    (lambda s: _with(s.make_beat(bars=4), empty=True), "no notes"),
])
@pytest.mark.parametrize("role", ["humanize", "drumify", "like"])  # the beat, the rhythm, the reference performance
def test_bad_beats_get_one_line_and_nothing_is_written(role, make, message, beat_runs, beats, tmp_path, capsys):
    from groovae import synthetic
    path = str(tmp_path / "bad.mid")
    make(synthetic).write(path)
    out = str(tmp_path / "out")
    if role == "like":
        assert _beat_cli("transfer", beat_runs, beats["eight"], "--like", path, "--output_dir", out) == 2
    else:
        assert _beat_cli(role, beat_runs, path, "--output_dir", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1] and "bad.mid" in err[-1] and "Traceback" not in "\n".join(err)
    assert not os.path.exists(out)


def _with(pm, meter=None, tempo_change=False, empty=False):
    import pretty_midi
    if meter:
        pm.time_signature_changes = [pretty_midi.TimeSignature(*meter, 0.0)]
    if tempo_change:  # pretty_midi writes its tempo changes from _tick_scales
        pm._tick_scales.append((pm.time_to_tick(4.0), 60.0 / (140 * pm.resolution)))
        pm._update_tick_to_time(pm.time_to_tick(pm.get_end_time()) + 1)
    if empty:
        pm.instruments[0].notes = []
    return pm


# ---------------------------------------------------------------- evaluate-beat: against the drummers and baselines

@pytest.fixture(scope="module")
def beat_eval_dirs(midi_dir, tmp_path_factory):
    """{mode: folder with train.npz and test.npz of that mode's converter}: the same windows in each."""
    from groovae import beat
    paths = sorted(os.path.join(midi_dir, f) for f in os.listdir(midi_dir) if f.endswith(".mid"))
    made = {}
    for mode, config in beat.MODES.items():
        folder = tmp_path_factory.mktemp(mode)
        for split, files in (("train", paths[:6]), ("test", paths[6:])):
            tensors, _ = data.midi_files_to_tensors(files, load_config(config).data_converter)
            tensors["bpm"] = np.full(len(tensors["lengths"]), 120.0, np.float32)
            data.save_tensors(str(folder / f"{split}.npz"), tensors)
        made[mode] = str(folder)
    return made


def test_evaluate_beat_report_and_the_baselines_known_answers(beat_runs, beat_eval_dirs, tmp_path):
    from groovae import beat_eval, cli
    out = str(tmp_path / "report")
    args = ["evaluate-beat", "--data"] + [f"{m}={d}" for m, d in beat_eval_dirs.items()]
    args += ["--model"] + [f"{m}={r}" for m, r in beat_runs.items()] + ["--output_dir", out]
    assert cli.main(args) == 0
    results = json.load(open(os.path.join(out, "results.json")))
    assert results["windows"] == 4 and set(results["models"]) == {"humanize", "humanize_at_0.5", "transfer",
                                                                     "transfer_at_0.5", "transfer_own_feel", "drumify"}
    text = open(os.path.join(out, "report.md")).read()
    assert "baseline: template" in text and "- humanize (greedy: z = mu): " in text and "hit F1" in text and "Made with `groovae" in text
    # the quantized baseline, by hand: one velocity (the training split's mean) and no offsets on the drummer's hits
    test, train = (data.load_tensors(os.path.join(beat_eval_dirs["humanize"], f"{s}.npz"))["outputs"]
                   for s in ("test", "train"))
    hits, velocities, offsets = test[..., :9] > 0.5, test[..., 9:18], test[..., 18:]
    mean_velocity = train[..., 9:18][train[..., :9] > 0.5].mean()
    quantized = results["baselines"]["quantized"]
    assert quantized["velocity_mae"] == pytest.approx(np.abs(velocities[hits] - mean_velocity).mean() * 127, rel=1e-5)
    assert quantized["timing_mae_ms"] == pytest.approx((np.abs(offsets[hits]) / 2 * 125).mean(), rel=1e-5)
    assert quantized["timing_spread_ms"][0] == 0 and quantized["hits_kept"] == 1  # on the grid, every hit
    assert quantized["on_hits_played"] == pytest.approx({k: quantized[k] for k in ("velocity_mae", "timing_mae_ms")})
    assert 0 <= results["models"]["humanize"]["hits_kept"] <= 1 and "| drummer's hits played |" in text
    assert results["models"]["transfer_own_feel"]["timing_mae_ms"] <= results["models"]["transfer"]["timing_mae_ms"] + 5
    assert 0 <= results["models"]["drumify"]["hit_f1"] <= 1
    assert all(results["models"][row]["hits_kept"] == 1 for row in ("transfer", "transfer_at_0.5"))  # the hits given
    assert beat_eval.targets(results).keys() == {beat_eval.LABELS[row] for row in ("humanize", "humanize_at_0.5",
                                                                                   "transfer", "transfer_at_0.5")}
    jitter = results["baselines"]["jitter"]  # plays every hit (a tiny model may play none)
    assert len(jitter["velocity_spread_vs_data"]) == 9 and jitter["velocity_spread_vs_data"][0] == pytest.approx(
        jitter["velocity_spread"][0] / results["data"]["velocity_spread"][0] - 1)
    for _, title, _ in beat_eval.PER_CLASS:  # every class's figures in the report, not only in results.json
        table = text.split(f"### {title}")[1].split("\n\n")[1]
        assert "| baseline: jitter |" in table and "| humanize (greedy: z = mu) |" in table and table.count("|---") == 10
    import re
    assert f"--output_dir {os.path.relpath(out)}`" in text
    named = re.search(r"Made with `groovae evaluate-beat --data humanize=(\S+) ", text).group(1)
    assert not os.path.isabs(named) and os.path.samefile(named, beat_eval_dirs["humanize"])  # no folder of this machine


@pytest.mark.parametrize("keep_hits", [False, True])
def test_notebook_03_plays_your_beat(keep_hits, beat_runs, beats, tiny_run, tmp_path):
    """03_generate.ipynb's "Your beat" section: a beat humanized by a run of the humanize model (KEEP_HITS: of the
    hits-as-controls model), with its players."""
    from tests.conftest import ROOT
    from tests.test_notebooks import outputs_text, run_notebook
    drive = tmp_path / "drive"
    nb = run_notebook(os.path.join(ROOT, "03_generate.ipynb"),
                      {"DRIVE_DIR": str(drive), "CHECKPOINT": tiny_run[0], "N": 2, "INTERPOLATION_STEPS": 2,
                       "BEAT": beats["six"], "BEAT_RUN_DIR": beat_runs["transfer" if keep_hits else "humanize"],
                       "BEAT_N": 2, "KEEP_HITS": keep_hits},
                      timeout=600, tmp_dir=str(tmp_path / "nb"))
    text = outputs_text(nb)
    out = drive / "samples" / "notebook"
    runs_made = json.load(open(out / "manifest.json"))["runs"]
    [played] = [r for r in runs_made if r["mode"] == ("transfer" if keep_hits else "humanize")]
    assert played["bars"] == 6 and played["n"] == 2 and played["inputs"][0]["name"] == "six.mid"
    title = "Humanized, every hit kept" if keep_hits else "Humanized"
    assert title in text and "six.mid" in text  # the player shows the beat beside its feels


def test_a_given_hit_is_played_with_the_velocity_and_offset_expected_given_a_hit():
    """The decoder plays p * E[v | hit] (squared error against 0 where no hit); a given hit gets E[v | hit]."""
    from groovae.decoding import MIN_HIT_PROBABILITY, played_as_given
    outputs = np.zeros((1, 2, 3), np.float32)  # one drum: [hit, velocity, offset] at two steps
    outputs[0, :, 1], outputs[0, :, 2] = [0.3, 0.9], [-0.2, 0.1]
    probabilities = np.array([[[0.5], [0.01]]])
    played = played_as_given(outputs, probabilities, np.array([[1.0], [0.0]]), num_drums=1)
    np.testing.assert_allclose(played[0, :, 0], [1, 0])  # the hits given, whatever the decoder sampled
    np.testing.assert_allclose(played[0, 0, 1:], [0.6, -0.4], rtol=1e-6)  # over p
    np.testing.assert_allclose(played[0, 1, 1:], [1.0, 1.0])  # p floored at MIN_HIT_PROBABILITY (0.05), clipped


def test_the_given_hits_are_fed_back_only_while_a_hits_control_graph_is_built(beat_runs):
    """hits_fed_as_given patches magenta's CustomHelper for the sampling loop of the graph it builds and puts it
    back; magenta looks it up on the module when it builds a loop, so the patch is what that loop uses."""
    import magenta.contrib.seq2seq as contrib_seq2seq
    from magenta.models.music_vae import lstm_models
    from groovae import checkpoints
    from groovae.decoding import hits_fed_as_given
    from groovae.model import GrooveModel
    original = contrib_seq2seq.CustomHelper
    assert lstm_models.contrib_seq2seq is contrib_seq2seq  # the module magenta's sample() reads CustomHelper from
    with hits_fed_as_given(np.zeros((64, 9), np.float32)):
        assert contrib_seq2seq.CustomHelper is not original
    assert contrib_seq2seq.CustomHelper is original
    model = GrooveModel(runs.read_run_info(beat_runs["transfer"])["config"],
                        checkpoints.newest_checkpoint(beat_runs["transfer"]))
    controls = np.zeros((1, 64, 9), np.float32)
    controls[0, ::4, 0] = 1  # a kick on every beat
    model.decode_each(np.zeros((1, model.z_size), np.float32), controls, 0.5, 0)
    assert contrib_seq2seq.CustomHelper is original
    with pytest.raises(GenerateError, match="plays the hits it is given, always read given the hit"):
        GrooveModel(model.config_name, model.checkpoint, decoding="given_hit")


def test_keep_hits_and_like_together_are_one_line_and_write_nothing(beat_runs, beats, tmp_path, capsys):
    out = tmp_path / "out"
    assert _beat_cli("transfer", beat_runs, beats["eight"], "--keep_hits", "--like", beats["reference"],
                     "--output_dir", str(out)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--keep_hits" in err and "--like" in err and not out.exists()
