"""Command line of the your-beat commands: ``groovae humanize``, ``groovae drumify``, ``groovae evaluate-beat``.

Thin over groovae.beat and groovae.beat_eval, like groovae.cli, which adds these to its parser and hands
over its shared pieces (the drum options, the listening page's refresh), so this module imports no CLI.
"""
import os
import sys



def _your_beat(args, mode):
    from groovae import beat, checkpoints, data, runs
    from groovae.model import GrooveModel
    spec = args.checkpoint or "private"  # the models trained here (checkpoints/CONFIG): there is no public one
    committed = spec == "private" and not args.run_dir  # then the config names which committed model
    prefix, config, hparams = runs.resolve_model(spec, args.run_dir, args.config or (beat.MODES[mode] if committed
                                                                                     else None),
                                                 args.hparams or None, progress=False)
    drums = data.drum_options(args.drum_map, args.drum_channel)
    entry = beat.beat_run(mode, GrooveModel(config, prefix, hparams or None), args.beat, args.output_dir,
                          n=args.n, temperature=args.temperature, seed=args.seed, like=getattr(args, "like", None),
                          window=args.window, source=checkpoints.requested_source(spec), wav=not args.no_wav,
                          png=not args.no_png, **drums)
    for name in entry["files"]:
        print(os.path.join(args.output_dir, name))
    _shared["refresh_page"](args.output_dir, mode)


def _humanize(args):
    if args.like and args.keep_hits:
        from groovae.errors import RequestError
        raise RequestError("--keep_hits draws feels of its own; --like takes the reference's (and keeps every hit "
                           "too): one of the two")
    _your_beat(args, "transfer" if args.like or args.keep_hits else "humanize")  # the hits-as-controls model


def _drumify(args):
    _your_beat(args, "drumify")


def add_your_beat(sub):
    for name, run, help_text, what in (
            ("humanize", _humanize, "your beat with a drummer's velocities and micro-timing: N feels (every hit "
                                    "kept with --keep_hits), or the feel of a reference performance (--like)",
             "BEAT.mid: a 4/4 drum beat, 4 bars or more"),
            ("drumify", _drumify, "any rhythm (a tapped line, a bassline, one drum; any channel or pitch) -> a drum "
                                  "performance", "RHYTHM.mid: 4/4, 4 bars or more; every onset is a tap")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("beat", help=what)
        p.add_argument("--output_dir", required=True)
        if name == "humanize":
            p.add_argument("--like", help="a drum performance whose feel to put on the beat's hits (hits-as-controls "
                                          "model, groovae_4bar_hits_control)")
            p.add_argument("--keep_hits", action="store_true",
                           help="N feels that keep every hit of the beat (the hits-as-controls model, feels from its "
                                "prior) rather than the humanize model's, which plays its own hits")
        p.add_argument("--n", type=int, default=4, help="how many performances (not with --like)")
        p.add_argument("--temperature", type=float, default=0.5)
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--window", type=int, default=None, help="only this 4-bar window of a longer beat")
        p.add_argument("--checkpoint", help="default 'private': the model committed in checkpoints/ (or newest in "
                                            "--run_dir); a run dir, .tar or prefix")
        p.add_argument("--run_dir", help="a training run of the model")
        p.add_argument("--config", default=None, help="only for a checkpoint without run.json")
        p.add_argument("--hparams", default="", help="only for a checkpoint without run.json")
        _shared["drum_options"](p)
        p.add_argument("--no_wav", action="store_true")
        p.add_argument("--no_png", action="store_true")
        p.set_defaults(run=run)


def _evaluate_beat(args):
    from groovae import beat, beat_eval, runs
    from groovae.errors import RequestError
    data_dirs = _pairs(args.data, "--data")
    specs = _pairs(args.model or [], "--model")
    unknown = sorted((set(data_dirs) | set(specs)) - set(beat.MODES))
    if unknown:
        raise RequestError(f"unknown mode {unknown[0]}; modes: {', '.join(beat.MODES)}")
    models = {}
    for mode in data_dirs:
        spec = specs.get(mode, "private")
        prefix, config, hparams = runs.resolve_model(spec, None, beat.MODES[mode] if spec == "private" else None,
                                                     progress=False)
        models[mode] = (config, prefix, hparams or None)
    results = beat_eval.evaluate_your_beat(models, data_dirs, args.max_windows, args.seed,
                                           log=lambda message: print(message, file=sys.stderr))
    command = " ".join(["groovae evaluate-beat --data", *_relative(args.data)]
                       + (["--model", *_relative(args.model)] if args.model else [])
                       + ([f"--max_windows {args.max_windows}"] if args.max_windows else [])
                       + ([f"--seed {args.seed}"] if args.seed else [])
                       + [f"--output_dir {_relative_path(args.output_dir)}"])
    from groovae import report
    from groovae.errors import write_errors
    with write_errors(report.REPORT_KEPT):
        print(beat_eval.write_beat_report(results, args.output_dir, command))


def _relative_path(path):
    """An absolute path relative to the working directory: a report names no folder of the machine that made it,
    and its command still runs from where it ran."""
    return os.path.relpath(path) if os.path.isabs(path) else path


def _relative(items):
    """MODE=PATH items, their paths as _relative_path makes them."""
    return [f"{mode}={_relative_path(path)}" for mode, path in (item.split("=", 1) for item in items)]


def _pairs(items, flag):
    from groovae.errors import RequestError
    pairs = dict(item.split("=", 1) for item in items if "=" in item)
    if len(pairs) != len(items):
        raise RequestError(f"{flag} takes MODE=VALUE items, got {' '.join(items)}")
    return pairs


def add_evaluate_beat(sub):
    p = sub.add_parser("evaluate-beat", help="the your-beat models on the test split against the drummers and "
                                             "baselines -> report.md")
    p.add_argument("--data", nargs="+", required=True, metavar="MODE=DIR",
                   help="each mode's preprocess dir (its config's tensors), e.g. humanize=data/gmd_humanize "
                        "transfer=data/gmd_hits_control drumify=data/gmd_tap2drum")
    p.add_argument("--model", nargs="*", metavar="MODE=CHECKPOINT",
                   help="default 'private' (the committed model of the mode's config); a run dir or prefix")
    p.add_argument("--max_windows", type=int, default=None, help="the first N test windows (quick runs)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--output_dir", required=True)
    p.set_defaults(run=_evaluate_beat)


_shared = {}


def add_commands(sub, drum_options, refresh_page):
    _shared.update(drum_options=drum_options, refresh_page=refresh_page)
    add_your_beat(sub)
    add_evaluate_beat(sub)
