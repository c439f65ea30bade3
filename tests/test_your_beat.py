"""The "your beat" models (humanize, tap2drum, hits as controls) train and decode with the tiny sizes."""
import os

import numpy as np
import pytest

from groovae import checkpoints, data, runs, train
from groovae.configs import load_config
from groovae.errors import GenerateError
from groovae.model import GrooveModel, model_variables

TINY = '''from groovae.configs import load_config, with_hparams
config = with_hparams(load_config("{base}"), batch_size=8, z_size=16, enc_rnn_size=[32], dec_rnn_size=[32, 32],
                      free_bits=4)
'''


def tiny_config(folder, base):
    """A file config: the your-beat config ``base`` at groovae_tiny's sizes."""
    path = os.path.join(folder, base.replace("groovae_4bar", "tiny") + ".py")
    with open(path, "w") as f:
        f.write(TINY.format(base=base))
    return path


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
    played = grooves[..., 9:18][grooves[..., :9] > 0.5]
    assert played.size and np.ptp(played) > 0  # velocities vary: the model plays them
    with pytest.raises(GenerateError, match="decodes with controls"):
        model.decode(z)
    with pytest.raises(GenerateError, match="encodes with controls"):
        model.encode(tensors["inputs"][:2])
