"""Command line: ``groovae {preprocess,train,summary,generate,humanize,drumify,regenerate,evaluate,windows,listen,export,lab,fit-prior}``.

One small function per command over library calls; each command's options
are declared beside it.  Expected failures (GroovaeError) print one line and
exit 2; anything else is a bug and keeps its traceback.
"""
import argparse
import json
import os
import sys

from groovae.decoding import DECODINGS
from groovae.prior import PRIORS


# ---------------------------------------------------------------- preprocess

def _preprocess(args):
    from groovae import gmd, preprocess, preprocess_report
    if args.tfds:
        builder = gmd.build_tfds(args.source, cache_dir=args.cache_dir,
                                        allow_unverified=args.allow_unverified)
        print(json.dumps({"tfds": "groove/4bar-midionly", "data_dir": builder.data_dir,
                          "splits": {k: v.num_examples for k, v in builder.info.splits.items()}}))
        return
    report = preprocess.preprocess(args.source, args.output_dir, window_mode=args.window_mode,
                                   config=args.config, workers=args.workers,
                                   allow_unverified=args.allow_unverified, cache_dir=args.cache_dir,
                                   max_files=args.max_files, exact=args.exact, force=args.force,
                                   split_ratios=args.split_ratios, split_csv=args.split_csv,
                                   drum_map=args.drum_map, drum_channel=args.drum_channel, runner=args.runner,
                                   num_shards=args.shards, beam_options=args.beam_options)
    print(preprocess_report.format_report(report), file=sys.stderr)
    print(preprocess_report.main_report_line(report, args.output_dir))


def _add_preprocess(sub):
    p = sub.add_parser("preprocess", help="Groove MIDI Dataset or a folder of drum MIDI -> split NoteSequences + "
                                          "4-bar window tensors")
    p.add_argument("--source", default=None,
                   help="GMD zip URL (http(s)/file://), local zip or extracted folder (default: the official URL); "
                        "or a folder or zip of your own .mid files (no info.csv)")
    p.add_argument("--output_dir", default="data/gmd",
                   help="gets {train,validation,test}.tfrecord/.npz (or shards) and report.json")
    p.add_argument("--window_mode", choices=("tfds", "magenta"), default="tfds",
                   help="tfds: 4-bar windows, 1-bar hop (as the official model); "
                        "magenta: converter on whole files, non-overlapping")
    p.add_argument("--config", default="groovae_4bar", help="whose data converter makes the tensors")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--allow_unverified", action="store_true",
                   help="accept an archive whose size/sha256 differ from the official one")
    p.add_argument("--tfds", action="store_true",
                   help="instead, build tfds groove/4bar-midionly offline from the zip (slow)")
    p.add_argument("--cache_dir", default=None, help="downloads and extracted data (default ~/.cache/groovae)")
    p.add_argument("--max_files", type=int, default=None, help="first n rows of info.csv only (quick runs)")
    p.add_argument("--exact", action="store_true",
                   help="cut windows by the real (slow) MIDI round trip tfds uses")
    p.add_argument("--force", action="store_true",
                   help="rebuild even if the outputs were made from the same data, settings and code")
    p.add_argument("--split_ratios", default=None, metavar="TRAIN,VALIDATION,TEST",
                   help="own MIDI: split fractions by a hash of each file's path (default 0.8,0.1,0.1)")
    p.add_argument("--split_csv", default=None,
                   help="own MIDI: a file,split CSV choosing files' splits (default: split.csv in the folder)")
    drum_options(p)
    p.add_argument("--runner", choices=("local", "beam"), default="local",
                   help="local: a process pool (--workers); beam: an Apache Beam pipeline (pip install '.[beam]'), "
                        "on this machine unless --beam_options names another runner (see README: Bigger corpora)")
    p.add_argument("--beam_options", default=None, metavar="OPTIONS",
                   help="standard Beam pipeline options for --runner beam, given with '=' "
                        "(--beam_options=\"--runner=DataflowRunner --project=...\"); default: Beam's FnApiRunner here, "
                        "--workers processes")
    p.add_argument("--shards", type=int, default=None, metavar="N",
                   help="write each split's windows as N TFRecord shards + shards.json (train streams them) "
                        "instead of one .npz")
    p.set_defaults(run=_preprocess)


def drum_options(p):
    """--drum_map and --drum_channel: which notes of a MIDI file are drums (preprocess, generate's inputs, your beat)."""
    p.add_argument("--drum_map", default=None,
                   help="CSV of pitch,class rows mapping your kit's pitches onto the 9 drum classes "
                        "(overrides the default map for the pitches it lists; see README)")
    p.add_argument("--drum_channel", type=int, default=None,
                   help="MIDI channel (1-16) whose notes are drums too, besides channel 10")


# ---------------------------------------------------------------- train, summary

