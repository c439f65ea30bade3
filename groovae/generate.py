"""Stage 3: 4-bar drum grooves from a checkpoint -> MIDI, WAV, PNG + manifest.

Modes: ``sample`` (z ~ N(0, I)), ``interpolate`` (slerp between the posterior
means of two grooves), ``reconstruct`` (encode a groove, decode it: groove
transfer).  Every output file is reproducible bit for bit from the run's
manifest.json: z comes from a numpy RandomState(seed), and the decoder's hit
sampling from a TF graph seeded with the same seed, in a fresh session per call.
"""
import contextlib
import functools
import hashlib
import json
import math
import os
import platform
import re
import shutil
import sys
import tarfile
import tempfile

import numpy as np
import tensorflow.compat.v1 as tf

from groovae import audio, checkpoints, compat, data
from groovae.errors import GenerateError
from groovae.configs import config_names, load_config

PUBLIC_CHECKPOINT_URL = "https://storage.googleapis.com/magentadata/models/music_vae/checkpoints/groovae_4bar.tar"
PUBLIC_CONFIG = "groovae_4bar"
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "groovae")
MODES = ("sample", "interpolate", "reconstruct")
MANIFEST = "manifest.json"


MAX_CHECKPOINT_BYTES = 4 << 30  # groovae checkpoints are tens of MB; a tar unpacking past this is refused


# ---------------------------------------------------------------- checkpoints

def safe_extract_tar(tar_path, dest, max_bytes=MAX_CHECKPOINT_BYTES):
    """Extracts a checkpoint tar into ``dest``, refusing members that escape it.

    magenta's TrainedModel calls ``tarfile.extractall`` unguarded; here an
    absolute path, a ``..`` component, a link, or a device file is refused
    before anything is written.
    """
    try:
        with tarfile.open(tar_path) as tar:
            members = tar.getmembers()
            for m in members:
                parts = m.name.replace("\\", "/").split("/")
                if m.name.startswith("/") or ".." in parts or os.path.isabs(m.name):
                    raise GenerateError(f"{tar_path}: member '{m.name}' would be extracted outside the target folder")
                if m.issym() or m.islnk():
                    raise GenerateError(f"{tar_path}: member '{m.name}' is a link ('{m.linkname}'); refused")
                if not (m.isfile() or m.isdir()):
                    raise GenerateError(f"{tar_path}: member '{m.name}' is not a regular file; refused")
            unpacked = sum(m.size for m in members if m.isfile())
            if unpacked > max_bytes:
                raise GenerateError(f"{tar_path}: would unpack to {unpacked:,} bytes, over the {max_bytes:,} allowed")
            with data.atomic_directory(dest) as tmp:
                for m in members:
                    target = os.path.join(tmp, *m.name.replace("\\", "/").split("/"))
                    if m.isdir():
                        os.makedirs(target, exist_ok=True)
                        continue
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with tar.extractfile(m) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise GenerateError(f"{tar_path}: not a readable checkpoint tar ({e})") from None
    return dest


def checkpoint_in_dir(folder, origin):
    """The (single, newest) checkpoint prefix found under ``folder``."""
    latest = tf.train.latest_checkpoint(folder)
    if latest:
        return latest
    prefixes = []
    for root, _, files in os.walk(folder):
        prefixes += [os.path.join(root, f[:-len(".index")]) for f in files if f.endswith(".index")]
    if not prefixes:
        raise GenerateError(f"{origin}: no checkpoint (.index file) inside")

    def step(prefix):
        match = re.search(r"-(\d+)$", prefix)
        return int(match.group(1)) if match else -1
    return max(prefixes, key=step)


def checkpoint_from_tar(tar_path, cache_dir=DEFAULT_CACHE):
    """Extracts a checkpoint tar once (keyed by its sha256) and returns the prefix."""
    digest = data.sha256_of(tar_path)
    dest = os.path.join(cache_dir, "checkpoints", f"{os.path.basename(tar_path)}-{digest[:12]}")
    if not os.path.isdir(dest):
        safe_extract_tar(tar_path, dest)
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


