"""Stage 3: 4-bar drum grooves from a checkpoint -> MIDI, WAV, PNG + manifest.

Modes: ``sample`` (z ~ N(0, I)), ``interpolate`` (slerp between the posterior
means of two grooves), ``reconstruct`` (encode a groove, decode it: groove
transfer).  Every output file is reproducible bit for bit from the run's
manifest.json: z comes from a numpy RandomState(seed), and the decoder's hit
sampling from a TF graph seeded with the same seed, in a fresh session per call.
"""
import hashlib
import json
import os
import sys
import tempfile

import numpy as np

from groovae import audio, checkpoints, data, files
from groovae.manifest import changed_in_place, manifest_path, package_versions, read_manifest_file, replace_run
from groovae.errors import GenerateError
from groovae.model import GrooveModel, check_request, sample

MODES = ("sample", "interpolate", "reconstruct")
NO_WAV_ASKED = "not asked for (--no_wav)"


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
        sequence = data.read_drum_midi(path).sequence
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

def write_outputs(converter, tensors, out_dir, prefix, wav=True, png=True, stems=None):
    """Writes prefix_XX.mid (or <stem>.mid) + .wav, .png per groove tensor; returns the file names."""
    from groovae import plots
    import note_seq
    os.makedirs(out_dir, exist_ok=True)
    names = []
    stems = stems or [f"{prefix}_{i:02d}" for i in range(len(tensors))]
    for stem, tensor, sequence in zip(stems, tensors, converter.from_tensors(np.asarray(tensors))):
        base = os.path.join(out_dir, stem)
        pm = note_seq.note_sequence_to_pretty_midi(sequence)
        files.atomic_write(base + ".mid", pm.write)
        names.append(base + ".mid")
        if wav:
            names.append(audio.render_wav(base + ".mid", base + ".wav"))
        if png:
            names.append(plots.save_figure(plots.drum_roll(tensor, title=os.path.basename(base)), base + ".png"))
    return [os.path.basename(n) for n in names]


def pick_windows(tensors, n, seed=0, min_hits_per_bar=8.0):
    """``n`` window indices from distinct source files, each busy enough to hear (mean hits per bar).

    The same tensors and seed give the same windows.
    """
    from groovae.metrics import STEPS_PER_BAR, split_groove
    hits, _, _ = split_groove(tensors["outputs"])
    bars = hits.shape[1] / STEPS_PER_BAR
    busy = np.nonzero(hits.sum((1, 2)) / bars >= min_hits_per_bar)[0]
    sources = tensors.get("source_id", np.arange(len(hits)))
    picked, seen = [], set()
    for index in np.random.RandomState(seed).permutation(busy):
        if sources[index] not in seen:
            seen.add(sources[index])
            picked.append(int(index))
        if len(picked) == n:
            return sorted(picked)
    raise GenerateError(f"only {len(picked)} windows from distinct files have >= {min_hits_per_bar:g} hits per bar; "
                        f"asked for {n}")


def export_windows(config_name, tensor_path, out_dir, n=5, seed=0, indices=None, wav=True, png=True):
    """Writes dataset windows (e.g. of the test split) as <name>_window_<index>.mid (+ .wav, .png).

    They are real grooves to listen to and to feed ``interpolate`` and
    ``reconstruct``; ``indices`` picks them, else ``pick_windows``.  The run is
    recorded in ``out_dir``/manifest.json (mode 'windows': which tensor file,
    which windows, and each window's source file, first bar and tempo), so the
    listening page says what they are.  Returns the written file names.
    """
    from groovae.configs import load_config
    from groovae.metrics import STEPS_PER_BAR
    tensors = data.load_tensors(tensor_path)
    total = len(tensors["lengths"])
    picked = indices is None
    indices = pick_windows(tensors, n, seed) if picked else [int(i) for i in indices]
    bad = [i for i in indices if not 0 <= i < total]
    if bad:
        raise GenerateError(f"{tensor_path}: window index {bad[0]} out of range 0..{total - 1}")
    name = os.path.splitext(os.path.basename(tensor_path))[0]
    indices = sorted(set(indices))
    stems = [f"{name}_window_{i:05d}" for i in indices]
    data_hash = files.sha256_of(tensor_path)
    wav, no_wav_reason = audio_choice(wav)
    windows = [{"index": i, "midi": stem + ".mid"} for i, stem in zip(indices, stems)]
    for record in windows:  # what preprocess stored about each window (absent for bare tensor files)
        for key, cast in (("source_id", str), ("start_bar", int), ("bpm", float)):
            if key in tensors:
                record[key] = cast(tensors[key][record["index"]])
    # One entry per tensor file and folder: a new windows run of the same data replaces the
    # last one (and its files it does not write again), so no file is claimed twice.
    entry = {"mode": "windows", "config": config_name, "data": os.path.basename(tensor_path),
             "data_sha256": data_hash, "bars": tensors["outputs"].shape[1] // STEPS_PER_BAR,
             "seed": seed if picked else None, "n": len(indices), "windows": windows,
             "prefix": f"{name}_windows_{data_hash[:6]}", "wav": wav, "no_wav_reason": no_wav_reason, "png": png}
    converter = load_config(config_name).data_converter
    entry = record_run(out_dir, entry, lambda staging: write_outputs(converter, tensors["outputs"][indices], staging,
                                                                     name, wav, png, stems))
    return list(entry["files"])


