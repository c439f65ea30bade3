"""Installs the pinned stack into a notebook's running kernel (Colab or Jupyter).

Run by the install cell of each notebook, in the kernel itself
(``runpy.run_path(<clone>/scripts/notebook_install.py, run_name="__main__")``),
after the cell has cloned or updated the repo.  It
1. pip-installs requirements.txt and requirements-nodeps.txt (magenta and
   note-seq with --no-deps) unless every pin is already installed;
2. installs the clone itself (editable, for the ``groovae`` command) unless a
   groovae distribution is installed already, and puts the clone first on
   sys.path (.pth files of a new editable install are only read at start-up);
3. stops with one clear message when a package the kernel had already imported
   (Colab preloads numpy, for one) was replaced by another version: only a
   runtime restart makes Python use the new one.  After the restart the pins
   are satisfied and this takes seconds.
It imports neither groovae nor TensorFlow, so it runs before either is loaded.
"""
import importlib.metadata
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REQUIREMENTS = ("requirements.txt", "requirements-nodeps.txt")
# Distributions whose import name differs from the distribution name.
IMPORT_NAMES = {"protobuf": "google.protobuf", "tf-keras": "tf_keras", "tensorflow-probability":
                "tensorflow_probability", "tf-slim": "tf_slim", "tensorflow-datasets": "tensorflow_datasets",
                "absl-py": "absl", "dm-tree": "tree", "note-seq": "note_seq"}


def read_pins(root=ROOT):
    """{distribution: version} of the ``name==version`` lines of the requirements files."""
    pins = {}
    for name in REQUIREMENTS:
        with open(os.path.join(root, name)) as f:
            for line in f:
                match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s#;]+)", line)
                if match:
                    pins[match.group(1)] = match.group(2)
    return pins


def installed_version(distribution):
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def unmet_pins(pins, installed=installed_version):
    """The pins whose installed version differs (or that are missing), as 'name==version' strings."""
    return [f"{name}=={version}" for name, version in pins.items() if installed(name) != version]


def stale_imports(pins, modules=None, installed=installed_version):
    """[(distribution, version in use, version installed)] for already-imported pinned packages."""
    modules = sys.modules if modules is None else modules
    stale = []
    for name in pins:
        module = modules.get(IMPORT_NAMES.get(name, name.replace("-", "_")))
        loaded = getattr(module, "__version__", None)
        now = installed(name)
        if loaded is not None and now is not None and str(loaded) != now:
            stale.append((name, str(loaded), now))
    return stale


def pip(*args):
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
                   check=True)


def install(root=ROOT):
    pins = read_pins(root)
    unmet = unmet_pins(pins)
    if unmet:
        print(f"install: {len(unmet)} pinned packages to install ({', '.join(unmet[:4])}"
              f"{', ...' if len(unmet) > 4 else ''}); a few minutes")
        pip("-r", os.path.join(root, "requirements.txt"))
        # magenta's and note-seq's declared deps have no wheels for today's Python (README: Why these pins).
        pip("--no-deps", "-r", os.path.join(root, "requirements-nodeps.txt"))
    if installed_version("groovae") is None:
        pip("--no-deps", "-e", root)
    sys.path.insert(0, root)
    for name in [m for m in sys.modules if m == "groovae" or m.startswith("groovae.")]:
        del sys.modules[name]  # a rerun after `git pull` imports the new code
    stale = stale_imports(pins)
    if stale:
        names = ", ".join(f"{name} {old} (now {new})" for name, old, new in stale)
        raise RuntimeError(f"This runtime had already imported {names}. Restart it (Colab: Runtime > "
                           f"Restart session), then run all cells again; the install is kept.")
    print(f"install: groovae from {root}; pins satisfied (tensorflow {pins.get('tensorflow')}, "
          f"magenta {pins.get('magenta')}, numpy {pins.get('numpy')})")


if __name__ == "__main__":
    install()
