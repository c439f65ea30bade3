"""groovae export: a weights-only copy of a run (what checkpoints/ commits), loadable by magenta's TrainedModel."""
import json
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from groovae import checkpoints, cli, export, runs
from groovae.errors import RequestError
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


# ---------------------------------------------------------------- magenta.js

@pytest.mark.parametrize("quantize", ["none", "8"])
def test_magenta_js_export_holds_the_weights_magenta_js_reads(tiny_run, tmp_path, quantize):
    from groovae import export_js
    run_dir, _ = tiny_run
    out = str(tmp_path / "js")
    assert cli.main(["export", run_dir, "--format", "magenta-js", "--quantize", quantize, "--output_dir", out]) == 0
    spec = json.load(open(os.path.join(out, "config.json")))
    assert spec["type"] == "MusicVAE" and spec["dataConverter"]["type"] == "GrooveConverter"
    args = spec["dataConverter"]["args"]
    assert args["numSteps"] == 64 and args["humanize"] is False and args["tapify"] is False
    assert spec["groovae"]["config"] == "groovae_tiny" and spec["groovae"]["step"] == 40
    ours, theirs = export_js.read_weights(out), _weights(checkpoints.newest_checkpoint(run_dir))
    assert set(ours) == set(model_variables("groovae_tiny")) - {"global_step"}
    assert "encoder/cell_0/bidirectional_rnn/fw/multi_rnn_cell/cell_0/lstm_cell/kernel" in ours  # magenta.js's names
    for name, value in ours.items():
        if quantize == "none":
            assert value.tobytes() == theirs[name].tobytes(), name
        else:  # 8 bits: within half a step of the tensor's range
            step = (theirs[name].max() - theirs[name].min()) / 255
            assert np.abs(value - theirs[name]).max() <= step / 2 + 1e-6, name
    manifest = json.load(open(os.path.join(out, "weights_manifest.json")))
    sizes = sum(os.path.getsize(os.path.join(out, p)) for p in manifest[0]["paths"])
    floats = sum(int(np.prod(v.shape)) for v in ours.values())
    assert sizes == floats * (1 if quantize == "8" else 4)


def test_magenta_js_export_shards_and_refusals(tiny_run, tmp_path, monkeypatch):
    from groovae import export_js
    run_dir, _ = tiny_run
    monkeypatch.setattr(export_js, "SHARD_BYTES", 4096)  # small shards: the reader joins them back in order
    out = str(tmp_path / "js")
    export_js.export_magenta_js(checkpoints.newest_checkpoint(run_dir), out, quantize=None)
    manifest = json.load(open(os.path.join(out, "weights_manifest.json")))
    assert len(manifest[0]["paths"]) > 3 and manifest[0]["paths"][0] == f"group1-shard1of{len(manifest[0]['paths'])}"
    theirs = _weights(checkpoints.newest_checkpoint(run_dir))
    assert all(v.tobytes() == theirs[n].tobytes() for n, v in export_js.read_weights(out).items())
    for config, message in (("groovae_tiny_hier", "hierarchical encoder"),
                            ("groovae_4bar_hits_control", "no hits as controls")):
        with pytest.raises(RequestError, match=message):
            export_js.magenta_js_config(config)
    assert export_js.magenta_js_config("groovae_4bar_tap2drum")["dataConverter"]["args"]["tapify"] is True
    assert export_js.magenta_js_config("groovae_4bar_humanize")["dataConverter"]["args"]["humanize"] is True
    assert cli.main(["export", run_dir, "--format", "magenta-js", "--output_dir", str(tmp_path)]) == 2
    assert cli.main(["export", run_dir, "--format", "magenta-js", "--output_dir", out]) == 0  # an earlier export


def test_export_public_from_its_url_in_both_formats(tiny_run, http_server, tmp_path):
    """'public' (Google's tar; here a tiny checkpoint's tar served on 127.0.0.1) exports like any checkpoint, with
    --config for a checkpoint without run.json, and records where it came from."""
    from groovae import export_js
    from tests.conftest import serve_as_public
    source = checkpoints.newest_checkpoint(tiny_run[0])
    url = serve_as_public(http_server, source, str(tmp_path))
    common = ["--config", "groovae_tiny", "--public_url", url, "--cache_dir", str(tmp_path / "cache"), "--no_progress"]
    assert cli.main(["export", "public", "--format", "magenta-js", "--output_dir", str(tmp_path / "js"), *common]) == 0
    spec = json.load(open(tmp_path / "js" / "config.json"))
    assert (spec["groovae"]["checkpoint"], spec["groovae"]["sha256"]) == (url, checkpoints.checkpoint_sha256(source))
    theirs = _weights(source)
    for name, value in export_js.read_weights(str(tmp_path / "js")).items():  # 8-bit: within half a step
        assert np.abs(value - theirs[name]).max() <= (theirs[name].max() - theirs[name].min()) / 510 + 1e-6, name
    assert cli.main(["export", "public", "--output_dir", str(tmp_path / "tf"), *common]) == 0
    info = runs.read_run_info(str(tmp_path / "tf"))
    assert info["config"] == "groovae_tiny" and info["weights_from"]["checkpoint"] == url  # as train's init_from


def test_an_exports_init_from_still_names_where_the_run_started(tiny_run, tiny_tensors_path, tmp_path):
    """A fine-tuned run's --init_from (relative to its run dir) is rewritten relative to the copy."""
    from groovae import train
    run_dir = str(tmp_path / "runs" / "tuned")
    train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=1, init_from=tiny_run[0], progress=False)
    out = str(tmp_path / "repo" / "checkpoints" / "tuned")
    export.export_checkpoint(checkpoints.newest_checkpoint(run_dir), out)
    named = runs.read_run_info(out)["init_from"]["checkpoint"]
    with open(os.path.join(out, export.SUMMARY)) as f:
        assert not os.path.isabs(named) and json.load(f)["init_from"]["checkpoint"] == named
    assert os.path.samefile(os.path.join(out, named + ".index"), checkpoints.newest_checkpoint(tiny_run[0]) + ".index")
