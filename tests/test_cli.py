"""The thin CLI end to end on synthetic grooves, as a user runs it."""
import json
import os
import subprocess
import sys

from tests.conftest import ROOT, needs_audio


def groovae(*args, env=None):
    return subprocess.run([sys.executable, "-m", "groovae", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env=env)


def test_generate_without_fluidsynth_writes_midi_png_manifest_and_exits_0(tiny_run, tmp_path):
    """As on a machine without FluidSynth: one warning, no WAV, everything else."""
    run_dir, _ = tiny_run
    out = str(tmp_path / "samples")
    bare_path = str(tmp_path / "bin")  # a PATH on which no fluidsynth is found
    os.mkdir(bare_path)
    from groovae import listen
    listen.write_page(str(tmp_path))  # a listening page above the output folder: generate refreshes it
    proc = groovae("generate", "--config", "groovae_tiny", "--run_dir", run_dir, "--output_dir", out, "--n", "2",
                   env={**os.environ, "PATH": bare_path})
    assert proc.returncode == 0, proc.stderr[-2000:]
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line]
    assert len(warnings) == 1 and "fluidsynth" in warnings[0]
    entry = json.load(open(os.path.join(out, "manifest.json")))["runs"][0]
    assert entry["wav"] is False and sorted(entry["files"]) == [
        f"{entry['prefix']}_{i:02d}.{ext}" for i in range(2) for ext in ("mid", "png")]
    assert sorted(os.listdir(out)) == ["manifest.json"] + sorted(entry["files"])
    page = (tmp_path / "index.html").read_text()
    assert f"refreshed {tmp_path / 'index.html'}" in proc.stderr and page.count("<img") == 2
    assert "No audio: generated without WAV files: the fluidsynth program is not installed" in page


TF_STARTUP_NOISE = ("absl::InitializeLog", "cudart_stub", "cpu_feature_guard", "oneDNN supports DT_INT32")


def assert_quiet(proc):
    """The README's promise: commands print none of TensorFlow's native start-up lines."""
    assert not [noise for noise in TF_STARTUP_NOISE if noise in proc.stderr], proc.stderr[-2000:]


