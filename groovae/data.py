"""Plain-data helpers: MIDI -> NoteSequence -> converter tensors -> batches.

Training reads precomputed window tensors (``.npz``: inputs, outputs,
lengths) and feeds numpy batches, so no Python conversion runs per epoch and
no tf.data ``unbatch`` (see compat.guard_unbatch) is ever on the path.
"""
import collections
import csv
import functools
import hashlib
import io
import os

from groovae import compat  # noqa: F401  (first: shims before note_seq loads TensorFlow)
from groovae import files  # noqa: E402

import note_seq  # noqa: E402
import numpy as np  # noqa: E402

from groovae.errors import DataError, NoDrumNotes, NoNotes, RequestError, UnmappedPitches  # noqa: E402,F401

TENSOR_KEYS = ("inputs", "outputs", "lengths")
CONTROLS = "controls"  # [n, T, control_depth]: only for configs whose converter has controls


def read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None


DrumMidi = collections.namedtuple("DrumMidi", "pm sequence unmapped end_time")
DrumMidi.__doc__ = """A MIDI file's drums: PrettyMIDI, NoteSequence, a Counter of the dropped pitches, and where
the notes read end, in seconds (for a rhythm read as taps, its notes as held, not the short taps: its length)."""

GM_DRUM_CHANNEL = 10  # General MIDI's drum channel, counted from 1 as in every DAW
MAX_UNMAPPED_SHARE = 0.5  # more unmapped drum notes than this: another kit's mapping, not a few extras


def read_drum_midi(path, drum_map=None, drum_channel=None):
    """DrumMidi of a MIDI file (``drum_midi`` of its bytes); DataError naming the file if unreadable."""
    return drum_midi(read_bytes(path), path, drum_map, drum_channel)


def read_taps(path, tap_pitch=46):
    """DrumMidi of any MIDI file read as a rhythm: every note of every track (any channel, any pitch) becomes
    one drum note at ``tap_pitch`` with its onset and velocity (what drumify plays)."""
    import pretty_midi
    midi = read_bytes(path)
    if not midi:
        raise DataError(f"{path}: empty MIDI file")
    pm = _pretty_midi(midi, path)
    end_time = pm.get_end_time()  # before the notes become short taps
    onsets = sorted({(round(n.start, 6), n.velocity) for i in pm.instruments for n in i.notes})
    if not onsets:
        raise NoNotes(f"{path}: no notes")
    taps = pretty_midi.Instrument(program=0, is_drum=True, name="taps")
    taps.notes = [pretty_midi.Note(velocity, tap_pitch, start, start + 0.05) for start, velocity in onsets]
    pm.instruments = [taps]
    try:
        return DrumMidi(pm, note_seq.midi_to_note_sequence(pm), collections.Counter(), end_time)
    except Exception as e:
        raise DataError(f"{path}: unreadable MIDI ({type(e).__name__}: {e})") from None


def drum_midi(midi, name="<bytes>", drum_map=None, drum_channel=None):
    """DrumMidi of MIDI bytes: the drum notes only, on the model's nine classes.

    The one drum rule every stage uses.  Drums are the notes on General MIDI's
    drum channel (10), as in the GMD, and on ``drum_channel`` if given;
    melodic notes are dropped rather than mapped onto drum classes by their
    pitch.  A drum note whose pitch the drum map lacks is dropped and counted
    in ``unmapped``.  The default map is the converter's own (magenta's
    ROLAND_DRUM_PITCH_CLASSES); ``drum_map`` ({pitch: class index}, see
    read_drum_map) overrides it pitch by pitch, its notes moved to their
    class's first default pitch so that the converter reads them as that class.

    Raises DataError (unreadable), NoNotes, NoDrumNotes (naming the channels
    and programs used instead) or UnmappedPitches (over half the drum notes
    unmapped: the file follows another kit's mapping).
    """
    if not midi:
        raise DataError(f"{name}: empty MIDI file")
    pm = _pretty_midi(midi, name, drum_channel)
    others = [i for i in pm.instruments if not i.is_drum and i.notes]
    pm.instruments = [i for i in pm.instruments if i.is_drum]
    drum_notes = sum(len(i.notes) for i in pm.instruments)
    if not drum_notes:
        if not others:
            raise NoNotes(f"{name}: no notes")
        programs = sorted({int(i.program) for i in others})
        drums = f"channel {GM_DRUM_CHANNEL}" + (f" and --drum_channel {drum_channel}" if drum_channel else "")
        raise NoDrumNotes(f"{name}: no drum notes ({sum(len(i.notes) for i in others)} notes on non-drum "
                          f"tracks, programs {programs}, MIDI channels {_note_channels(midi)}; drums are read "
                          f"from {drums}, --drum_channel N reads another)")
    unmapped = _map_drums(pm, drum_map)
    if sum(unmapped.values()) > MAX_UNMAPPED_SHARE * drum_notes:
        top = ", ".join(f"{pitch} ({n})" for pitch, n in unmapped.most_common(5))
        raise UnmappedPitches(f"{name}: {sum(unmapped.values())} of {drum_notes} drum notes have pitches outside "
                              f"the drum map{' (default + --drum_map)' if drum_map else ''} (pitch (notes): {top}); "
                              f"--drum_map FILE maps a kit's own pitches onto the 9 classes")
    try:
        return DrumMidi(pm, note_seq.midi_to_note_sequence(pm), unmapped, pm.get_end_time())
    except Exception as e:
        raise DataError(f"{name}: unreadable MIDI ({type(e).__name__}: {e})") from None


