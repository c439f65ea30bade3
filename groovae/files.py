"""Files: atomic writes, hashing, resumable downloads and safe archive extraction.

Everything here is plain Python (no TensorFlow): the stages and the shared
layers use it to write outputs that appear whole or not at all, and to fetch
and unpack archives without trusting them.
"""
import contextlib
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile

from groovae import staging
from groovae.errors import DataError, RequestError, interrupts_wait

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "groovae")  # downloads and extracted archives


def _umask():
    """The process umask, read without changing it (os.umask would race with TF's writer threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return _UMASK_AT_IMPORT


def _umask_by_setting():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK_AT_IMPORT = _umask_by_setting()  # once, at import: the fallback where /proc is unavailable


def check_folder(path, flag="--output_dir"):
    """RequestError naming ``path`` unless it is a folder or can be made one (no file where it or a parent goes)."""
    probe = os.path.abspath(path)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if os.path.exists(probe) and not os.path.isdir(probe):
        where = "is a file" if probe == os.path.abspath(path) else f"{probe} is a file, so no folder can be made there"
        raise RequestError(f"{path}: {where}; {flag} must be a folder")


def check_replaceable(output_dir, is_earlier, what):
    """RequestError unless ``output_dir`` can be made, is empty, or holds an earlier ``what`` (``is_earlier(folder)``,
    which must not raise): only such a folder is replaced whole, never one holding anything else."""
    check_folder(output_dir)
    if os.path.isdir(output_dir) and os.listdir(output_dir) and not is_earlier(output_dir):
        raise RequestError(f"{output_dir}: exists with other files; choose a new --output_dir "
                           f"(an earlier {what}'s folder is replaced whole)")


def make_folder(path, flag="--output_dir"):
    """Makes the folder ``path`` (and its parents) if missing; one line if a file is in the way."""
    check_folder(path, flag)
    os.makedirs(path, exist_ok=True)


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temp file name beside ``path``; on success the file is renamed to ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=os.path.basename(path) + ".", suffix=".tmp")
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual permissions
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        if e.filename:
            raise
        raise OSError(e.errno, e.strerror, path) from None  # a full disk met on flush or close names no file
    except BaseException:
        _remove(tmp)
        raise


def _remove(path):
    if os.path.exists(path):
        os.remove(path)


def atomic_write(path, write_fn, mode="wb"):
    """Calls write_fn(file) on a temp file beside ``path``, then renames it."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        write_fn(f)


@contextlib.contextmanager
def atomic_directory(dest, carry_over=False):
    """Yields a temp folder beside ``dest``; on success it takes ``dest``'s place whole.

    A reader finds the old folder or the new one, never a mix of the two.
    ``carry_over`` then moves entries of the old folder that the new one
    lacks into it (files that are not ours stay in the folder; should that
    fail, they wait in the ``.old`` folder beside it, never deleted, until
    the next run moves them).  What a killed run left beside ``dest`` is
    cleaned first (``recover_directory``).
    """
    parent = os.path.dirname(os.path.abspath(dest))
    check_folder(dest)
    recover_directory(dest, carry_over)
    with staging.held(parent, os.path.basename(dest) + ".") as stem:  # held while this run lives
        tmp, old = stem + staging.TMP, None
        os.mkdir(tmp)
        try:
            yield tmp
            with interrupts_wait():  # Ctrl-C or SIGTERM during the swap waits for it: old folder or new, whole
                if os.path.isdir(dest):
                    old = stem + staging.OLD
                    os.mkdir(old)
                    os.replace(dest, os.path.join(old, "previous"))
                os.replace(tmp, dest)
                if old:  # should this fail, files not ours wait in .old: the next run moves them (recover_directory)
                    _carry_over(os.path.join(old, "previous"), dest, carry_over)
                    shutil.rmtree(old)
        except BaseException:
            if old and not os.path.exists(dest):  # the swap failed half-way: put the old folder back
                os.replace(os.path.join(old, "previous"), dest)
                os.rmdir(old)
            raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def recover_directory(dest, carry_over=False):
    """Cleans what runs killed while writing ``dest`` left beside it (atomic_directory's staging; a live run's
    stays), first putting back the old folder where a swap was cut short."""
    def recover(stem):
        previous = os.path.join(stem + staging.OLD, "previous")
        if os.path.isdir(previous) and not os.path.exists(dest):
            os.replace(previous, dest)  # killed between the two renames: the last whole outputs
        elif os.path.isdir(previous):
            _carry_over(previous, dest, carry_over)  # killed before files not ours were moved back
    staging.clean(os.path.dirname(os.path.abspath(dest)), os.path.basename(dest) + ".", recover)


def _carry_over(previous, dest, carry_over):
    """After the swap: entries of the old folder the new one lacks move into it."""
    if carry_over:
        for name in set(os.listdir(previous)) - set(os.listdir(dest)):
            os.replace(os.path.join(previous, name), os.path.join(dest, name))


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


MAX_UNPACKED_BYTES = 2 << 30  # the MIDI-only GMD unpacks to ~ 10 MB; anything near this is not it


def is_url(source):
    return urllib.parse.urlparse(str(source)).scheme in ("http", "https", "file")


