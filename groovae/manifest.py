"""A samples folder's ``manifest.json``: one entry per run (what made its files, and their sha256).

Read and written here only, by generate (its runs), windows (dataset
windows), listen (the page says what made each groove) and regenerate.  Plain
Python: no TensorFlow, so the listening page and ``--help`` stay light.

Each entry has ``mode``, ``prefix`` (unique in the folder), ``files``
({name: sha256}) and the settings that made them; ``checkpoint`` is named
portably: 'public', a URL, or a path relative to the folder.
"""
import json
import os
import platform

from groovae import files
from groovae.errors import GroovaeError, interrupts_wait

MANIFEST = "manifest.json"


class ManifestError(GroovaeError):
    """A manifest.json that cannot be read."""


def manifest_path(folder):
    return os.path.join(folder, MANIFEST)


def read_manifest(folder):
    """The runs recorded in ``folder``/manifest.json ([] if there is none)."""
    path = manifest_path(folder)
    return read_manifest_file(path) if os.path.exists(path) else []


def read_manifest_file(path):
    """The runs of a manifest file; ManifestError naming it if missing or not a manifest."""
    if not os.path.isfile(path):
        raise ManifestError(f"{path}: no such manifest")
    try:
        with open(path) as f:
            runs = json.load(f)["runs"]
        if not isinstance(runs, list):
            raise TypeError("'runs' is not a list")
        return runs
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ManifestError(f"{path}: not a groovae manifest ({type(e).__name__}: {e})") from None


def write_manifest(folder, runs):
    files.atomic_write(manifest_path(folder), lambda f: json.dump({"runs": runs}, f, indent=1), mode="w")


def replace_run(out_dir, staging, entry):
    """Moves a run's files from ``staging`` into ``out_dir`` and records it in the manifest.

    An earlier entry with the same prefix is replaced, and its files that the
    new run does not write again (e.g. _03, _04 after a rerun with a smaller n)
    are removed.
    """
    runs = read_manifest(out_dir)
    old = [r for r in runs if r.get("prefix") == entry["prefix"]]
    with interrupts_wait():  # Ctrl-C or SIGTERM waits until files and manifest agree
        for name in {f for r in old for f in r.get("files", {})} - set(entry["files"]):
            path = os.path.join(out_dir, name)
            if os.path.dirname(os.path.normpath(name)) == "" and os.path.isfile(path):
                os.remove(path)
        for name in entry["files"]:
            os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
        write_manifest(out_dir, [r for r in runs if r.get("prefix") != entry["prefix"]] + [entry])


def changed_in_place(entry, folder):
    """The files of a manifest entry that are missing from ``folder`` or differ from their recorded sha256."""
    paths = {name: os.path.join(folder, name) for name in entry["files"]}
    return sorted(name for name, sha in entry["files"].items()
                  if not os.path.isfile(paths[name]) or files.sha256_of(paths[name]) != sha)


def package_versions():
    """The versions a run's files came from (recorded in its entry)."""
    import importlib.metadata as md
    versions = {"python": platform.python_version()}
    for name in ("groovae", "magenta", "note-seq", "tensorflow", "tf-keras", "tensorflow-probability", "numpy",
                 "pretty_midi", "matplotlib"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions
