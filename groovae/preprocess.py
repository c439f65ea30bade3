"""Stage 1: Groove MIDI Dataset (or your own drum MIDI) -> per-split NoteSequences and 4-bar window tensors.

``preprocess(source, out_dir)`` gets the GMD (URL, zip or extracted folder)
and reads ``groove/info.csv``, or, for a folder or zip of MIDI files without
one, lists them (groovae.corpus: split by path hash or split.csv, tempo and
time signature from each file), and, in parallel over files, writes

* ``<out_dir>/{train,validation,test}.tfrecord``: whole-file NoteSequence
  protos carrying the GMD metadata (what magenta's tools read);
* ``<out_dir>/{train,validation,test}.npz``: the config's GrooveConverter
  tensors of 4-bar windows, plus per-window ``bpm``, ``source_id`` and
  ``start_bar``;
* ``<out_dir>/report.json``: counts, and every file that gave no tensors with
  its reason (one per file, from the step that gave up) and detail.

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
import gc
import hashlib
import json
import multiprocessing
import os
import sys
import time

import numpy as np

from groovae import corpus, data, files, gmd, preprocess_outputs, preprocess_report, shards, windows
from groovae.preprocess_outputs import (check_accounted, converter_of as _converter, groups_of, id_dtype as _id_dtype,
                                        output_names, plan, shard_manifest, split_stats, write_group,
                                        write_tfrecord)  # noqa: F401  (write_tfrecord: read_tfrecord_sequences' twin)
from groovae.preprocess_report import file_summary, make_report
from groovae.gmd import OFFICIAL_URL, SPLITS, add_metadata, get_data, read_info, row_problem
from groovae.windows import SPLIT_BARS, bar_count, exact_window_sequences, window_sequences
from groovae.errors import INTERRUPTS, DataError, RequestError, write_errors


# ---------------------------------------------------------------- one file (in a worker)

def _init_worker():
    import signal
    import groovae.compat  # noqa: F401  (shims before TF)
    # Ctrl-C reaches the whole process group: the parent alone stops the run (and terminates the pool, with
    # SIGTERM, which must end a worker quietly rather than raise the parent's Terminated in it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, INTERRUPTS)  # blocked by _start_pool: a held SIGTERM ends us now


def _start_pool(ctx, processes):
    """A pool whose workers start with SIGINT/SIGTERM blocked until _init_worker has set their handlers.

    Else a SIGTERM from Pool.terminate() that reaches a worker not yet run since its fork (a loaded machine,
    a short job list) is taken by the parent's handler and dropped by Python's after-fork reset: the worker
    lives on, waiting for a queue lock its dead sibling held, and the parent joins it forever."""
    import signal
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, INTERRUPTS)
    try:
        return ctx.Pool(processes, initializer=_init_worker)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


FileJob = collections.namedtuple("FileJob", "row data_dir window_mode config exact drums")
FileJob.__doc__ = """One file to convert: its info.csv (or corpus) row, where the files are, the window mode,
the config whose converter makes the tensors, --exact, and data.drum_midi's keyword arguments."""


def process_file(job):
    """Converts one FileJob's file; never raises for bad MIDI.

    A corpus row (corpus.corpus_rows) gets its bpm and time signature from
    the MIDI file.  Returns a plain dict: id, split, error (one line or None)
    and reason, sequence (serialized NoteSequence), windows (count cut),
    bars, unmapped (dropped pitches), tensors (dict of arrays with
    per-window metadata, or None).
    """
    row = job.row
    from_midi = row.get("metadata") == "midi"
    result = {"id": row["id"], "split": row["split"], "file": row["midi_filename"] or "",
              "time_signature": row.get("time_signature") or "",
              "error": None, "sequence": None, "windows": 0, "bars": None, "unmapped": {}, "tensors": None}
    problem = None if from_midi else row_problem(row)
    if problem:
        result["error"], result["reason"] = f"info.csv row {row['id']}: {problem}", "bad info.csv row"
        return result
    try:
        with open(os.path.join(job.data_dir, row["midi_filename"]), "rb") as f:
            midi = f.read()
        pm, sequence, unmapped, _ = data.drum_midi(midi, row["midi_filename"], **job.drums)
        if from_midi:
            row = {**row, **corpus.midi_metadata(pm, row["midi_filename"])}
        bpm = row["bpm"] if from_midi else int(row["bpm"])
        beats_per_bar = int(row["time_signature"].split("-")[0])
    except OSError as e:
        result["error"] = f"{row['midi_filename']}: cannot read ({e.strerror})"
        return result
    except DataError as e:
        result["error"], result["reason"] = str(e), e.reason
        return result
    except ValueError:
        result["error"] = f"{row['midi_filename']}: bad bpm/time_signature in info.csv"
        return result
    result["unmapped"] = dict(unmapped)
    result["time_signature"] = row["time_signature"]
    result["sequence"] = (corpus.add_metadata if from_midi else add_metadata)(sequence, row).SerializeToString()
    result["bars"] = bar_count(pm.get_end_time(), bpm, beats_per_bar)[1]
    tensors, start_bars, result["windows"] = window_tensors(job, pm, sequence, bpm, beats_per_bar)
    n = len(tensors["lengths"])
    tensors["bpm"] = np.full(n, float(row["bpm"] or 0), np.float32)
    tensors["source_id"] = np.array([row["id"]] * n, dtype=_id_dtype([row["id"]])).reshape(n)
    tensors["start_bar"] = np.asarray(start_bars, np.int32).reshape(n)
    result["tensors"] = tensors
    return result


