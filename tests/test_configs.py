"""Named configs: groovae_4bar equals magenta's; the others derive from it."""
import os
import shutil

import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from magenta.models.music_vae import configs as magenta_configs
from magenta.models.music_vae import lstm_models

from groovae.configs import config_names, load_config
from groovae.errors import ConfigError


def _plain_attributes(obj):
    """An object's attributes that compare by value (not other objects)."""
    plain = (int, float, str, bool, type(None), list, tuple, dict, np.ndarray)
    return {k: v for k, v in vars(obj).items() if isinstance(v, plain)}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a[key] == b[key], key


def test_registry_lists_the_named_configs_and_gives_fresh_objects():
    assert {"groovae_4bar", "groovae_4bar_hier", "groovae_tiny", "groovae_tiny_hier"} <= set(config_names())
    first, second = load_config("groovae_tiny"), load_config("groovae_tiny")
    assert first.model is not second.model  # models are stateful: every lookup builds its own
    assert first.hparams.values() == load_config("groovae_tiny").hparams.values()


def test_configs_ship_inside_an_installed_wheel(tmp_path):
    """A non-editable install (a wheel, pip install git+...) finds the named configs."""
    import importlib.util
    if importlib.util.find_spec("setuptools") is None:  # built offline, with this venv's setuptools
        pytest.skip("setuptools is not installed in this venv (Python >= 3.12 venvs come without it)")
    import subprocess
    import sys
    from tests.conftest import ROOT
    wheels, site, source = tmp_path / "wheels", tmp_path / "site", tmp_path / "source"
    # built from a copy: setuptools writes build/ and groovae.egg-info beside the sources, where another test
    # worker's notebook kernel (cwd = the repo) would read a half-written egg-info
    for name in ("groovae", "configs"):
        shutil.copytree(os.path.join(ROOT, name), source / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(os.path.join(ROOT, "pyproject.toml"), source)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run(pip + ["wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)], check=True,
                   capture_output=True, cwd=tmp_path)
    wheel = next(wheels.glob("groovae-*.whl"))
    subprocess.run(pip + ["install", "--no-deps", "--target", str(site), str(wheel)], check=True, capture_output=True)
    code = ("import sys; sys.path.insert(0, sys.argv[1])\n"
            "from groovae.configs import load_config, CONFIG_DIR\n"
            "assert CONFIG_DIR.startswith(sys.argv[1]), CONFIG_DIR\n"
            "print(load_config('groovae_4bar').hparams.batch_size, load_config('groovae_4bar_hier').hparams.z_size)")
    proc = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["512", "256"]


def test_groovae_4bar_equals_magentas_field_by_field():
    ours, theirs = load_config("groovae_4bar"), magenta_configs.CONFIG_MAP["groovae_4bar"]
    assert ours._fields == theirs._fields
    assert type(ours.model) is type(theirs.model)
    assert type(ours.model.encoder) is type(theirs.model.encoder) is lstm_models.BidirectionalLstmEncoder
    assert type(ours.model.decoder) is type(theirs.model.decoder) is lstm_models.GrooveLstmDecoder
    assert ours.hparams.values() == theirs.hparams.values()
    assert type(ours.data_converter) is type(theirs.data_converter)
    _assert_same(_plain_attributes(ours.data_converter), _plain_attributes(theirs.data_converter))
    for field in ("note_sequence_augmenter", "train_examples_path", "eval_examples_path", "tfds_name"):
        assert getattr(ours, field) == getattr(theirs, field), field
    hp = ours.hparams
    assert (hp.batch_size, hp.max_seq_len, hp.z_size, hp.enc_rnn_size, hp.dec_rnn_size) == (512, 64, 256, [512], [256, 256])
    assert (hp.max_beta, hp.free_bits, hp.dropout_keep_prob) == (0.2, 48, 0.3)
    assert ours.data_converter.output_depth == 27  # 9 classes x (hit, velocity, offset)


def test_hier_config_is_flat_config_with_a_conductor():
    flat, hier = load_config("groovae_4bar"), load_config("groovae_4bar_hier")
    assert hier.hparams.values() == flat.hparams.values()
    assert type(hier.model.encoder) is lstm_models.BidirectionalLstmEncoder
    decoder = hier.model.decoder
    assert type(decoder) is lstm_models.HierarchicalLstmDecoder
    assert type(decoder._core_decoder) is lstm_models.GrooveLstmDecoder
    assert decoder._level_lengths == [4, 16]
    assert decoder._disable_autoregression == [0, 1]  # what magenta makes of True: every level
    _assert_same(_plain_attributes(hier.data_converter), _plain_attributes(flat.data_converter))


def test_each_load_is_a_fresh_object():
    a, b = load_config("groovae_tiny"), load_config("groovae_tiny")
    assert a.model is not b.model and a.data_converter is not b.data_converter
    a.hparams.batch_size = 1
    assert b.hparams.batch_size == 8


def test_hparams_override_and_errors():
    assert load_config("groovae_tiny", "z_size=4,dec_rnn_size=[8,8]").hparams.dec_rnn_size == [8, 8]
    with pytest.raises(ConfigError, match="unknown config 'nope'; known: groovae_4bar"):
        load_config("nope")
    with pytest.raises(ConfigError, match="bad --hparams"):
        load_config("groovae_tiny", "not_an_hparam=3")


def _graph_variables(config, batch_size=None):
    hp = config.hparams
    if batch_size:
        hp.batch_size = batch_size
    with tf.Graph().as_default():
        config.model.build(hp, config.data_converter.output_depth, is_training=False)
        x = tf.placeholder(tf.float32, [hp.batch_size, hp.max_seq_len, 27])
        config.model.eval(x, x, tf.fill([hp.batch_size], hp.max_seq_len))
        return {v.name: v.shape.as_list() for v in tf.global_variables()}


@pytest.mark.parametrize("name", ["groovae_4bar", "groovae_4bar_hier", "groovae_tiny", "groovae_tiny_hier"])
def test_graph_builds(name):
    variables = _graph_variables(load_config(name), batch_size=2)
    assert "global_step:0" in variables
    assert any(n.startswith("encoder/") for n in variables) and any(n.startswith("decoder/") for n in variables)
    if name.endswith("_hier"):
        assert any("hierarchical" in n for n in variables), sorted(variables)


def test_groovae_4bar_variables_match_magentas():
    """Same names and shapes => the public groovae_4bar checkpoint restores."""
    ours = _graph_variables(load_config("groovae_4bar"), batch_size=2)
    theirs = _graph_variables(magenta_configs.CONFIG_MAP["groovae_4bar"], batch_size=2)
    assert ours == theirs
    assert ours["encoder/mu/kernel:0"] == [1024, 256]  # 2 x 512 bidirectional -> z 256


YOUR_BEAT = {"groovae_4bar_humanize": "groovae_2bar_humanize",
             "groovae_4bar_tap2drum": "groovae_2bar_tap_fixed_velocity",
             "groovae_4bar_hits_control": "groovae_2bar_hits_control_tfds"}


@pytest.mark.parametrize("ours_name, theirs_name", YOUR_BEAT.items())
def test_your_beat_configs_are_magentas_2bar_configs_at_4_bars(ours_name, theirs_name):
    ours, theirs = load_config(ours_name), magenta_configs.CONFIG_MAP[theirs_name]
    assert type(ours.model.encoder) is type(theirs.model.encoder)
    assert type(ours.model.decoder) is type(theirs.model.decoder)
    assert {**theirs.hparams.values(), "max_seq_len": 64} == ours.hparams.values()
    assert type(ours.data_converter) is type(theirs.data_converter)
    theirs_converter = _plain_attributes(theirs.data_converter)
    assert theirs_converter.pop("_split_bars") == 2
    assert _plain_attributes(ours.data_converter) == {**theirs_converter, "_split_bars": 4}
    assert ours.hparams.values() == {**load_config("groovae_4bar").hparams.values()}  # the flat model's hparams


@pytest.mark.parametrize("name", sorted(YOUR_BEAT))
def test_your_beat_tensors_equal_magentas_converter(name, midi_dir):
    """Our config's windows are magenta's converter's (its 2-bar one, set to 4 bars) on the same drums."""
    import copy
    from tests.conftest import gmd_test_performances
    from groovae import data
    theirs = copy.deepcopy(magenta_configs.CONFIG_MAP[YOUR_BEAT[name]].data_converter)
    theirs._split_bars = 4
    ours = load_config(name).data_converter
    sequences = [data.read_drum_midi(os.path.join(midi_dir, f)).sequence for f in sorted(os.listdir(midi_dir))[:3]]
    sequences += gmd_test_performances(3)  # and three real performances, micro-timing and all, where the GMD is here
    for sequence in sequences:
        mine = data.sequence_to_tensors(sequence, ours)
        theirs.set_mode("eval")
        expected = theirs.to_tensors(sequence)
        assert len(mine["lengths"]) == len(expected.inputs) > 0
        np.testing.assert_array_equal(mine["inputs"], np.stack(expected.inputs).astype(np.float32))
        np.testing.assert_array_equal(mine["outputs"], np.stack(expected.outputs).astype(np.float32))
        if ours.control_depth:
            np.testing.assert_array_equal(mine["controls"], np.stack(expected.controls).astype(np.float32))
    hits = mine["outputs"][..., :9]
    if name.endswith("humanize"):  # the input: the same hits, on the grid, at one velocity
        np.testing.assert_array_equal(mine["inputs"][..., :9], hits)
        assert not mine["inputs"][..., 9:].any()
    elif name.endswith("tap2drum"):  # the input: one instrument, one velocity, the drummer's timing
        assert mine["inputs"][..., :9].sum(-1).max() == 1 and mine["inputs"][..., :9].any()
        np.testing.assert_array_equal(mine["inputs"][..., :9].max(-1), hits.max(-1))
    else:  # hits as controls: the decoder is told the hits
        np.testing.assert_array_equal(mine["controls"], hits)


def test_windows_fit_the_configs_whose_converter_made_them(tmp_path):
    """Windows preprocess made for one config serve every config with the same converter (flat, hierarchical,
    tiny) and are refused, naming what differs, by a config with another transform."""
    from groovae.configs import check_windows_fit, converter_transforms
    from groovae.errors import DataError
    (tmp_path / "report.json").write_text('{"inputs": {"config": "groovae_4bar"}}')
    for name in ("groovae_4bar", "groovae_4bar_hier", "groovae_tiny"):
        check_windows_fit(str(tmp_path / "train.npz"), name, load_config(name))
    for name, differs in (("groovae_4bar_humanize", "humanize False vs True"), ("groovae_4bar_tap2drum", "tapify"),
                          ("groovae_4bar_hits_control", "hits_as_controls False vs True")):
        with pytest.raises(DataError, match=f"windows made for groovae_4bar, .*{differs}.*--config {name}"):
            check_windows_fit(str(tmp_path), name, load_config(name))
    assert converter_transforms(load_config("groovae_4bar_humanize").data_converter)["split_bars"] == 4
    check_windows_fit(str(tmp_path / "elsewhere" / "train.npz"), "groovae_4bar_humanize",  # no report.json: no word
                      load_config("groovae_4bar_humanize"))