def download(url, dest, expected_size=None, progress=True):
    """Downloads ``url`` to ``dest``, resuming a partial ``dest + '.part'``.

    A partial file is continued with an HTTP Range request (or a seek, for
    file:// URLs); if the server ignores the range, or the partial file is
    already too big, the download restarts from zero.  ``dest`` appears only
    when every byte announced (Content-Length, or ``expected_size``) arrived;
    a connection that ends early keeps the .part for the next run.
    """
    part = dest + ".part"
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    have = os.path.getsize(part) if os.path.exists(part) else 0
    if expected_size is not None and have > expected_size:
        have = 0
    if expected_size is not None and have == expected_size:  # finished before, not yet renamed
        os.replace(part, dest)
        return dest
    try:
        src, have, total = _open_source(url, have, expected_size)
    except OSError as e:
        raise DataError(f"{url}: cannot download ({e})") from None
    if src is None:  # the .part already holds the whole file
        os.replace(part, dest)
        return dest
    from tqdm.auto import tqdm
    with src, open(part, "ab" if have else "wb") as out, \
            tqdm(total=total, initial=have, unit="B", unit_scale=True, disable=not progress,
                 desc=os.path.basename(dest)) as bar:
        try:
            for block in iter(lambda: src.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))
        except OSError as e:
            raise DataError(f"{url}: download interrupted ({e}); run again to resume") from None
    got = os.path.getsize(part)
    if total is not None and got != total:
        raise DataError(f"{url}: download ended early ({got:,} of {total:,} bytes); run again to resume")
    os.replace(part, dest)
    return dest


def _open_source(url, have, expected_size):
    """(readable stream or None if ``have`` bytes are already the whole file, start offset, total size or None)."""
    if urllib.parse.urlparse(url).scheme == "file":
        src = open(urllib.request.url2pathname(urllib.parse.urlparse(url).path), "rb")
        total = os.fstat(src.fileno()).st_size
        have = have if have <= total else 0
        src.seek(have)
        return src, have, total
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        src = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not have:
            raise
        # Range not satisfiable: the .part is complete if the server's size ("bytes */N") equals it.
        match = re.match(r"bytes \*/(\d+)", e.headers.get("Content-Range") or "")
        if match and int(match.group(1)) == have:
            return None, have, have
        return _open_source(url, 0, expected_size)
    if have and src.status != 206:  # range ignored: start again
        have = 0
    length = src.headers.get("Content-Length")
    total = have + int(length) if length is not None else expected_size
    return src, have, total


def safe_extract(zip_path, dest, max_bytes=MAX_UNPACKED_BYTES):
    """Extracts ``zip_path`` into ``dest`` (complete or not at all).

    Refuses any member that would land outside ``dest`` (absolute paths,
    ``..``, drive letters), and archives that unpack to more than
    ``max_bytes``, before writing anything.
    """
    root = os.path.realpath(dest)
    try:
        with zipfile.ZipFile(zip_path) as z:
            for name in z.namelist():
                target = os.path.realpath(os.path.join(root, name))
                if os.path.isabs(name) or (target != root and not target.startswith(root + os.sep)):
                    raise DataError(f"{zip_path}: member '{name}' would be extracted outside the target folder")
            unpacked = sum(info.file_size for info in z.infolist())
            if unpacked > max_bytes:  # a zip bomb, or not the dataset
                raise DataError(f"{zip_path}: would unpack to {unpacked:,} bytes, over the {max_bytes:,} allowed")
            with atomic_directory(root) as tmp:
                z.extractall(tmp)
    except (zipfile.BadZipFile, EOFError) as e:
        raise DataError(f"{zip_path}: not a readable zip archive ({e})") from None
    return root


def extract_once(zip_path, cache_dir):
    """``zip_path`` extracted (safely) into the cache, once per archive content; returns the folder.

    The key is path + size + mtime: cheap to compute, and new whenever the archive is replaced.
    """
    st = os.stat(zip_path)
    key = hashlib.sha1(f"{os.path.abspath(zip_path)}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:12]
    dest = os.path.join(cache_dir, "extracted", key)
    if not os.path.isdir(dest):
        safe_extract(zip_path, dest)
    return dest


MAX_CHECKPOINT_BYTES = 4 << 30  # groovae checkpoints are tens of MB; a tar unpacking past this is refused


def safe_extract_tar(tar_path, dest, max_bytes=MAX_CHECKPOINT_BYTES):
    """Extracts a checkpoint tar into ``dest``, refusing members that escape it.

    magenta's TrainedModel calls ``tarfile.extractall`` unguarded; here an
    absolute path, a ``..`` component, a link, or a device file is refused
    before anything is written.
    """
    try:
        with tarfile.open(tar_path) as tar:
            members = tar.getmembers()
            for m in members:
                parts = m.name.replace("\\", "/").split("/")
                if m.name.startswith("/") or ".." in parts or os.path.isabs(m.name):
                    raise DataError(f"{tar_path}: member '{m.name}' would be extracted outside the target folder")
                if m.issym() or m.islnk():
                    raise DataError(f"{tar_path}: member '{m.name}' is a link ('{m.linkname}'); refused")
                if not (m.isfile() or m.isdir()):
                    raise DataError(f"{tar_path}: member '{m.name}' is not a regular file; refused")
            unpacked = sum(m.size for m in members if m.isfile())
            if unpacked > max_bytes:
                raise DataError(f"{tar_path}: would unpack to {unpacked:,} bytes, over the {max_bytes:,} allowed")
            with atomic_directory(dest) as tmp:
                for m in members:
                    target = os.path.join(tmp, *m.name.replace("\\", "/").split("/"))
                    if m.isdir():
                        os.makedirs(target, exist_ok=True)
                        continue
                    os.makedirs(os.path.dirname(target), exist_ok=True)
                    with tar.extractfile(m) as src, open(target, "wb") as out:
                        shutil.copyfileobj(src, out)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"{tar_path}: not a readable checkpoint tar ({e})") from None
    return dest