def window_tensors(job, pm, sequence, bpm, beats_per_bar):
    """(converter tensors of the file's 4-bar windows, each one's first bar, how many windows were cut)."""
    converter = _converter(job.config)
    if job.window_mode == "tfds":
        parts, start_bars, cut_count = [], [], 0
        cut = exact_window_sequences if job.exact else window_sequences
        for start_bar, window in cut(pm, bpm, beats_per_bar):
            cut_count += 1
            tensors = data.sequence_to_tensors(window, converter)
            if len(tensors["lengths"]):
                parts.append(tensors)
                start_bars += [start_bar] * len(tensors["lengths"])
        return data.concat_tensors(parts, converter), start_bars, cut_count
    if job.window_mode == "magenta":
        tensors = data.sequence_to_tensors(sequence, converter)
        n = len(tensors["lengths"])
        return tensors, [SPLIT_BARS * k for k in range(n)], n  # non-overlapping windows from bar 0
    raise RequestError(f"unknown window_mode '{job.window_mode}' (tfds or magenta)")


def read_tfrecord_sequences(path):
    """NoteSequences of a TFRecord written here (for checks and notebooks)."""
    import note_seq
    import tensorflow as tf
    return [note_seq.NoteSequence.FromString(r.numpy()) for r in tf.data.TFRecordDataset(path)]


def _file_size(data_dir, row):
    try:
        return os.path.getsize(os.path.join(data_dir, row["midi_filename"]))
    except OSError:
        return 0


def _run_jobs(jobs, workers, progress):
    """Yields process_file over jobs, in job order, from a fork pool when workers > 1."""
    from tqdm.auto import tqdm
    with tqdm(total=len(jobs), unit="file", disable=not progress, desc="preprocess") as bar:
        if workers > 1 and len(jobs) > 1:
            # fork: workers inherit the loaded magenta/converter instead of re-importing TF.
            methods = multiprocessing.get_all_start_methods()
            ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            with _start_pool(ctx, min(workers, len(jobs))) as pool:
                for r in pool.imap(process_file, jobs, chunksize=2):
                    bar.update()
                    yield r
        else:
            for job in jobs:
                r = process_file(job)
                bar.update()
                yield r


