"""Training the tiny config on synthetic grooves; resume; refusals."""
import os
import re

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from groovae import checkpoints, data, runs, train


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


def test_time_estimate_after_the_first_steps(tiny_tensors_path, tmp_path):
    lines = []
    train.train("groovae_tiny", tiny_tensors_path, str(tmp_path / "run"), num_steps=10, progress=False,
                log=lambda message, **_: lines.append(message))
    estimates = [line for line in lines if "steps to go" in line]
    assert len(estimates) == 1 and re.search(r"\d s/step on (CPU|GPU:0); 6 steps to go take about \d", estimates[0])


def test_format_duration():
    assert [train.format_duration(s) for s in (12, 600, 6 * 3600)] == ["12 s", "10 min", "6.0 h"]


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
    assert checkpoints.complete_checkpoints(run_dir) == [os.path.join(run_dir, "model.ckpt-0")]  # only the start


def test_missing_data_is_a_clear_error(tmp_path):
    with pytest.raises(data.DataError, match="no such tensor file"):
        train.train("groovae_tiny", str(tmp_path / "none.npz"), str(tmp_path / "run"), 1, progress=False)


def test_hierarchical_tiny_trains_its_conductor(tiny_tensors_path, tmp_path):
    result = train.train("groovae_tiny_hier", tiny_tensors_path, str(tmp_path / "run"), num_steps=40, progress=False)
    assert result["global_step"] == 40 and result["final_loss"] < 0.8 * result["first_loss"], result
    trained = dict(tf.train.list_variables(result["checkpoint"]))
    conductor = [n for n in trained if "hierarchical_level_0" in n and "Adam" not in n]
    assert conductor and any(n.endswith("kernel") for n in conductor), sorted(trained)
    reader = tf.train.load_checkpoint(result["checkpoint"])
    adam = [reader.get_tensor(n + "/Adam") for n in conductor if n + "/Adam" in trained]
    assert adam and all(a.any() for a in adam)  # the conductor's weights received gradients


def test_validation_metrics_and_csv(tiny_tensors_path, tmp_path):
    run_dir = str(tmp_path / "run")
    result = train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=6, validation_path=tiny_tensors_path,
                         validate_every=3, summary_every=2, progress=False)
    for key in ("loss", "losses/r_loss", "losses/kl_bits", "metrics/hits_loss", "metrics/velocities_loss",
                "metrics/offsets_loss"):
        assert np.isfinite(result["validation"][key]), key
    rows = runs.read_metrics(run_dir)
    assert [(int(r["step"]), r["split"]) for r in rows if r["split"] == "validation"] == [(3, "validation"), (6, "validation")]
    assert [int(r["step"]) for r in rows if r["split"] == "train"] == [2, 4, 6]
    assert float(rows[-1]["hits_loss"]) > 0
    assert os.listdir(os.path.join(run_dir, "eval"))  # TensorBoard events
    seconds = [float(r["train_seconds"]) for r in rows]
    assert seconds == sorted(seconds) and seconds[0] > 0

    summary = runs.summarize_run(run_dir, tail=2)
    assert summary["config"] == "groovae_tiny" and summary["global_step"] == 6
    assert summary["examples_seen"] == 6 * summary["hparams_batch_size"]
    assert summary["final_train"]["steps"] == [4, 6]
    assert summary["final_train"]["loss"] == pytest.approx(
        (float(rows[-3]["loss"]) + float(rows[-2]["loss"])) / 2, abs=1e-3)
    assert summary["final_validation"]["step"] == 6
    assert summary["final_validation"]["hits_loss"] == pytest.approx(float(rows[-1]["hits_loss"]), abs=1e-3)
    assert [p["step"] for p in summary["validation_curve"]] == [3, 6]
    assert summary["train_hours"] == round(seconds[-1] / 3600, 2)


def test_training_seconds_skips_gaps_when_no_process_ran():
    """Rows from before the train_seconds column are timed by their stamps, gaps > max_gap excluded."""
    rows = [{"time": "100"}, {"time": "160"}, {"time": "220"},  # one session: 120 s
            {"time": "5000"}, {"time": "5030"}]                  # stopped, then 30 s more
    assert runs.training_seconds(rows, max_gap=900) == 150
    rows.append({"time": "5090", "train_seconds": "400.5"})
    assert runs.training_seconds(rows) == 400.5
    assert runs.training_seconds([]) == 0


