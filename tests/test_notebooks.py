"""The notebooks, executed headless (nbclient) on tiny inputs.

``run_notebook`` is shared by the notebook tests: it injects overrides into
the cell tagged ``parameters`` and runs every cell in a kernel of this very
interpreter (the venv with groovae installed).
"""
import json
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import ROOT
from tests.test_preprocess import make_gmd_zip


def _kernel_dir(tmp_dir):
    """A 'python3' kernelspec running sys.executable, found first via JUPYTER_PATH."""
    spec_dir = os.path.join(tmp_dir, "jupyter", "kernels", "python3")
    os.makedirs(spec_dir, exist_ok=True)
    with open(os.path.join(spec_dir, "kernel.json"), "w") as f:
        json.dump({"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                   "display_name": "Python 3 (groovae tests)", "language": "python"}, f)
    return os.path.join(tmp_dir, "jupyter")


def inject_parameters(nb, overrides):
    """Appends ``NAME = repr(value)`` lines to the cell tagged 'parameters'."""
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(f"expected one cell tagged 'parameters', found {len(cells)}")
    lines = [f"{name} = {value!r}" for name, value in overrides.items()]
    cells[0].source += "\n# injected by tests\n" + "\n".join(lines)
    return nb


def run_notebook(path, overrides=None, timeout=300, cwd=None, tmp_dir=None):
    """Executes the notebook at ``path`` with ``overrides``; returns the executed notebook.

    Cells run with ``cwd`` (default: the repo root) as working directory; a
    failing cell raises nbclient's CellExecutionError naming the cell.
    """
    import tempfile
    nb = inject_parameters(nbformat.read(path, as_version=4), overrides or {})
    tmp_dir = tmp_dir or tempfile.mkdtemp(prefix="nbrun")
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = _kernel_dir(tmp_dir) + (os.pathsep + old if old else "")
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


def test_01_preprocess_notebook(tmp_path):
    source = make_gmd_zip(tmp_path / "groove-synthetic.zip")
    out = tmp_path / "out"
    nb = run_notebook(os.path.join(ROOT, "01_preprocess.ipynb"),
                      {"SOURCE": source, "OUTPUT_DIR": str(out), "WINDOW_MODE": "tfds", "MAX_FILES": 6,
                       "ALLOW_UNVERIFIED": True, "WORKERS": 1},
                      timeout=300, tmp_dir=str(tmp_path))
    text = outputs_text(nb)
    assert "| train |" in text and "unreadable" in text
    assert any(o.get("data", {}).get("image/png") for c in nb.cells for o in c.get("outputs", []))
    report = json.load(open(out / "report.json"))
    assert report["totals"]["files"] == 6 and report["totals"]["tensors"] == 20
    assert (out / "train.npz").is_file() and (out / "test.tfrecord").is_file()


def test_parameters_cell_is_required(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    with pytest.raises(ValueError, match="parameters"):
        inject_parameters(nb, {"x": 2})


def _images(nb):
    return [o for c in nb.cells for o in c.get("outputs", []) if o.get("data", {}).get("image/png")]


def test_02_train_notebook(tiny_tensors_path, tmp_path):
    import shutil
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    shutil.copy(tiny_tensors_path, data_dir / "train.npz")
    shutil.copy(tiny_tensors_path, data_dir / "validation.npz")
    run_dir = tmp_path / "run"
    nb = run_notebook(os.path.join(ROOT, "02_train.ipynb"),
                      {"CONFIG": "groovae_tiny", "DATA": str(data_dir), "RUN_DIR": str(run_dir), "NUM_STEPS": 20,
                       "VALIDATE_EVERY": 10},
                      timeout=300, tmp_dir=str(tmp_path))
    text = outputs_text(nb)
    assert "device: CPU" in text and "model.ckpt-20" in text
    assert _images(nb) and (run_dir / "curves.png").is_file()


def test_03_generate_notebook(tiny_run, tmp_path):
    run_dir, _ = tiny_run
    out = tmp_path / "samples"
    nb = run_notebook(os.path.join(ROOT, "03_generate.ipynb"),
                      {"CHECKPOINT": "private", "CONFIG": "groovae_tiny", "RUN_DIR": run_dir, "OUTPUT_DIR": str(out),
                       "N": 2, "INTERPOLATION_STEPS": 3},
                      timeout=300, tmp_dir=str(tmp_path))
    assert len(_images(nb)) == 2 + 3  # a drum roll per sample and per interpolation step
    audio = [o for c in nb.cells for o in c.get("outputs", []) if o.get("data", {}).get("text/html", "").find("<audio") >= 0]
    assert len(audio) == 5
    names = sorted(os.listdir(out))
    assert "manifest.json" in names and len([n for n in names if n.endswith(".wav")]) == 5
