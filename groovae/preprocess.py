"""Stage 1: Groove MIDI Dataset -> per-split NoteSequences and 4-bar window tensors.

``preprocess(source, out_dir)`` gets the GMD (URL, zip or extracted folder),
reads ``groove/info.csv`` and, in parallel over files, writes

* ``<out_dir>/{train,validation,test}.tfrecord``: whole-file NoteSequence
  protos carrying the GMD metadata (what magenta's tools read);
* ``<out_dir>/{train,validation,test}.npz``: the config's GrooveConverter
  tensors of 4-bar windows, plus per-window ``bpm``, ``source_id`` and
  ``start_bar``;
* ``<out_dir>/report.json``.

Window modes:

* ``tfds`` (default): the windows of tfds ``groove/4bar-midionly``, which the
  official ``groovae_4bar`` checkpoint was trained on: 4 bars, 1-bar hop, bar
  length from info.csv's bpm and time signature, final bar kept when at least
  half full.  tfds cuts each window with PrettyMIDI.adjust_times, writes it to
  MIDI and the converter reads it back; the tick rounding of that round trip
  moves onsets, hence the tensors' offsets.  ``window_sequences`` reproduces the
  round trip's arithmetic directly on arrays (~15x faster per window, before
  the converter);
  ``exact_window_sequences`` does the real round trip on a trimmed copy and is
  the fallback when a file has tempo changes.
* ``magenta``: magenta's converter on whole files (non-overlapping windows),
  what the older notebook trained on.
"""
import collections
import copy
import csv
import gc
import hashlib
import io
import json
import multiprocessing
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import numpy as np

from groovae import data, files
from groovae.errors import DataError, RequestError

OFFICIAL_URL = "https://storage.googleapis.com/magentadata/datasets/groove/groove-v1.0.0-midionly.zip"
ARCHIVE_NAME = "groove-v1.0.0-midionly.zip"
# Size and sha256 as listed in tensorflow_datasets/datasets/groove/checksums.tsv.
OFFICIAL_SIZE = 3260318
OFFICIAL_SHA256 = "651cbc524ffb891be1a3e46d89dc82a1cecb09a57c748c7b45b844c4841dcc1e"
SPLITS = ("train", "validation", "test")
INFO_COLUMNS = ("drummer", "session", "id", "style", "bpm", "beat_type", "time_signature",
                "midi_filename", "split")
# The 9 classes of magenta's ROLAND_DRUM_PITCH_CLASSES, in order.
DRUM_CLASSES = ("kick", "snare", "closed_hh", "open_hh", "low_tom", "mid_tom", "high_tom",
                "crash", "ride")
SPLIT_BARS = 4


# ---------------------------------------------------------------- getting the data


def verify_archive(path, allow_unverified=False):
    """Checks size and sha256 against the official archive, then that it is a GMD zip.

    With ``allow_unverified`` a different archive (e.g. a repacked copy) is
    accepted as long as it is a readable zip holding ``groove/info.csv``.
    """
    size = os.path.getsize(path)
    if not allow_unverified:
        if size != OFFICIAL_SIZE:
            raise DataError(f"{path}: {size:,} bytes, the official GMD archive has {OFFICIAL_SIZE:,} "
                            "(truncated or different archive; --allow_unverified accepts a different valid one)")
        digest = files.sha256_of(path)
        if digest != OFFICIAL_SHA256:
            raise DataError(f"{path}: sha256 {digest} differs from the official {OFFICIAL_SHA256} "
                            "(--allow_unverified accepts a different valid archive)")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable zip archive ({e})") from None
    if bad is not None:
        raise DataError(f"{path}: corrupt zip member {bad}")
    if not any(n.endswith("info.csv") for n in names):
        raise DataError(f"{path}: no info.csv inside; not a Groove MIDI Dataset archive")


def find_data_dir(folder):
    """The folder holding info.csv (``folder`` itself or its ``groove/``)."""
    for candidate in (folder, os.path.join(folder, "groove")):
        if os.path.isfile(os.path.join(candidate, "info.csv")):
            return candidate
    raise DataError(f"{folder}: no info.csv (expected the Groove MIDI Dataset's groove/ folder)")


