"""Stage 1 as an Apache Beam pipeline: files -> NoteSequences -> windows -> tensors -> per-(split, shard) outputs.

``run`` is called by groovae.preprocess with the per-file converter
(preprocess.process_file) and the group writer
(preprocess_outputs.write_group), so that Beam and the process pool share
every fact of the conversion and of the output layout:

    Create(files with their slot) | Reshuffle | ParDo(convert one file, spill its result to a file)
        -> per-file summaries (report.json's rows)                  -> text files
        -> GroupByKey((split, shard)) of spill paths | ParDo(write group)  -> text files (the groups' records)

The groups write into the run's staging folder (a path every worker must
reach: the local disk for the local runner, a shared mount on a cluster); the
launcher then reads the summaries and group records back, checks that every
input file is accounted for (converted, or reported with its reason; else one
line and nothing written), and writes the manifest and report.  Default
runner: Beam's FnApiRunner on this machine (``--direct_num_workers`` worker
processes); ``--beam_options`` takes any standard pipeline options
(``--runner=DataflowRunner --project=... --region=... --temp_location=gs://...``,
``--runner=FlinkRunner --flink_master=host:8081``, ``--runner=SparkRunner ...``).
"""
import glob
import json
import os
import re
import shlex

from groovae.errors import WRITE_ERRNOS, PipelineError, RequestError, Terminated, write_failure

INSTALL = "apache-beam is not installed: pip install '.[beam]' (or bash scripts/setup.sh --beam)"
WORK = "_beam"  # inside the staging folder: the pipeline's per-file and per-group records
# Under WORK: each file's converted result, written by the worker that converted it and read by its group's
# writer.  Only keys, paths and report rows go through the shuffle: Beam's local runner holds a shuffle's
# data in the launcher's memory (measured with the tensors in it: 18.3 GB peak for 20,000 files).
SPILL = "files"


def split_flags(text):
    """--beam_options' words (shell syntax); one line when it cannot be parsed (checked before Beam loads)."""
    try:
        words = shlex.split(text or "")
    except ValueError as e:
        raise RequestError(f"--beam_options {text!r}: cannot parse ({e})") from None
    for word in words:
        if not word.startswith("--") or word == "--":
            raise RequestError(f"--beam_options {text!r}: '{word}' is not a pipeline option (--name=value)")
    return words


def require_beam():
    import logging
    logging.disable(logging.WARNING)  # its import warns on the root logger about GCP clients it need not have
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        raise RequestError(INSTALL) from None
    finally:
        logging.disable(logging.NOTSET)


def pipeline_options(text, workers):
    """Beam PipelineOptions: the local FnApiRunner with ``workers`` processes, overridden by ``text``'s options;
    RequestError naming an option Beam does not know."""
    words = split_flags(text)
    require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions
    defaults = ["--runner=FnApiRunner", f"--direct_num_workers={workers}", "--default_sdk_harness_log_level=CRITICAL",
                f"--direct_running_mode={'multi_processing' if workers > 1 else 'in_memory'}"]
    known = set(PipelineOptions(defaults).get_all_options(retain_unknown_options=False))
    for word in words:
        name = word[2:].split("=", 1)[0].replace("-", "_")
        if name not in known:
            raise RequestError(f"--beam_options: unknown pipeline option --{name} (see `python -m "
                               f"apache_beam.examples.wordcount --help` for Beam's options)")
    try:
        options = PipelineOptions(defaults + words)
        options.get_all_options()
    except SystemExit:  # argparse's own error on a bad value, already printed by Beam's parser
        raise RequestError(f"--beam_options {text!r}: a bad value (see the line above)") from None
    return options


def _convert_dofn(convert, summarize, work):
    import apache_beam as beam

    class Convert(beam.DoFn):
        """One file: its result spilled to the work folder; what goes on is small: the (split, shard) key, its
        index in the split, the spill's path and the file's report row."""

        def setup(self):
            import groovae.compat  # noqa: F401  (shims before TF, in every worker)

        def process(self, element):
            slot, job = element
            result = convert(job)
            path = _spill(work, slot, result)
            yield (slot.split, slot.shard), (slot.index, path, json.dumps(summarize(result)))
    return Convert()


def _spill(work, slot, result):
    """Writes one file's result where its group's writer reads it (a retried bundle rewrites it whole)."""
    import pickle
    from groovae import files
    path = os.path.join(work, SPILL, f"{slot.split}-{slot.shard:05d}", f"{slot.index:08d}.pkl")
    files.atomic_write(path, lambda f: pickle.dump(result, f, protocol=pickle.HIGHEST_PROTOCOL))
    return path


def _unspill(path):
    import pickle
    with open(path, "rb") as f:
        return pickle.load(f)


def _write_dofn(write, staging, config, num_shards):
    import apache_beam as beam

    class WriteGroup(beam.DoFn):
        """One (split, shard)'s files, read back from their spills in their order within the split, written by
        the shared group writer."""

        def process(self, element):
            (split, shard), items = element
            paths = [path for _, path, _ in sorted(items, key=lambda item: item[0])]
            record = write(staging, config, split, shard, num_shards, [_unspill(p) for p in paths])
            for path in paths:
                os.remove(path)
            yield record
    return WriteGroup()