def test_summarize_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(train.TrainError, match="not a training run dir"):
        runs.summarize_run(str(tmp_path))


def test_bf16_is_chosen_only_on_cpus_with_bf16_units():
    from groovae.device import choose_precision
    assert choose_precision("auto", gpu=False, flags={"avx2", "avx512_bf16"})[0] == "bf16"
    assert choose_precision("bf16", gpu=False, flags={"amx_bf16"})[0] == "bf16"
    assert choose_precision("auto", gpu=False, flags={"avx2", "fma"}) == ("fp32", "this CPU has no AVX512-BF16/AMX units")
    precision, why = choose_precision("bf16", gpu=False, flags={"avx2"})
    assert precision == "fp32" and "bf16 asked for" in why and "no AVX512-BF16/AMX" in why
    assert choose_precision("fp32", gpu=False, flags={"avx512_bf16"})[0] == "fp32"
    assert choose_precision("auto", gpu=True, flags={"avx512_bf16"})[0] == "fp32"
    with pytest.raises(ValueError, match="precision must be one of"):
        choose_precision("fp16")


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    from groovae.device import cpu_flags
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: fpu sse avx2 avx512_bf16\n\n")
    assert cpu_flags(str(cpuinfo)) == {"fpu", "sse", "avx2", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "absent")) == set()


def test_session_config_skips_grappler_for_a_fast_start_but_keeps_the_bf16_rewrite():
    from tensorflow.core.protobuf import rewriter_config_pb2
    from groovae.device import session_config
    assert session_config("fp32", fast_start=True).graph_options.rewrite_options.disable_meta_optimizer
    assert not session_config("fp32").graph_options.rewrite_options.disable_meta_optimizer  # generation
    bf16 = session_config("bf16", fast_start=True).graph_options.rewrite_options
    assert not bf16.disable_meta_optimizer
    assert bf16.auto_mixed_precision_onednn_bfloat16 == rewriter_config_pb2.RewriterConfig.ON


@pytest.mark.skipif(not ({"avx512_bf16", "amx_bf16"} & __import__("groovae.device").device.cpu_flags()),
                    reason="this CPU has no AVX512-BF16/AMX units, where TF skips the bf16 rewrite")
def test_bf16_rewrite_runs_where_the_cpu_has_bf16_units():
    import tensorflow.compat.v1 as tf
    from groovae.device import session_config
    with tf.Graph().as_default():
        x = tf.placeholder(tf.float32, [64, 64])
        weights = tf.Variable(np.ones((64, 64), np.float32))
        y = tf.reduce_sum(tf.matmul(x, weights))
        with tf.Session(config=session_config("bf16", fast_start=True)) as sess:
            sess.run(tf.global_variables_initializer())
            metadata = tf.RunMetadata()
            sess.run(y, {x: np.ones((64, 64))}, options=tf.RunOptions(output_partition_graphs=True),
                     run_metadata=metadata)
    assert "DT_BFLOAT16" in str(metadata.partition_graphs)


def test_bf16_request_trains_and_says_what_it_used(tiny_tensors_path, tmp_path):
    from groovae.device import choose_precision
    lines = []
    result = train.train("groovae_tiny", tiny_tensors_path, str(tmp_path / "run"), num_steps=3, precision="bf16",
                         progress=False, log=lambda *a, **k: lines.append(" ".join(map(str, a))))
    precision, why = choose_precision("bf16")
    assert result["precision"] == precision and np.isfinite(result["final_loss"])
    assert any(f"{precision} ({why})" in line for line in lines)
    assert any(line.startswith("train: first step done") for line in lines)


