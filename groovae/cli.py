"""Command line: ``groovae {preprocess,train,generate,evaluate}`` (thin over the package)."""
import argparse
import json
import sys


def _preprocess(args):
    from groovae import data
    from groovae.configs import load_config
    import glob, os
    converter = load_config(args.config).data_converter
    paths = sorted(glob.glob(os.path.join(args.source, "**", "*.mid*"), recursive=True))
    if not paths:
        raise data.DataError(f"{args.source}: no .mid files found")
    tensors, skipped = data.midi_files_to_tensors(paths, converter)
    data.save_tensors(args.output, tensors)
    for reason in skipped:
        print("skipped:", reason, file=sys.stderr)
    print(json.dumps({"files": len(paths), "skipped": len(skipped),
                      "windows": int(len(tensors["lengths"])), "output": args.output}))


def _train(args):
    from groovae import train
    result = train.train(args.config, args.data, args.run_dir, args.num_steps,
                         hparams=args.hparams, seed=args.seed, progress=not args.no_progress)
    print(json.dumps(result))


def _generate(args):
    from groovae import generate
    model = generate.load_model(args.config, args.checkpoint, batch_size=args.n)
    sequences = generate.sample(model, args.n, args.temperature, args.seed)
    for path in generate.write_midi(sequences, args.output_dir):
        print(path)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="groovae", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("preprocess", help="MIDI files -> 4-bar window tensors (.npz)")
    p.add_argument("--source", required=True, help="folder of drum MIDI files")
    p.add_argument("--output", required=True, help="output .npz")
    p.add_argument("--config", default="groovae_4bar")
    p.set_defaults(run=_preprocess)

    p = sub.add_parser("train", help="train a config on window tensors")
    p.add_argument("--config", default="groovae_4bar")
    p.add_argument("--data", required=True, help="training tensors (.npz from preprocess)")
    p.add_argument("--run_dir", required=True)
    p.add_argument("--num_steps", type=int, required=True)
    p.add_argument("--hparams", default="", help="overrides, e.g. 'batch_size=64,learning_rate=3e-4'")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no_progress", action="store_true")
    p.set_defaults(run=_train)

    p = sub.add_parser("generate", help="sample drum grooves as MIDI")
    p.add_argument("--config", default="groovae_4bar")
    p.add_argument("--checkpoint", required=True, help="run dir or checkpoint prefix")
    p.add_argument("--output_dir", required=True)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--temperature", type=float, default=0.5)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_generate)

    args = parser.parse_args(argv)
    import groovae  # noqa: F401  (compat shims before TF)
    from groovae.data import DataError
    from groovae.generate import GenerateError
    from groovae.train import TrainError
    try:
        args.run(args)
    except (DataError, GenerateError, TrainError, ValueError) as e:
        print(f"groovae {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