def _train(args):
    from groovae import train
    result = train.train(args.config, args.data, args.run_dir, args.num_steps, hparams=args.hparams,
                         seed=args.seed, validation_path=args.validation, validate_every=args.validate_every,
                         checkpoint_every_secs=args.checkpoint_every_secs, precision=args.precision,
                         progress=not args.no_progress, init_from=args.init_from, public_url=args.public_url,
                         cache_dir=args.cache_dir)
    print(json.dumps(result))


def _add_train(sub):
    p = sub.add_parser("train", help="train a config on window tensors")
    p.add_argument("--config", default="groovae_4bar")
    p.add_argument("--data", required=True,
                   help="preprocess output dir (train.npz, validation.npz) or a tensor .npz")
    p.add_argument("--validation", help="validation tensors (default: validation.npz beside train.npz)")
    p.add_argument("--run_dir", required=True, help="checkpoints and logs; rerun to resume")
    p.add_argument("--num_steps", type=int, required=True, help="global step to train to")
    p.add_argument("--hparams", default="", help="overrides, e.g. 'batch_size=64,learning_rate=3e-4'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--validate_every", type=int, default=250, help="steps between validations")
    p.add_argument("--checkpoint_every_secs", type=float, default=180)
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 mixed precision on CPUs with AVX512-BF16/AMX (where it is faster), else fp32")
    p.add_argument("--bf16", dest="precision", action="store_const", const="bf16",
                   help="same as --precision bf16 (trains in fp32, saying so, on CPUs without bf16 units)")
    p.add_argument("--no_progress", action="store_true")
    p.add_argument("--init_from", default=None,
                   help="start a new run from a checkpoint's weights (fresh optimizer, step 0) to fine-tune: "
                        "'public' (Google's groovae_4bar), 'private' (the committed model of --config), a run dir, "
                        "a checkpoint .tar or prefix; weights of the same name and shape are taken, the rest initialised")
    _download_options(p)
    p.set_defaults(run=_train)


def _summary(args):
    from groovae import files, runs
    text = json.dumps(runs.summarize_run(args.run_dir), indent=1) + "\n"
    if args.output:
        files.atomic_write(args.output, lambda f: f.write(text), mode="w")
    print(text, end="")


def _add_summary(sub):
    p = sub.add_parser("summary", help="a training run's steps, hours and final losses as JSON")
    p.add_argument("--run_dir", required=True)
    p.add_argument("--output", help="also write the JSON here")
    p.set_defaults(run=_summary)


# ---------------------------------------------------------------- generate, regenerate, windows, listen

def _resolve_model(args):
    from groovae import runs
    return runs.resolve_model(args.checkpoint, args.run_dir, args.config, args.hparams or None, args.public_url,
                              args.cache_dir, progress=not getattr(args, "no_progress", False))


def _generate(args):
    from groovae import checkpoints, data, generate
    drums = data.drum_options(args.drum_map, args.drum_channel)  # bad flags: one line before the model loads
    prefix, config, hparams = _resolve_model(args)
    spec = args.checkpoint or ("private" if args.run_dir else "public")
    entry = generate.generate(config, prefix, args.output_dir, args.mode, n=args.n,
                              temperature=args.temperature, seed=args.seed, inputs=args.inputs,
                              windows=(args.window + [None, None])[:2], steps=args.steps, wav=not args.no_wav,
                              png=not args.no_png, source=checkpoints.requested_source(spec, args.public_url),
                              hparams=hparams or None, prior=args.prior, decoding=args.decoding, **drums)
    for name in entry["files"]:
        print(os.path.join(args.output_dir, name))
    refresh_page(args.output_dir, "generate")


def _add_generate(sub):
    p = sub.add_parser("generate", help="drum grooves as MIDI, WAV and PNG (+ manifest.json)")
    _checkpoint_options(p)
    p.add_argument("--mode", choices=["sample", "interpolate", "reconstruct"], default="sample")
    p.add_argument("--inputs", nargs="*", default=[], help="drum MIDI file(s): 2 to interpolate, 1 to reconstruct")
    p.add_argument("--window", type=int, nargs="*", default=[], help="4-bar window index per input file")
    p.add_argument("--steps", type=int, default=5, help="interpolation steps")
    drum_options(p)
    p.add_argument("--output_dir", required=True)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--prior", choices=PRIORS, default="standard", help="sample z from N(0, I) "
                   "(magenta's) or from the checkpoint's data prior (groovae fit-prior); temperature scales its spread")
    _decoding_option(p)
    p.add_argument("--no_wav", action="store_true", help="skip audio (needs fluidsynth + a GM SoundFont)")
    p.add_argument("--no_png", action="store_true")
    _download_options(p)
    p.add_argument("--no_progress", action="store_true")
    p.set_defaults(run=_generate)