def preprocess(source=OFFICIAL_URL, out_dir="data/gmd", window_mode="tfds", config="groovae_4bar",
               workers=None, allow_unverified=False, cache_dir=None, max_files=None, exact=False,
               progress=True, force=False, split_ratios=None, split_csv=None, drum_map=None, drum_channel=None,
               runner="local", num_shards=None, beam_options=None):
    """GMD or a folder of drum MIDI -> per-split NoteSequence TFRecords, window tensors (.npz) and report.json.

    ``source`` holding info.csv (or a URL) is the GMD, with its own split;
    any other folder or zip is a corpus of MIDI files (groovae.corpus):
    ``split_ratios`` (train,validation,test) and a ``split_csv`` (default
    its split.csv) choose each file's split.  ``drum_map`` (a file, see
    data.read_drum_map) and ``drum_channel`` (1-16) change which notes are
    drums, for either.  ``max_files`` keeps the first n rows (quick runs);
    ``exact`` uses the slow real MIDI round trip for every window.
    ``runner``: 'local' (a process pool) or 'beam' (groovae.beam_pipeline,
    with ``beam_options``); ``num_shards`` writes windows as TFRecord shards
    (groovae.shards) instead of one .npz per split.  Returns the report.
    Outputs made from the same data, settings and code are kept (their
    report is returned) unless ``force``.
    """
    started = time.time()
    source = source or OFFICIAL_URL
    options = check_settings(workers, max_files, num_shards, runner, beam_options, window_mode)
    drums = data.drum_options(drum_map, drum_channel)
    with write_errors(f"nothing written, {out_dir} as before"):  # a full disk (cache or staging): one line
        files.recover_directory(out_dir, carry_over=True)  # what a killed run left beside it
        data_dir, rows, is_corpus = source_rows(source, cache_dir, allow_unverified, progress, split_ratios,
                                                split_csv)
        rows = rows[:max_files] if max_files else rows
        inputs = input_fingerprint(data_dir, rows, window_mode, config, exact, drums, split_csv, num_shards)
        existing = up_to_date_report(out_dir, inputs) if not force else None
        if existing:
            print(f"preprocess: {out_dir} is up to date (same data, settings and code); --force rebuilds",
                  file=sys.stderr)
            return existing
        _converter(config)  # loads magenta before forking, so workers start warm
        jobs = [FileJob(row, data_dir, window_mode, config, exact, drums) for row in rows]
        about = {"source": str(source) if files.is_url(source) else os.path.basename(os.path.normpath(str(source)))}
        if is_corpus:
            chosen = sum(r["split_by"] == "split.csv" for r in rows)
            about["corpus"] = {"split_ratios": list(corpus.parse_ratios(split_ratios)),
                               "split_csv": os.path.basename(split_csv or corpus.SPLIT_CSV) if chosen else None,
                               "files_from_split_csv": chosen}
        about.update(drum_map=os.path.basename(drum_map) if drum_map else None, drum_channel=drum_channel,
                     runner=runner, inputs=inputs)
        run = Run(rows, jobs, plan(rows, num_shards), config, num_shards, workers or os.cpu_count() or 1, progress)
        produce = beam_producer(run, options) if runner == "beam" else (lambda staging: local_outputs(run, staging))
        return write_outputs(out_dir, produce, run, window_mode, about, started)


def check_settings(workers, max_files, num_shards, runner, beam_options, window_mode):
    """One line for a bad setting, before any work; the Beam pipeline options (None for the local runner)."""
    for name, value in (("workers", workers), ("max_files", max_files), ("shards", num_shards)):
        if value is not None and not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            raise RequestError(f"--{name} is {value!r}; it must be a whole number >= 1")
    if window_mode not in ("tfds", "magenta"):
        raise RequestError(f"unknown window_mode '{window_mode}' (tfds or magenta)")
    if runner not in ("local", "beam"):
        raise RequestError(f"--runner is {runner!r}; it must be local or beam")
    if runner != "beam":
        if beam_options:
            raise RequestError("--beam_options is for --runner beam")
        return None
    from groovae import beam_pipeline
    return beam_pipeline.pipeline_options(beam_options, workers or os.cpu_count() or 1)


Run = collections.namedtuple("Run", "rows jobs slots config num_shards workers progress")
Run.__doc__ = """One preprocess run's files (rows, their FileJobs and Slots) and how to run them."""


def local_outputs(run, staging):
    """(file summaries, group records): the process pool's results, each group written once its last file is in.

    Without shards a group is a whole split and files go longest first (none left running alone at the end);
    with shards they go group by group, so that one shard's results are held at a time, not the corpus's."""
    slots = run.slots
    if run.num_shards:
        order = sorted(range(len(slots)), key=lambda k: (SPLITS.index(slots[k].split), slots[k].shard, slots[k].index))
    else:
        order = sorted(range(len(slots)), key=lambda k: -_file_size(run.jobs[k].data_dir, run.jobs[k].row))
    left = collections.Counter((slot.split, slot.shard) for slot in slots)
    held, summaries, groups = collections.defaultdict(dict), [None] * len(slots), {}
    for k, result in convert_files(run.jobs, order, run.workers, run.progress):
        key = (slots[k].split, slots[k].shard)
        summaries[k] = file_summary(result)
        held[key][slots[k].index] = result
        left[key] -= 1
        if not left[key]:
            results = held.pop(key)
            groups[key] = write_group(staging, run.config, *key, run.num_shards, [results[i] for i in sorted(results)])
    for key in groups_of(run.num_shards):  # groups no file fell into: empty outputs
        if key not in groups:
            groups[key] = write_group(staging, run.config, *key, run.num_shards, [])
    return summaries, [groups[key] for key in groups_of(run.num_shards)]


