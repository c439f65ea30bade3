"""Named configs: one small file per config in the repo's top-level ``configs/`` folder.

Each file defines ``config``, a magenta ``music_vae.Config`` (model + hparams +
data converter).  Files are executed on every lookup so each caller gets fresh
model/converter objects (they are stateful).  A wheel ships the folder as the package
``groovae.bundled_configs`` (pyproject.toml), which is used where the repo's
folder is not beside the package.
"""
import importlib.util
import os
import runpy

from groovae import compat  # noqa: F401  (config files import magenta)
from groovae.errors import ConfigError

DEFAULT_CONFIG = "groovae_4bar"  # the public checkpoint's; what a checkpoint without run.json is taken to be


def _config_dir():
    """The repo's configs/ (a clone, an editable install), else the copy a wheel installed."""
    repo = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
    if os.path.isfile(os.path.join(repo, DEFAULT_CONFIG + ".py")):
        return repo
    spec = importlib.util.find_spec("groovae.bundled_configs")
    return list(spec.submodule_search_locations)[0] if spec else repo


CONFIG_DIR = _config_dir()


def config_names():
    """Names of the configs in configs/, sorted."""
    if not os.path.isdir(CONFIG_DIR):
        return []
    return sorted(f[:-3] for f in os.listdir(CONFIG_DIR)
                  if f.endswith(".py") and not f.startswith("_"))


def config_path(name_or_path):
    """The file of a config given by name (``groovae_4bar``) or path."""
    if name_or_path.endswith(".py") or os.sep in name_or_path:
        path = name_or_path
    else:
        path = os.path.join(CONFIG_DIR, name_or_path + ".py")
    if not os.path.isfile(path):
        raise ConfigError(f"unknown config '{name_or_path}'; known: {', '.join(config_names())}")
    return path


def load_config(name_or_path, hparams=None):
    """A fresh Config; ``hparams`` is an override string like 'batch_size=64,z_size=32'."""
    path = config_path(name_or_path)
    config = runpy.run_path(path).get("config")
    if config is None:
        raise ConfigError(f"{path}: defines no 'config'")
    if hparams:
        try:
            config.hparams.parse(hparams)
        except (ValueError, KeyError) as e:
            raise ConfigError(f"bad --hparams '{hparams}' for {name_or_path}: {e}") from None
    return config


def groove_converter(split_bars=4, **flags):
    """magenta's GrooveConverter as the groove configs use it: 16 steps per bar, the GMD's 9 drum classes.

    ``flags`` are the converter's input transforms (humanize, tapify,
    fixed_velocities, hits_as_controls, ...).
    """
    from magenta.models.music_vae import data
    return data.GrooveConverter(split_bars=split_bars, steps_per_quarter=4, quarters_per_bar=4,
                                max_tensors_per_notesequence=20, pitch_classes=data.ROLAND_DRUM_PITCH_CLASSES,
                                inference_pitch_classes=data.REDUCED_DRUM_PITCH_CLASSES, **flags)


def with_hparams(config, **overrides):
    """``config`` with some hparams changed (config files use it to derive)."""
    for key, value in overrides.items():
        if key not in config.hparams.values():
            raise ConfigError(f"unknown hparam '{key}'")
        config.hparams.set_hparam(key, value)
    return config
