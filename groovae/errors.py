"""Expected failures, each with a message naming the file or setting and the problem; and interrupts.

The CLI prints a GroovaeError as one line and exits 2; any other exception is
a bug and keeps its traceback.  A write that fails (a full disk, an I/O
error; Python's OSError or TensorFlow's error for it) becomes a WriteError
naming the path and what the stage kept (``write_errors``).  SIGTERM becomes
an exception like Ctrl-C's KeyboardInterrupt (``terminate_as_interrupt``), so
that every stage removes its staging on either; the few steps that put a
run's outputs in place make an interrupt wait until they are done
(``interrupts_wait``).
"""
import contextlib
import errno
import os
import signal
import sys
import threading


class GroovaeError(Exception):
    """An expected failure: bad input, a request that cannot be met, an unusable checkpoint."""


class DataError(GroovaeError):
    """Bad input data (MIDI, archives, info.csv, tensor files).

    ``reason`` is the preprocess report's short name for why a file gave no
    windows; each subclass below is one such reason.
    """
    reason = "unreadable"


class NoNotes(DataError):
    """A readable MIDI file without a single note."""
    reason = "no notes"


class NoDrumNotes(DataError):
    """A MIDI file whose notes are all on non-drum tracks."""
    reason = "no drum notes"


class UnmappedPitches(DataError):
    """A MIDI file whose drum notes are mostly pitches outside the drum map (another kit's mapping)."""
    reason = "pitches outside the drum map"


class TempoChanges(DataError):
    """A MIDI file with more than one tempo (its bars have no single length)."""
    reason = "tempo changes"


class ConfigError(GroovaeError):
    """An unknown config or bad hparams."""


class RequestError(GroovaeError):
    """A request that cannot be carried out as asked (flags, options)."""


class PipelineError(GroovaeError):
    """A preprocess runner (the process pool, Beam) that did not account for every input file, or cannot run."""


class TrainError(GroovaeError):
    """A training run cannot start or continue."""


class GenerateError(GroovaeError):
    """A checkpoint, input or request generate cannot use."""


class AudioError(GroovaeError):
    """WAV rendering is impossible here; the message says what to install."""


class WriteError(GroovaeError):
    """A write that failed (full disk, I/O error): the message names the path and what was kept."""


class Terminated(BaseException):
    """SIGTERM (a scheduler, a runtime shutting down) turned into an exception, like KeyboardInterrupt for
    SIGINT: not an error, so not a GroovaeError; the CLI exits with the shell's 143."""
    exit_code = 143


def tf_problem(error):
    """The line of a TensorFlow OpError that says what went wrong (its message also holds the graph's traceback)."""
    lines = [line.strip() for line in str(getattr(error, "message", error)).splitlines() if line.strip()]
    for k, line in enumerate(lines[:-1]):
        if line.startswith("Node:"):  # "Graph execution error: ... Node: 'save/RestoreV2' / <the problem>"
            return lines[k + 1][:300]
    return (lines[0] if lines else type(error).__name__)[:300]


# A write failing with one of these is the disk's or the folder's problem, not a bug: one line, not a traceback.
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS, errno.EFBIG)


def write_failure(error):
    """(path, reason) of a failed write: an OSError with one of WRITE_ERRNOS, or TensorFlow's error for one
    (its message ends '<path>; No space left on device'); None for any other error."""
    if isinstance(error, OSError):
        return (error.filename, error.strerror) if error.errno in WRITE_ERRNOS else None
    tf = sys.modules.get("tensorflow")  # no TensorFlow loaded: none of its errors can be here
    if tf is None or not isinstance(error, tf.errors.OpError):
        return None
    path, _, reason = tf_problem(error).rpartition("; ")
    return (path, reason) if reason in {os.strerror(code) for code in WRITE_ERRNOS} else None


@contextlib.contextmanager
def write_errors(kept):
    """A failed write in the block as one WriteError line: the path, why, and ``kept``, what the stage kept
    (a callable is asked when it happens)."""
    try:
        yield
    except Exception as e:
        failure = write_failure(e)
        if failure is None:
            raise
        path, reason = failure
        raise WriteError(f"{path or '(unnamed file)'}: cannot write ({reason}); "
                         f"{kept() if callable(kept) else kept}") from None


def _main_thread():
    return threading.current_thread() is threading.main_thread()  # Python runs signal handlers there only


@contextlib.contextmanager
def terminate_as_interrupt():
    """SIGTERM raises Terminated in the block (main thread only), so outputs are finished or cleaned up as for Ctrl-C."""
    if not _main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def interrupts_wait():
    """SIGINT or SIGTERM during the block is held until the block is done, then delivered as it would have been.

    For the short steps that put outputs in place (renames, a manifest):
    stopped half-way they would leave a mix of old and new.  The exception
    the held signal raises carries ``committed = True``: the outputs are
    the new ones.  If the block fails, its own exception wins.
    """
    if not _main_thread():
        yield
        return
    held = []
    previous = {signum: signal.signal(signum, lambda signum, frame: held.append(signum)) for signum in INTERRUPTS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)  # None: set outside Python
    if held:
        try:
            signal.raise_signal(held[0])  # the restored handler acts on it now (a default one ends the process)
        except BaseException as e:
            e.committed = True
            raise

