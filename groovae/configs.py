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
from groovae.errors import ConfigError, DataError

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


# What a converter does to a window that is not its content: how many windows it keeps per sequence, its mode.
_NOT_TRANSFORMS = ("_max_tensors_per_input", "_mode", "_pitch_class_map")


def converter_transforms(converter):
    """A data converter's settings that decide its tensors (humanize, tapify, hits as controls, sizes, ...)."""
    return {name.lstrip("_"): value for name, value in sorted(vars(converter).items())
            if name not in _NOT_TRANSFORMS and isinstance(value, (bool, int, float, str, list, tuple, type(None)))}


def windows_config(data_path):
    """The config that preprocess made ``data_path``'s windows with (its report.json), or None if not recorded."""
    import json
    folder = os.path.dirname(data_path) if os.path.isfile(data_path) else data_path  # a tensor file: its folder
    try:
        with open(os.path.join(folder, "report.json")) as f:
            return json.load(f)["inputs"]["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_windows_fit(data_path, config_name, config):
    """DataError when ``data_path``'s windows were made by a converter other than ``config``'s (e.g. flat windows
    for a humanize model, which would train or score it on the wrong inputs without a word)."""
    made_with = windows_config(data_path)
    if made_with is None or made_with == config_name:
        return
    try:
        theirs = converter_transforms(load_config(made_with).data_converter)
    except ConfigError:  # a config file that has moved since: nothing to compare with
        return
    ours = converter_transforms(config.data_converter)
    differ = [f"{k} {theirs.get(k)} vs {ours.get(k)}" for k in sorted(set(theirs) | set(ours))
              if theirs.get(k) != ours.get(k)]
    if differ:
        raise DataError(f"{data_path}: windows made for {made_with}, whose converter differs from {config_name}'s "
                        f"({'; '.join(differ)}): preprocess with --config {config_name} into another folder")