def windows_command(entry):
    """The command that writes a windows entry's files again (DATA_DIR and OUT_DIR to fill in)."""
    split = os.path.splitext(entry.get("data") or "?")[0]
    flags = (" --no_wav" if entry.get("no_wav_reason") == NO_WAV_ASKED else "") + (
        "" if entry.get("png", True) else " --no_png")
    return (f"groovae windows --data DATA_DIR --split {split} --config {entry.get('config')} --indices "
            f"{' '.join(str(w['index']) for w in entry.get('windows', []))} --output_dir OUT_DIR{flags}")


def audio_choice(wav):
    """(wav, why not): WAV files only where FluidSynth can render them; the reason goes into the manifest."""
    if not wav:
        return False, NO_WAV_ASKED  # recorded: the listening page says why
    no_audio = audio.unavailable_reason()
    if no_audio:  # MIDI, PNG and manifest are still worth having (e.g. after hours of training)
        _warn_once(f"groovae: warning: writing no WAV files: {no_audio}")
        return False, no_audio
    return True, None


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
    checkpoint_hash = checkpoints.checkpoint_sha256(model.checkpoint)
    input_records = [{"path": os.path.relpath(os.path.abspath(p), os.path.abspath(out_dir)),
                      "sha256": files.sha256_of(p), "window": w} for p, w in zip(inputs, windows)]
    prefix = prefix or run_prefix(mode, temperature, seed, {
        "config": config_name, "hparams": model.hparams or "", "checkpoint": checkpoint_hash,
        "inputs": [(i["sha256"], i["window"]) for i in input_records], "steps": steps if mode == "interpolate" else None})
    wav, no_wav_reason = audio_choice(wav)
    entry = {"mode": mode, "config": config_name, "hparams": model.hparams or "",
             "checkpoint": checkpoints.portable_name(source, model.checkpoint, out_dir), "checkpoint_sha256": checkpoint_hash,
             "checkpoint_step": checkpoints.step_of(model.checkpoint), "temperature": temperature, "seed": seed,
             "n": len(tensors), "steps": steps if mode == "interpolate" else None, "inputs": input_records,
             "prefix": prefix, "wav": wav, "no_wav_reason": no_wav_reason, "png": png}
    return record_run(out_dir, entry, lambda staging: write_outputs(model.converter, tensors, staging, prefix, wav, png))


def record_run(out_dir, entry, write):
    """Writes a run's files with ``write(staging)`` (returns their names), then moves them into
    ``out_dir`` and records ``entry`` + their sha256 in its manifest.  Files appear only when all
    of them were written: a failure leaves ``out_dir`` as it was.  Returns the recorded entry."""
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".staging-") as staging:  # gone on success and failure
        written = write(staging)
        entry = dict(entry, files={f: files.sha256_of(os.path.join(staging, f)) for f in written},
                     versions=package_versions())
        replace_run(out_dir, staging, entry)
    return entry


_warned = set()


def _warn_once(message):
    if message not in _warned:
        _warned.add(message)
        print(message, file=sys.stderr)


