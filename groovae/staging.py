"""Staging: the folders a run writes before its outputs take their place, and what a crashed run left of them.

A run's staging is ``<prefix><8 random chars>.tmp`` (and ``.old``, where the
folder it replaces waits during the swap) beside ``<same stem>.lock``, a file
the run holds with flock(2) for as long as it lives.  The kernel drops that
lock when the process ends in any way, kill -9 included, so the next run of
the same stage tells a crashed run's leftovers (lock free, or no lock file)
from a live run's (lock held) and cleans only the former.  A pid in the name
would not tell: pids are reused, and mean nothing to another container or
machine sharing the folder.  Where the file system has no locks, nothing is
cleaned (a live run's staging is never at risk).
"""
import contextlib
import fcntl
import os
import re
import shutil
import tempfile

LOCK, TMP, OLD = ".lock", ".tmp", ".old"
_MAKING = ".locking"  # the lock file's name until it is held: a cleaner never reads it
_RANDOM = r"[a-z0-9_]{8}"  # tempfile's random part


@contextlib.contextmanager
def held(parent, prefix):
    """Yields a new stem ``parent``/<prefix><random> whose .lock this process holds until the block ends."""
    os.makedirs(parent, exist_ok=True)
    fd, making = tempfile.mkstemp(dir=parent, prefix=prefix, suffix=_MAKING)
    stem = making[:-len(_MAKING)]
    try:
        _try_lock(fd)
        os.rename(making, stem + LOCK)  # visible only once held: a cleaner can never take a live run's lock
        yield stem
    finally:
        for path in (making, stem + LOCK):  # the lock file goes last: the run's .tmp and .old are gone by now
            if os.path.exists(path):
                os.remove(path)
        os.close(fd)


@contextlib.contextmanager
def folder(parent, prefix):
    """Yields a new staging folder ``parent``/<prefix><random>.tmp, held while the block runs, then removed."""
    with held(parent, prefix) as stem:
        os.mkdir(stem + TMP)
        try:
            yield stem + TMP
        finally:
            shutil.rmtree(stem + TMP, ignore_errors=True)


def _try_lock(fd):
    """True when this process now holds ``fd``'s lock; False when another process holds it or locks do not work."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:  # BlockingIOError: held by a live run; ENOLCK, EOPNOTSUPP: this file system cannot tell
        return False


def clean(parent, prefix, recover=None, bare=False):
    """Removes what crashed runs left in ``parent``: <prefix><random>.tmp, .old and .lock whose lock is free
    (folders, or the temp files of files.atomic_path, which have no lock: clean those only where no live run
    can be writing them).

    ``recover(stem)`` runs first, holding the dead run's lock (e.g. to put
    back a folder a swap had moved away).  ``bare``: a <prefix><random>
    folder without suffix is staging too (generate's, before these locks).
    A live run's staging stays.  Returns the stems cleaned.
    """
    if not os.path.isdir(parent):
        return []
    pattern = re.compile(f"({re.escape(prefix)}{_RANDOM})({re.escape(TMP)}|{re.escape(OLD)}|{re.escape(LOCK)}"
                         f"{'|' if bare else ''})$")
    stems = sorted({match.group(1) for match in map(pattern.match, os.listdir(parent)) if match})
    cleaned = []
    for stem in (os.path.join(parent, s) for s in stems):
        try:
            fd = os.open(stem + LOCK, os.O_RDONLY)
        except FileNotFoundError:
            fd = None  # no lock file: its run ended, or predates the locks
        try:
            if fd is not None and not _try_lock(fd):
                continue  # a live run's
            if recover:
                recover(stem)
            for path in [stem + TMP, stem + OLD] + ([stem] if bare else []):
                _remove(path)
            if os.path.exists(stem + LOCK):
                os.remove(stem + LOCK)
            cleaned.append(stem)
        finally:
            if fd is not None:
                os.close(fd)
    return cleaned


def _remove(path):
    """Removes a staging folder, or a file (atomic_path's temp files are staging too)."""
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)
