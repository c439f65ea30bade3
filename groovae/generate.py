"""Stage 3: drum grooves from a checkpoint, via magenta's TrainedModel."""
import os

import note_seq
import numpy as np
import tensorflow.compat.v1 as tf
from magenta.models.music_vae import TrainedModel

from groovae import data
from groovae.configs import load_config


class GenerateError(ValueError):
    """Bad generation request or checkpoint; the message says which."""


def resolve_checkpoint(checkpoint):
    """A checkpoint prefix from a run dir or a prefix path."""
    if os.path.isdir(checkpoint):
        latest = tf.train.latest_checkpoint(checkpoint)
        if not latest:
            raise GenerateError(f"{checkpoint}: no checkpoint in this directory")
        return latest
    if not os.path.exists(checkpoint + ".index"):
        raise GenerateError(f"{checkpoint}: no such checkpoint (expected {checkpoint}.index)")
    return checkpoint


def load_model(config_name, checkpoint, batch_size=8, hparams=None):
    """magenta TrainedModel for ``config_name`` restored from ``checkpoint``."""
    config = load_config(config_name, hparams)
    return TrainedModel(config, batch_size=batch_size,
                        checkpoint_dir_or_path=resolve_checkpoint(checkpoint))


def sample(model, n=5, temperature=0.5, seed=0, length=64):
    """``n`` NoteSequences decoded from z ~ N(0, I) drawn with ``seed``."""
    if n <= 0:
        raise GenerateError(f"n must be positive, got {n}")
    if temperature <= 0:
        raise GenerateError(f"temperature must be positive, got {temperature}")
    z_size = model._config.hparams.z_size
    z = np.random.RandomState(seed).randn(n, z_size).astype(np.float32)
    return model.decode(z, length=length, temperature=temperature)


def write_midi(sequences, out_dir, prefix="sample"):
    """Writes each NoteSequence as ``{prefix}_{i:02d}.mid``; returns the paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i, sequence in enumerate(sequences):
        path = os.path.join(out_dir, f"{prefix}_{i:02d}.mid")
        pm = note_seq.note_sequence_to_pretty_midi(sequence)
        data.atomic_write(path, pm.write)
        paths.append(path)
    return paths