def beam_producer(run, options):
    """produce(staging) for write_outputs: the Beam pipeline's outputs, plus the empty groups it had no file for."""
    def produce(staging):
        from groovae import beam_pipeline
        summaries, groups = beam_pipeline.run(run.jobs, run.slots, staging, process_file, write_group, file_summary,
                                              run.config, run.num_shards, options)
        written = {(g["split"], g["shard"]) for g in groups}
        for split, shard in groups_of(run.num_shards):  # groups no file fell into: empty outputs, as the pool's
            if (split, shard) not in written:
                groups.append(write_group(staging, run.config, split, shard, run.num_shards, []))
        return summaries, groups
    return produce


def write_outputs(out_dir, produce, run, window_mode, about, started):
    """Writes the outputs ``produce(staging)`` makes (returning the files' summaries and the groups' records),
    then the shard manifest and report.json (with ``about``: source, corpus, settings), into ``out_dir``, all of
    them or none: a staging folder then replaces ``out_dir`` whole.  Returns the report."""
    with files.atomic_directory(out_dir, carry_over=True) as staging:
        summaries, groups = produce(staging)
        check_accounted(run.rows, summaries, groups, f"preprocess ({about['runner']} runner)")
        order = {(row["split"], row["id"]): k for k, row in enumerate(run.rows)}
        summaries.sort(key=lambda s: order[(s["split"], s["id"])])  # the report lists files in input order
        if run.num_shards:
            shard_manifest(staging, groups, run.num_shards)
        report = {**make_report(summaries, split_stats(groups), window_mode, time.time() - started), **about}
        report["warnings"] = preprocess_report.empty_split_warnings(report)
        files.atomic_write(os.path.join(staging, "report.json"),
                           lambda f: f.write(json.dumps(report, indent=1)), mode="w")
    return report


def source_rows(source, cache_dir, allow_unverified, progress, split_ratios=None, split_csv=None):
    """(data folder, rows to convert, whether it is a corpus of own MIDI): the GMD's info.csv rows, or the
    corpus's files with their splits."""
    corpus_root = corpus.find_corpus(source, cache_dir)
    if corpus_root is not None:
        return corpus_root, corpus.corpus_rows(corpus_root, split_ratios, split_csv), True
    if split_ratios is not None or split_csv is not None:
        raise RequestError(f"{source}: --split_ratios/--split_csv are for a folder of MIDI files; "
                           "the Groove MIDI Dataset keeps its own split (info.csv)")
    data_dir = get_data(source, cache_dir, allow_unverified, progress)
    return data_dir, read_info(data_dir), False


def convert_files(jobs, order, workers, progress):
    """Yields (k, process_file(jobs[k])) for k in ``order``, in that order."""
    # The result thread unpickles every file's arrays; with the cyclic GC scanning
    # TF's huge heap on each allocation burst it cannot keep up and the workers
    # stall on a full pipe (measured: 1.1 cores busy instead of 2).
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield from zip(order, _run_jobs([jobs[k] for k in order], workers, progress))
    finally:
        gc.enable()
        gc.unfreeze()


def input_fingerprint(data_dir, rows, window_mode, config, exact, drums=None, split_csv=None, num_shards=None):
    """What the outputs depend on: the data's bytes, splits, drum rule, settings and the code that cuts windows."""
    from groovae.configs import config_path
    data_hash = hashlib.sha256()
    for path in [os.path.join(data_dir, "info.csv")] + [os.path.join(data_dir, r["midi_filename"]) for r in rows]:
        data_hash.update(os.path.relpath(path, data_dir).encode() + b"\0")
        if os.path.isfile(path):
            data_hash.update(files.sha256_of(path).encode())
    for row in rows:  # a corpus's split comes from settings, not from a file hashed above
        data_hash.update(f"{row['midi_filename']}\t{row['split']}\n".encode())
    code_hash = hashlib.sha256()
    for path in (__file__, preprocess_report.__file__, data.__file__, gmd.__file__, corpus.__file__, windows.__file__,
                 preprocess_outputs.__file__, shards.__file__, config_path(config)):
        code_hash.update(files.sha256_of(path).encode())
    return {"data_sha256": data_hash.hexdigest(), "files": len(rows), "window_mode": window_mode,
            "config": config, "exact": bool(exact), "code_sha256": code_hash.hexdigest(),
            **data.drums_record(**(drums or {})), **({"shards": num_shards} if num_shards else {})}


def up_to_date_report(out_dir, inputs):
    """The report of outputs in ``out_dir`` made from ``inputs``, or None if any differs or is missing."""
    if not all(os.path.isfile(os.path.join(out_dir, name)) for name in output_names({"inputs": inputs})):
        return None
    try:
        with open(os.path.join(out_dir, "report.json")) as f:
            report = json.load(f)
    except (OSError, ValueError):
        return None
    return report if report.get("inputs") == inputs else None


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: python -m groovae preprocess ...")
