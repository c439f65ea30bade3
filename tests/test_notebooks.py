"""The notebooks, executed headless (nbclient) as Colab runs them: each in its own fresh runtime.

``run_notebook`` injects overrides into the cell tagged ``parameters`` and
runs every cell in a fresh kernel of this very interpreter (the venv with
the pinned stack).
"""
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT
from tests.test_preprocess import make_gmd_zip

NOTEBOOKS = ("01_preprocess.ipynb", "02_train.ipynb", "03_generate.ipynb")


def _kernel_dir(tmp_dir, env=None):
    """A 'python3' kernelspec running sys.executable (with ``env``), found first via JUPYTER_PATH."""
    spec_dir = os.path.join(tmp_dir, "jupyter", "kernels", "python3")
    os.makedirs(spec_dir, exist_ok=True)
    with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
        json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": "Python 3 (groovae tests)", "language": "python", "env": env or {}}, f)
    return os.path.join(tmp_dir, "jupyter")


def inject_parameters(nb, overrides):
    """Appends ``NAME = repr(value)`` lines to the cell tagged 'parameters'."""
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(cells)}")
    lines = [f"{name} = {value!r}" for name, value in overrides.items()]
    cells[0].source += "\n# injected by tests\n" + "\n".join(lines)
    return nb


def run_notebook(path, overrides=None, timeout=300, cwd=None, tmp_dir=None, env=None):
    """Executes the notebook at ``path`` with ``overrides``; returns the executed notebook.

    Cells run with ``cwd`` (default: the repo root) as working directory, in a
    fresh kernel with ``env`` added to its environment; a failing cell raises
    nbclient's CellExecutionError naming the cell.
    """
    nb = inject_parameters(nbformat.read(path, as_version=4), overrides or {})
    tmp_dir = tmp_dir or tempfile.mkdtemp(prefix="nbrun")
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = _kernel_dir(tmp_dir, env) + (os.pathsep + old if old else "")
    try:
        client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                resources={"metadata": {"path": cwd or ROOT}})
        client.execute()
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
    return nb


def outputs_text(nb):
    """All text/markdown outputs of an executed notebook, joined."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.extend(str(v) for k, v in out.get("data", {}).items() if k.startswith("text/"))
    return "\n".join(parts)


def _images(nb):
    return [o for c in nb.cells for o in c.get("outputs", []) if o.get("data", {}).get("image/png")]


def _code(name):
    return [c.source for c in nbformat.read(os.path.join(ROOT, name), as_version=4).cells if c.cell_type == "code"]


def test_each_notebook_has_one_parameters_cell_and_uses_every_parameter():
    """What Colab users and papermill-style overrides change: one tagged cell; a parameter no later cell reads
    would be a setting that does nothing."""
    import ast
    for name in NOTEBOOKS:
        nb = nbformat.read(os.path.join(ROOT, name), as_version=4)
        tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, name
        names = [t.id for node in ast.parse(nb.cells[tagged[0]].source).body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)]
        later = "\n".join(c.source for c in nb.cells[tagged[0] + 1:] if c.cell_type == "code")
        unused = [n for n in names if not re.search(rf"\b{n}\b", later)]
        assert names and not unused, (name, unused)
    bare = nbformat.v4.new_notebook()
    bare.cells = [nbformat.v4.new_code_cell("x = 1")]
    with pytest.raises(ValueError, match="parameters"):  # the tests' injection refuses a notebook without one
        inject_parameters(bare, {"x": 2})


def test_one_install_cell_and_one_drive_folder_in_all_three():
    install = {name: _code(name)[0] for name in NOTEBOOKS}
    assert len(set(install.values())) == 1, "the install cells differ"
    assert "notebook_install.py" in install["01_preprocess.ipynb"]
    for name in NOTEBOOKS:
        assert sum("DRIVE_DIR = " in cell for cell in _code(name)) == 1, name
        assert any("notebook.workspace(DRIVE_DIR)" in cell for cell in _code(name)), name


def test_only_the_training_notebook_asks_for_a_gpu():
    metadata = {name: nbformat.read(os.path.join(ROOT, name), as_version=4).metadata for name in NOTEBOOKS}
    assert [metadata[n].get("accelerator") for n in NOTEBOOKS] == [None, "GPU", None]
    gpu_cell = next(c for c in _code("02_train.ipynb") if "and-cuda" in c)
    with open(os.path.join(ROOT, "requirements.txt")) as f:
        tensorflow = re.search(r"^tensorflow==(\S+)", f.read(), re.M).group(1)
    assert f"tensorflow[and-cuda]=={tensorflow}" in gpu_cell
    assert not any("and-cuda" in c for n in ("01_preprocess.ipynb", "03_generate.ipynb") for c in _code(n))
    assert any("apt-get update" in c for c in _code("03_generate.ipynb"))


def _repository_from_work_tree(dest):
    """A git repository holding this work tree's files as they are now (committed or not)."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    for name in listed:
        if os.path.isfile(os.path.join(ROOT, name)):
            os.makedirs(os.path.dirname(os.path.join(dest, name)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(dest, name))
    git = ["git", "-c", "user.name=tests", "-c", "user.email=tests@localhost", "-C", str(dest)]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "snapshot"]):
        subprocess.run(git + args, check=True, capture_output=True)
    return str(dest)