def _pretty_midi(midi, name, drum_channel=None):
    """PrettyMIDI of the bytes, with ``drum_channel``'s messages moved to the drum channel."""
    import mido
    import pretty_midi
    try:
        if drum_channel in (None, GM_DRUM_CHANNEL):
            return pretty_midi.PrettyMIDI(io.BytesIO(midi))
        midi_file = mido.MidiFile(file=io.BytesIO(midi))
        for track in midi_file.tracks:
            for k, message in enumerate(track):
                if getattr(message, "channel", None) == drum_channel - 1:
                    track[k] = message.copy(channel=GM_DRUM_CHANNEL - 1)
        return pretty_midi.PrettyMIDI(mido_object=midi_file)
    except Exception as e:  # mido/pretty_midi raise many types on corrupt files
        raise DataError(f"{name}: unreadable MIDI ({type(e).__name__}: {e})") from None


def _note_channels(midi):
    """The MIDI channels (1-16) that have notes, for messages naming where the notes are."""
    import mido
    midi_file = mido.MidiFile(file=io.BytesIO(midi))
    return sorted({m.channel + 1 for track in midi_file.tracks for m in track
                   if m.type == "note_on" and m.velocity > 0})


@functools.lru_cache(maxsize=1)
def _default_classes():
    """The converter's pitch classes: magenta's ROLAND_DRUM_PITCH_CLASSES (one list of pitches per class)."""
    from magenta.models.music_vae import data as music_vae_data
    return tuple(tuple(pitches) for pitches in music_vae_data.ROLAND_DRUM_PITCH_CLASSES)


def default_drum_map():
    """{pitch: class index} the groove configs' converter uses."""
    return {pitch: k for k, pitches in enumerate(_default_classes()) for pitch in pitches}


def _map_drums(pm, drum_map=None):
    """Keeps the drum notes whose pitch the map has (moved to a default pitch of their class if ``drum_map``'s).

    Returns a Counter of the dropped notes' pitches.  Files whose pitches are
    all in the default map (the whole GMD) are left exactly as they were.
    """
    drum_map = drum_map or {}
    classes = {**default_drum_map(), **drum_map}
    target = [pitches[0] for pitches in _default_classes()]
    unmapped = collections.Counter()
    for instrument in pm.instruments:
        kept = []
        for note in instrument.notes:
            k = classes.get(note.pitch)
            if k is None:
                unmapped[note.pitch] += 1
                continue
            if note.pitch in drum_map:
                note.pitch = target[k]
            kept.append(note)
        if len(kept) != len(instrument.notes):
            instrument.notes = kept
    return unmapped


def drum_options(drum_map=None, drum_channel=None):
    """data.drum_midi's keyword arguments from --drum_map (a file) and --drum_channel; one-line errors."""
    if drum_channel is not None and not (isinstance(drum_channel, int) and not isinstance(drum_channel, bool)
                                         and 1 <= drum_channel <= 16):
        raise RequestError(f"--drum_channel is {drum_channel!r}; it must be a MIDI channel 1..16 (10 is GM drums)")
    return {"drum_map": read_drum_map(drum_map) if drum_map else None, "drum_channel": drum_channel}


def drums_record(drum_map=None, drum_channel=None):
    """drum_midi's options as JSON (a manifest entry, preprocess's fingerprint): what a rerun must read alike."""
    return {"drum_map": sorted(drum_map.items()) if drum_map else None, "drum_channel": drum_channel}


