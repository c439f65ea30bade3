"""Stage 3: 4-bar drum grooves from a checkpoint -> MIDI, WAV, PNG + manifest.

Modes: ``sample`` (z ~ N(0, I)), ``interpolate`` (slerp between the posterior
means of two grooves), ``reconstruct`` (encode a groove, decode it: groove
transfer).  Every output file is reproducible bit for bit from the run's
manifest.json: z comes from a numpy RandomState(seed), and the decoder's hit
sampling from a TF graph seeded with the same seed, in a fresh session per call.
"""
import os

import numpy as np

from groovae import checkpoints, data, files, prior as priors
from groovae.manifest import manifest_path
from groovae.outputs import (CONVERTER_QPM, NO_WAV_ASKED, audio_choice, record_run, resolve_recorded_checkpoint,
                             run_prefix, to_sequence, write_grooves, write_outputs)
from groovae.errors import GenerateError
from groovae.model import GrooveModel, check_request, sample

MODES = ("sample", "interpolate", "reconstruct")


def slerp(a, b, t):
    """Spherical interpolation between vectors a and b (t in [0, 1])."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    cos = np.dot(a / np.linalg.norm(a), b / np.linalg.norm(b))
    omega = np.arccos(np.clip(cos, -1.0, 1.0))
    if omega < 1e-6:
        return (1 - t) * a + t * b
    return (np.sin((1 - t) * omega) * a + np.sin(t * omega) * b) / np.sin(omega)


def groove_windows(path, converter, drum_map=None, drum_channel=None):
    """Groove tensors [k, 64, 27] of every 4-bar window of a drum MIDI file (data.drum_midi's drum options)."""
    try:
        sequence = data.read_drum_midi(path, drum_map, drum_channel).sequence
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


def pick_window(path, converter, window=None, drum_map=None, drum_channel=None):
    """The one 4-bar window of ``path`` to use; a clear message if there are 0 or several."""
    windows = groove_windows(path, converter, drum_map, drum_channel)
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
    ``reconstruct``, each at the tempo it was played at (preprocess's
    ``bpm``; 120 for a tensor file without it), so its micro-timing is the
    drummer's in ms; ``indices`` picks them, else ``pick_windows``.  The run
    is recorded in ``out_dir``/manifest.json (mode 'windows': which tensor
    file, which windows, and each window's source file, first bar and
    tempo), so the listening page says what they are.  Returns the written
    file names.
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
             "prefix": f"{name}_windows_{data_hash[:6]}", "wav": wav, "no_wav_reason": no_wav_reason, "png": png,
             "as_played": True}  # the MIDI at each window's bpm (before: all at the converter's 120)
    converter = load_config(config_name).data_converter
    grooves = [(stem, to_sequence(converter, tensors["outputs"][i], record.get("bpm") or CONVERTER_QPM),
                tensors["outputs"][i]) for i, stem, record in zip(indices, stems, windows)]
    entry = record_run(out_dir, entry, lambda staging: write_grooves(grooves, staging, wav, png))
    return list(entry["files"])


def windows_command(entry):
    """The command that writes a windows entry's files again (DATA_DIR and OUT_DIR to fill in)."""
    split = os.path.splitext(entry.get("data") or "?")[0]
    flags = (" --no_wav" if entry.get("no_wav_reason") == NO_WAV_ASKED else "") + (
        "" if entry.get("png", True) else " --no_png")
    return (f"groovae windows --data DATA_DIR --split {split} --config {entry.get('config')} --indices "
            f"{' '.join(str(w['index']) for w in entry.get('windows', []))} --output_dir OUT_DIR{flags}")


