"""Named configs: groovae_4bar equals magenta's; the others derive from it."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
from magenta.models.music_vae import configs as magenta_configs
from magenta.models.music_vae import lstm_models

from groovae.configs import CONFIG_MAP, config_names, load_config


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


def test_registry_lists_the_named_configs():
    assert {"groovae_4bar", "groovae_4bar_hier", "groovae_tiny", "groovae_tiny_hier"} <= set(config_names())
    assert set(CONFIG_MAP) == set(config_names())


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
    with pytest.raises(ValueError, match="unknown config 'nope'; known: groovae_4bar"):
        load_config("nope")
    with pytest.raises(ValueError, match="bad --hparams"):
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
