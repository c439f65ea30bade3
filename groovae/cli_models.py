"""Command line of the commands that take a trained model further: ``groovae export``, ``groovae lab``,
``groovae fit-prior``.

Thin over groovae.export, export_js, lab and fit_prior; groovae.cli adds these to its parser and hands over
its shared pieces (how a model is asked for, the download options), so this module imports no CLI.
"""
_shared = {}


def _export(args):
    prefix, config, hparams = _shared["resolve_model"](args)
    spec = args.checkpoint or ("private" if args.run_dir else "public")
    from groovae.checkpoints import requested_source
    source = requested_source(spec, args.public_url) if spec == "public" else None  # 'public', or the URL given
    if args.format == "magenta-js":
        from groovae import export_js
        quantize = None if args.quantize == "none" else int(args.quantize)
        print(export_js.export_magenta_js(prefix, args.output_dir, config, hparams, quantize, source))
    else:
        from groovae import export
        print(export.export_checkpoint(prefix, args.output_dir, config, hparams, source=source))


def _add_export(sub):
    p = sub.add_parser("export", help="a trained model out of Python's run dir: a weights-only checkpoint folder "
                                      "(to commit or share) or a magenta.js checkpoint (the browser)")
    p.add_argument("checkpoint", nargs="?", help="'public', 'private' (newest in --run_dir, or the committed model "
                   "of --config), a run dir, a checkpoint .tar or prefix")
    p.add_argument("--format", choices=("checkpoint", "magenta-js"), default="checkpoint",
                   help="checkpoint: TF weights only, with run.json (checkpoints/); magenta-js: config.json + "
                        "weights_manifest.json + shards, for @magenta/music's MusicVAE")
    p.add_argument("--quantize", choices=("8", "none"), default="8", help="magenta-js weights: 8-bit (as the hosted "
                   "magenta.js checkpoints) or float32")
    p.add_argument("--run_dir", help="training run dir (for 'private')")
    p.add_argument("--config", default=None, help="only for a checkpoint without run.json (default groovae_4bar)")
    p.add_argument("--hparams", default="", help="only for a checkpoint without run.json")
    p.add_argument("--output_dir", required=True, help="new folder (or an earlier export's, replaced whole)")
    _shared["download_options"](p)
    p.add_argument("--no_progress", action="store_true")
    p.set_defaults(run=_export)


def _fit_prior(args):
    from groovae import fit_prior
    prefix, config, hparams = _shared["resolve_model"](args)
    fit_prior.fit_checkpoint_prior(config, prefix, args.data, hparams or None, seed=args.seed)


def _add_fit_prior(sub):
    p = sub.add_parser("fit-prior", help="fit a data prior to the training windows' codes (beside the checkpoint), "
                                         "for generate --prior data")
    p.add_argument("checkpoint", nargs="?", help="as generate's --checkpoint")
    p.add_argument("--run_dir", help="training run dir (for 'private')")
    p.add_argument("--config", default=None, help="only for a checkpoint without run.json (default groovae_4bar)")
    p.add_argument("--hparams", default="", help="only for a checkpoint without run.json")
    p.add_argument("--data", required=True, help="the preprocess output dir of the model's config (train.npz, "
                                                 "validation.npz)")
    p.add_argument("--seed", type=int, default=0)
    _shared["download_options"](p)
    p.add_argument("--no_progress", action="store_true")
    p.set_defaults(run=_fit_prior)


def _lab(args):
    from groovae import lab
    print(lab.build_lab(args.exports, args.output_dir, args.magenta_js, args.title))


def _add_lab(sub):
    p = sub.add_parser("lab", help="a static page that samples, interpolates, humanizes and drumifies in the browser "
                                   "with magenta.js exports (groovae export --format magenta-js)")
    p.add_argument("exports", nargs="+", help="magenta.js export folders, each a model of the page")
    p.add_argument("--output_dir", required=True, help="new folder (or an earlier lab's, replaced whole)")
    p.add_argument("--magenta_js", help="a local dist/magentamusic.js of @magenta/music to put beside the page "
                                        "(offline use); default: the pinned CDN URL with its integrity hash")
    p.add_argument("--title", default="groovae lab")
    p.set_defaults(run=_lab)


def add_commands(sub, resolve_model, download_options):
    _shared.update(resolve_model=resolve_model, download_options=download_options)
    for add in (_add_export, _add_lab, _add_fit_prior):
        add(sub)