def test_train_then_generate(tiny_tensors_path, tmp_path):
    run_dir, out = str(tmp_path / "run"), str(tmp_path / "samples")
    proc = groovae("train", "--config", "groovae_tiny", "--data", tiny_tensors_path, "--run_dir", run_dir,
                   "--num_steps", "3", "--no_progress")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["global_step"] == 3
    assert_quiet(proc)
    proc = groovae("summary", "--run_dir", run_dir, "--output", str(tmp_path / "summary.json"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert json.loads(proc.stdout) == summary
    assert summary["config"] == "groovae_tiny" and summary["global_step"] == 3
    assert_quiet(proc)
    proc = groovae("generate", "--config", "groovae_tiny", "--checkpoint", "private", "--run_dir", run_dir,
                   "--output_dir", out, "--n", "2", "--seed", "3", "--no_wav")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert_quiet(proc)
    prefix = json.load(open(os.path.join(out, "manifest.json")))["runs"][0]["prefix"]
    names = [f"{prefix}_{i:02d}.{ext}" for i in range(2) for ext in ("mid", "png")]
    assert sorted(os.listdir(out)) == ["manifest.json"] + names
    assert proc.stdout.split() == [os.path.join(out, f) for f in names]
    proc = groovae("regenerate", os.path.join(out, "manifest.json"), "--output_dir", str(tmp_path / "again"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == f"{prefix}: 4 files, identical"


def test_errors_are_one_line(tmp_path, tiny_tensors_path):
    proc = groovae("train", "--config", "groovae_tiny", "--data", tiny_tensors_path, "--run_dir", str(tmp_path / "r"),
                   "--num_steps", "5", "--validate_every", "0")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == ("groovae train: error: --validate_every is 0; "
                                                    "it must be a whole number >= 1")
    proc = groovae("train", "--config", "nope", "--data", "x.npz", "--run_dir", str(tmp_path), "--num_steps", "1")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("groovae train: error: unknown config 'nope'")
    proc = groovae("generate", "--config", "groovae_tiny", "--checkpoint", str(tmp_path / "none"),
                   "--output_dir", str(tmp_path), "--temperature", "0")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("groovae generate: error: ")
    assert "no such checkpoint" in proc.stderr.strip().splitlines()[-1]


@needs_audio
def test_private_samples_script(tiny_run, tiny_tensors_path, tmp_path):
    """scripts/private_samples.sh: the committed samples/private set, made here from the tiny run."""
    run_dir, _ = tiny_run
    data_dir = tmp_path / "data"  # a preprocess dir whose test split is the tiny windows
    data_dir.mkdir()
    os.symlink(tiny_tensors_path, data_dir / "test.npz")
    out = str(tmp_path / "private")
    command = ["bash", "scripts/private_samples.sh", run_dir, str(data_dir), "groovae_tiny", out]
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = json.load(open(os.path.join(out, "manifest.json")))["runs"]
    assert [(r["mode"], r["temperature"], r["n"], r.get("decoding")) for r in runs] == [
        ("sample", 0.5, 5, None), ("sample", 0.3, 3, None), ("sample", 1.0, 3, None), ("sample", 0.5, 5, "given_hit"),
        ("interpolate", 0.5, 5, None), ("reconstruct", 0.5, 1, None), ("reconstruct", 0.5, 1, None),
        ("reconstruct", 0.5, 1, None)]
    names = set(os.listdir(out))
    for run in runs:
        assert {f"{run['prefix']}_{i:02d}.{ext}" for i in range(run["n"]) for ext in ("mid", "wav", "png")} <= names
    originals = sorted(f for f in os.listdir(os.path.join(out, "test_grooves")) if f.endswith(".mid"))
    assert len(originals) == 5 and all(f.startswith("test_window_") for f in originals)
    assert [i["path"] for r in runs[4:] for i in r["inputs"]] == [f"test_grooves/{f}" for f in originals]
    summary = json.load(open(os.path.join(out, "training_summary.json")))
    assert summary["config"] == "groovae_tiny" and summary["global_step"] == 40
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "PYTHON": sys.executable})
    assert again.returncode == 1 and "already holds a set" in again.stderr  # never over an existing set


def test_committed_files_name_no_folder_of_the_machine_that_made_them():
    """Manifests, reports and READMEs use relative paths (checkpoint and data paths included)."""
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    offenders = []
    for name in listed:
        if name.startswith("tests/") or not name.endswith((".json", ".md", ".py", ".sh", ".ipynb", ".txt", ".html")):
            continue
        with open(os.path.join(ROOT, name), errors="replace") as f:
            text = f.read()
        for pattern in ("/work/", "/tmp/", "/home/", "/root/", "/Users/"):
            if pattern in text:
                offenders.append(f"{name}: {pattern}")
    assert not offenders, offenders


def test_help_answers_without_importing_tensorflow():
    code = ("import sys\nfrom groovae import cli\n"
            "for argv in (['--help'], ['train', '--help'], ['generate', '--help']):\n"
            "    try:\n        cli.main(argv)\n    except SystemExit:\n        pass\n"
            "print(sorted(m for m in ('tensorflow', 'magenta', 'note_seq') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_expected_errors_are_one_line_and_bugs_keep_their_traceback(monkeypatch, capsys):
    import pytest
    from groovae import cli, train
    from groovae.errors import TrainError

    def expected(*args, **kwargs):
        raise TrainError("run/x: something the user can fix")
    monkeypatch.setattr(train, "train", expected)
    assert cli.main(["train", "--data", "d", "--run_dir", "r", "--num_steps", "1"]) == 2
    assert capsys.readouterr().err.strip() == "groovae train: error: run/x: something the user can fix"

    def bug(*args, **kwargs):
        raise ValueError("operands could not be broadcast together")  # e.g. from deep inside numpy
    monkeypatch.setattr(train, "train", bug)
    with pytest.raises(ValueError, match="broadcast"):
        cli.main(["train", "--data", "d", "--run_dir", "r", "--num_steps", "1"])


def test_commands_read_the_config_from_the_run(tiny_tensors_path, tmp_path):
    """generate, evaluate and export need no --config for a run of any config: run.json says it."""
    from groovae import cli, runs
    run_dir, out = str(tmp_path / "hier"), str(tmp_path / "samples")
    assert cli.main(["train", "--config", "groovae_tiny_hier", "--data", tiny_tensors_path, "--run_dir", run_dir,
                     "--num_steps", "2", "--no_progress"]) == 0
    assert cli.main(["generate", "--checkpoint", "private", "--run_dir", run_dir, "--output_dir", out, "--n", "1",
                     "--no_wav", "--no_png", "--no_progress"]) == 0
    [entry] = json.load(open(os.path.join(out, "manifest.json")))["runs"]
    assert entry["config"] == "groovae_tiny_hier" and entry["hparams"] == ""
    exported = str(tmp_path / "export")
    assert cli.main(["export", run_dir, "--output_dir", exported]) == 0
    assert cli.main(["generate", "--checkpoint", exported, "--output_dir", out, "--n", "1", "--seed", "1",
                     "--no_wav", "--no_png", "--no_progress"]) == 0
    assert runs.model_of(os.path.join(exported, "model.ckpt-2")) == ("groovae_tiny_hier", "")
    assert cli.main(["evaluate", "--compare", f"a={run_dir}", f"b={exported}", "--test", tiny_tensors_path,
                     "--n_samples", "2", "--temperatures", "0.5", "--output_dir", str(tmp_path / "eval"),
                     "--no_progress"]) == 0
    results = json.load(open(tmp_path / "eval" / "a" / "results.json"))
    assert results["config"] == "groovae_tiny_hier"
    # a run trained with hparams overrides: generate reads them too, and records them
    other = str(tmp_path / "z8")
    assert cli.main(["train", "--config", "groovae_tiny", "--hparams", "z_size=8,dec_rnn_size=[16, 16]", "--data",
                     tiny_tensors_path, "--run_dir", other, "--num_steps", "1", "--no_progress"]) == 0
    assert cli.main(["generate", "--run_dir", other, "--output_dir", str(tmp_path / "z8s"), "--n", "1",
                     "--no_wav", "--no_png", "--no_progress"]) == 0
    [entry] = json.load(open(tmp_path / "z8s" / "manifest.json"))["runs"]
    assert entry["config"] == "groovae_tiny" and entry["hparams"] == "dec_rnn_size=[16, 16],z_size=8"