def run(jobs, slots, staging, convert, write, summarize, config, num_shards, options):
    """Runs the pipeline over ``jobs`` (each with its Slot); returns (per-file summaries, group records) read
    back from ``staging``'s work folder, which is then removed."""
    import logging
    import apache_beam as beam
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)  # the console gets the report or one line
    work = os.path.join(staging, WORK)
    os.makedirs(work, exist_ok=True)
    try:
        _interruptible(lambda: _pipeline(beam, options, jobs, slots, staging, work, convert, write, summarize, config,
                                         num_shards))
    except Exception as e:  # Beam re-raises a worker's error as a RuntimeError (in another process: as text)
        interrupt = re.search(r"\b(KeyboardInterrupt|Terminated)\b", f"{e!r} {e.__cause__!r}")
        if interrupt:  # Ctrl-C or SIGTERM met inside a DoFn (the in-process runner): an interrupt, not an error
            raise (KeyboardInterrupt() if interrupt.group(1) == "KeyboardInterrupt" else Terminated()) from None
        failure = _write_failure_in(e)
        if failure is not None:  # a full disk in a worker: preprocess's one line, as the process pool's
            raise failure from None
        raise
    summaries, groups = _read_lines(work, "summaries"), _read_lines(work, "groups")
    import shutil
    shutil.rmtree(work)
    return summaries, groups


def _interruptible(fn):
    """Runs ``fn`` in a thread while this thread waits for it, so that Ctrl-C and SIGTERM stop the run (Beam's
    multi-process runner would let it finish): the worker processes it started are ended, then the interrupt
    goes on (preprocess removes its staging)."""
    import threading
    import psutil
    outcome, before = {}, {p.pid for p in psutil.Process().children(recursive=True)}

    def target():
        try:
            fn()
        except BaseException as e:  # handed to the waiting thread
            outcome["error"] = e
    thread = threading.Thread(target=target, name="beam-pipeline", daemon=True)
    thread.start()
    try:
        while thread.is_alive():
            thread.join(0.2)
    except BaseException:
        threading.excepthook = lambda args: None  # Beam's threads lose their workers now: not worth a traceback
        started = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
        for process in started:
            process.terminate()
        psutil.wait_procs(started, timeout=5, callback=None)
        for process in started:
            if process.is_running():
                process.kill()
        thread.join(10)
        raise
    if "error" in outcome:
        raise outcome["error"]


def _local_runner(options):
    """Beam's FnApiRunner given the pipeline options, as Beam's DirectRunner makes it (its worker processes then
    read them: their log level), or None for another runner.  In multi-process mode its workers ignore Ctrl-C
    (the launcher alone stops the run, and ends them), as the process pool's do."""
    settings = options.get_all_options()
    if settings["runner"] != "FnApiRunner":
        return None
    import sys
    from apache_beam.portability.api import beam_provision_api_pb2
    from apache_beam.runners.portability.fn_api_runner import fn_runner
    from apache_beam.runners.portability.portable_runner import JobServiceHandle
    from apache_beam.transforms import environments
    environment = None
    if settings["direct_running_mode"] == "multi_processing":  # Beam's own command, behind a shell trap
        from apache_beam.options.pipeline_options import DirectOptions
        options.view_as(DirectOptions).direct_running_mode = "in_memory"  # else Beam replaces the environment
        environment = environments.SubprocessSDKEnvironment.from_command_string(
            f"trap '' INT; exec {shlex.quote(sys.executable)} -m apache_beam.runners.worker.sdk_worker_main")
    encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
    return fn_runner.FnApiRunner(default_environment=environment, provision_info=fn_runner.ExtendedProvisionInfo(
        beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)))


def _pipeline(beam, options, jobs, slots, staging, work, convert, write, summarize, config, num_shards):
    with beam.Pipeline(runner=_local_runner(options), options=options) as p:
        results = (p | "files" >> beam.Create(list(zip(slots, jobs)), reshuffle=False)
                   | "spread" >> beam.Reshuffle()
                   | "convert" >> beam.ParDo(_convert_dofn(convert, summarize, work)))
        (results | "summarize" >> beam.Map(lambda kv: kv[1][2])
         | "summaries" >> beam.io.WriteToText(os.path.join(work, "summaries"), file_name_suffix=".jsonl"))
        (results | "group" >> beam.GroupByKey()
         | "write" >> beam.ParDo(_write_dofn(write, staging, config, num_shards))
         | "records" >> beam.Map(json.dumps)
         | "groups" >> beam.io.WriteToText(os.path.join(work, "groups"), file_name_suffix=".jsonl"))


_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\] [^:\n]*: '([^'\n]*)'")  # OSError's text
_TF_TEXT = re.compile(r"(\S+); (" + "|".join(re.escape(os.strerror(code)) for code in WRITE_ERRNOS) + r")\b")


def _write_failure_in(error):
    """The OSError of a failed write (errors.WRITE_ERRNOS) that a Beam error carries, as an exception or in its
    text (TensorFlow's '<path>; No space left on device' too); None for any other failure."""
    cause = error
    while cause is not None:
        if write_failure(cause) is not None and isinstance(cause, OSError):
            return cause
        if write_failure(cause) is not None:  # TensorFlow's error: its own text below
            break
        cause = cause.__cause__ or cause.__context__
    text = str(error)
    found = _ERRNO_TEXT.search(text)
    if found and int(found.group(1)) in WRITE_ERRNOS:
        return OSError(int(found.group(1)), os.strerror(int(found.group(1))), found.group(2))
    found = _TF_TEXT.search(text)
    if found:
        code = next(c for c in WRITE_ERRNOS if os.strerror(c) == found.group(2))
        return OSError(code, found.group(2), found.group(1))
    return None


def _read_lines(work, name):
    found = sorted(glob.glob(os.path.join(work, f"{name}-*.jsonl")))
    if not found:
        raise PipelineError(f"{work}: the pipeline wrote no {name} (did the workers see this folder?)")
    lines = []
    for path in found:
        with open(path) as f:
            lines += [json.loads(line) for line in f if line.strip()]
    return lines
