"""Training the tiny config on synthetic grooves; resume; refusals."""
import os

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from groovae import data, train


def test_loss_goes_down(tiny_run):
    _, result = tiny_run
    assert result["global_step"] == 40 and result["steps_this_run"] == 40
    assert np.isfinite(result["final_loss"])
    assert result["final_loss"] < 0.8 * result["first_loss"], result


def test_checkpoint_has_magenta_variable_names(tiny_run):
    run_dir, _ = tiny_run
    names = dict(tf.train.list_variables(tf.train.latest_checkpoint(run_dir)))
    assert names["global_step"] == [] and "encoder/mu/kernel" in names
    assert any(n.startswith("decoder/multi_rnn_cell/") for n in names)


def test_resume_continues_from_last_checkpoint(tiny_tensors_path, tmp_path):
    run_dir = str(tmp_path / "run")
    first = train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=5, progress=False)
    again = train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=8, progress=False)
    assert first["global_step"] == 5
    assert again["global_step"] == 8 and again["steps_this_run"] == 3
    assert again["checkpoint"].endswith("model.ckpt-8")
    done = train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=8, progress=False)
    assert done["steps_this_run"] == 0


def test_batches_are_a_pure_function_of_seed_and_step():
    a = [data.batch_indices(10, 4, seed=3, step=s) for s in range(6)]
    b = [data.batch_indices(10, 4, seed=3, step=s) for s in range(6)]
    assert all((x == y).all() for x, y in zip(a, b))
    first_epoch = np.concatenate(a)[:10]
    assert sorted(first_epoch) == list(range(10))  # every window once per epoch


def test_run_dir_of_another_config_is_refused(tiny_run, tiny_tensors_path):
    run_dir, _ = tiny_run
    before = sorted(os.listdir(run_dir))
    with pytest.raises(train.TrainError, match="holds a run of config 'groovae_tiny', not 'groovae_tiny_hier'"):
        train.train("groovae_tiny_hier", tiny_tensors_path, run_dir, num_steps=50, progress=False)
    with pytest.raises(train.TrainError, match=r"other hparams \(z_size\)"):
        train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=50, hparams="z_size=4", progress=False)
    assert sorted(os.listdir(run_dir)) == before


def test_nan_loss_stops_without_saving(tiny_tensors_path, tmp_path):
    tensors = data.load_tensors(tiny_tensors_path)
    tensors["outputs"] = np.full_like(tensors["outputs"], np.nan)
    bad = str(tmp_path / "nan.npz")
    data.save_tensors(bad, tensors)
    run_dir = str(tmp_path / "run")
    with pytest.raises(train.TrainError, match="loss is nan at step 1"):
        train.train("groovae_tiny", bad, run_dir, num_steps=5, progress=False)
    assert tf.train.latest_checkpoint(run_dir) is None


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(data.DataError, match="no such tensor file"):
        train.train("groovae_tiny", str(tmp_path / "none.npz"), str(tmp_path / "run"), 1, progress=False)


def test_hierarchical_tiny_trains(tiny_tensors_path, tmp_path):
    result = train.train("groovae_tiny_hier", tiny_tensors_path, str(tmp_path / "run"), num_steps=3, progress=False)
    assert result["global_step"] == 3 and np.isfinite(result["final_loss"])
