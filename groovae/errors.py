"""Expected failures, each with a message naming the file or setting and the problem.

The CLI prints a GroovaeError as one line and exits 2; any other exception is
a bug and keeps its traceback.
"""


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


class TrainError(GroovaeError):
    """A training run cannot start or continue."""


class GenerateError(GroovaeError):
    """A checkpoint, input or request generate cannot use."""


class AudioError(GroovaeError):
    """WAV rendering is impossible here; the message says what to install."""


class Terminated(BaseException):
    """SIGTERM (a scheduler, a runtime shutting down) turned into an exception, like KeyboardInterrupt for
    SIGINT: not an error, so not a GroovaeError; the CLI exits with the shell's 143."""
    exit_code = 143
