"""Finding checkpoints in a folder, wherever the folder now lives.

TF's ``checkpoint`` state file records the paths it was saved under; a run
dir that was moved or copied (a Drive folder mounted elsewhere, a copied run)
then names files that are not there.  These helpers trust the state file only
when it names a complete checkpoint, and otherwise look at the files.
"""
import os
import re

_INDEX = re.compile(r"^(?P<name>.+-(?P<step>\d+))\.index$")
_SHARD = re.compile(r"\.data-(\d{5})-of-(\d{5})$")


def is_complete(prefix):
    """True if ``prefix``.index and every ``prefix``.data-*-of-N shard exist."""
    folder, name = os.path.split(prefix)
    if not os.path.isfile(prefix + ".index"):
        return False
    try:
        shards = [f for f in os.listdir(folder or ".") if f.startswith(name + ".data-")]
    except OSError:
        return False
    counts = {int(m.group(2)) for m in map(_SHARD.search, shards) if m}
    return len(counts) == 1 and len(shards) == counts.pop()


def complete_checkpoints(folder):
    """Prefixes of the complete ``name-STEP`` checkpoints in ``folder``, by step."""
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    found = []
    for name in names:
        match = _INDEX.match(name)
        if match and is_complete(os.path.join(folder, match.group("name"))):
            found.append((int(match.group("step")), os.path.join(folder, match.group("name"))))
    return [prefix for _, prefix in sorted(found)]


def step_of(prefix):
    match = re.search(r"-(\d+)$", prefix)
    return int(match.group(1)) if match else None


def state_file_checkpoint(folder):
    """The checkpoint the state file names, resolved inside ``folder``; None if absent."""
    try:
        with open(os.path.join(folder, "checkpoint")) as f:
            text = f.read()
    except OSError:
        return None
    match = re.search(r'^model_checkpoint_path:\s*"(.*)"\s*$', text, re.M)
    if not match:
        return None
    # Relative paths are relative to the folder; an absolute one may be from before a move.
    return os.path.join(folder, os.path.basename(match.group(1)))


def newest_checkpoint(folder):
    """The newest complete checkpoint prefix in ``folder``, or None.

    The state file's choice wins when it is complete (it may be older than
    the newest files on purpose, e.g. after a restore); otherwise the newest
    complete checkpoint on disk.
    """
    named = state_file_checkpoint(folder)
    if named and is_complete(named):
        return named
    found = complete_checkpoints(folder)
    return found[-1] if found else None