def test_killed_run_resumes_from_last_checkpoint(tiny_tensors_path, tmp_path):
    """kill -9 mid-run: the newest checkpoint loads and training continues from it."""
    import signal
    import subprocess
    import sys
    import time
    from tests.conftest import ROOT
    run_dir = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "groovae", "train", "--config", "groovae_tiny", "--data", tiny_tensors_path,
           "--run_dir", run_dir, "--num_steps", "100000", "--no_progress"]
    # A checkpoint after every step, so the kill most likely lands in the middle of a save.
    proc = subprocess.Popen(cmd + ["--checkpoint_every_secs", "0"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(runs.read_metrics(run_dir)) < 3:
        time.sleep(0.2)
    time.sleep(0.37)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    latest = tf.train.latest_checkpoint(run_dir)  # TF's own reader finds it too (relative paths)
    start = int(latest.rsplit("-", 1)[1])
    assert start >= 30
    result = train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=start + 2, progress=False)
    assert result["global_step"] == start + 2 and result["steps_this_run"] == 2
    rows = runs.read_metrics(run_dir)
    steps = [int(r["step"]) for r in rows if r["split"] == "train"]
    assert steps == sorted(set(steps)) and all(s <= start + 2 for s in steps)


def test_moved_run_dir_resumes_where_it_was(tiny_tensors_path, tmp_path):
    """TF's state file holds the paths of the old place; the run resumes anyway, metrics kept."""
    import shutil
    first = str(tmp_path / "a" / "run")
    train.train("groovae_tiny", tiny_tensors_path, first, num_steps=20, summary_every=5, progress=False)
    moved = str(tmp_path / "b" / "run")
    shutil.copytree(first, moved)
    old_state = "\n".join(f'{k}: "{first}/model.ckpt-20"' for k in ("model_checkpoint_path", "all_model_checkpoint_paths"))
    with open(os.path.join(moved, "checkpoint"), "w") as f:  # as an older or absolute-path save left it
        f.write(old_state + "\n")
    shutil.rmtree(tmp_path / "a")
    again = train.train("groovae_tiny", tiny_tensors_path, moved, num_steps=25, summary_every=5, progress=False)
    assert again["steps_this_run"] == 5 and again["global_step"] == 25
    steps = [int(r["step"]) for r in runs.read_metrics(moved)]
    assert steps == [5, 10, 15, 20, 25]
    with open(os.path.join(moved, "checkpoint")) as f:
        assert str(tmp_path) not in f.read()  # relative paths from now on


def test_run_dir_whose_checkpoints_are_gone_is_refused_and_keeps_its_metrics(tiny_tensors_path, tmp_path):
    run_dir = str(tmp_path / "run")
    train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=10, summary_every=5, progress=False)
    for name in os.listdir(run_dir):
        if name.startswith("model.ckpt-") and name.endswith(".index"):
            os.remove(os.path.join(run_dir, name))
    with open(os.path.join(run_dir, runs.METRICS_CSV)) as f:
        metrics = f.read()
    with pytest.raises(train.TrainError, match="records training up to step 10 but no complete checkpoint"):
        train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=20, progress=False)
    with open(os.path.join(run_dir, runs.METRICS_CSV)) as f:
        assert f.read() == metrics


def test_resume_with_other_seed_or_data_is_refused(tiny_tensors_path, tmp_path):
    import json
    run_dir = str(tmp_path / "run")
    train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=2, progress=False)
    with pytest.raises(train.TrainError, match="trained with --seed 0, not 1; rerun with the same"):
        train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=4, seed=1, progress=False)
    tensors = data.load_tensors(tiny_tensors_path)
    other = str(tmp_path / "other.npz")
    data.save_tensors(other, {k: v[:-1] for k, v in tensors.items()})
    with pytest.raises(train.TrainError, match=r"trained on other data \(16 windows.*now 15"):
        train.train("groovae_tiny", other, run_dir, num_steps=4, progress=False)
    info_path = os.path.join(run_dir, runs.RUN_JSON)
    with open(info_path) as f:
        info = json.load(f)
    assert info["seed"] == 0 and info["data"]["windows"] == 16
    with open(info_path, "w") as f:  # a run dir from before seed and data were recorded
        json.dump({"config": info["config"], "hparams": info["hparams"]}, f)
    assert train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=3, progress=False)["global_step"] == 3
    with open(info_path) as f:
        assert json.load(f) == info


@pytest.mark.parametrize("setting, value", [("validate_every", 0), ("num_steps", -1), ("seed", -3),
                                            ("checkpoint_every_secs", -1), ("checkpoint_every_secs", float("nan")),
                                            ("summary_every", 0), ("num_steps", 2.5)])