def drums_of_record(record):
    """drum_midi's keyword arguments back from a ``drums_record`` (or an entry holding one; absent: the defaults)."""
    pairs = record.get("drum_map")
    return {"drum_map": {int(pitch): k for pitch, k in pairs} if pairs else None,
            "drum_channel": record.get("drum_channel")}


def read_drum_map(path):
    """{pitch: class index} from a drum map file.

    A CSV file, one ``pitch,class`` row per MIDI pitch of the kit, ``class``
    one of the nine names of gmd.DRUM_CLASSES (kick, snare, closed_hh,
    open_hh, low_tom, mid_tom, high_tom, crash, ride).  A ``pitch,class``
    header, blank lines and lines starting with ``#`` are allowed.  It
    overrides the default map for the pitches it lists; the others keep
    their default class (or, outside it, are dropped).
    """
    from groovae.gmd import DRUM_CLASSES
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the drum map ({getattr(e, 'strerror', None) or e})") from None
    mapping = {}
    for number, row in enumerate(csv.reader(io.StringIO(text)), 1):
        cells = [c.strip() for c in row]
        if not any(cells) or cells[0].startswith("#") or [c.lower() for c in cells] == ["pitch", "class"]:
            continue
        where = f"{path}: line {number}"
        if len(cells) != 2:
            raise DataError(f"{where}: expected 'pitch,class', got {','.join(row)!r}")
        pitch, name = cells[0], cells[1].lower()
        if not (pitch.isdigit() and 0 <= int(pitch) <= 127):
            raise DataError(f"{where}: pitch {pitch!r} is not a MIDI pitch 0..127")
        if name not in DRUM_CLASSES:
            raise DataError(f"{where}: unknown class {cells[1]!r} (one of {', '.join(DRUM_CLASSES)})")
        if int(pitch) in mapping:
            raise DataError(f"{where}: pitch {int(pitch)} is listed twice")
        mapping[int(pitch)] = DRUM_CLASSES.index(name)
    if not mapping:
        raise DataError(f"{path}: no 'pitch,class' rows (a drum map lists the kit's pitches, e.g. '36,kick')")
    return mapping


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
    arrays = {
        "inputs": np.stack(tensors.inputs).astype(np.float32),
        "outputs": np.stack(tensors.outputs).astype(np.float32),
        "lengths": np.asarray(tensors.lengths, np.int32).reshape(k),
    }
    if converter.control_depth:  # e.g. hits as controls: what the decoder is told at each step
        arrays[CONTROLS] = np.stack(tensors.controls).astype(np.float32)
    return arrays


def empty_tensors(converter, max_seq_len=64):
    arrays = {
        "inputs": np.zeros((0, max_seq_len, converter.input_depth), np.float32),
        "outputs": np.zeros((0, max_seq_len, converter.output_depth), np.float32),
        "lengths": np.zeros((0,), np.int32),
    }
    if converter.control_depth:
        arrays[CONTROLS] = np.zeros((0, max_seq_len, converter.control_depth), np.float32)
    return arrays


def model_keys(tensors):
    """The arrays a model reads: inputs, outputs, lengths, and controls where the config has them."""
    return TENSOR_KEYS + ((CONTROLS,) if CONTROLS in tensors else ())


def concat_tensors(parts, converter):
    parts = [p for p in parts if len(p["lengths"])]
    if not parts:
        return empty_tensors(converter)
    return {key: np.concatenate([p[key] for p in parts]) for key in model_keys(parts[0])}


def midi_files_to_tensors(paths, converter):
    """Tensors of all windows of ``paths``; unreadable files are skipped.

    Returns (tensors, skipped) where skipped is a list of one-line reasons.
    """
    parts, skipped = [], []
    for path in paths:
        try:
            parts.append(sequence_to_tensors(read_drum_midi(path).sequence, converter))
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
        if os.path.isfile(os.path.join(os.path.dirname(path), "shards.json")):  # groovae.shards.MANIFEST
            raise DataError(f"{path}: no such tensor file; the windows there are TFRecord shards (preprocess "
                            f"--shards), which train and evaluate read; this command reads .npz: preprocess again "
                            f"without --shards")
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
    return {k: tensors[k][indices] for k in model_keys(tensors)}


def fingerprint(tensors):
    """What identifies a set of windows (a run's training data, what a prior was fitted on): the window count
    and a sha256 of the model's arrays."""
    digest = hashlib.sha256()
    for key in model_keys(tensors):
        digest.update(np.ascontiguousarray(tensors[key]).tobytes())
    return {"windows": int(len(tensors["lengths"])), "sha256": digest.hexdigest()}