def public_checkpoint(url=PUBLIC_CHECKPOINT_URL, cache_dir=DEFAULT_CACHE, progress=True):
    """Downloads Google's groovae_4bar.tar once into the cache; returns the prefix.

    A cached tar that does not check out is fetched again, once; a fresh
    download that does not check out is removed, so the next run fetches it.
    """
    from groovae.preprocess import download
    tar_path = os.path.join(cache_dir, os.path.basename(url.rstrip("/")) or "groovae_4bar.tar")
    if os.path.exists(tar_path):
        try:
            check_checkpoint_tar(tar_path)
        except GenerateError as e:
            print(f"generate: cached {e}; downloading it again", file=sys.stderr)
            os.remove(tar_path)
    if not os.path.exists(tar_path):
        download(url, tar_path, progress=progress)
        try:
            check_checkpoint_tar(tar_path)
        except GenerateError as e:
            os.remove(tar_path)
            raise GenerateError(f"{e} (removed; run again to download it again)") from None
    return checkpoint_from_tar(tar_path, cache_dir)


def resolve_checkpoint(checkpoint, run_dir=None, public_url=None, cache_dir=None, progress=True):
    """A checkpoint prefix from 'public', 'private' (newest in ``run_dir``), a dir, a tar or a prefix."""
    public_url, cache_dir = public_url or PUBLIC_CHECKPOINT_URL, cache_dir or DEFAULT_CACHE
    if checkpoint == "public":
        return public_checkpoint(public_url, cache_dir, progress)
    if checkpoint == "private":
        if not run_dir:
            raise GenerateError("--checkpoint private needs --run_dir (the training run)")
        checkpoint = run_dir
    if os.path.isdir(checkpoint):
        return checkpoint_in_dir(checkpoint, checkpoint)
    if os.path.isfile(checkpoint) and tarfile.is_tarfile(checkpoint):
        return checkpoint_from_tar(checkpoint, cache_dir)
    if not os.path.exists(checkpoint + ".index"):
        raise GenerateError(f"{checkpoint}: no such checkpoint (expected a run dir, a .tar, or a prefix with .index)")
    return checkpoint


