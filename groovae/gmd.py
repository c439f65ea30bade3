"""The Groove MIDI Dataset: where it is, checking the archive, info.csv and its metadata.

The official archive's size and sha256 are tfds' (tensorflow_datasets/datasets/
groove/checksums.tsv); ``get_data`` fetches (once, resumably), verifies and
extracts it, or takes a local zip or folder.  Each info.csv row's fields are
checked before use, and its metadata travels with the file's NoteSequence.
"""
import csv
import json
import os
import shutil
import sys
import urllib.parse
import zipfile

from groovae import files
from groovae.errors import DataError


OFFICIAL_URL = "https://storage.googleapis.com/magentadata/datasets/groove/groove-v1.0.0-midionly.zip"


ARCHIVE_NAME = "groove-v1.0.0-midionly.zip"


# Size and sha256 as listed in tensorflow_datasets/datasets/groove/checksums.tsv.
OFFICIAL_SIZE = 3260318


OFFICIAL_SHA256 = "651cbc524ffb891be1a3e46d89dc82a1cecb09a57c748c7b45b844c4841dcc1e"


SPLITS = ("train", "validation", "test")


INFO_COLUMNS = ("drummer", "session", "id", "style", "bpm", "beat_type", "time_signature",
                "midi_filename", "split")


# The 9 classes of magenta's ROLAND_DRUM_PITCH_CLASSES, in order.
DRUM_CLASSES = ("kick", "snare", "closed_hh", "open_hh", "low_tom", "mid_tom", "high_tom",
                "crash", "ride")


def verify_archive(path, allow_unverified=False):
    """Checks size and sha256 against the official archive, then that it is a GMD zip.

    With ``allow_unverified`` a different archive (e.g. a repacked copy) is
    accepted as long as it is a readable zip holding ``groove/info.csv``.
    """
    size = os.path.getsize(path)
    if not allow_unverified:
        if size != OFFICIAL_SIZE:
            raise DataError(f"{path}: {size:,} bytes, the official GMD archive has {OFFICIAL_SIZE:,} "
                            "(truncated or different archive; --allow_unverified accepts a different valid one)")
        digest = files.sha256_of(path)
        if digest != OFFICIAL_SHA256:
            raise DataError(f"{path}: sha256 {digest} differs from the official {OFFICIAL_SHA256} "
                            "(--allow_unverified accepts a different valid archive)")
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
            bad = z.testzip()
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{path}: not a readable zip archive ({e})") from None
    if bad is not None:
        raise DataError(f"{path}: corrupt zip member {bad}")
    if not any(n.endswith("info.csv") for n in names):
        raise DataError(f"{path}: no info.csv inside; not a Groove MIDI Dataset archive")


def find_data_dir(folder):
    """The folder holding info.csv (``folder`` itself or its ``groove/``)."""
    for candidate in (folder, os.path.join(folder, "groove")):
        if os.path.isfile(os.path.join(candidate, "info.csv")):
            return candidate
    raise DataError(f"{folder}: no info.csv (expected the Groove MIDI Dataset's groove/ folder)")


def get_data(source=OFFICIAL_URL, cache_dir=None, allow_unverified=False, progress=True):
    """The extracted GMD folder (containing info.csv) for a URL, zip or folder (None: the official URL)."""
    cache_dir = cache_dir or files.DEFAULT_CACHE
    source = str(source or OFFICIAL_URL)
    if files.is_url(source):
        name = os.path.basename(urllib.parse.urlparse(source).path) or ARCHIVE_NAME
        zip_path = os.path.join(cache_dir, "downloads", name)
        official = source == OFFICIAL_URL or name == ARCHIVE_NAME
        expected = OFFICIAL_SIZE if official and not allow_unverified else None
        if os.path.isfile(zip_path):
            try:
                verify_archive(zip_path, allow_unverified)
            except DataError as e:  # a damaged or stale cached copy: fetch it again, once
                print(f"preprocess: cached {e}; downloading it again", file=sys.stderr)
                os.remove(zip_path)
        if not os.path.isfile(zip_path):
            files.download(source, zip_path, expected, progress)
            try:
                verify_archive(zip_path, allow_unverified)
            except DataError:
                os.remove(zip_path)  # not kept: the next run fetches again
                raise
    elif os.path.isdir(source):
        return find_data_dir(source)
    elif os.path.isfile(source):
        zip_path = source
    else:
        raise DataError(f"{source}: no such file, folder or URL")
    verify_archive(zip_path, allow_unverified)
    return find_data_dir(files.extract_once(zip_path, cache_dir))