def test_notebooks_chain_across_fresh_runtimes_through_the_drive_folder(tmp_path):
    """As in Colab: 01 -> 02 -> 02 again (after a disconnect) -> 03, each in its own fresh kernel with its
    own home, working directory and clone of the repo (GROOVAE_REPO_URL); only the drive folder is shared."""
    remote = "file://" + _repository_from_work_tree(tmp_path / "remote")
    drive = tmp_path / "drive"
    source = make_gmd_zip(tmp_path / "groove-synthetic.zip")

    def runtime(name, notebook, overrides):
        home, content = tmp_path / name / "root", tmp_path / name / "content"
        home.mkdir(parents=True)
        content.mkdir()
        nb = run_notebook(os.path.join(ROOT, notebook), {"DRIVE_DIR": str(drive), **overrides}, timeout=600,
                          cwd=str(content), tmp_dir=str(tmp_path / name),
                          env={"HOME": str(home), "GROOVAE_REPO_URL": remote})
        text = outputs_text(nb)
        clone = os.path.join(str(home), "groovae")
        assert f"install: groovae from {clone}" in text and f"groovae 0.1.0 ({clone})" in text, text[:2000]
        assert re.search(r"device: (CPU|GPU)", text)
        return nb, text

    _, text = runtime("rt1", "01_preprocess.ipynb", {"SOURCE": source, "MAX_FILES": 8, "ALLOW_UNVERIFIED": True,
                                                      "WORKERS": 1})
    assert "| train |" in text and "unreadable" in text
    with open(drive / "data" / "gmd" / "report.json") as f:
        assert json.load(f)["totals"]["tensors"] == 20

    # No RUN_DIR: 02 trains CONFIG into runs/CONFIG and 03 reads it from there.
    train_params = {"CONFIG": "groovae_tiny", "NUM_STEPS": 20, "VALIDATE_EVERY": 10}
    nb, text = runtime("rt2", "02_train.ipynb", train_params)
    assert "'global_step': 20" in text and "'steps_this_run': 20" in text and _images(nb)
    _, text = runtime("rt3", "02_train.ipynb", {**train_params, "NUM_STEPS": 30})  # resumes from the drive
    assert "'global_step': 30" in text and "'steps_this_run': 10" in text

    nb, text = runtime("rt4", "03_generate.ipynb", {"CHECKPOINT": "private", "CONFIG": "groovae_tiny",
                                                    "N": 2, "INTERPOLATION_STEPS": 3, "PRIOR": "data",
                                                    "DECODING": "given_hit"})
    assert "model.ckpt-30" in text and os.listdir(drive / "runs") == ["groovae_tiny"]
    assert len(_images(nb)) == 2 + 3  # a drum roll per sample and per interpolation step
    names = sorted(os.listdir(drive / "samples" / "notebook"))
    assert "manifest.json" in names and len([n for n in names if n.endswith(".mid")]) == 5
    html = [o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", [])]
    player = [h for h in html if "groovae-listen" in h]  # the last cell: the listening page's player, files embedded
    audio = [h for h in html if "<audio" in h and h not in player]
    wavs = [n for n in names if n.endswith(".wav")]
    assert len(audio) == len(wavs) == (0 if "audio: unavailable" in text else 5)
    assert len(player) == 1 and player[0].count("<audio") == len(wavs) and player[0].count("<img") == 5
    assert 'src="data:image/png;base64,' in player[0] and "temperature 0.5" in player[0]
    assert "from the data prior, velocities and timing read given the hit" in player[0]
    assert "from the data prior" in player[0] and os.path.isfile(drive / "runs" / "groovae_tiny" / "model.ckpt-30.prior.npz")
    # The last section: the model exported for magenta.js and the lab page around it (outside Colab: how to serve it).
    assert "python -m http.server -d" in text
    with open(drive / "lab" / "lab.json") as f:
        assert [(m["name"], m["role"], m["step"]) for m in json.load(f)["models"]] == [("groovae_tiny", "sample", 30)]
    assert sorted(os.listdir(drive / "magenta_js" / "groovae_tiny")) == ["config.json", "group1-shard1of1",
                                                                          "weights_manifest.json"]
    assert sorted(os.listdir(drive)) == ["cache", "data", "lab", "magenta_js", "runs", "samples"]


@pytest.fixture
def installer():
    """scripts/notebook_install.py as a module (the install cell runs it in the kernel)."""
    import runpy
    return runpy.run_path(os.path.join(ROOT, "scripts", "notebook_install.py"))


def test_installer_reads_every_pin(installer):
    pins = installer["read_pins"]()
    assert pins["tensorflow"] and pins["magenta"] == "2.1.4" and pins["note-seq"] == "0.0.5"
    assert installer["unmet_pins"](pins) == []  # this venv is set up from the same files
    assert installer["unmet_pins"]({"numpy": "0.0.1", "surely-not-installed": "1"}) == [
        "numpy==0.0.1", "surely-not-installed==1"]


def test_installer_names_packages_the_runtime_must_reload(installer):
    """Colab preloads numpy: after pip replaces it, only a restart uses the pinned one."""
    import types
    modules = {"numpy": types.SimpleNamespace(__version__="2.0.2"),
               "google.protobuf": types.SimpleNamespace(__version__="7.36.2")}
    installed = {"numpy": "2.4.6", "protobuf": "7.36.2", "scipy": "1.17.1"}.get
    stale = installer["stale_imports"]({"numpy": "2.4.6", "protobuf": "7.36.2", "scipy": "1.17.1"}, modules, installed)
    assert stale == [("numpy", "2.0.2", "2.4.6")]


def test_workspace_mounts_google_drive_in_colab(tmp_path, monkeypatch):
    import types
    from groovae import notebook
    mounted = []
    colab = types.ModuleType("google.colab")
    colab.drive = types.SimpleNamespace(mount=mounted.append)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.setattr(notebook, "COLAB_DRIVE", str(tmp_path / "drive"))
    assert notebook.workspace("MyDrive/groovae") == str(tmp_path / "drive" / "MyDrive" / "groovae")
    assert mounted == [str(tmp_path / "drive")]
    assert notebook.workspace(str(tmp_path / "elsewhere")) == str(tmp_path / "elsewhere")  # absolute: as is
    assert mounted == [str(tmp_path / "drive")]


def test_workspace_outside_colab_is_under_home(tmp_path, monkeypatch):
    from groovae import notebook
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert notebook.workspace("MyDrive/groovae") == str(tmp_path / "MyDrive" / "groovae")
    assert os.path.isdir(tmp_path / "MyDrive" / "groovae")


def test_serve_page_puts_the_lab_in_colabs_output_from_the_runtime(tmp_path, monkeypatch):
    import types
    import urllib.request
    from groovae import notebook
    (tmp_path / "index.html").write_text("<p>the lab</p>")
    shown = []
    colab = types.ModuleType("google.colab")
    colab.output = types.SimpleNamespace(serve_kernel_port_as_iframe=lambda port, path, height: shown.append((port, path)))
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    assert "served from this runtime" in notebook.serve_page(str(tmp_path / "index.html"))
    [(port, path)] = shown[:1]
    assert path == "/index.html"
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
        assert response.read() == b"<p>the lab</p>"
    notebook.serve_page(str(tmp_path / "index.html"))  # the cell run again: the same server
    assert shown[1] == (port, "/index.html")
    monkeypatch.delitem(sys.modules, "google.colab")
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    assert notebook.serve_page(str(tmp_path / "index.html")).endswith(f"python -m http.server -d {tmp_path}")


def test_a_your_beat_model_preprocesses_and_trains_in_notebooks_01_and_02(tmp_path, tiny_run):
    """01 with a "Your beat" CONFIG writes that converter's windows; 02 fine-tunes that config on them from a flat
    run (INIT_FROM; a tiny one here, as the committed flat model is for groovae_4bar_humanize itself)."""
    from tests.conftest import tiny_config
    config = tiny_config(str(tmp_path), "groovae_4bar_humanize")
    drive = {"DRIVE_DIR": str(tmp_path / "drive"), "CONFIG": config}
    run_notebook(os.path.join(ROOT, "01_preprocess.ipynb"), {**drive, "DATA": "data/gmd_humanize", "WORKERS": 1,
                                                             "SOURCE": make_gmd_zip(tmp_path / "gmd.zip"),
                                                             "ALLOW_UNVERIFIED": True}, timeout=600)
    with open(tmp_path / "drive" / "data" / "gmd_humanize" / "report.json") as f:
        assert json.load(f)["inputs"]["config"] == config
    nb = run_notebook(os.path.join(ROOT, "02_train.ipynb"), {**drive, "DATA": "data/gmd_humanize", "NUM_STEPS": 3,
                                                             "VALIDATE_EVERY": 3, "RUN_DIR": "runs/humanize",
                                                             "INIT_FROM": tiny_run[0]}, timeout=600)
    assert "'global_step': 3" in outputs_text(nb)
    with open(tmp_path / "drive" / "runs" / "humanize" / "run.json") as f:
        assert json.load(f)["init_from"]["step"] == tiny_run[1]["global_step"]


def test_notebooks_find_the_committed_models_by_their_repo_path(tmp_path):
    from groovae import checkpoints, notebook
    assert notebook.checkpoint_path("checkpoints/groovae_4bar", str(tmp_path)) == os.path.join(
        os.path.dirname(checkpoints.COMMITTED_DIR), "checkpoints", "groovae_4bar")
    (tmp_path / "checkpoints" / "groovae_4bar").mkdir(parents=True)  # the drive folder's own, if it has one
    assert notebook.checkpoint_path("checkpoints/groovae_4bar", str(tmp_path)) == str(tmp_path / "checkpoints" /
                                                                                     "groovae_4bar")
    assert notebook.checkpoint_path("runs/x", str(tmp_path)) == str(tmp_path / "runs" / "x")
    kept = (None, "public", "private")
    assert [notebook.checkpoint_path(s, str(tmp_path)) for s in kept] == list(kept)
    assert notebook.checkpoint_path("checkpoints/groovae_4bar/model.ckpt-2721", "/nowhere").startswith(
        os.path.dirname(checkpoints.COMMITTED_DIR))  # a prefix of the committed model, no file of that name
