"""What a samples folder holds, as plain data: its runs (from manifest.json), their grooves and files.

The listening page (groovae.listen) renders this; nothing here writes HTML.
Plain Python: no TensorFlow, no audio or image libraries (drum rolls' sizes
come from the PNG headers).
"""
import json
import os
import struct

from groovae.manifest import MANIFEST, read_manifest

SUMMARY = "training_summary.json"  # written beside the grooves by scripts/private_samples.sh
LAB_INFO = "lab.json"  # written with a groove lab's index.html by groovae.lab: the page links such a folder
LAB_GENERATOR = "groovae lab"  # its "generator"
MODE_ORDER = {"windows": 0, "sample": 1, "interpolate": 2, "reconstruct": 3, "humanize": 4, "transfer": 5,
              "drumify": 6}


def read_summary(folder):
    """The training summary stored beside the grooves, or None."""
    try:
        with open(os.path.join(folder, SUMMARY)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def png_size(path):
    """(width, height) from a PNG's IHDR chunk, or None."""
    try:
        with open(path, "rb") as f:
            head = f.read(24)
    except OSError:
        return None
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def groove(folder, midi, label=None, wav_expected=True):
    """One groove as plain data: its files (None where absent) and what the page shows about it.

    ``midi`` is relative to ``folder``; the WAV and PNG are the files beside it with the same name.
    """
    base = midi[:-4]
    wav, png = base + ".wav", base + ".png"
    has_wav = os.path.isfile(os.path.join(folder, wav))
    return {"name": os.path.basename(base), "midi": midi, "label": label,
            "wav": wav if has_wav else None,
            "png": png if os.path.isfile(os.path.join(folder, png)) else None,
            "png_size": png_size(os.path.join(folder, png)),
            "missing_wav": wav_expected and not has_wav}


INPUT_LABELS = {"input": "input", "like": "reference (its feel)"}
OUTPUT_LABELS = {"humanize": "feel", "drumify": "drums", "transfer": "its feel on the beat"}


def run_grooves(folder, run):
    """The grooves a manifest run wrote, in order, with its inputs first (a reconstruction's, a beat's)."""
    midis = sorted(f for f in run.get("files", {}) if f.endswith(".mid") and os.path.isfile(os.path.join(folder, f)))
    wav = bool(run.get("wav", True))
    out, inputs = [], set()
    if run.get("mode") in ("reconstruct", "humanize", "drumify", "transfer"):
        for record in run.get("inputs", []):
            if inside(record.get("path", "")) and os.path.isfile(os.path.join(folder, record["path"])):
                label = INPUT_LABELS.get(record.get("role"), "input")
                if record.get("name"):
                    label += f": {record['name']}"
                copied = record["path"] in run.get("files", {})  # a beat's copy: its WAV was written with it
                out.append(dict(groove(folder, record["path"], label, wav_expected=copied and wav), input=True))
                inputs.add(record["path"])
    windows = {w.get("midi"): w for w in run.get("windows", [])} if run.get("mode") == "windows" else {}
    outputs = [m for m in midis if m not in inputs]
    for i, midi in enumerate(outputs):
        label = None
        if midi in windows:
            label = describe_window(windows[midi], run.get("bars") or 4, run.get("as_played", False))
        elif run.get("mode") == "interpolate":
            label = f"step {i + 1} of {len(outputs)}"
        elif run.get("mode") == "reconstruct":
            label = "reconstruction"
        elif run.get("mode") in OUTPUT_LABELS:
            kind = run["mode"]
            if kind == "transfer" and not any(r.get("role") == "like" for r in run.get("inputs", [])):
                kind = "humanize"  # humanize --keep_hits: feels of its own, no reference's
            label = OUTPUT_LABELS[kind] + (f" {i + 1}" if len(outputs) > 1 else "")
        out.append(groove(folder, midi, label, wav_expected=wav))
    return out


def describe_window(window, bars, as_played=False):
    """'drummer1/session1/5, bars 9-12, 97 bpm as played' (what preprocess recorded), or 'window 12'.

    ``as_played``: the MIDI file is at that tempo (windows written before
    were all at the converter's 120 bpm: 'played at 97 bpm')."""
    parts = [str(window.get("source_id") or f"window {window.get('index', '?')}")]
    if window.get("start_bar") is not None:
        parts.append(f"bars {window['start_bar'] + 1}–{window['start_bar'] + bars}")
    if window.get("bpm"):
        parts.append(f"{window['bpm']:.4g} bpm as played" if as_played else f"played at {window['bpm']:g} bpm")
    return ", ".join(parts)


def inside(relative):
    """Whether a path relative to a folder stays inside it: only such inputs are linked."""
    path = os.path.normpath(relative)
    return bool(relative) and not os.path.isabs(path) and not path.startswith(os.pardir)


def no_audio_reason(run, grooves):
    """Why a run has no (or not all) audio, or None when every groove has its WAV."""
    if not run.get("wav", True):
        why = run.get("no_wav_reason")
        return ("generated without WAV files" + (f": {why}" if why else
                " (FluidSynth was not installed where it ran, or --no_wav was given)")
                + "; the MIDI plays in any MIDI player")
    missing = [g["name"] for g in grooves if g["missing_wav"]]
    if missing:
        return f"WAV file missing from this folder for {', '.join(missing)}"
    return None


def run_order(run):
    return (MODE_ORDER.get(run.get("mode"), 9), run.get("temperature") or 0, run.get("seed") or 0,
            run.get("prefix") or "")


def read_folder(root, rel):
    """One folder of the page as plain data: its runs (sorted) with their grooves, and loose MIDI files."""
    folder = os.path.join(root, rel) if rel else root
    runs = []
    listed = set()
    for run in sorted(read_manifest(folder), key=run_order):
        grooves = run_grooves(folder, run)
        listed.update(run.get("files", {}))
        runs.append({"run": run, "grooves": grooves, "no_audio": no_audio_reason(run, grooves)})
    loose = sorted(f for f in os.listdir(folder) if f.endswith(".mid") and f not in listed)
    if loose:  # MIDI files no manifest names: shown, without settings
        grooves = [groove(folder, f, wav_expected=False) for f in loose]
        runs.append({"run": {"mode": None}, "grooves": grooves,
                     "no_audio": None if all(g["wav"] for g in grooves) else "no WAV beside some of these files"})
    return {"path": rel, "runs": runs, "summary": read_summary(folder),
            "readme": os.path.isfile(os.path.join(folder, "README.md")),
            "lab": is_lab(folder) and os.path.isfile(os.path.join(folder, "index.html"))}


def is_lab(folder):
    """Whether ``folder`` holds a groove lab (groovae lab wrote its lab.json)."""
    try:
        with open(os.path.join(folder, LAB_INFO)) as f:
            return json.load(f).get("generator") == LAB_GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def find_folders(root):
    """Folders under ``root`` (relative; '' is root itself) with grooves, a README or a lab: public ones first."""
    found = []
    for here, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # skips generate's .staging-* folders
        rel = os.path.relpath(here, root)
        rel = "" if rel == os.curdir else rel.replace(os.sep, "/")
        grooves = MANIFEST in names or any(n.endswith(".mid") for n in names)
        lab = LAB_INFO in names and is_lab(here)
        if grooves or (rel and ("README.md" in names or lab)):
            found.append(rel)
        if lab:
            dirs[:] = []  # a lab's models/ and kit/ are the page's own files, not grooves
    # The reference model (Google's checkpoint) first, then the rest by name.
    return sorted(found, key=lambda rel: (not rel.split("/")[-1].startswith("public"), rel))
