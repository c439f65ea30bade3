"""groovae export: a weights-only copy of a run (what checkpoints/ commits), loadable by magenta's TrainedModel."""
import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from groovae import checkpoints, cli, export, runs
from groovae.configs import load_config
from groovae.model import GrooveModel, model_variables, sample


def _weights(prefix):
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(prefix)}


@pytest.fixture(scope="module")
def exported(tiny_run, tmp_path_factory):
    run_dir, _ = tiny_run
    out = str(tmp_path_factory.mktemp("export") / "groovae_tiny")
    assert cli.main(["export", run_dir, "--output_dir", out]) == 0
    return run_dir, out


def test_export_holds_exactly_the_inference_variables_bit_for_bit(exported):
    run_dir, out = exported
    prefix, source = checkpoints.newest_checkpoint(out), checkpoints.newest_checkpoint(run_dir)
    assert os.path.basename(prefix) == os.path.basename(source) == "model.ckpt-40"
    ours, theirs = _weights(prefix), _weights(source)
    assert {n: list(v.shape) for n, v in ours.items()} == model_variables("groovae_tiny")
    assert any(n.endswith("/Adam") for n in theirs) and not any("Adam" in n or n.startswith("beta") for n in ours)
    for name, value in ours.items():
        assert value.dtype == theirs[name].dtype and value.tobytes() == theirs[name].tobytes(), name
    assert ours["global_step"] == 40
    assert sorted(os.listdir(out)) == ["checkpoint", "metrics.csv", "model.ckpt-40.data-00000-of-00001",
                                       "model.ckpt-40.index", "run.json", "training_summary.json"]
    with open(os.path.join(out, "checkpoint")) as f:
        assert out not in f.read()  # relative: the folder can be committed and cloned elsewhere


def test_export_knows_its_model_and_history(exported):
    run_dir, out = exported
    info = runs.read_run_info(out)
    assert {k: v for k, v in info.items() if k != "weights_from"} == runs.read_run_info(run_dir)
    source = checkpoints.newest_checkpoint(run_dir)
    assert info["weights_from"] == {"checkpoint": "model.ckpt-40", "sha256": checkpoints.checkpoint_sha256(source),
                                    "step": 40}
    assert runs.model_of(checkpoints.newest_checkpoint(out)) == ("groovae_tiny", "")
    with open(os.path.join(out, "training_summary.json")) as f:
        assert json.load(f) == runs.summarize_run(run_dir) == runs.summarize_run(out)
    assert runs.read_metrics(out) == runs.read_metrics(run_dir)


def test_export_is_deterministic_and_replaces_an_earlier_export(exported, tmp_path):
    run_dir, out = exported
    first = checkpoints.checkpoint_sha256(checkpoints.newest_checkpoint(out))
    again = export.export_checkpoint(checkpoints.newest_checkpoint(run_dir), out)
    assert checkpoints.checkpoint_sha256(again) == first
    copy = export.export_checkpoint(checkpoints.newest_checkpoint(out), str(tmp_path / "copy"))  # an export of an export
    assert checkpoints.checkpoint_sha256(copy) == first


def test_export_samples_as_the_run_does(exported):
    run_dir, out = exported
    ours = sample(GrooveModel("groovae_tiny", checkpoints.newest_checkpoint(out)), n=3, seed=4)
    theirs = sample(GrooveModel("groovae_tiny", checkpoints.newest_checkpoint(run_dir)), n=3, seed=4)
    np.testing.assert_array_equal(ours, theirs)


def test_magentas_trained_model_loads_the_export(exported, tiny_tensors_path):
    from magenta.models.music_vae import TrainedModel
    from groovae import data
    _, out = exported
    config = load_config("groovae_tiny")
    model = TrainedModel(config, batch_size=2, checkpoint_dir_or_path=out)
    try:
        grooves = model.sample(n=2, length=config.hparams.max_seq_len, temperature=0.5)
        assert len(grooves) == 2 and all(len(g.notes) > 0 for g in grooves)
        tensors = data.load_tensors(tiny_tensors_path)
        z, mu, _ = model.encode_tensors(list(tensors["inputs"][:2]), list(tensors["lengths"][:2]))
        ours = GrooveModel("groovae_tiny", checkpoints.newest_checkpoint(out)).encode(tensors["inputs"][:2])
        np.testing.assert_allclose(mu, ours, atol=1e-5)
    finally:
        model._sess.close()


def test_private_names_the_committed_model_of_the_config(exported, monkeypatch, tmp_path):
    _, out = exported
    committed = tmp_path / "checkpoints"
    committed.mkdir()
    os.symlink(out, committed / "groovae_tiny")
    monkeypatch.setattr(checkpoints, "COMMITTED_DIR", str(committed))
    prefix, config, hparams = runs.resolve_model("private", config="groovae_tiny")
    assert prefix == os.path.join(str(committed), "groovae_tiny", "model.ckpt-40") and config == "groovae_tiny"
    with pytest.raises(checkpoints.GenerateError, match="committed: groovae_tiny"):
        runs.resolve_model("private")  # the flat groovae_4bar by default: not in this folder
