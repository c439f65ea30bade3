"""Plain-data helpers: MIDI -> NoteSequence -> converter tensors -> batches.

Training reads precomputed window tensors (``.npz``: inputs, outputs,
lengths) and feeds numpy batches, so no Python conversion runs per epoch and
no tf.data ``unbatch`` (see compat.guard_unbatch) is ever on the path.
"""
import io
import os

from groovae import compat  # noqa: F401  (first: shims before note_seq loads TensorFlow)
from groovae import files  # noqa: E402

import note_seq  # noqa: E402
import numpy as np  # noqa: E402

from groovae.errors import DataError, NoDrumNotes  # noqa: E402,F401  (data.DataError for callers)

TENSOR_KEYS = ("inputs", "outputs", "lengths")


def midi_file_to_sequence(path):
    """NoteSequence of a MIDI file; DataError naming the file if unreadable."""
    return midi_bytes_to_sequence(read_bytes(path), path)


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None


def midi_bytes_to_sequence(midi, name="<bytes>"):
    if not midi:
        raise DataError(f"{name}: empty MIDI file")
    try:
        return note_seq.midi_to_note_sequence(midi)
    except Exception as e:  # mido/pretty_midi raise many types on corrupt files
        raise DataError(f"{name}: unreadable MIDI ({type(e).__name__}: {e})") from None


def drum_midi(midi, name="<bytes>"):
    """(PrettyMIDI, NoteSequence) of MIDI bytes with the drum tracks only.

    Drums are the notes on General MIDI's drum channel (10), as in the GMD:
    the one rule every stage uses.  Melodic notes are dropped rather than
    mapped onto drum classes by their pitch.  NoDrumNotes if the file has
    notes but none of them are drums.
    """
    import pretty_midi
    if not midi:
        raise DataError(f"{name}: empty MIDI file")
    try:
        pm = pretty_midi.PrettyMIDI(io.BytesIO(midi))
    except Exception as e:  # mido/pretty_midi raise many types on corrupt files
        raise DataError(f"{name}: unreadable MIDI ({type(e).__name__}: {e})") from None
    others = [i for i in pm.instruments if not i.is_drum and i.notes]
    pm.instruments = [i for i in pm.instruments if i.is_drum]
    if others and not any(i.notes for i in pm.instruments):
        programs = sorted({int(i.program) for i in others})
        raise NoDrumNotes(f"{name}: no drum notes ({sum(len(i.notes) for i in others)} notes on non-drum "
                          f"tracks, programs {programs}; drums are read from MIDI channel 10)")
    try:
        return pm, note_seq.midi_to_note_sequence(pm)
    except Exception as e:
        raise DataError(f"{name}: unreadable MIDI ({type(e).__name__}: {e})") from None


def sequence_to_tensors(sequence, converter):
    """The converter's window tensors of one NoteSequence as numpy arrays.

    Returns a dict of ``inputs``/``outputs`` [k, T, depth] float32 and
    ``lengths`` [k] int32; k may be 0 (e.g. not 4/4, or no notes).
    """
    converter.set_mode("eval")  # all windows, deterministically (train mode samples)
    tensors = converter.to_tensors(sequence)
    k = len(tensors.outputs)
    if not k:
        return empty_tensors(converter)
    return {
        "inputs": np.stack(tensors.inputs).astype(np.float32),
        "outputs": np.stack(tensors.outputs).astype(np.float32),
        "lengths": np.asarray(tensors.lengths, np.int32).reshape(k),
    }


def empty_tensors(converter, max_seq_len=64):
    return {
        "inputs": np.zeros((0, max_seq_len, converter.input_depth), np.float32),
        "outputs": np.zeros((0, max_seq_len, converter.output_depth), np.float32),
        "lengths": np.zeros((0,), np.int32),
    }


def concat_tensors(parts, converter):
    parts = [p for p in parts if len(p["lengths"])]
    if not parts:
        return empty_tensors(converter)
    return {key: np.concatenate([p[key] for p in parts]) for key in TENSOR_KEYS}


def midi_files_to_tensors(paths, converter):
    """Tensors of all windows of ``paths``; unreadable files are skipped.

    Returns (tensors, skipped) where skipped is a list of one-line reasons.
    """
    parts, skipped = [], []
    for path in paths:
        try:
            parts.append(sequence_to_tensors(midi_file_to_sequence(path), converter))
        except DataError as e:
            skipped.append(str(e))
    return concat_tensors(parts, converter), skipped


def save_tensors(path, tensors):
    """Writes window tensors to ``path`` (.npz) atomically.

    Besides inputs/outputs/lengths, any other per-window arrays in
    ``tensors`` (e.g. ``bpm``, ``source_id``) are stored too.
    """
    n = len(tensors["lengths"])
    for key, value in tensors.items():
        if len(value) != n:
            raise ValueError(f"{path}: '{key}' has {len(value)} rows, lengths has {n}")
    files.atomic_write(path, lambda f: np.savez(f, **tensors))


def load_tensors(path):
    """Window tensors from ``save_tensors``; DataError if missing or damaged."""
    if not os.path.isfile(path):
        raise DataError(f"{path}: no such tensor file (run `groovae preprocess` first)")
    try:
        with np.load(path) as npz:
            missing = [k for k in TENSOR_KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{path}: not a groovae tensor file (no {', '.join(missing)})")
            tensors = {k: npz[k] for k in npz.files}
    except DataError:
        raise
    except Exception as e:
        raise DataError(f"{path}: not a groovae tensor file ({type(e).__name__}: {e})") from None
    n = {len(v) for v in tensors.values()}
    if len(n) != 1:
        raise DataError(f"{path}: arrays of different lengths {sorted(n)}")
    return tensors


def batch_indices(num_examples, batch_size, seed, step):
    """Example indices of batch ``step``: seeded shuffles, epoch after epoch.

    A pure function of (seed, step), so a resumed run sees the same batches it
    would have seen without the interruption.
    """
    if num_examples <= 0:
        raise DataError("no training windows")
    indices, position = [], step * batch_size
    while len(indices) < batch_size:
        epoch, offset = divmod(position, num_examples)
        order = np.random.RandomState([seed, epoch]).permutation(num_examples)
        take = order[offset:offset + batch_size - len(indices)]
        indices.extend(take)
        position += len(take)
    return np.asarray(indices)


def batch(tensors, indices):
    return {k: tensors[k][indices] for k in TENSOR_KEYS}