def resolve_recorded_checkpoint(entry, manifest_dir, checkpoint=None, public_url=None, cache_dir=None):
    """The checkpoint prefix a manifest entry names, checked against its recorded sha256.

    ``checkpoint`` overrides where to find it (e.g. a copy elsewhere); the
    sha256 must still match.
    """
    recorded = entry["checkpoint"]
    if checkpoint:
        prefix = checkpoints.resolve_checkpoint(checkpoint, public_url=public_url, cache_dir=cache_dir)
    elif recorded == "public":
        prefix = checkpoints.resolve_checkpoint("public", public_url=public_url, cache_dir=cache_dir)
    elif files.is_url(recorded):
        prefix = checkpoints.resolve_checkpoint("public", public_url=recorded, cache_dir=cache_dir)
    else:
        path = os.path.join(manifest_dir, recorded) if not os.path.isabs(recorded) else recorded
        if not (os.path.exists(path + ".index") or os.path.exists(path)):
            raise GenerateError(f"{path}: the checkpoint this manifest names is not there (put it there, "
                                f"or name its place with --checkpoint; its sha256 is checked)")
        prefix = checkpoints.resolve_checkpoint(path, cache_dir=cache_dir)
    digest = checkpoints.checkpoint_sha256(prefix)
    if entry.get("checkpoint_sha256") and digest != entry["checkpoint_sha256"]:
        raise GenerateError(f"{prefix}: sha256 {digest[:12]} is not the {entry['checkpoint_sha256'][:12]} "
                            f"this manifest's grooves came from")
    return prefix


def regenerate_manifest(path, out_dir, checkpoint=None, public_url=None, cache_dir=None):
    """Rebuilds every run of a manifest into ``out_dir`` (windows runs: checked in place).

    Returns (one line per run saying whether it came out identical, how many
    differ, how many runs).
    """
    manifest_dir = os.path.dirname(os.path.abspath(path))
    runs = read_manifest_file(path)
    lines, differ = [], 0
    for entry in runs:
        if entry.get("mode") == "windows":  # data, not a model's output: its files are checked where they are
            changed = changed_in_place(entry, manifest_dir)
            lines.append(f"{entry['prefix']}: {len(entry['files'])} files of dataset windows, checked in place: "
                         + ("identical" if not changed else f"{len(changed)} missing or changed "
                            f"({', '.join(changed[:3])}); write them again with {windows_command(entry)}"))
        else:
            again = regenerate(entry, out_dir, manifest_dir, checkpoint, public_url, cache_dir)
            changed = sorted(f for f in entry["files"] if again["files"].get(f) != entry["files"][f])
            lines.append(f"{entry['prefix']}: {len(entry['files'])} files, "
                         + ("identical" if not changed else f"{len(changed)} differ ({', '.join(changed[:3])})"))
        differ += bool(changed)
    return lines, differ, len(runs)


def regenerate(entry, out_dir, manifest_dir, checkpoint=None, public_url=None, cache_dir=None):
    """Re-runs one manifest entry into ``out_dir``; returns the new entry (compare its files' sha256).

    Relative checkpoint and input paths are resolved from ``manifest_dir``
    (where the manifest lives); checkpoint and inputs must have the sha256
    the manifest recorded.
    """
    if entry.get("mode") == "windows":  # no model made them; the tensor file is not beside the manifest
        raise GenerateError(f"{manifest_path(manifest_dir)}: run {entry.get('prefix')} holds windows of "
                            f"{entry.get('data')}, not a model's grooves; write them again with "
                            f"{windows_command(entry)}")
    prefix = resolve_recorded_checkpoint(entry, manifest_dir, checkpoint, public_url, cache_dir)
    inputs = []
    for record in entry["inputs"]:
        path = os.path.join(manifest_dir, record["path"])
        if not os.path.isfile(path) or files.sha256_of(path) != record["sha256"]:
            raise GenerateError(f"{path}: input missing or changed since the manifest was written")
        inputs.append(path)
    source = entry["checkpoint"] if entry["checkpoint"] == "public" or files.is_url(entry["checkpoint"]) else None
    return generate(entry["config"], prefix, out_dir, entry["mode"], n=entry["n"], temperature=entry["temperature"],
                    seed=entry["seed"], inputs=inputs, windows=[i["window"] for i in entry["inputs"]] or (None, None),
                    steps=entry["steps"] or 5, prefix=entry["prefix"], wav=entry["wav"], png=entry["png"],
                    source=source, hparams=entry.get("hparams") or None)