def _decoding_option(p, evaluate=False):
    how = dict(nargs="+", default=["magenta"]) if evaluate else dict(default="magenta")
    p.add_argument("--decodings" if evaluate else "--decoding", choices=DECODINGS, **how, help="velocities and timing "
                   "as magenta's decoder outputs them (soft, near the grid) or read given the hit (given_hit)")


def refresh_page(folder, command):
    from groovae import listen
    page = listen.refresh_page_above(folder)  # a listening page showing this folder stays current
    if page:
        print(f"groovae {command}: refreshed {page}", file=sys.stderr)


def _regenerate(args):
    from groovae import regenerate
    from groovae.errors import GenerateError
    lines, differ, total = regenerate.regenerate_manifest(args.manifest, args.output_dir, args.checkpoint,
                                                         args.public_url, args.cache_dir)
    for line in lines:
        print(line)
    if differ:
        raise GenerateError(f"{args.manifest}: {differ} of {total} runs did not regenerate bit for bit")


def _add_regenerate(sub):
    p = sub.add_parser("regenerate", help="rebuild every run of a manifest.json and check it bit for bit")
    p.add_argument("manifest", help="a manifest.json written by generate")
    p.add_argument("--output_dir", required=True, help="where the rebuilt files go")
    p.add_argument("--checkpoint", help="where the checkpoint is, if not where the manifest says (sha256 checked)")
    _download_options(p)
    p.set_defaults(run=_regenerate)


def _windows(args):
    from groovae import generate
    path = os.path.join(args.data, f"{args.split}.npz") if os.path.isdir(args.data) else args.data
    for name in generate.export_windows(args.config, path, args.output_dir, n=args.n, seed=args.seed,
                                        indices=args.indices or None, wav=not args.no_wav, png=not args.no_png):
        print(os.path.join(args.output_dir, name))
    refresh_page(args.output_dir, "windows")


def _add_windows(sub):
    p = sub.add_parser("windows", help="dataset windows (e.g. test-split grooves) as drum MIDI, WAV and PNG")
    p.add_argument("--data", required=True, help="a preprocess output dir or a tensor .npz")
    p.add_argument("--split", default="test", help="which split's tensors, when --data is a dir")
    p.add_argument("--config", default="groovae_4bar", help="whose data converter turns tensors into MIDI")
    p.add_argument("--n", type=int, default=5, help="how many windows, from distinct files (with --seed)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--indices", type=int, nargs="*", default=[], help="these windows instead")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--no_wav", action="store_true")
    p.add_argument("--no_png", action="store_true")
    p.set_defaults(run=_windows)


def _listen(args):
    from groovae import listen
    print(listen.write_page(args.folder, args.title))


def _add_listen(sub):
    p = sub.add_parser("listen", help="a static listening page (index.html) for a folder of generated grooves")
    p.add_argument("folder", help="e.g. samples/: every subfolder with a manifest.json or MIDI files is shown")
    p.add_argument("--title", default="groovae samples")
    p.set_defaults(run=_listen)


# ---------------------------------------------------------------- evaluate

def _evaluate(args):
    from groovae import evaluate, report, runs
    test_path, train_path = evaluate.data_paths(args.data, args.test, args.train)
    requests = ([evaluate.parse_compare(item) for item in args.compare] if args.compare
                else [(None, args.config, args.checkpoint)])
    models = []
    for label, config, spec in requests:
        prefix, config, hparams = runs.resolve_model(spec, args.run_dir, config, args.hparams or None,
                                                     args.public_url, args.cache_dir, not args.no_progress)
        models.append((label or config, config, prefix, hparams))
    evaluate.check_labels([label for label, _, _, _ in models])
    results, curves = [], {}
    for label, config, prefix, hparams in models:
        print(f"groovae evaluate: {label}: {config} @ {prefix}", file=sys.stderr)
        evaluated = evaluate.evaluate_checkpoint(
            config, prefix, test_path, train_path, n_samples=args.n_samples, temperatures=args.temperatures,
            seed=args.seed, batch_size=args.batch_size, hparams=hparams or None, label=label,
            log=None if args.no_progress else (lambda message: print(message, file=sys.stderr)), priors=args.priors,
            decodings=args.decodings)
        results += evaluated
        curves[label] = runs.curve_of(prefix)  # a checkpoint in a run dir: its curve to its step, once
    from groovae.errors import write_errors
    with write_errors(report.REPORT_KEPT):
        if args.compare or len(results) > 1:
            title = args.title if args.compare else "Samples by prior and decoding"
            path = report.write_comparison_report(results, args.output_dir, title=title, curves=curves)
        else:
            path = report.write_report(results[0], args.output_dir)
    print(path)


