"""A run's output files: grooves as MIDI + WAV + PNG, written whole or not at all, and recorded in the manifest.

The shared layer under the stages that write grooves (generate, and the
your-beat commands): a run stages its files, then they are moved into the
folder and recorded in its manifest.json with their sha256 (groovae.manifest),
so that ``regenerate`` can rebuild and compare them.
"""
import hashlib
import json
import os
import sys

import numpy as np

from groovae import audio, checkpoints, files
from groovae.errors import GenerateError, write_errors
from groovae.manifest import package_versions, replace_run, staged_run

NO_WAV_ASKED = "not asked for (--no_wav)"
CONVERTER_QPM = 120.0  # magenta's GrooveConverter writes its NoteSequences at 120 qpm


def write_outputs(converter, tensors, out_dir, prefix, wav=True, png=True):
    """Writes prefix_XX.mid + .wav, .png per groove tensor (at the converter's 120 bpm); returns the file names."""
    stems = [f"{prefix}_{i:02d}" for i in range(len(tensors))]
    return write_grooves(zip(stems, converter.from_tensors(np.asarray(tensors)), tensors), out_dir, wav, png)


def to_sequence(converter, tensor, bpm):
    """The NoteSequence of a groove tensor [steps, 27] at ``bpm``: its steps at that tempo, micro-timing kept as a
    share of a step (so, at the tempo it was played at, the drummer's offsets in ms)."""
    sequence = converter.from_tensors(np.asarray(tensor)[None])[0]
    scale = CONVERTER_QPM / bpm
    for note in sequence.notes:
        note.start_time, note.end_time = note.start_time * scale, note.end_time * scale
    sequence.tempos[0].qpm = bpm
    sequence.total_time = len(tensor) * 60.0 / bpm / 4
    return sequence


def write_grooves(grooves, out_dir, wav=True, png=True):
    """Writes <stem>.mid + .wav, .png for each (stem, NoteSequence, tensor for its drum roll); returns the names."""
    from groovae import plots
    import note_seq
    os.makedirs(out_dir, exist_ok=True)
    names = []
    for stem, sequence, tensor in grooves:
        base = os.path.join(out_dir, stem)
        pm = note_seq.note_sequence_to_pretty_midi(sequence)
        files.atomic_write(base + ".mid", pm.write)
        names.append(base + ".mid")
        if wav:
            names.append(audio.render_wav(base + ".mid", base + ".wav"))
        if png:
            names.append(plots.save_figure(plots.drum_roll(tensor, title=os.path.basename(base)), base + ".png"))
    return [os.path.basename(n) for n in names]


def audio_choice(wav):
    """(wav, why not): WAV files only where FluidSynth can render them; the reason goes into the manifest."""
    if not wav:
        return False, NO_WAV_ASKED  # recorded: the listening page says why
    no_audio = audio.unavailable_reason()
    if no_audio:  # MIDI, PNG and manifest are still worth having (e.g. after hours of training)
        warn_once(f"groovae: warning: writing no WAV files: {no_audio}")
        return False, no_audio
    return True, None


SHORT_MODES = {"interpolate": "interp", "reconstruct": "recon"}  # file names: interp_t0.5_s0_<id>_00.mid


def run_prefix(mode, temperature, seed, fingerprint):
    """File-name prefix of a run: readable settings plus a short id of checkpoint and inputs."""
    head, dash, tail = mode.partition("-")  # e.g. sample-data, interpolate-given_hit
    settings = f"{SHORT_MODES.get(head, head)}{dash}{tail}_t{temperature:g}_s{seed}"
    return f"{settings}_{hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:6]}"


def record_run(out_dir, entry, write):
    """Writes a run's files with ``write(staging)`` (returns their names), then moves them into
    ``out_dir`` and records ``entry`` + their sha256 in its manifest.  Files appear only when all
    of them were written: a failure leaves ``out_dir`` as it was.  Returns the recorded entry."""
    files.make_folder(out_dir)
    with write_errors(f"nothing written, {out_dir} as before"), staged_run(out_dir) as folder:
        written = write(folder)
        entry = dict(entry, files={f: files.sha256_of(os.path.join(folder, f)) for f in written},
                     versions=package_versions())
        replace_run(out_dir, folder, entry)
    return entry


_warned = set()


def warn_once(message):
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
