"""``groovae regenerate``: rebuild every run of a manifest.json and compare its files bit for bit.

Generated runs (generate's modes, the your-beat modes) are made again from
the checkpoint and inputs the manifest names, whose sha256 must match;
dataset windows are checked where they are.
"""
import os

from groovae import beat, generate
from groovae.manifest import changed_in_place, read_manifest_file
from groovae.model import GrooveModel
from groovae.outputs import resolve_recorded_checkpoint


def regenerate(entry, out_dir, manifest_dir, checkpoint=None, public_url=None, cache_dir=None):
    """Re-runs one manifest entry into ``out_dir``; returns the new entry (compare its files' sha256)."""
    if entry.get("mode") in beat.MODES:
        prefix = resolve_recorded_checkpoint(entry, manifest_dir, checkpoint, public_url, cache_dir)
        model = GrooveModel(entry["config"], prefix, entry.get("hparams") or None)
        return beat.regenerate(entry, out_dir, manifest_dir, model)
    return generate.regenerate(entry, out_dir, manifest_dir, checkpoint, public_url, cache_dir)


def regenerate_manifest(path, out_dir, checkpoint=None, public_url=None, cache_dir=None):
    """Rebuilds every run of a manifest into ``out_dir`` (windows runs: checked in place).

    Returns (one line per run saying whether it came out identical, how many
    differ, how many runs).
    """
    manifest_dir = os.path.dirname(os.path.abspath(path))
    runs = read_manifest_file(path)
    lines, differ = [], 0
    for entry in runs:
        if entry.get("mode") == "windows":  # data, not a model's output: its files are checked where they are
            changed = changed_in_place(entry, manifest_dir)
            lines.append(f"{entry['prefix']}: {len(entry['files'])} files of dataset windows, checked in place: "
                         + ("identical" if not changed else f"{len(changed)} missing or changed "
                            f"({', '.join(changed[:3])}); write them again with {generate.windows_command(entry)}"))
        else:
            again = regenerate(entry, out_dir, manifest_dir, checkpoint, public_url, cache_dir)
            changed = sorted(f for f in entry["files"] if again["files"].get(f) != entry["files"][f])
            lines.append(f"{entry['prefix']}: {len(entry['files'])} files, "
                         + ("identical" if not changed else f"{len(changed)} differ ({', '.join(changed[:3])})"))
        differ += bool(changed)
    return lines, differ, len(runs)
