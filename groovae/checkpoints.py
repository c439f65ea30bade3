"""Checkpoints: which one a request means, and whether it fits a config.

``resolve_checkpoint`` turns 'public' (Google's groovae_4bar.tar, downloaded
once and read whole), 'private' (the newest in a run dir, or the model
committed in checkpoints/), a run dir, a tar or a prefix into a checkpoint
prefix.  TF's ``checkpoint`` state file
records the paths it was saved under; a run dir that was moved or copied (a
Drive folder mounted elsewhere, a copied run) then names files that are not
there, so the state file is trusted only when it names a complete
checkpoint, and otherwise the files are looked at.  Whether a checkpoint
fits a config is groovae.model's question (it builds the graph).
"""
import hashlib
import os
import re
import sys
import tarfile

from groovae import files
from groovae.errors import GenerateError

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


PUBLIC_CHECKPOINT_URL = "https://storage.googleapis.com/magentadata/models/music_vae/checkpoints/groovae_4bar.tar"
# The models trained in this project and committed with it (weights only, with their run.json): one folder
# per config, e.g. checkpoints/groovae_4bar; 'private' without a run dir means the one of the config.
COMMITTED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "checkpoints")


def committed_model(config=None):
    """The folder of the committed model of ``config`` (default: the flat groovae_4bar); GenerateError if absent."""
    from groovae.configs import DEFAULT_CONFIG  # here: configs load magenta, and listen imports this module
    config = config or DEFAULT_CONFIG
    folder = os.path.join(COMMITTED_DIR, os.path.basename(config))
    if not newest_checkpoint(folder):
        have = sorted(f for f in os.listdir(COMMITTED_DIR) if newest_checkpoint(os.path.join(COMMITTED_DIR, f))) \
            if os.path.isdir(COMMITTED_DIR) else []
        raise GenerateError(f"'private' without a run dir means the model committed in checkpoints/{config}, and "
                            f"there is none (committed: {', '.join(have) or 'none'}); name a run dir or checkpoint")
    return folder


def checkpoint_in_dir(folder, origin):
    """The (single, newest) checkpoint prefix found under ``folder``."""
    latest = newest_checkpoint(folder)
    if latest:
        return latest
    prefixes = []
    for root, _, names in os.walk(folder):
        prefixes += [os.path.join(root, f[:-len(".index")]) for f in names if f.endswith(".index")]
    if not prefixes:
        raise GenerateError(f"{origin}: no checkpoint (.index file) inside")
    return max(prefixes, key=lambda prefix: step_of(prefix) if step_of(prefix) is not None else -1)


def checkpoint_from_tar(tar_path, cache_dir=files.DEFAULT_CACHE):
    """Extracts a checkpoint tar once (keyed by its sha256) and returns the prefix."""
    digest = files.sha256_of(tar_path)
    dest = os.path.join(cache_dir, "checkpoints", f"{os.path.basename(tar_path)}-{digest[:12]}")
    if not os.path.isdir(dest):
        files.safe_extract_tar(tar_path, dest)
    return checkpoint_in_dir(dest, tar_path)


def check_checkpoint_tar(tar_path):
    """GenerateError unless the tar reads to its end and holds a checkpoint (.index and .data files)."""
    try:
        with tarfile.open(tar_path) as tar:
            names = []
            for member in tar:  # reads every header and every file's bytes: a truncated tar fails here
                if member.isfile():
                    with tar.extractfile(member) as f:
                        while f.read(1 << 20):
                            pass
                names.append(member.name)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise GenerateError(f"{tar_path}: not a complete tar archive ({e})") from None
    if not any(n.endswith(".index") for n in names) or not any(".data-" in n for n in names):
        raise GenerateError(f"{tar_path}: holds no checkpoint (.index and .data files)")