def generate(config_name, checkpoint, out_dir, mode="sample", n=5, temperature=0.5, seed=0, inputs=(),
             windows=(None, None), steps=5, prefix=None, wav=True, png=True, model=None, source=None, hparams=None,
             prior="standard", drum_map=None, drum_channel=None, decoding=None):
    """One generation run: grooves + its entry in ``out_dir``/manifest.json; returns the entry.

    ``inputs`` are MIDI paths (two for interpolate, one for reconstruct) and
    ``windows`` the 4-bar window to use in each; ``source`` is how the
    checkpoint was asked for ('public', a URL; else its path is recorded
    relative to ``out_dir``).  ``drum_map`` ({pitch: class}, data.read_drum_map)
    and ``drum_channel`` say which notes of the inputs are drums, as in
    preprocess.  File names carry the settings and a short id of checkpoint
    and inputs, so runs never overwrite each other; a rerun of the same run
    replaces its earlier files.  Files appear only when all of them
    were written: a failure leaves ``out_dir`` as it was.  ``prior``: samples'
    z from N(0, I) ('standard', magenta's) or the checkpoint's data prior ('data').
    ``decoding``: how velocities and offsets are read (groovae.decoding;
    default magenta's, or that of a given ``model``).
    """
    if mode not in MODES:
        raise GenerateError(f"unknown mode '{mode}'; one of {', '.join(MODES)}")
    check_request(n if mode == "sample" else 1, temperature, seed)
    if model and decoding not in (None, model.decoding):
        raise GenerateError(f"decoding '{decoding}' asked for a model that decodes '{model.decoding}'")
    model = model or GrooveModel(config_name, checkpoint, hparams, decoding or "magenta")
    needed = {"sample": 0, "interpolate": 2, "reconstruct": 1}[mode]
    if len(inputs) != needed:
        raise GenerateError(f"mode {mode} takes {needed} input MIDI file(s), got {len(inputs)}")
    drums = data.drums_record(drum_map, drum_channel) if drum_map or drum_channel else {}  # recorded when given
    if drums and not inputs:
        raise GenerateError("--drum_map/--drum_channel say how to read input MIDI files; sample mode has none")
    grooves = [pick_window(path, model.converter, w, drum_map, drum_channel) for path, w in zip(inputs, windows)]
    data_prior = prior_of(model.checkpoint, prior, mode, model.z_size)
    tensors = played(model, mode, grooves, data_prior[0] if data_prior else None, n, steps, temperature, seed)
    checkpoint_hash = checkpoints.checkpoint_sha256(model.checkpoint)
    input_records = [{"path": os.path.relpath(os.path.abspath(p), os.path.abspath(out_dir)),
                      "sha256": files.sha256_of(p), "window": w} for p, w in zip(inputs, windows)]
    fingerprint = {"config": config_name, "hparams": model.hparams or "", "checkpoint": checkpoint_hash,
                   "inputs": [(i["sha256"], i["window"]) for i in input_records],
                   "steps": steps if mode == "interpolate" else None, **drums}
    if data_prior:  # only then: the standard prior's names stay as they were
        fingerprint["prior"] = data_prior[1]
    if model.decoding != "magenta":  # likewise
        fingerprint["decoding"] = model.decoding
    name = (mode if not data_prior else "sample-data") + ("" if model.decoding == "magenta" else f"-{model.decoding}")
    prefix = prefix or run_prefix(name, temperature, seed, fingerprint)
    wav, no_wav_reason = audio_choice(wav)
    entry = {"mode": mode, "config": config_name, "hparams": model.hparams or "",
             "checkpoint": checkpoints.portable_name(source, model.checkpoint, out_dir), "checkpoint_sha256": checkpoint_hash,
             "checkpoint_step": checkpoints.step_of(model.checkpoint), "temperature": temperature, "seed": seed,
             "n": len(tensors), "steps": steps if mode == "interpolate" else None, "inputs": input_records, **drums,
             "prefix": prefix, "wav": wav, "no_wav_reason": no_wav_reason, "png": png}
    if data_prior:
        entry.update(prior="data", prior_sha256=data_prior[1])
    if model.decoding != "magenta":
        entry["decoding"] = model.decoding
    return record_run(out_dir, entry, lambda staging: write_outputs(model.converter, tensors, staging, prefix, wav, png))


def played(model, mode, grooves, mixture, n, steps, temperature, seed):
    """A run's groove tensors: sampled (from N(0, I), or the data prior ``mixture``), interpolated or reconstructed."""
    if mixture is not None:
        return model.decode(priors.sample_codes(mixture, n, temperature, seed), temperature, seed)
    if mode == "sample":
        return sample(model, n, temperature, seed)
    if mode == "interpolate":
        return interpolate(model, grooves[0], grooves[1], steps, temperature, seed)
    return reconstruct(model, grooves[0], temperature, seed)


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
                    source=source, hparams=entry.get("hparams") or None, prior=_recorded_prior(entry, prefix),
                    decoding=entry.get("decoding", "magenta"), **data.drums_of_record(entry))


def prior_of(prefix, prior, mode, z_size=None):
    """(mixture, its file's sha256) of the data prior asked for, or None for the standard one."""
    priors.check_prior(prior)
    if prior == "standard":
        return None
    if mode != "sample":
        raise GenerateError(f"--prior {prior} is for sampling; {mode} takes its codes from the inputs")
    return priors.load_prior(prefix, z_size)[0], files.sha256_of(priors.prior_path(prefix))


def _recorded_prior(entry, prefix):
    """The prior a manifest entry was sampled from, its file checked against the recorded sha256."""
    if entry.get("prior", "standard") == "data":
        path = priors.prior_path(prefix)
        if not os.path.isfile(path) or files.sha256_of(path) != entry.get("prior_sha256"):
            raise GenerateError(f"{path}: the data prior this manifest's grooves came from is missing or changed")
    return entry.get("prior", "standard")
