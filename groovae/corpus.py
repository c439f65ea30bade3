"""Your own drums: a folder (or zip) of drum MIDI files without the GMD's info.csv.

What info.csv gives the GMD comes from elsewhere here: each file's split from
a hash of its path relative to the corpus folder (so it never changes when
files are added, renamed elsewhere or processed on another machine), unless
a ``split.csv`` names it; tempo and time signature from the MIDI file itself
(``midi_metadata``, called where the file is read).  Windows are then cut by
the same code as the GMD's (preprocess.process_file), so a file's reason for
giving no windows is the one that code met.
"""
import csv
import hashlib
import os
import zipfile

from groovae import files, gmd
from groovae.errors import DataError, RequestError, TempoChanges

MIDI_EXTENSIONS = (".mid", ".midi")
SPLIT_CSV = "split.csv"
DEFAULT_RATIOS = (0.8, 0.1, 0.1)  # train, validation, test: about the GMD's own proportions
_SKIPPED_DIRS = ("__MACOSX",)  # macOS zips carry ._name.mid resource forks there


def find_corpus(source, cache_dir=None):
    """The root folder of a plain MIDI corpus, or None when ``source`` is the GMD.

    The GMD is a URL or anything holding an info.csv; a folder without one is
    a corpus, and so is a readable zip without one (extracted once into the
    cache; a single top folder inside it is the root, so that a folder and a
    zip of it split alike).  Unreadable zips are left to gmd.get_data, which
    names their problem.
    """
    source = str(source)
    if files.is_url(source):
        return None
    if os.path.isdir(source):
        try:
            gmd.find_data_dir(source)
            return None
        except DataError:
            return source
    if not (os.path.isfile(source) and zipfile.is_zipfile(source)):
        return None
    try:
        with zipfile.ZipFile(source) as z:
            if any(name.endswith("info.csv") for name in z.namelist()):
                return None
    except (zipfile.BadZipFile, OSError, EOFError):
        return None
    root = files.extract_once(source, cache_dir or files.DEFAULT_CACHE)
    entries = [e for e in os.listdir(root) if e not in _SKIPPED_DIRS and not e.startswith(".")]
    if len(entries) == 1 and os.path.isdir(os.path.join(root, entries[0])):
        root = os.path.join(root, entries[0])
    return root


def list_midi(root):
    """Paths of the MIDI files under ``root``, relative with '/', sorted (hidden files and folders skipped)."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in _SKIPPED_DIRS)
        for name in names:
            if name.lower().endswith(MIDI_EXTENSIONS) and not name.startswith("."):
                found.append(os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/"))
    return sorted(found)


def parse_ratios(text):
    """(train, validation, test) fractions from 'a,b,c' (normalised to sum 1)."""
    if text is None:
        return DEFAULT_RATIOS
    parts = str(text).split(",") if isinstance(text, str) else list(text)
    try:
        ratios = [float(p) for p in parts]
    except ValueError:
        ratios = []
    if len(ratios) != 3 or any(not r >= 0 for r in ratios) or sum(ratios) <= 0 or sum(ratios) == float("inf"):
        raise RequestError(f"--split_ratios is {text!r}; it must be three numbers >= 0 for train,validation,test "
                           "(e.g. 0.8,0.1,0.1)")
    return tuple(r / sum(ratios) for r in ratios)


def hash_split(relpath, ratios=DEFAULT_RATIOS):
    """The split of a file from a sha256 of its relative path: the same on every machine and every run."""
    u = int.from_bytes(hashlib.sha256(relpath.encode("utf-8")).digest()[:8], "big") / 2 ** 64
    if u < ratios[0]:
        return "train"
    return "validation" if u < ratios[0] + ratios[1] else "test"


def read_split_csv(path, names):
    """{relative path: split} from a split.csv (columns ``file,split``); one-line errors naming the row."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"file", "split"} <= {c.strip() for c in reader.fieldnames}:
                raise DataError(f"{path}: needs the columns file,split (got {reader.fieldnames})")
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in reader]
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    known, splits = set(names), {}
    for number, row in enumerate(rows, 2):
        name, split = row["file"].replace("\\", "/"), row["split"]
        if split not in gmd.SPLITS:
            raise DataError(f"{path}: line {number}: unknown split {split!r} (one of {', '.join(gmd.SPLITS)})")
        if name not in known:
            raise DataError(f"{path}: line {number}: no MIDI file {name!r} in the corpus (paths relative to it, "
                            "with '/')")
        if name in splits:
            raise DataError(f"{path}: line {number}: {name!r} is listed twice")
        splits[name] = split
    return splits


def corpus_rows(root, ratios=None, split_csv=None):
    """One row per MIDI file under ``root`` (id, midi_filename, split, how it was split).

    ``split_csv`` defaults to ``root``/split.csv when that exists.
    """
    ratios = parse_ratios(ratios)
    names = list_midi(root)
    if not names:
        raise DataError(f"{root}: no MIDI files (.mid, .midi) in this folder or below, and no info.csv")
    if split_csv is None and os.path.isfile(os.path.join(root, SPLIT_CSV)):
        split_csv = os.path.join(root, SPLIT_CSV)
    chosen = read_split_csv(split_csv, names) if split_csv else {}
    return [{"id": name, "midi_filename": name, "metadata": "midi",
             "split": chosen.get(name) or hash_split(name, ratios),
             "split_by": "split.csv" if name in chosen else "hash"} for name in names]


def midi_metadata(pm, name):
    """{'bpm', 'time_signature'} of a file as its MIDI events give them (what info.csv gives the GMD).

    One tempo is needed to cut bars of one length: TempoChanges otherwise.
    No time signature means 4/4 (the MIDI default); several different ones
    are listed ('4-4,3-4'), which the converter rejects as not 4/4.
    """
    times, tempi = pm.get_tempo_changes()
    if len(set(tempi.tolist())) > 1:
        changes = len(times) - 1
        raise TempoChanges(f"{name}: {changes} tempo change{'s' if changes > 1 else ''} ({min(tempi):.4g} to "
                           f"{max(tempi):.4g} bpm); 4-bar windows need one tempo")
    signatures = []
    for ts in pm.time_signature_changes:
        text = f"{ts.numerator}-{ts.denominator}"
        if text not in signatures:
            signatures.append(text)
    return {"bpm": float(tempi[0]), "time_signature": ",".join(signatures) or "4-4"}


def add_metadata(sequence, row):
    """Puts a corpus file's path, split, tempo and time signature on its NoteSequence (as gmd.add_metadata does)."""
    sequence.id = row["id"]
    sequence.filename = row["midi_filename"]
    sequence.collection_name = "corpus"
    for key in ("split", "bpm", "time_signature"):
        annotation = sequence.text_annotations.add()
        annotation.time = 0.0
        annotation.text = f"corpus.{key}={row[key]}"
    return sequence
