"""Stage 1 as an Apache Beam pipeline: files -> NoteSequences -> windows -> tensors -> per-(split, shard) outputs.

``run`` is called by groovae.preprocess with the per-file converter
(preprocess.process_file) and the group writer
(preprocess_outputs.write_group), so that Beam and the process pool share
every fact of the conversion and of the output layout:

    Create(files with their slot) | Reshuffle | ParDo(convert one file)
        -> per-file summaries (report.json's rows)         -> text files
        -> GroupByKey((split, shard)) | ParDo(write group)  -> text files (the groups' records)

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
import shlex

from groovae.errors import PipelineError, RequestError

INSTALL = "apache-beam is not installed: pip install '.[beam]' (or bash scripts/setup.sh --beam)"
WORK = "_beam"  # inside the staging folder: the pipeline's per-file and per-group records


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
    try:
        import apache_beam  # noqa: F401
    except ImportError:
        raise RequestError(INSTALL) from None


def pipeline_options(text, workers):
    """Beam PipelineOptions: the local FnApiRunner with ``workers`` processes, overridden by ``text``'s options;
    RequestError naming an option Beam does not know."""
    words = split_flags(text)
    require_beam()
    from apache_beam.options.pipeline_options import PipelineOptions
    defaults = ["--runner=FnApiRunner", f"--direct_num_workers={workers}", "--default_sdk_harness_log_level=ERROR",
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


def _convert_dofn(convert):
    import apache_beam as beam

    class Convert(beam.DoFn):
        """One file: its result keyed by (split, shard) with its index in the split."""

        def setup(self):
            import groovae.compat  # noqa: F401  (shims before TF, in every worker)

        def process(self, element):
            slot, job = element
            yield (slot.split, slot.shard), (slot.index, convert(job))
    return Convert()


def _write_dofn(write, staging, config, num_shards):
    import apache_beam as beam

    class WriteGroup(beam.DoFn):
        """One (split, shard)'s files, in their order within the split, written by the shared group writer."""

        def process(self, element):
            (split, shard), items = element
            results = [result for _, result in sorted(items, key=lambda item: item[0])]
            yield write(staging, config, split, shard, num_shards, results)
    return WriteGroup()


def run(jobs, slots, staging, convert, write, summarize, config, num_shards, options):
    """Runs the pipeline over ``jobs`` (each with its Slot); returns (per-file summaries, group records) read
    back from ``staging``'s work folder, which is then removed."""
    import logging
    import apache_beam as beam
    logging.getLogger("apache_beam").setLevel(logging.ERROR)  # the console gets the report, not Beam's progress
    work = os.path.join(staging, WORK)
    os.makedirs(work, exist_ok=True)
    with beam.Pipeline(options=options) as p:
        results = (p | "files" >> beam.Create(list(zip(slots, jobs)), reshuffle=False)
                   | "spread" >> beam.Reshuffle()
                   | "convert" >> beam.ParDo(_convert_dofn(convert)))
        (results | "summarize" >> beam.Map(lambda kv: json.dumps(summarize(kv[1][1])))
         | "summaries" >> beam.io.WriteToText(os.path.join(work, "summaries"), file_name_suffix=".jsonl"))
        (results | "group" >> beam.GroupByKey()
         | "write" >> beam.ParDo(_write_dofn(write, staging, config, num_shards))
         | "records" >> beam.Map(json.dumps)
         | "groups" >> beam.io.WriteToText(os.path.join(work, "groups"), file_name_suffix=".jsonl"))
    summaries, groups = _read_lines(work, "summaries"), _read_lines(work, "groups")
    import shutil
    shutil.rmtree(work)
    return summaries, groups


def _read_lines(work, name):
    found = sorted(glob.glob(os.path.join(work, f"{name}-*.jsonl")))
    if not found:
        raise PipelineError(f"{work}: the pipeline wrote no {name} (did the workers see this folder?)")
    lines = []
    for path in found:
        with open(path) as f:
            lines += [json.loads(line) for line in f if line.strip()]
    return lines
