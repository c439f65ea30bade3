"""A trained model in the checkpoint layout ``@magenta/music``'s ``MusicVAE`` loads in the browser.

The layout of the hosted magenta.js checkpoints: ``config.json`` (the model
type and its data converter with arguments) and ``weights_manifest.json``
naming binary shards of the weights (TensorFlow.js's weights format), 8-bit
quantized as the hosted ones are (a per-tensor affine map: value = min +
scale * byte) or float32.  The variable names are the checkpoint's, which
are the ones magenta.js looks up (``encoder/cell_0/bidirectional_rnn/fw/...``,
``decoder/multi_rnn_cell/...``).  What magenta.js cannot run is refused in
one line: its hierarchical decoders go with a hierarchical encoder (our
conductor model has a flat one), and its GrooveConverter has no hits as
controls.
"""
import json
import os

import numpy as np

from groovae import compat  # noqa: F401  (first: shims before TensorFlow)
from groovae import checkpoints, files, runs
from groovae.configs import load_config
from groovae.errors import RequestError, write_errors

SHARD_BYTES = 4 << 20  # as magenta.js's own converter: 4 MB shards
QUANTIZE = (8, None)


def magenta_js_config(config_name, hparams=None):
    """config.json's dict for a config; RequestError naming why magenta.js cannot run it."""
    from magenta.models.music_vae import lstm_models
    config = load_config(config_name, hparams or None)
    converter, decoder = config.data_converter, config.model.decoder
    if type(converter).__name__ != "GrooveConverter":
        raise RequestError(f"{config_name}: magenta.js export is for groove configs (GrooveConverter), not "
                           f"{type(converter).__name__}")
    if isinstance(decoder, lstm_models.HierarchicalLstmDecoder):
        raise RequestError(f"{config_name}: magenta.js runs a conductor (hierarchical) decoder only beside a "
                           f"hierarchical encoder, and this config's encoder is a flat BiLSTM; export the flat model")
    if converter._hits_as_controls:
        raise RequestError(f"{config_name}: magenta.js's GrooveConverter has no hits as controls "
                           f"(hits_as_controls); export humanize, tap2drum or the flat model")
    if len(config.hparams.enc_rnn_size) != 1:
        raise RequestError(f"{config_name}: magenta.js runs single-layer bidirectional encoders only")
    if converter._tapify and not converter._fixed_velocities:
        raise RequestError(f"{config_name}: magenta.js's tapify also flattens velocities (fixed_velocities)")
    args = {"numSteps": config.hparams.max_seq_len, "stepsPerQuarter": converter._steps_per_quarter,
            "humanize": bool(converter._humanize), "tapify": bool(converter._tapify),
            "splitInstruments": bool(converter._split_instruments),
            "pitchClasses": [list(map(int, c)) for c in converter._pitch_classes]}
    return {"type": "MusicVAE", "dataConverter": {"type": "GrooveConverter", "args": args},
            "useBooleanDecoder": False, "conditionOnKey": False}


def quantize_uint8(values):
    """(bytes, {"dtype": "uint8", "min", "scale"}) of a float tensor: value ~ min + scale * byte."""
    values = np.asarray(values, np.float32)
    low, high = float(values.min()), float(values.max())
    scale = (high - low) / 255.0 if high > low else 1.0
    quantized = np.round((values - low) / scale).clip(0, 255).astype(np.uint8)
    return quantized.tobytes(), {"dtype": "uint8", "min": low, "scale": scale}


def dequantize(raw, entry):
    """The float32 values of one manifest entry's bytes (the inverse of what magenta.js reads)."""
    quantization = entry.get("quantization")
    if not quantization:
        return np.frombuffer(raw, np.float32).reshape(entry["shape"])
    q = np.frombuffer(raw, np.uint8).astype(np.float32)
    return (quantization["min"] + quantization["scale"] * q).reshape(entry["shape"])


def write_weights(values, folder, quantize=8):
    """weights_manifest.json + shards (group1-shardKofN) of {name: array} in ``folder``; returns the manifest."""
    entries, blob = [], bytearray()
    for name in sorted(values):
        value = np.asarray(values[name], np.float32)
        entry = {"name": name, "shape": list(value.shape), "dtype": "float32"}
        if quantize == 8:
            raw, entry["quantization"] = quantize_uint8(value)
        else:
            raw = value.astype("<f4").tobytes()
        entries.append(entry)
        blob += raw
    count = max(1, -(-len(blob) // SHARD_BYTES))
    paths = [f"group1-shard{k + 1}of{count}" for k in range(count)]
    for k, path in enumerate(paths):
        with open(os.path.join(folder, path), "wb") as f:
            f.write(bytes(blob[k * SHARD_BYTES:(k + 1) * SHARD_BYTES]))
    manifest = [{"paths": paths, "weights": entries}]
    with open(os.path.join(folder, "weights_manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    return manifest


def read_weights(folder):
    """{name: float32 array} of an export, as magenta.js reads it (dequantized)."""
    with open(os.path.join(folder, "weights_manifest.json")) as f:
        [group] = json.load(f)
    blob = b"".join(open(os.path.join(folder, p), "rb").read() for p in group["paths"])
    values, at = {}, 0
    for entry in group["weights"]:
        size = int(np.prod(entry["shape"])) * (1 if entry.get("quantization") else 4)
        values[entry["name"]] = dequantize(blob[at:at + size], entry)
        at += size
    return values


def export_magenta_js(prefix, output_dir, config=None, hparams=None, quantize=8, source=None):
    """Writes the magenta.js checkpoint of ``prefix`` into ``output_dir`` (new, or an earlier one: replaced whole).

    Returns ``output_dir``.  Its config.json also names the groovae config,
    the source checkpoint's sha256 and step (a ``groovae`` key magenta.js
    ignores).
    """
    from groovae.model import check_checkpoint, model_variables
    if quantize not in QUANTIZE:
        raise RequestError(f"--quantize is {quantize!r}; 8 or none")
    config, hparams = runs.model_of(prefix, config, hparams)
    spec = magenta_js_config(config, hparams)
    files.check_replaceable(output_dir, _is_export, "export")
    wanted = model_variables(config, hparams or None)
    check_checkpoint(config, prefix, wanted)
    values = checkpoints.read_checkpoint_values(prefix, [name for name in wanted if name != "global_step"])
    spec["groovae"] = {"config": config, "hparams": hparams or "", "quantize": quantize,
                       "checkpoint": source or os.path.basename(prefix),
                       "sha256": checkpoints.checkpoint_sha256(prefix), "step": checkpoints.step_of(prefix)}
    with write_errors(f"nothing written, {output_dir} as before"), files.atomic_directory(output_dir) as staging:
        write_weights(values, staging, quantize)
        with open(os.path.join(staging, "config.json"), "w") as f:
            json.dump(spec, f, indent=1)
    return output_dir


def _is_export(folder):
    try:
        with open(os.path.join(folder, "config.json")) as f:
            return "groovae" in json.load(f)
    except (OSError, ValueError, TypeError):
        return False