def get_data(source=OFFICIAL_URL, cache_dir=None, allow_unverified=False, progress=True):
    """The extracted GMD folder (containing info.csv) for a URL, zip or folder (None: the official URL)."""
    cache_dir = cache_dir or files.DEFAULT_CACHE
    source = str(source or OFFICIAL_URL)
    if files.is_url(source):
        name = os.path.basename(urllib.parse.urlparse(source).path) or ARCHIVE_NAME
        zip_path = os.path.join(cache_dir, "downloads", name)
        official = source == OFFICIAL_URL or name == ARCHIVE_NAME
        expected = OFFICIAL_SIZE if official and not allow_unverified else None
        if os.path.isfile(zip_path):
            try:
                verify_archive(zip_path, allow_unverified)
            except DataError as e:  # a damaged or stale cached copy: fetch it again, once
                print(f"preprocess: cached {e}; downloading it again", file=sys.stderr)
                os.remove(zip_path)
        if not os.path.isfile(zip_path):
            files.download(source, zip_path, expected, progress)
            try:
                verify_archive(zip_path, allow_unverified)
            except DataError:
                os.remove(zip_path)  # not kept: the next run fetches again
                raise
    elif os.path.isdir(source):
        return find_data_dir(source)
    elif os.path.isfile(source):
        zip_path = source
    else:
        raise DataError(f"{source}: no such file, folder or URL")
    verify_archive(zip_path, allow_unverified)
    # One extraction per archive content: the key is size + mtime + name, cheap to compute.
    st = os.stat(zip_path)
    key = hashlib.sha1(f"{os.path.abspath(zip_path)}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    dest = os.path.join(cache_dir, "extracted", key)
    if not os.path.isdir(dest):
        files.safe_extract(zip_path, dest)
    return find_data_dir(dest)


def read_info(data_dir):
    """Rows of info.csv as dicts; DataError if missing or malformed."""
    path = os.path.join(data_dir, "info.csv")
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in INFO_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing columns {', '.join(missing)}")
            rows = list(reader)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    for row in rows:
        if row["split"] not in SPLITS:
            raise DataError(f"{path}: row {row['id']}: unknown split '{row['split']}'")
    return rows


# ---------------------------------------------------------------- NoteSequences

def add_metadata(sequence, row):
    """Puts the GMD metadata on a NoteSequence.

    Standard fields where they exist (id, filename, artist=drummer,
    genre=style), and every info.csv column as a ``gmd.<column>=<value>``
    text annotation (type UNKNOWN, which magenta's converters ignore).
    """
    sequence.id = row["id"]
    sequence.filename = row["midi_filename"]
    sequence.collection_name = "groove"
    sequence.sequence_metadata.artist = row["drummer"]
    sequence.sequence_metadata.title = row["id"]
    sequence.sequence_metadata.genre.extend(row["style"].split("/"))
    for key in INFO_COLUMNS + ("audio_filename", "duration"):
        if key in row:
            annotation = sequence.text_annotations.add()
            annotation.time = 0.0
            annotation.text = f"gmd.{key}={row[key]}"
    return sequence


def metadata(sequence):
    """The ``gmd.*`` metadata of a NoteSequence written here, as a dict."""
    out = {}
    for annotation in sequence.text_annotations:
        if annotation.text.startswith("gmd.") and "=" in annotation.text:
            key, value = annotation.text[4:].split("=", 1)
            out[key] = value
    return out


# ---------------------------------------------------------------- tfds-like windows

def window_starts(end_time, bpm, beats_per_bar, split_bars=SPLIT_BARS):
    """(bar_duration, [window start bars]) as tfds' groove builder cuts them."""
    bar_duration = 60 / bpm * beats_per_bar
    total_bars = int(round(end_time / bar_duration))  # pads the final bar if at least half full
    return bar_duration, list(range(total_bars - split_bars + 1))


def _shell(pm, notes_in):
    """A PrettyMIDI sharing ``pm``'s timing, with only the notes ``notes_in(start, end)`` keeps.

    adjust_times deep-copies the notes it keeps and replaces (never mutates)
    the tick-to-time array, so sharing them with ``pm`` is safe; the time
    signatures it does move, so those are copies.
    """
    import pretty_midi
    shell = pretty_midi.PrettyMIDI(resolution=pm.resolution)
    shell._tick_scales = list(pm._tick_scales)
    shell._PrettyMIDI__tick_to_time = pm._PrettyMIDI__tick_to_time
    shell.time_signature_changes = copy.deepcopy(pm.time_signature_changes)
    for inst in pm.instruments:
        new = pretty_midi.Instrument(inst.program, inst.is_drum, inst.name)
        new.notes = [n for n in inst.notes if notes_in(n.start, n.end)]
        shell.instruments.append(new)
    return shell


def exact_window_sequences(pm, bpm, beats_per_bar, split_bars=SPLIT_BARS):
    """Yields (start_bar, NoteSequence) exactly as tfds makes them, only trimmed.

    tfds deep-copies the whole PrettyMIDI per window; adjust_times keeps only
    notes inside the window anyway, so a copy holding just those gives the same
    MIDI bytes for notes, tempo and time signatures (controllers, which the
    converter ignores, are left out).
    """
    import note_seq
    bar_duration, starts = window_starts(pm.get_end_time(), bpm, beats_per_bar, split_bars)
    for i in starts:
        t0, t1 = i * bar_duration, (i + split_bars) * bar_duration
        shell = _shell(pm, lambda s, e: s >= t0 and e <= t1)
        shell.adjust_times([t0, t1], [0, split_bars * bar_duration])
        shell.time_signature_changes = pm.time_signature_changes  # as tfds does
        buf = io.BytesIO()
        shell.write(buf)
        yield i, note_seq.midi_to_note_sequence(buf.getvalue())


def _times_to_ticks(tick_to_time, final_tick_scale, times):
    """PrettyMIDI.time_to_tick, vectorised (same arithmetic, same rounding)."""
    times = np.asarray(times, np.float64)
    idx = np.searchsorted(tick_to_time, times, side="left")
    last = len(tick_to_time) - 1
    beyond = idx == len(tick_to_time)
    ticks = np.empty(len(times), np.int64)
    ticks[beyond] = np.rint(last + (times[beyond] - tick_to_time[last]) / final_tick_scale)
    i, t = idx[~beyond], times[~beyond]
    prev_closer = (i > 0) & (np.abs(t - tick_to_time[np.maximum(i - 1, 0)]) < np.abs(t - tick_to_time[i]))
    ticks[~beyond] = np.where(prev_closer, i - 1, i)
    return ticks


def _read_back_notes(on_ticks, off_ticks, pitches, velocities):
    """The notes PrettyMIDI reads from the track pretty_midi.write makes of them.

    Reproduces write's event order (tick, then note-offs before note-ons, then
    pitch, velocity; stable) and the reader's pairing of note-offs with open
    note-ons, which fixes the order of notes in the NoteSequence (the
    converter keeps the first of equally loud hits in a step).
    Returns a list of (start_tick, end_tick, pitch, velocity).
    """
    events = []
    for on, off, p, v in zip(on_ticks.tolist(), off_ticks.tolist(), pitches, velocities):
        events.append((on, 10 * 65536 + p * 256 + v, p, v))
        events.append((off, 10 * 65536 + p * 256, p, 0))
    events.sort(key=lambda e: (e[0], e[1]))
    notes, open_notes = [], {}
    for tick, _, pitch, velocity in events:
        if velocity > 0:
            open_notes.setdefault(pitch, []).append((tick, velocity))
        elif pitch in open_notes:
            pending = open_notes[pitch]
            close = [(s, v) for s, v in pending if s != tick]
            keep = [(s, v) for s, v in pending if s == tick]
            notes.extend((s, tick, pitch, v) for s, v in close)
            if close and keep:
                open_notes[pitch] = keep
            else:
                del open_notes[pitch]
    return notes


class _FileWindows:
    """Per-file arrays for cutting tfds windows without PrettyMIDI objects."""

    def __init__(self, pm, last_time):
        self.pm = pm
        # Single tempo only (callers check): the tick grid adjust_times snaps to is
        # 0 + scale * k (as _update_tick_to_time builds it), shared by all windows.
        self.scale = pm._tick_scales[0][1]
        self.tempo = pm.get_tempo_changes()[1][0]
        self.file_ticks = pm._PrettyMIDI__tick_to_time
        last = _times_to_ticks(self.file_ticks, pm._tick_scales[-1][1], [last_time])[0]
        self.grid = 0 + self.scale * np.arange(max(int(last), 0) + 2)
        self.instruments = []
        for inst in pm.instruments:
            notes = inst.notes
            self.instruments.append((
                inst,
                np.array([n.start for n in notes], np.float64),
                np.array([n.end for n in notes], np.float64),
                [n.pitch for n in notes],
                [n.velocity for n in notes],
            ))

    def _write_scale(self, t0, t1, new_end):
        """The tick scale adjust_times gives a single-tempo file for [t0, t1] -> [0, new_end].

        Same steps as adjust_times: snap t0, t1 to the tick grid (extended to
        t1's tick), scale the tempo by the snapped span over the new span.
        """
        k1 = _times_to_ticks(self.file_ticks, self.pm._tick_scales[-1][1], [t1])[0]
        grid = self.grid[:max(int(k1), 0) + 1]
        if len(grid) < int(k1) + 1:
            return None
        snapped = grid[_times_to_ticks(grid, self.scale, [t0, t1])]
        if snapped[0] == snapped[1] or new_end == 0:
            return None
        speed_scale = np.diff(snapped) / np.diff([0, new_end])
        return 60.0 / (self.tempo * speed_scale[0] * self.pm.resolution)

    def sequence(self, t0, t1, new_end):
        """The NoteSequence tfds' MIDI round trip gives for window [t0, t1], or None.

        None when the window's tempo map is not a single tempo (then use the
        exact route).
        """
        import note_seq
        pm = self.pm
        write_scale = self._write_scale(t0, t1, new_end)
        if write_scale is None:
            return None
        tick_to_time = 0 + write_scale * np.arange(2)  # adjust_times' final _update_tick_to_time(1)
        resolution = pm.resolution
        # pretty_midi.write stores an integer tempo; the reader derives its scale from it.
        tempo_us = int(6e7 / (60. / (write_scale * resolution)))
        read_scale = 60.0 / ((6e7 / tempo_us) * resolution)

        seq = note_seq.NoteSequence()
        seq.ticks_per_quarter = resolution
        seq.tempos.add(time=0.0, qpm=60.0 / (read_scale * resolution))
        signatures = pm.time_signature_changes
        if not signatures or min(ts.time for ts in signatures) > 0.0:
            seq.time_signatures.add(time=0.0, numerator=4, denominator=4)  # write's default
        if signatures:
            ts_ticks = _times_to_ticks(tick_to_time, write_scale, [ts.time for ts in signatures])
            order = sorted(range(len(signatures)), key=lambda k: ts_ticks[k])
            for k in order:
                seq.time_signatures.add(time=read_scale * float(ts_ticks[k]),
                                        numerator=signatures[k].numerator,
                                        denominator=signatures[k].denominator)
        index = 0
        for inst, starts, ends, pitches, velocities in self.instruments:
            keep = np.flatnonzero((starts >= t0) & (ends <= t1))
            if not len(keep):
                continue
            on = np.interp(starts[keep], [t0, t1], [0, new_end])
            off = np.interp(ends[keep], [t0, t1], [0, new_end])
            on, off = (on > 0) * on, (off > 0) * off
            valid = off > on  # adjust_times drops notes that became empty
            keep, on, off = keep[valid], on[valid], off[valid]
            notes = _read_back_notes(_times_to_ticks(tick_to_time, write_scale, on),
                                     _times_to_ticks(tick_to_time, write_scale, off),
                                     [pitches[k] for k in keep], [velocities[k] for k in keep])
            if not notes:
                continue  # the reader makes no instrument without notes
            for start, end, pitch, velocity in notes:
                seq.notes.add(instrument=index, program=inst.program, is_drum=inst.is_drum,
                              pitch=pitch, velocity=velocity,
                              start_time=read_scale * float(start), end_time=read_scale * float(end))
            seq.total_time = max(seq.total_time, max(n.end_time for n in seq.notes))
            index += 1
        return seq


def window_sequences(pm, bpm, beats_per_bar, split_bars=SPLIT_BARS):
    """Yields (start_bar, NoteSequence) equal to tfds' windows, computed fast."""
    bar_duration, starts = window_starts(pm.get_end_time(), bpm, beats_per_bar, split_bars)
    if len(pm.get_tempo_changes()[0]) != 1 or not starts:
        yield from exact_window_sequences(pm, bpm, beats_per_bar, split_bars)
        return
    windows = _FileWindows(pm, (starts[-1] + split_bars) * bar_duration)
    exact = None
    for i in starts:
        t0, t1 = i * bar_duration, (i + split_bars) * bar_duration
        seq = windows.sequence(t0, t1, split_bars * bar_duration)
        if seq is None:
            exact = exact or dict(exact_window_sequences(pm, bpm, beats_per_bar, split_bars))
            seq = exact[i]
        yield i, seq


# ---------------------------------------------------------------- one file (in a worker)

_CONVERTER = {}


def _converter(config_name):
    if config_name not in _CONVERTER:
        from groovae.configs import load_config
        _CONVERTER[config_name] = load_config(config_name).data_converter
    return _CONVERTER[config_name]


def _init_worker():
    import groovae.compat  # noqa: F401  (shims before TF)


def process_file(job):
    """Converts one info.csv row; never raises for bad MIDI.

    Returns a plain dict: id, split, error (one line or None), sequence
    (serialized NoteSequence), windows (count cut), tensors (dict of arrays
    with per-window metadata, or None).
    """
    row, data_dir, window_mode, config_name, exact = job
    result = {"id": row["id"], "split": row["split"], "file": row["midi_filename"] or "",
              "time_signature": row.get("time_signature") or "",
              "error": None, "sequence": None, "windows": 0, "tensors": None}
    problem = row_problem(row)
    if problem:
        result["error"], result["reason"] = f"info.csv row {row['id']}: {problem}", "bad info.csv row"
        return result
    path = os.path.join(data_dir, row["midi_filename"])
    try:
        with open(path, "rb") as f:
            midi = f.read()
        pm, sequence = data.drum_midi(midi, row["midi_filename"])
    except OSError as e:
        result["error"] = f"{row['midi_filename']}: cannot read ({e.strerror})"
        return result
    except DataError as e:
        result["error"] = str(e)
        if isinstance(e, data.NoDrumNotes):
            result["reason"] = "no drum notes"
        return result
    result["sequence"] = add_metadata(sequence, row).SerializeToString()

    converter = _converter(config_name)
    parts, start_bars = [], []
    if window_mode == "tfds":
        try:
            bpm = int(row["bpm"])
            beats_per_bar = int(row["time_signature"].split("-")[0])
        except ValueError:
            result["error"] = f"{row['midi_filename']}: bad bpm/time_signature in info.csv"
            return result
        cut = exact_window_sequences if exact else window_sequences
        for start_bar, window in cut(pm, bpm, beats_per_bar):
            result["windows"] += 1
            tensors = data.sequence_to_tensors(window, converter)
            if len(tensors["lengths"]):
                parts.append(tensors)
                start_bars += [start_bar] * len(tensors["lengths"])
    elif window_mode == "magenta":
        tensors = data.sequence_to_tensors(sequence, converter)
        parts.append(tensors)
        n = len(tensors["lengths"])
        result["windows"] = n
        start_bars = [SPLIT_BARS * k for k in range(n)]  # non-overlapping windows from bar 0
    else:
        raise RequestError(f"unknown window_mode '{window_mode}' (tfds or magenta)")
    tensors = data.concat_tensors(parts, converter)
    n = len(tensors["lengths"])
    tensors["bpm"] = np.full(n, float(row["bpm"] or 0), np.float32)
    tensors["source_id"] = np.array([row["id"]] * n, dtype="U64").reshape(n)
    tensors["start_bar"] = np.asarray(start_bars, np.int32).reshape(n)
    result["tensors"] = tensors
    return result


def row_problem(row):
    """What makes an info.csv row unusable (bpm, time signature, file name), or None."""
    name = row.get("midi_filename") or ""
    if not name or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        return f"bad midi_filename {name!r} (a path inside the dataset folder)"
    try:
        bpm = int(row.get("bpm") or "")
    except ValueError:
        return f"bad bpm {row.get('bpm')!r} (a whole number of beats per minute)"
    if not 1 <= bpm <= 1000:
        return f"bad bpm {bpm} (1 to 1000)"
    numerator, _, denominator = (row.get("time_signature") or "").partition("-")
    if not (numerator.isdigit() and denominator.isdigit() and int(numerator) > 0 and int(denominator) > 0):
        return f"bad time_signature {row.get('time_signature')!r} (like 4-4)"
    return None


def _reject_reason(result):
    """Why a readable file gave no tensors (for the report)."""
    if result.get("reason"):
        return result["reason"]
    if result["error"]:
        return "unreadable"
    if result["windows"] == 0:
        return "too short"
    if result["time_signature"] not in ("", "4-4"):
        return "not 4/4"  # the converter wants 16 steps per bar
    return "no converter tensors"


# ---------------------------------------------------------------- outputs

def write_tfrecord(path, records):
    """Writes serialized protos to a TFRecord atomically (temp name + rename)."""
    import tensorflow as tf
    with files.atomic_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for record in records:
            writer.write(record)


def read_tfrecord_sequences(path):
    """NoteSequences of a TFRecord written here (for checks and notebooks)."""
    import note_seq
    import tensorflow as tf
    return [note_seq.NoteSequence.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def _split_tensors(results, converter):
    parts = [r["tensors"] for r in results if r["tensors"] is not None and len(r["tensors"]["lengths"])]
    tensors = data.concat_tensors(parts, converter)
    n = len(tensors["lengths"])
    for key, dtype in (("bpm", np.float32), ("source_id", "U64"), ("start_bar", np.int32)):
        tensors[key] = (np.concatenate([p[key] for p in parts]) if parts
                        else np.zeros(0, dtype)).astype(dtype).reshape(n)
    return tensors


def hits_per_class(tensors):
    hits = tensors["outputs"][..., :len(DRUM_CLASSES)].sum(axis=(0, 1)) if len(tensors["outputs"]) \
        else np.zeros(len(DRUM_CLASSES))
    return {name: int(h) for name, h in zip(DRUM_CLASSES, hits)}


def make_report(results, split_tensors, window_mode, seconds):
    report = {"window_mode": window_mode,
              "seconds": round(seconds, 2), "splits": {}, "rejected": []}
    for split in SPLITS:
        mine = [r for r in results if r["split"] == split]
        tensors = split_tensors[split]
        report["splits"][split] = {
            "files": len(mine),
            "sequences": sum(r["sequence"] is not None for r in mine),
            "windows": sum(r["windows"] for r in mine),
            "tensors": int(len(tensors["lengths"])),
            "hits_per_class": hits_per_class(tensors),
        }
    for r in results:
        if r["error"] or not (r["tensors"] is not None and len(r["tensors"]["lengths"])):
            report["rejected"].append({"id": r["id"], "file": r["file"], "split": r["split"],
                                       "reason": _reject_reason(r), "detail": r["error"] or ""})
    counts = collections.Counter(x["reason"] for x in report["rejected"])
    report["rejected_counts"] = dict(counts)
    report["totals"] = {key: sum(s[key] for s in report["splits"].values())
                        for key in ("files", "sequences", "windows", "tensors")}
    return report


def format_report(report):
    lines = [f"{'split':<11}{'files':>7}{'windows':>9}{'tensors':>9}"]
    for split, s in report["splits"].items():
        lines.append(f"{split:<11}{s['files']:>7}{s['windows']:>9}{s['tensors']:>9}")
    t = report["totals"]
    lines.append(f"{'total':<11}{t['files']:>7}{t['windows']:>9}{t['tensors']:>9}")
    if report["rejected_counts"]:
        lines.append("files without tensors: " + ", ".join(f"{n} {reason}" for reason, n in
                                                            sorted(report["rejected_counts"].items())))
    for x in report["rejected"]:
        if x["reason"] == "unreadable":
            lines.append(f"  skipped {x['detail']}")
    hits = collections.Counter()
    for s in report["splits"].values():
        hits.update(s["hits_per_class"])
    lines.append("hits per class: " + ", ".join(f"{k} {hits[k]}" for k in DRUM_CLASSES))
    return "\n".join(lines)


# ---------------------------------------------------------------- the stage

def _file_size(data_dir, row):
    try:
        return os.path.getsize(os.path.join(data_dir, row["midi_filename"]))
    except OSError:
        return 0


def _run_jobs(jobs, workers, progress):
    """process_file over jobs, in a fork pool when workers > 1; results in job order."""
    from tqdm.auto import tqdm
    results = []
    with tqdm(total=len(jobs), unit="file", disable=not progress, desc="preprocess") as bar:
        if workers > 1 and len(jobs) > 1:
            # fork: workers inherit the loaded magenta/converter instead of re-importing TF.
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            with ctx.Pool(min(workers, len(jobs)), initializer=_init_worker) as pool:
                for r in pool.imap(process_file, jobs, chunksize=2):
                    results.append(r)
                    bar.update()
        else:
            for job in jobs:
                results.append(process_file(job))
                bar.update()
    return results


def preprocess(source=OFFICIAL_URL, out_dir="data/gmd", window_mode="tfds", config="groovae_4bar",
               workers=None, allow_unverified=False, cache_dir=None, max_files=None, exact=False,
               progress=True, force=False):
    """GMD -> per-split NoteSequence TFRecords, window tensors (.npz) and report.json.

    ``max_files`` keeps the first n rows of info.csv (quick runs); ``exact``
    uses the slow real MIDI round trip for every window.  Returns the report.
    Outputs made from the same data, settings and code are kept (their
    report is returned) unless ``force``.
    """
    started = time.time()
    source = source or OFFICIAL_URL
    for name, value in (("workers", workers), ("max_files", max_files)):
        if value is not None and not (isinstance(value, int) and value >= 1):
            raise DataError(f"--{name} is {value!r}; it must be a whole number >= 1")
    if window_mode not in ("tfds", "magenta"):
        raise RequestError(f"unknown window_mode '{window_mode}' (tfds or magenta)")
    data_dir = get_data(source, cache_dir, allow_unverified, progress)
    rows = read_info(data_dir)
    if max_files:
        rows = rows[:max_files]
    inputs = input_fingerprint(data_dir, rows, window_mode, config, exact)
    existing = up_to_date_report(out_dir, inputs) if not force else None
    if existing:
        print(f"preprocess: {out_dir} is up to date (same data, settings and code); --force rebuilds",
              file=sys.stderr)
        return existing
    converter = _converter(config)  # loads magenta before forking, so workers start warm
    jobs = [(row, data_dir, window_mode, config, exact) for row in rows]
    workers = workers or os.cpu_count() or 1
    # The result thread unpickles every file's arrays; with the cyclic GC scanning
    # TF's huge heap on each allocation burst it cannot keep up and the workers
    # stall on a full pipe (measured: 1.1 cores busy instead of 2).
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        # Longest files first so no long file is left running alone at the end.
        order = sorted(range(len(jobs)), key=lambda k: -_file_size(data_dir, rows[k]))
        done = _run_jobs([jobs[k] for k in order], workers, progress)
        results = [None] * len(jobs)
        for k, r in zip(order, done):
            results[k] = r
    finally:
        gc.enable()
        gc.unfreeze()

    split_tensors = {}
    # All outputs or none: written into a staging folder that then replaces out_dir whole.
    with files.atomic_directory(out_dir, carry_over=True) as staging:
        for split in SPLITS:
            mine = [r for r in results if r["split"] == split]
            write_tfrecord(os.path.join(staging, f"{split}.tfrecord"),
                           [r["sequence"] for r in mine if r["sequence"] is not None])
            split_tensors[split] = _split_tensors(mine, converter)
            data.save_tensors(os.path.join(staging, f"{split}.npz"), split_tensors[split])
        report = make_report(results, split_tensors, window_mode, time.time() - started)
        report["source"] = str(source) if files.is_url(source) else os.path.basename(os.path.normpath(str(source)))
        report["inputs"] = inputs
        files.atomic_write(os.path.join(staging, "report.json"),
                          lambda f: f.write(json.dumps(report, indent=1)), mode="w")
    return report


def input_fingerprint(data_dir, rows, window_mode, config, exact):
    """Everything the outputs depend on: the data's bytes, the settings and the code that cuts windows."""
    from groovae.configs import config_path
    data_hash = hashlib.sha256()
    for path in [os.path.join(data_dir, "info.csv")] + [os.path.join(data_dir, r["midi_filename"]) for r in rows]:
        data_hash.update(os.path.relpath(path, data_dir).encode() + b"\0")
        if os.path.isfile(path):
            data_hash.update(files.sha256_of(path).encode())
    code_hash = hashlib.sha256()
    for path in (__file__, data.__file__, config_path(config)):
        code_hash.update(files.sha256_of(path).encode())
    return {"data_sha256": data_hash.hexdigest(), "files": len(rows), "window_mode": window_mode,
            "config": config, "exact": bool(exact), "code_sha256": code_hash.hexdigest()}


def up_to_date_report(out_dir, inputs):
    """The report of outputs in ``out_dir`` made from ``inputs``, or None if any differs or is missing."""
    outputs = ["report.json"] + [f"{split}.{ext}" for split in SPLITS for ext in ("tfrecord", "npz")]
    if not all(os.path.isfile(os.path.join(out_dir, name)) for name in outputs):
        return None
    try:
        with open(os.path.join(out_dir, "report.json")) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    return report if report.get("inputs") == inputs else None


# ---------------------------------------------------------------- the tfds route

def build_tfds(source=OFFICIAL_URL, data_dir=None, cache_dir=None, allow_unverified=False, progress=True):
    """Builds tfds ``groove/4bar-midionly`` offline from a local or cached zip.

    Places the archive in tfds' files.download folder under the name tfds derives
    from the official URL, with the ``.INFO`` file tfds writes after a
    files.download, so tfds finds it and does not fetch.  tfds checks the archive's
    size and sha256 against its own list: a repacked archive fails there.
    Slow (single-threaded); returns the builder.
    """
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import resource as tfds_resource
    cache_dir = cache_dir or files.DEFAULT_CACHE
    source = str(source)
    if files.is_url(source):
        zip_path = os.path.join(cache_dir, "downloads", ARCHIVE_NAME)
        if not os.path.isfile(zip_path):
            files.download(source, zip_path, OFFICIAL_SIZE, progress)
    elif os.path.isfile(source):
        zip_path = source
    else:
        raise DataError(f"{source}: --tfds needs the GMD zip archive (a URL or a .zip)")
    verify_archive(zip_path, allow_unverified)
    data_dir = data_dir or os.path.join(cache_dir, "tensorflow_datasets")
    download_dir = os.path.join(data_dir, "downloads")
    # Where tfds looks for a files.download whose checksum it knows: downloads/<dataset>/<name>
    # (and, legacy, downloads/<name>); a file there with an .INFO beside it is used as is.
    name = tfds_resource.get_dl_fname(OFFICIAL_URL, OFFICIAL_SHA256)
    for folder in (os.path.join(download_dir, "groove"), download_dir):
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, name)
        if not os.path.exists(target):
            shutil.copyfile(zip_path, target + ".tmp")
            os.replace(target + ".tmp", target)
        with open(target + ".INFO", "w") as f:
            json.dump({"urls": [OFFICIAL_URL], "original_fname": ARCHIVE_NAME}, f)
    builder = tfds.builder("groove/4bar-midionly", data_dir=data_dir)
    builder.download_and_prepare(download_dir=download_dir)
    return builder


def main_report_line(report, out_dir):
    return json.dumps({"output_dir": out_dir, **{k: report[k] for k in ("window_mode", "seconds", "totals")}})


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m groovae preprocess ...")