def test_bad_numbers_are_refused_before_anything_is_written(tiny_tensors_path, tmp_path, setting, value):
    args = {"num_steps": 2, **({} if setting == "num_steps" else {setting: value})}
    if setting == "num_steps":
        args["num_steps"] = value
    with pytest.raises(train.TrainError, match=f"--{setting} is"):
        train.train("groovae_tiny", tiny_tensors_path, str(tmp_path / "run"), progress=False, **args)
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize("signum, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupted_run_saves_its_steps_and_resumes(tiny_tensors_path, tmp_path, signum, code):
    """Ctrl-C (and Colab's interrupt: KeyboardInterrupt) or SIGTERM mid-run: a checkpoint at the step reached,
    one line, the shell's exit code; no periodic checkpoint was due, so without it the steps would be lost."""
    import signal
    import subprocess
    import sys
    import time
    from tests.conftest import ROOT
    run_dir = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "groovae", "train", "--config", "groovae_tiny", "--data", tiny_tensors_path,
           "--run_dir", run_dir, "--num_steps", "100000", "--no_progress", "--checkpoint_every_secs", "100000"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(runs.read_metrics(run_dir)) < 3:
        time.sleep(0.2)
    proc.send_signal(getattr(signal, signum))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err[-2000:]
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if "interrupted at step" in x]
    assert len(line) == 1 and line[0].endswith("; rerun to resume"), err[-2000:]
    step = int(line[0].split("interrupted at step ")[1].split(";")[0])
    saved = checkpoints.newest_checkpoint(run_dir)
    assert checkpoints.step_of(saved) == step >= 30  # 3 metrics rows: at least 30 steps
    assert int(tf.train.load_checkpoint(saved).get_tensor("global_step")) == step
    result = train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=step + 2, progress=False)
    assert result["steps_this_run"] == 2


def test_a_checkpoint_save_that_fails_on_a_full_disk_keeps_the_last_one(tiny_tensors_path, tmp_path):
    """TensorFlow's own save fails half-way (the process may write no more than 1 byte per file meanwhile): one
    line naming the file and the checkpoint kept, which is whole and resumes."""
    from tests.conftest import run_with_fault
    run_dir = str(tmp_path / "run")
    argv = ["train", "--config", "groovae_tiny", "--data", tiny_tensors_path, "--run_dir", run_dir, "--num_steps", "20",
            "--no_progress", "--checkpoint_every_secs", "0"]  # saves at step 0, then after every step: the 4th fails
    code, err = run_with_fault(argv, "groovae.train.TrainingSession.save", "fsize@4", tmp_path / "marker")
    assert code == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"groovae train: error: {run_dir}/model.ckpt-3"), last
    assert last.endswith(": cannot write (File too large); the last checkpoint saved, model.ckpt-2, is kept: free "
                         "space and rerun to resume from it"), last
    assert "Traceback" not in err
    kept = checkpoints.newest_checkpoint(run_dir)
    assert checkpoints.step_of(kept) == 2 and int(tf.train.load_checkpoint(kept).get_tensor("global_step")) == 2
    result = train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=4, progress=False)
    assert result["steps_this_run"] == 2



def test_a_damaged_newest_checkpoint_resumes_from_the_one_before(tiny_run, tiny_tensors_path, tmp_path):
    """A newest checkpoint whose .data was cut short (a disk that filled, a copy interrupted) is passed over."""
    import shutil
    run_dir = str(tmp_path / "run")
    shutil.copytree(tiny_run[0], run_dir)
    newest = checkpoints.newest_checkpoint(run_dir)
    data_file = newest + ".data-00000-of-00001"
    with open(data_file, "r+b") as f:
        f.truncate(os.path.getsize(data_file) // 2)
    lines = []
    result = train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=45, progress=False,
                         log=lambda *a, **k: lines.append(" ".join(map(str, a))))
    assert result["global_step"] == 45
    said = "\n".join(lines)
    assert f"{newest}: cannot restore the checkpoint" in said and "trying the checkpoint before it" in said
    assert "resumed from" in said and "model.ckpt-0" in said