def _add_evaluate(sub):
    p = sub.add_parser("evaluate", help="reconstruction, sample and latent metrics of checkpoints -> report.md")
    _checkpoint_options(p)
    p.add_argument("--compare", nargs="+", metavar="[LABEL=][CONFIG:]CHECKPOINT",
                   help="evaluate several checkpoints into one comparison report, e.g. flat=runs/flat hier=runs/hier "
                        "(a run's config comes from its run.json)")
    p.add_argument("--title", default="Flat vs hierarchical decoder", help="title of a --compare report")
    p.add_argument("--data", help="preprocess output dir: test.npz (and train.npz for the novelty check)")
    p.add_argument("--test", help="test tensor .npz (overrides --data's)")
    p.add_argument("--train", help="training tensor .npz for the novelty check (overrides --data's)")
    p.add_argument("--output_dir", required=True, help="gets report.md, PNG plots and results.json")
    p.add_argument("--n_samples", type=int, default=256, help="samples per temperature (0: none)")
    p.add_argument("--temperatures", type=float, nargs="+", default=[0.3, 0.5, 1.0, 1.5])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--priors", nargs="+", choices=PRIORS, default=["standard"],
                   help="sample z from N(0, I) and/or the checkpoint's data prior (groovae fit-prior): one report "
                        "row per model and prior")
    _decoding_option(p, evaluate=True)
    p.add_argument("--batch_size", type=int, default=256, help="windows per teacher-forced batch")
    _download_options(p)
    p.add_argument("--no_progress", action="store_true")
    p.set_defaults(run=_evaluate)


# ---------------------------------------------------------------- export

# ---------------------------------------------------------------- shared options

def _checkpoint_options(p):
    p.add_argument("--checkpoint", help="'public' (Google's groovae_4bar), 'private' (newest in --run_dir, or the "
                   "model committed in checkpoints/CONFIG), a run dir, a checkpoint .tar or prefix; default: private "
                   "if --run_dir else public")
    p.add_argument("--run_dir", help="training run dir (for --checkpoint private)")
    p.add_argument("--config", default=None, help="only for a checkpoint without run.json (the public one: "
                   "groovae_4bar, the default); a run's own comes from its run.json")
    p.add_argument("--hparams", default="", help="only for a checkpoint without run.json: its hparams overrides")


def _download_options(p):
    p.add_argument("--public_url", default=None, help="where the public checkpoint tar is (default: Magenta's bucket)")
    p.add_argument("--cache_dir", default=None, help="download/extract cache (default ~/.cache/groovae)")


def _add_models(sub):
    from groovae import cli_models  # its commands: export, lab, fit-prior
    cli_models.add_commands(sub, _resolve_model, _download_options)


def _add_your_beat(sub):
    from groovae import cli_beat  # its commands: humanize, drumify, evaluate-beat
    cli_beat.add_commands(sub, drum_options, refresh_page)


COMMANDS = (_add_preprocess, _add_train, _add_summary, _add_generate, _add_your_beat, _add_regenerate, _add_evaluate,
            _add_windows, _add_listen, _add_models)


def build_parser():
    parser = argparse.ArgumentParser(prog="groovae", description="groovae: GrooVAE 4-bar drum grooves "
                                                                 "(preprocess -> train -> generate)")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def command_names():
    return [action for action in build_parser()._subparsers._group_actions[0].choices]


# Commands whose --output_dir gets a run's outputs whole or not at all (staging, then a swap or a manifest commit).
WRITES_WHOLE = ("preprocess", "generate", "humanize", "drumify", "windows", "export")


def interrupted_line(args, interrupt):
    """What an interrupted command left: the folder as before, or (the interrupt waited for it) this run's outputs."""
    folder = getattr(args, "output_dir", None)
    if args.command not in WRITES_WHOLE or not folder or getattr(args, "tfds", False):
        return "interrupted"  # train says itself where its steps went
    if getattr(interrupt, "committed", False):
        return f"interrupted; {folder} has this run's outputs, whole (they were being put in place)"
    return f"interrupted; nothing written, {folder} as before"


def main(argv=None):
    args = build_parser().parse_args(argv)
    from groovae.errors import GroovaeError, Terminated, terminate_as_interrupt, write_failure
    try:
        with terminate_as_interrupt():
            if getattr(args, "output_dir", None):  # before any work: a file where the folder should go
                from groovae import files
                files.check_folder(args.output_dir)
            args.run(args)
    except GroovaeError as e:  # expected: one line; anything else is a bug and keeps its traceback
        print(f"groovae {args.command}: error: {e}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as e:  # Ctrl-C or SIGTERM: staging removed; the shell's code for it
        print(f"groovae {args.command}: {interrupted_line(args, e)}", file=sys.stderr)
        return getattr(e, "exit_code", 130)
    except Exception as e:  # a failed write the stage did not name (the stages say what they kept)
        failure = write_failure(e)
        if failure is None:
            raise
        print(f"groovae {args.command}: error: {failure[0]}: cannot write ({failure[1]})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
