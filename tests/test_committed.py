"""The models committed in checkpoints/: weights only, loadable by magenta's TrainedModel, and the committed
samples made from them rebuild bit for bit.  Each test skips while its model is not committed yet."""
import json
import os

import numpy as np
import pytest

from tests.conftest import ROOT, needs_audio

COMMITTED = os.path.join(ROOT, "checkpoints")
MODELS = ("groovae_4bar", "groovae_4bar_hier", "groovae_4bar_humanize", "groovae_4bar_tap2drum",
          "groovae_4bar_hits_control")
SAMPLE_SETS = {"groovae_4bar": "samples/private", "groovae_4bar_hier": "samples/private_hier"}


def committed_or_skip(name):
    from groovae import checkpoints
    prefix = checkpoints.newest_checkpoint(os.path.join(COMMITTED, name))
    if not prefix:
        pytest.skip(f"checkpoints/{name} holds no model yet (scripts/train_committed.sh trains and exports it)")
    return prefix


@pytest.mark.parametrize("name", MODELS)
def test_a_committed_model_is_weights_only_and_knows_its_run(name):
    import tensorflow.compat.v1 as tf
    from groovae import runs
    from groovae.model import model_variables
    prefix = committed_or_skip(name)
    folder = os.path.dirname(prefix)
    shapes = dict(tf.train.list_variables(prefix))
    assert shapes == {n: list(s) for n, s in model_variables(name).items()}  # no optimizer slots
    reader = tf.train.load_checkpoint(prefix)
    assert all(reader.get_tensor(n).dtype in (np.float32, np.int64) for n in shapes)
    info = runs.read_run_info(folder)
    summary = json.load(open(os.path.join(folder, "training_summary.json")))
    assert info["config"] == summary["config"] == name
    assert info["weights_from"]["step"] == summary["global_step"] == int(reader.get_tensor("global_step"))
    assert ROOT not in open(os.path.join(folder, "checkpoint")).read()


@pytest.mark.parametrize("name", MODELS)
def test_magentas_trained_model_loads_a_committed_model(name, midi_dir):
    from magenta.models.music_vae import TrainedModel
    from groovae import data
    from groovae.configs import load_config
    from groovae.model import GrooveModel
    prefix = committed_or_skip(name)
    config = load_config(name)
    paths = sorted(os.path.join(midi_dir, f) for f in os.listdir(midi_dir) if f.endswith(".mid"))[:2]
    tensors, _ = data.midi_files_to_tensors(paths, config.data_converter)
    inputs, lengths = tensors["inputs"][:2], tensors["lengths"][:2]
    controls = list(tensors["controls"][:2]) if "controls" in tensors else None
    model = TrainedModel(config, batch_size=2, checkpoint_dir_or_path=os.path.dirname(prefix))
    try:
        if controls is None:  # magenta samples only where no control (hits) is needed
            grooves = model.sample(n=2, length=config.hparams.max_seq_len, temperature=0.5)
            assert len(grooves) == 2 and all(len(g.notes) > 0 for g in grooves)
        _, mu, _ = model.encode_tensors(list(inputs), list(lengths), controls)
    finally:
        model._sess.close()
    ours = GrooveModel(name, prefix).encode(inputs, controls=np.asarray(controls) if controls else None)
    np.testing.assert_allclose(mu, ours, atol=1e-4)


def test_the_committed_hits_control_model_plays_a_beats_hits_with_its_own_velocities(midi_dir):
    """Trained, it plays every given hit, each at a velocity of its own (the 5- and 20-step tiny models of
    test_your_beat may play them all at the top: their hit probabilities are too low to read velocities by)."""
    from groovae import data
    from groovae.model import GrooveModel
    model = GrooveModel("groovae_4bar_hits_control", committed_or_skip("groovae_4bar_hits_control"))
    paths = sorted(os.path.join(midi_dir, f) for f in os.listdir(midi_dir) if f.endswith(".mid"))[:2]
    tensors, _ = data.midi_files_to_tensors(paths, model.converter)
    z = model.encode(tensors["inputs"][:2], controls=tensors["controls"][:2])
    beat = tensors["controls"][3]
    grooves = model.decode(z, temperature=0.5, control=beat)
    np.testing.assert_array_equal(grooves[..., :9], np.broadcast_to(beat, grooves[..., :9].shape))
    played = grooves[..., 9:18][grooves[..., :9] > 0.5]
    assert played.size and np.ptp(played) > 0.2 and np.mean(played == 1) < 0.5  # measured: 0.84 and 0 % at 1