def public_checkpoint(url=PUBLIC_CHECKPOINT_URL, cache_dir=files.DEFAULT_CACHE, progress=True):
    """Downloads Google's groovae_4bar.tar once into the cache; returns the prefix.

    A cached tar that does not check out is fetched again, once; a fresh
    download that does not check out is removed, so the next run fetches it.
    """
    tar_path = os.path.join(cache_dir, os.path.basename(url.rstrip("/")) or "groovae_4bar.tar")
    if os.path.exists(tar_path):
        try:
            check_checkpoint_tar(tar_path)
        except GenerateError as e:
            print(f"generate: cached {e}; downloading it again", file=sys.stderr)
            os.remove(tar_path)
    if not os.path.exists(tar_path):
        files.download(url, tar_path, progress=progress)
        try:
            check_checkpoint_tar(tar_path)
        except GenerateError as e:
            os.remove(tar_path)
            raise GenerateError(f"{e} (removed; run again to download it again)") from None
    return checkpoint_from_tar(tar_path, cache_dir)


def resolve_checkpoint(checkpoint, run_dir=None, public_url=None, cache_dir=None, progress=True, config=None):
    """A checkpoint prefix from 'public', 'private', a dir, a tar or a prefix.

    'private' is the newest checkpoint in ``run_dir``, or without one the
    model of ``config`` committed in checkpoints/ (the flat one by default).
    """
    public_url, cache_dir = public_url or PUBLIC_CHECKPOINT_URL, cache_dir or files.DEFAULT_CACHE
    if checkpoint == "public":
        return public_checkpoint(public_url, cache_dir, progress)
    if checkpoint == "private":
        checkpoint = run_dir or committed_model(config)
    if os.path.isdir(checkpoint):
        return checkpoint_in_dir(checkpoint, checkpoint)
    if os.path.isfile(checkpoint) and tarfile.is_tarfile(checkpoint):
        return checkpoint_from_tar(checkpoint, cache_dir)
    if not os.path.exists(checkpoint + ".index"):
        raise GenerateError(f"{checkpoint}: no such checkpoint (expected a run dir, a .tar, or a prefix with .index)")
    return checkpoint


def requested_source(spec, public_url=None):
    """What a request names besides its checkpoint prefix: 'public' (or its URL), a .tar by its own path, else None."""
    if spec == "public":
        return public_url or "public"
    return spec if spec and os.path.isfile(spec) else None  # a .tar by its own name, not the cache's folder


def portable_name(source, prefix, folder):
    """How a file in ``folder`` (a manifest, run.json, a report) names a checkpoint or data file.

    'public' and URLs as they are; otherwise the path relative to ``folder``,
    of ``source`` where it is a local file (a .tar) rather than the cache
    folder it was unpacked into, else of ``prefix``.  No folder of the
    machine that wrote it.
    """
    if source == "public" or files.is_url(source or ""):
        return source
    local = source if source and os.path.exists(source) else prefix
    return os.path.relpath(os.path.abspath(local), os.path.abspath(folder))


def checkpoint_sha256(prefix):
    """sha256 over a checkpoint's .index and .data-* files (name order)."""
    folder, base = os.path.split(prefix)
    names = sorted(f for f in os.listdir(folder or ".")
                   if f == base + ".index" or f.startswith(base + ".data-"))
    h = hashlib.sha256()
    for f in names:
        h.update(f.encode())
        with open(os.path.join(folder, f), "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def _unreadable(prefix, error):
    return GenerateError(f"{prefix}: unreadable checkpoint ({type(error).__name__}: {str(error).splitlines()[0]})")


def read_checkpoint_variables(prefix):
    """{name: shape} stored in a checkpoint; GenerateError if unreadable."""
    from groovae import compat  # noqa: F401  (shims before TensorFlow)
    import tensorflow.compat.v1 as tf
    try:
        return dict(tf.train.list_variables(prefix))
    except Exception as e:
        raise _unreadable(prefix, e) from None


def read_checkpoint_values(prefix, names):
    """{name: array} of ``names`` in a checkpoint; GenerateError if a weights file is damaged (cut short, say)."""
    from groovae import compat  # noqa: F401  (shims before TensorFlow)
    import tensorflow.compat.v1 as tf
    try:
        reader = tf.train.load_checkpoint(prefix)
        return {name: reader.get_tensor(name) for name in names}
    except Exception as e:
        raise _unreadable(prefix, e) from None