def read_info(data_dir):
    """Rows of info.csv as dicts; DataError if missing or malformed."""
    path = os.path.join(data_dir, "info.csv")
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in INFO_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path}: missing columns {', '.join(missing)}")
            rows = list(reader)
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    for row in rows:
        if row["split"] not in SPLITS:
            raise DataError(f"{path}: row {row['id']}: unknown split '{row['split']}'")
    return rows


def add_metadata(sequence, row):
    """Puts the GMD metadata on a NoteSequence.

    Standard fields where they exist (id, filename, artist=drummer,
    genre=style), and every info.csv column as a ``gmd.<column>=<value>``
    text annotation (type UNKNOWN, which magenta's converters ignore).
    """
    sequence.id = row["id"]
    sequence.filename = row["midi_filename"]
    sequence.collection_name = "groove"
    sequence.sequence_metadata.artist = row["drummer"]
    sequence.sequence_metadata.title = row["id"]
    sequence.sequence_metadata.genre.extend(row["style"].split("/"))
    for key in INFO_COLUMNS + ("audio_filename", "duration"):
        if key in row:
            annotation = sequence.text_annotations.add()
            annotation.time = 0.0
            annotation.text = f"gmd.{key}={row[key]}"
    return sequence


def metadata(sequence):
    """The ``gmd.*`` metadata of a NoteSequence written here, as a dict."""
    out = {}
    for annotation in sequence.text_annotations:
        if annotation.text.startswith("gmd.") and "=" in annotation.text:
            key, value = annotation.text[4:].split("=", 1)
            out[key] = value
    return out


def row_problem(row):
    """What makes an info.csv row unusable (bpm, time signature, file name), or None."""
    name = row.get("midi_filename") or ""
    if not name or os.path.isabs(name) or ".." in name.replace("\\", "/").split("/"):
        return f"bad midi_filename {name!r} (a path inside the dataset folder)"
    try:
        bpm = int(row.get("bpm") or "")
    except ValueError:
        return f"bad bpm {row.get('bpm')!r} (a whole number of beats per minute)"
    if not 1 <= bpm <= 1000:
        return f"bad bpm {bpm} (1 to 1000)"
    numerator, _, denominator = (row.get("time_signature") or "").partition("-")
    if not (numerator.isdigit() and denominator.isdigit() and int(numerator) > 0 and int(denominator) > 0):
        return f"bad time_signature {row.get('time_signature')!r} (like 4-4)"
    return None


def build_tfds(source=OFFICIAL_URL, data_dir=None, cache_dir=None, allow_unverified=False, progress=True):
    """Builds tfds ``groove/4bar-midionly`` offline from a local or cached zip.

    Places the archive in tfds' download folder under the name tfds derives
    from the official URL, with the ``.INFO`` file tfds writes after a
    download, so tfds finds it and does not fetch.  tfds checks the archive's
    size and sha256 against its own list: a repacked archive fails there.
    Slow (single-threaded); returns the builder.
    """
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import resource as tfds_resource
    cache_dir = cache_dir or files.DEFAULT_CACHE
    source = str(source or OFFICIAL_URL)  # the CLI passes None when --source is left out
    if files.is_url(source):
        zip_path = os.path.join(cache_dir, "downloads", ARCHIVE_NAME)
        if not os.path.isfile(zip_path):
            files.download(source, zip_path, OFFICIAL_SIZE, progress)
    elif os.path.isfile(source):
        zip_path = source
    else:
        raise DataError(f"{source}: --tfds needs the GMD zip archive (a URL or a .zip)")
    verify_archive(zip_path, allow_unverified)
    data_dir = data_dir or os.path.join(cache_dir, "tensorflow_datasets")
    download_dir = os.path.join(data_dir, "downloads")
    # Where tfds looks for a download whose checksum it knows: downloads/<dataset>/<name>
    # (and, legacy, downloads/<name>); a file there with an .INFO beside it is used as is.
    name = tfds_resource.get_dl_fname(OFFICIAL_URL, OFFICIAL_SHA256)
    for folder in (os.path.join(download_dir, "groove"), download_dir):
        os.makedirs(folder, exist_ok=True)
        target = os.path.join(folder, name)
        if not os.path.exists(target):
            shutil.copyfile(zip_path, target + ".tmp")
            os.replace(target + ".tmp", target)
        with open(target + ".INFO", "w") as f:
            json.dump({"urls": [OFFICIAL_URL], "original_fname": ARCHIVE_NAME}, f)
    builder = tfds.builder("groove/4bar-midionly", data_dir=data_dir)
    builder.download_and_prepare(download_dir=download_dir)
    return builder
