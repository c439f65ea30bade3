"""A samples folder's ``manifest.json``: one entry per run (what made its files, and their sha256).

Read and written here only, by generate (its runs), windows (dataset
windows), listen (the page says what made each groove) and regenerate.  Plain
Python: no TensorFlow, so the listening page and ``--help`` stay light.

Each entry has ``mode``, ``prefix`` (unique in the folder), ``files``
({name: sha256}) and the settings that made them; ``checkpoint`` is named
portably: 'public', a URL, or a path relative to the folder.

A run's files and its entry are committed together, the manifest being the
commit point: a run stages its files (``staged_run``), then ``replace_run``,
holding the folder's lock (concurrent runs into one folder take turns, so no
entry is lost), writes a journal into the staging folder, moves the files it
replaces aside and its own in, and writes the manifest.  Should that fail,
or the process die, before the manifest is written, the journal undoes it:
at once, or by the next run into the folder.
"""
import contextlib
import fcntl
import json
import os
import platform

from groovae import files, staging
from groovae.errors import GroovaeError, interrupts_wait

MANIFEST = "manifest.json"
LOCK = ".manifest.lock"  # held by the run that changes the folder; removed again, so folders stay clean
STAGING = ".staging-"  # a run's files before they are put in place: .staging-<random>.tmp in the folder
JOURNAL, PREVIOUS = ".commit.json", ".previous"  # in the staging folder: what a commit moves, what it replaces


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


@contextlib.contextmanager
def folder_lock(folder, wait=True):
    """One run at a time changes ``folder``'s files and manifest: an flock on its .manifest.lock.  A run waits for
    another's commit (milliseconds); with ``wait`` False, yields False at once if another run holds it."""
    path = os.path.join(folder, LOCK)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        except OSError:  # a file system without locks: nothing to wait for
            break
        try:
            if os.path.samestat(os.fstat(fd), os.stat(path)):
                break
        except FileNotFoundError:
            pass
        os.close(fd)  # its last holder removed that lock file meanwhile: lock the one there now
    try:
        yield True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)  # while still held: a waiting run then locks a new one
        os.close(fd)


@contextlib.contextmanager
def staged_run(out_dir):
    """Yields a staging folder in ``out_dir`` for a run's files (held while the run lives; removed at the end),
    having first undone or cleaned what runs killed in this folder left.  Commit with ``replace_run``."""
    with folder_lock(out_dir, wait=False) as held:
        if held:  # else another run is committing: this housekeeping waits for the next run
            staging.clean(out_dir, STAGING, lambda stem: roll_back(out_dir, stem + staging.TMP, unless_committed=True),
                          bare=True)
            staging.clean(out_dir, MANIFEST + ".")  # the manifest's temp file of a killed commit (none live: we lock)
    with staging.folder(out_dir, STAGING) as folder:
        yield folder


def replace_run(out_dir, folder, entry):
    """Moves a run's files from its staging ``folder`` into ``out_dir`` and records it in the manifest, together.

    An earlier entry with the same prefix is replaced, and its files that the
    new run does not write again (e.g. _03, _04 after a rerun with a smaller n)
    are removed.  If anything fails before the manifest is written, the
    folder is put back as it was.
    """
    with folder_lock(out_dir), interrupts_wait():  # Ctrl-C or SIGTERM waits until files and manifest agree
        runs = read_manifest(out_dir)
        old = {f for r in runs if r.get("prefix") == entry["prefix"] for f in r.get("files", {})}
        replaced = sorted(name for name in old | set(entry["files"]) if os.path.dirname(os.path.normpath(name)) == ""
                          and os.path.isfile(os.path.join(out_dir, name)))
        files.atomic_write(os.path.join(folder, JOURNAL), lambda f: json.dump(
            {"prefix": entry["prefix"], "files": entry["files"], "replaced": replaced}, f), mode="w")
        try:
            os.mkdir(os.path.join(folder, PREVIOUS))
            for name in replaced:
                os.replace(os.path.join(out_dir, name), os.path.join(folder, PREVIOUS, name))
            for name in entry["files"]:
                os.replace(os.path.join(folder, name), os.path.join(out_dir, name))
            write_manifest(out_dir, [r for r in runs if r.get("prefix") != entry["prefix"]] + [entry])  # the commit
        except BaseException:
            roll_back(out_dir, folder)
            raise


def roll_back(out_dir, folder, unless_committed=False):
    """Undoes a commit from its staging ``folder``'s journal: its files out of ``out_dir``, the files it
    replaced back; ``unless_committed``: not if the manifest has its entry (the commit was done)."""
    try:
        with open(os.path.join(folder, JOURNAL)) as f:
            journal = json.load(f)
    except (OSError, ValueError):
        return  # no journal: nothing was moved
    if unless_committed and any(r.get("prefix") == journal["prefix"] and r.get("files") == journal["files"]
                              for r in read_manifest(out_dir)):
        return
    for name, sha in journal["files"].items():
        path = os.path.join(out_dir, name)
        moved_in = not os.path.exists(os.path.join(folder, name))  # renames: a file is here or there
        if moved_in and os.path.isfile(path) and files.sha256_of(path) == sha:
            os.remove(path)
    for name in journal["replaced"]:
        kept = os.path.join(folder, PREVIOUS, name)
        if os.path.exists(kept):
            os.replace(kept, os.path.join(out_dir, name))


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