def checkpoint_sha256(prefix):
    """sha256 over a checkpoint's .index and .data-* files (name order)."""
    folder, base = os.path.split(prefix)
    files = sorted(f for f in os.listdir(folder or ".")
                   if f == base + ".index" or f.startswith(base + ".data-"))
    h = hashlib.sha256()
    for f in files:
        h.update(f.encode())
        with open(os.path.join(folder, f), "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def read_checkpoint_variables(prefix):
    """{name: shape} stored in a checkpoint; GenerateError if unreadable."""
    try:
        return dict(tf.train.list_variables(prefix))
    except Exception as e:
        raise GenerateError(f"{prefix}: unreadable checkpoint ({type(e).__name__}: {str(e).splitlines()[0]})") from None


def model_variables(config_name, hparams=None):
    """{name: shape} of the variables an inference graph of the config restores."""
    config = load_config(config_name, hparams)
    config.hparams.batch_size = 1
    with compat.magenta_graph():
        tf.set_random_seed(0)
        config.model.build(config.hparams, config.data_converter.output_depth, is_training=False)
        config.model.sample(1, max_length=config.hparams.max_seq_len,
                            z=tf.zeros([1, config.hparams.z_size]), temperature=1.0)
        config.model.encode(tf.zeros([1, config.hparams.max_seq_len, config.data_converter.input_depth]),
                            tf.ones([1], tf.int32))
        return {v.op.name: v.shape.as_list() for v in tf.global_variables()}


def guess_config(stored):
    """Name of the config whose variables all are in ``stored`` with equal shapes, or None."""
    for name in config_names():
        wanted = model_variables(name)
        if all(stored.get(n) == shape for n, shape in wanted.items()):
            return name
    return None


def check_compatible(config_name, prefix, stored, wanted):
    """GenerateError naming the config the checkpoint looks like, if it is not ``config_name``."""
    mismatched = [n for n, shape in wanted.items() if stored.get(n) != shape]
    if mismatched:
        looks_like = guess_config(stored)
        hint = f"it looks like '{looks_like}'" if looks_like else "it matches no config in configs/"
        raise GenerateError(f"{prefix}: not a '{config_name}' checkpoint ({len(mismatched)} variables differ, "
                            f"e.g. {mismatched[0]}); {hint}")


# ---------------------------------------------------------------- the model

class GrooveModel:
    """A MusicVAE config restored from a checkpoint, for encode / decode.

    Like magenta's TrainedModel, but reproducible: a (seed, request) pair
    always gives the same grooves.  Graphs are seeded, built once per (seed,
    batch size) with sequential decoder loops, and every call runs in a fresh
    session, so the hit-sampling RNG starts from the same state each time.
    """

    def __init__(self, config_name, checkpoint, hparams=None):
        self.config_name, self.checkpoint, self.hparams = config_name, checkpoint, hparams
        self.stored_variables = read_checkpoint_variables(checkpoint)
        self.config = load_config(config_name, hparams)
        self.converter = self.config.data_converter
        self.converter.set_mode("infer")
        self.z_size = self.config.hparams.z_size
        self.length = self.config.hparams.max_seq_len
        self._graphs = {}

    def _graph(self, seed, batch_size):
        key = (seed, batch_size)
        if key not in self._graphs:
            config = load_config(self.config_name, self.hparams)
            config.hparams.batch_size = batch_size
            with compat.magenta_graph() as graph, sequential_decoding():
                tf.set_random_seed(seed)
                model = config.model
                model.build(config.hparams, self.converter.output_depth, is_training=False)
                t = {"temperature": tf.placeholder(tf.float32, [], "temperature"),
                     "z": tf.placeholder(tf.float32, [batch_size, self.z_size], "z")}
                t["outputs"], _ = model.sample(batch_size, max_length=self.length, z=t["z"],
                                               temperature=t["temperature"])
                t["inputs"] = tf.placeholder(tf.float32, [batch_size, self.length, self.converter.input_depth],
                                             "inputs")
                t["lengths"] = tf.placeholder(tf.int32, [batch_size], "lengths")
                t["mu"] = model.encode(t["inputs"], t["lengths"]).loc
                check_compatible(self.config_name, self.checkpoint, self.stored_variables,
                                 {v.op.name: v.shape.as_list() for v in tf.global_variables()})
                t["saver"] = tf.train.Saver()
            self._graphs[key] = (graph, t)
        return self._graphs[key]

    def _run(self, seed, batch_size, fetch, feed):
        graph, t = self._graph(seed, batch_size)
        with tf.Session(graph=graph) as session:
            t["saver"].restore(session, self.checkpoint)
            return session.run(t[fetch], {t[k]: v for k, v in feed.items()})

    def decode(self, z, temperature=0.5, seed=0):
        """Groove tensors [n, 64, 27] decoded from latent vectors ``z`` [n, z_size]."""
        check_request(len(z), temperature)
        return self._run(seed, len(z), "outputs", {"z": np.asarray(z, np.float32), "temperature": temperature})

    def encode(self, tensors, seed=0):
        """Posterior means [n, z_size] of groove tensors [n, 64, 27]."""
        tensors = np.asarray(tensors, np.float32)
        return self._run(seed, len(tensors), "mu",
                         {"inputs": tensors, "lengths": np.full(len(tensors), self.length, np.int32)})

    def to_sequences(self, tensors):
        return self.converter.from_tensors(np.asarray(tensors))


@contextlib.contextmanager
def sequential_decoding():
    """Builds magenta's decoder loops with parallel_iterations=1.

    The hit sampling in each decoder step draws a seed from a stateful RNG
    that depends on nothing in the step, so with parallel iterations the
    steps race for the RNG stream and a seeded sample varies run to run.
    """
    from magenta.contrib import seq2seq
    original = seq2seq.dynamic_decode
    seq2seq.dynamic_decode = functools.partial(original, parallel_iterations=1)
    try:
        yield
    finally:
        seq2seq.dynamic_decode = original


MAX_GROOVES = 1000  # per run: each groove is three files


def check_request(n, temperature, seed=0):
    if not 0 < n <= MAX_GROOVES:
        raise GenerateError(f"n must be 1..{MAX_GROOVES}, got {n}")
    if not (temperature > 0 and math.isfinite(temperature)):
        raise GenerateError(f"temperature must be a positive number, got {temperature}")
    if not 0 <= seed < 2 ** 32:
        raise GenerateError(f"seed must be 0..2**32-1, got {seed}")


def random_z(n, z_size, seed):
    return np.random.RandomState(seed).randn(n, z_size).astype(np.float32)


def slerp(a, b, t):
    """Spherical interpolation between vectors a and b (t in [0, 1])."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def groove_windows(path, converter):
    """Groove tensors [k, 64, 27] of every 4-bar window of a drum MIDI file."""
    try:
        _, sequence = data.drum_midi(data.read_bytes(path), path)
    except data.DataError as e:
        raise GenerateError(str(e)) from None
    if not sequence.notes:
        raise GenerateError(f"{path}: no notes")
    signatures = {(ts.numerator, ts.denominator) for ts in sequence.time_signatures}
    if signatures - {(4, 4)}:
        raise GenerateError(f"{path}: time signature {sorted(signatures)} is not 4/4")
    converter.set_mode("eval")
    tensors = data.sequence_to_tensors(sequence, converter)["inputs"]
    converter.set_mode("infer")
    return tensors


def pick_window(path, converter, window=None):
    """The one 4-bar window of ``path`` to use; a clear message if there are 0 or several."""
    windows = groove_windows(path, converter)
    if len(windows) == 0:
        raise GenerateError(f"{path}: no 4-bar window (shorter than 4 bars or no hits)")
    if window is None:
        if len(windows) > 1:
            raise GenerateError(f"{path}: has {len(windows)} 4-bar windows (bars 1-4, 5-8, ...); "
                                f"pick one with window=0..{len(windows) - 1} (--window)")
        window = 0
    if not 0 <= window < len(windows):
        raise GenerateError(f"{path}: window {window} out of range 0..{len(windows) - 1}")
    return windows[window]


# ---------------------------------------------------------------- the three modes

def sample(model, n=5, temperature=0.5, seed=0):
    """``n`` groove tensors from z ~ N(0, I)."""
    check_request(n, temperature)
    return model.decode(random_z(n, model.z_size, seed), temperature, seed)


def interpolate(model, start, end, steps=5, temperature=0.5, seed=0):
    """``steps`` grooves along the slerp between the posterior means of two groove tensors."""
    if steps < 2:
        raise GenerateError(f"interpolation needs at least 2 steps, got {steps}")
    mu = model.encode(np.stack([start, end]), seed)
    z = np.stack([slerp(mu[0], mu[1], t) for t in np.linspace(0, 1, steps)]).astype(np.float32)
    return model.decode(z, temperature, seed)


def reconstruct(model, groove, temperature=0.5, seed=0):
    """A groove tensor re-decoded from its posterior mean (groove transfer)."""
    mu = model.encode(groove[None], seed)
    return model.decode(mu, temperature, seed)


# ---------------------------------------------------------------- outputs

def write_outputs(model, tensors, out_dir, prefix, wav=True, png=True):
    """Writes prefix_XX.mid (+ .wav, .png) per groove; returns the file names."""
    from groovae import plots
    import note_seq
    os.makedirs(out_dir, exist_ok=True)
    names = []
    for i, (tensor, sequence) in enumerate(zip(tensors, model.to_sequences(tensors))):
        base = os.path.join(out_dir, f"{prefix}_{i:02d}")
        pm = note_seq.note_sequence_to_pretty_midi(sequence)
        data.atomic_write(base + ".mid", pm.write)
        names.append(base + ".mid")
        if wav:
            names.append(audio.render_wav(base + ".mid", base + ".wav"))
        if png:
            names.append(plots.save_figure(plots.drum_roll(tensor, title=os.path.basename(base)), base + ".png"))
    return [os.path.basename(n) for n in names]


def package_versions():
    import importlib.metadata as md
    versions = {"python": platform.python_version()}
    for name in ("groovae", "magenta", "note-seq", "tensorflow", "tf-keras", "tensorflow-probability", "numpy",
                 "pretty_midi", "matplotlib"):
        try:
            versions[name] = md.version(name)
        except md.PackageNotFoundError:
            versions[name] = None
    return versions


def is_url(text):
    return re.match(r"^(https?|file)://", str(text)) is not None


def portable_source(source, prefix, out_dir):
    """How a manifest in ``out_dir`` names its checkpoint: 'public', a URL, or a path relative to out_dir."""
    if source == "public" or is_url(source):
        return source
    return os.path.relpath(os.path.abspath(prefix), os.path.abspath(out_dir))


def run_prefix(mode, temperature, seed, fingerprint):
    """File-name prefix of a run: readable settings plus a short id of checkpoint and inputs."""
    settings = {"sample": f"sample_t{temperature:g}_s{seed}", "interpolate": f"interp_t{temperature:g}_s{seed}",
                "reconstruct": f"recon_t{temperature:g}_s{seed}"}[mode]
    return f"{settings}_{hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:6]}"


def generate(config_name, checkpoint, out_dir, mode="sample", n=5, temperature=0.5, seed=0, inputs=(),
             windows=(None, None), steps=5, prefix=None, wav=True, png=True, model=None, source=None, hparams=None):
    """One generation run: grooves + its entry in ``out_dir``/manifest.json; returns the entry.

    ``inputs`` are MIDI paths (two for interpolate, one for reconstruct) and
    ``windows`` the 4-bar window to use in each; ``source`` is how the
    checkpoint was asked for ('public', a URL; else its path is recorded
    relative to ``out_dir``).  File names carry the settings and a short id of
    checkpoint and inputs, so runs never overwrite each other; a rerun of the
    same run replaces its earlier files.  Files appear only when all of them
    were written: a failure leaves ``out_dir`` as it was.
    """
    if mode not in MODES:
        raise GenerateError(f"unknown mode '{mode}'; one of {', '.join(MODES)}")
    check_request(n if mode == "sample" else 1, temperature, seed)
    model = model or GrooveModel(config_name, checkpoint, hparams)
    needed = {"sample": 0, "interpolate": 2, "reconstruct": 1}[mode]
    if len(inputs) != needed:
        raise GenerateError(f"mode {mode} takes {needed} input MIDI file(s), got {len(inputs)}")
    grooves = [pick_window(path, model.converter, w) for path, w in zip(inputs, windows)]
    if mode == "sample":
        tensors = sample(model, n, temperature, seed)
    elif mode == "interpolate":
        tensors = interpolate(model, grooves[0], grooves[1], steps, temperature, seed)
    else:
        tensors = reconstruct(model, grooves[0], temperature, seed)
    checkpoint_hash = checkpoint_sha256(model.checkpoint)
    input_records = [{"path": os.path.relpath(os.path.abspath(p), os.path.abspath(out_dir)),
                      "sha256": data.sha256_of(p), "window": w} for p, w in zip(inputs, windows)]
    prefix = prefix or run_prefix(mode, temperature, seed, {
        "config": config_name, "hparams": model.hparams or "", "checkpoint": checkpoint_hash,
        "inputs": [(i["sha256"], i["window"]) for i in input_records], "steps": steps if mode == "interpolate" else None})
    no_audio = wav and audio.unavailable_reason()
    if no_audio:  # MIDI, PNG and manifest are still worth having (e.g. after hours of training)
        _warn_once(f"groovae: warning: writing no WAV files: {no_audio}")
        wav = False
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging-") as staging:  # gone on success and failure
        files = write_outputs(model, tensors, staging, prefix, wav, png)
        entry = {"mode": mode, "config": config_name, "hparams": model.hparams or "",
                 "checkpoint": portable_source(source, model.checkpoint, out_dir), "checkpoint_sha256": checkpoint_hash,
                 "checkpoint_step": checkpoints.step_of(model.checkpoint), "temperature": temperature, "seed": seed,
                 "n": len(tensors), "steps": steps if mode == "interpolate" else None, "inputs": input_records,
                 "prefix": prefix, "wav": wav, "png": png,
                 "files": {f: data.sha256_of(os.path.join(staging, f)) for f in files},
                 "versions": package_versions()}
        replace_run(out_dir, staging, entry)
    return entry


_warned = set()


def _warn_once(message):
    if message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr)


def read_manifest(out_dir):
    """The runs recorded in ``out_dir``/manifest.json ([] if there is none)."""
    path = os.path.join(out_dir, MANIFEST)
    return read_manifest_file(path) if os.path.exists(path) else []


def read_manifest_file(path):
    if not os.path.isfile(path):
        raise GenerateError(f"{path}: no such manifest")
    try:
        with open(path) as f:
            return json.load(f)["runs"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise GenerateError(f"{path}: not a groovae manifest ({type(e).__name__}: {e})") from None


def replace_run(out_dir, staging, entry):
    """Moves a run's files from ``staging`` into ``out_dir`` and records it in the manifest.

    An earlier entry with the same prefix is replaced, and its files that the
    new run does not write again (e.g. _03, _04 after a rerun with a smaller n)
    are removed.
    """
    runs = read_manifest(out_dir)
    old = [r for r in runs if r.get("prefix") == entry["prefix"]]
    for name in {f for r in old for f in r.get("files", {})} - set(entry["files"]):
        path = os.path.join(out_dir, name)
        if os.path.dirname(os.path.normpath(name)) == "" and os.path.isfile(path):
            os.remove(path)
    for name in entry["files"]:
        os.replace(os.path.join(staging, name), os.path.join(out_dir, name))
    runs = [r for r in runs if r.get("prefix") != entry["prefix"]] + [entry]
    data.atomic_write(os.path.join(out_dir, MANIFEST), lambda f: json.dump({"runs": runs}, f, indent=1), mode="w")


def resolve_recorded_checkpoint(entry, manifest_dir, checkpoint=None, public_url=None, cache_dir=None):
    """The checkpoint prefix a manifest entry names, checked against its recorded sha256.

    ``checkpoint`` overrides where to find it (e.g. a copy elsewhere); the
    sha256 must still match.
    """
    recorded = entry["checkpoint"]
    if checkpoint:
        prefix = resolve_checkpoint(checkpoint, public_url=public_url, cache_dir=cache_dir)
    elif recorded == "public":
        prefix = resolve_checkpoint("public", public_url=public_url, cache_dir=cache_dir)
    elif is_url(recorded):
        prefix = resolve_checkpoint("public", public_url=recorded, cache_dir=cache_dir)
    else:
        path = os.path.join(manifest_dir, recorded) if not os.path.isabs(recorded) else recorded
        if not (os.path.exists(path + ".index") or os.path.exists(path)):
            raise GenerateError(f"{path}: the checkpoint this manifest names is not there (put it there, "
                                f"or name its place with --checkpoint; its sha256 is checked)")
        prefix = resolve_checkpoint(path, cache_dir=cache_dir)
    digest = checkpoint_sha256(prefix)
    if entry.get("checkpoint_sha256") and digest != entry["checkpoint_sha256"]:
        raise GenerateError(f"{prefix}: sha256 {digest[:12]} is not the {entry['checkpoint_sha256'][:12]} "
                            f"this manifest's grooves came from")
    return prefix


def regenerate(entry, out_dir, manifest_dir, checkpoint=None, public_url=None, cache_dir=None):
    """Re-runs one manifest entry into ``out_dir``; returns the new entry (compare its files' sha256).

    Relative checkpoint and input paths are resolved from ``manifest_dir``
    (where the manifest lives); checkpoint and inputs must have the sha256
    the manifest recorded.
    """
    prefix = resolve_recorded_checkpoint(entry, manifest_dir, checkpoint, public_url, cache_dir)
    inputs = []
    for record in entry["inputs"]:
        path = os.path.join(manifest_dir, record["path"])
        if not os.path.isfile(path) or data.sha256_of(path) != record["sha256"]:
            raise GenerateError(f"{path}: input missing or changed since the manifest was written")
        inputs.append(path)
    source = entry["checkpoint"] if entry["checkpoint"] == "public" or is_url(entry["checkpoint"]) else None
    return generate(entry["config"], prefix, out_dir, entry["mode"], n=entry["n"], temperature=entry["temperature"],
                    seed=entry["seed"], inputs=inputs, windows=[i["window"] for i in entry["inputs"]] or (None, None),
                    steps=entry["steps"] or 5, prefix=entry["prefix"], wav=entry["wav"], png=entry["png"],
                    source=source, hparams=entry.get("hparams") or None)