@needs_audio
@pytest.mark.parametrize("name", sorted(SAMPLE_SETS))
def test_the_committed_samples_of_a_committed_model_rebuild_bit_for_bit(name, tmp_path):
    """The smallest sampled run of samples/private(_hier), and of its runs read given the hit: every file again,
    identical (the README's command rebuilds all of them)."""
    from groovae import regenerate
    from groovae.manifest import read_manifest_file
    committed_or_skip(name)
    manifest = os.path.join(ROOT, SAMPLE_SETS[name], "manifest.json")
    entries = [e for e in read_manifest_file(manifest) if e["mode"] == "sample"]
    if not any(f"checkpoints/{name}/" in e["checkpoint"] for e in entries):
        pytest.skip(f"{SAMPLE_SETS[name]} is not made from checkpoints/{name} yet")
    entries = [e for e in entries if f"checkpoints/{name}/" in e["checkpoint"]]
    given_hit = [e for e in entries if e.get("decoding") == "given_hit"]
    for entry in [min(entries, key=lambda e: e["n"])] + [min(given_hit, key=lambda e: e["n"])] * bool(given_hit):
        again = regenerate.regenerate(entry, str(tmp_path), os.path.dirname(manifest))
        assert again["files"] == entry["files"]


def test_the_committed_lab_runs_the_committed_models():
    """samples/lab (scripts/lab_samples.sh) exports the committed models: a model retrained without remaking the
    lab would leave the page playing the old one."""
    from groovae import checkpoints
    info_path = os.path.join(ROOT, "samples", "lab", "lab.json")
    if not os.path.isfile(info_path):
        pytest.skip("samples/lab is not made yet (scripts/lab_samples.sh, once its models are committed)")
    with open(info_path) as f:
        models = json.load(f)["models"]
    assert [m["name"] for m in models] == ["groovae_4bar", "groovae_4bar_humanize", "groovae_4bar_tap2drum"]
    for m in models:
        prefix = committed_or_skip(m["name"])
        assert (m["sha256"], m["step"], m["quantize"]) == (checkpoints.checkpoint_sha256(prefix),
                                                           checkpoints.step_of(prefix), 8), m["name"]
        assert os.path.isfile(os.path.join(ROOT, "samples", "lab", "models", m["name"], "config.json"))
    folder = os.path.join(ROOT, "samples", "lab")
    size = sum(os.path.getsize(os.path.join(here, f)) for here, _, names in os.walk(folder) for f in names)
    assert size < 25e6, f"samples/lab is {size / 1e6:.1f} MB; it must stay under 25 MB"


@needs_audio
def test_the_committed_your_beat_samples_rebuild_bit_for_bit(tmp_path):
    """samples/your_beat: one run of each kind (humanize, --keep_hits, --like, drumify) again from the folder alone,
    every file identical (the committed models, the inputs copied beside the manifest)."""
    from groovae import regenerate
    from groovae.manifest import read_manifest_file
    manifest = os.path.join(ROOT, "samples", "your_beat", "manifest.json")
    if not os.path.isfile(manifest):
        pytest.skip("samples/your_beat is not made yet (scripts/your_beat_samples.sh)")
    kinds = {}
    for entry in read_manifest_file(manifest):
        kinds.setdefault((entry["mode"], len(entry["inputs"])), entry)
    assert sorted(kinds) == [("drumify", 1), ("humanize", 1), ("transfer", 1), ("transfer", 2)]
    for kind, entry in sorted(kinds.items()):
        committed_or_skip(entry["config"])
        again = regenerate.regenerate(entry, str(tmp_path / f"{kind[0]}_{kind[1]}"), os.path.dirname(manifest))
        assert again["files"] == entry["files"], kind


@pytest.mark.parametrize("name", sorted(SAMPLE_SETS))
def test_notebook_03_samples_a_committed_model_without_training(name, tmp_path):
    """Colab's notebook 03 with CHECKPOINT = "private" and no run of its own: the committed model, its data prior."""
    committed = committed_or_skip(name)  # the repo's model, found without a run of its own
    from groovae import checkpoints
    from tests.test_notebooks import outputs_text, run_notebook
    drive = tmp_path / "drive"
    nb = run_notebook(os.path.join(ROOT, "03_generate.ipynb"),
                      {"DRIVE_DIR": str(drive), "CHECKPOINT": "private", "CONFIG": name, "N": 2,
                       "INTERPOLATION_STEPS": 2, "PRIOR": "data", "LAB": False}, timeout=600,
                      tmp_dir=str(tmp_path / "nb"))
    [run] = [r for r in json.load(open(drive / "samples" / "notebook" / "manifest.json"))["runs"]
             if r["mode"] == "sample"]
    assert run["config"] == name and run["prior"] == "data" and run["checkpoint_step"] == 2721
    assert run["checkpoint_sha256"] == checkpoints.checkpoint_sha256(committed)
    assert f"checkpoints/{name}" in outputs_text(nb)
