"""Shims that let magenta 2.1.4 and note-seq 0.0.5 run on today's TF / NumPy.

Import this module before tensorflow, magenta or note_seq (every groovae module that needs them
does it).  Each shim says why it exists and which upstream behaviour it
restores; tests/test_compat.py covers each one.
"""
import atexit
import contextlib
import importlib.util
import io
import os
import re
import sys
import threading
import types

# 1. Keras 2 for tf.compat.v1 code.
# Why: TF >= 2.16 ships Keras 3, where magenta/contrib/rnn.py fails with
# "RNNCell is not available with Keras 3".  The tf-keras package is Keras 2;
# TF_USE_LEGACY_KERAS=1 makes tf.keras resolve to it, restoring the Keras
# that magenta was written against (TF 2.9).  It must be set before TF loads.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide C++ INFO/WARNING spam

# 0. TensorFlow's native start-up lines (absl pre-init warning, CUDA probing,
# CPU-feature notes) are written straight to file descriptor 2 before
# TF_CPP_MIN_LOG_LEVEL takes effect, so every command opened with a dozen
# lines of noise.  Those lines, and only those, are dropped; GROOVAE_TF_LOGS=1
# keeps them.
NATIVE_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|(cudart_stub|cuda_platform|cuda_executor|cuda_dnn|cuda_fft|cuda_blas|cuda_diagnostics"
    r"|computation_placer|cpu_feature_guard|port)\.cc:\d+\]"
    r"|oneDNN custom operations are on|TF-TRT Warning"
    r"|oneDNN supports DT_INT32 only on platforms with AVX-512")  # util.cc, at the first training step on some CPUs

# note_seq imports these at import time, only for its audio and notebook
# helpers (audio_io, notebook_utils), which this project does not use.
NOTE_SEQ_OPTIONAL_MODULES = (
    "librosa", "pydub", "bokeh", "bokeh.plotting", "IPython", "IPython.display",
    "pandas")


def check_legacy_keras():
    """Fails clearly if tf.keras is Keras 3 (TF used before this module)."""
    import tensorflow as tf
    keras_module = tf.keras.layers.Layer.__module__
    if not keras_module.startswith("tf_keras"):
        raise ImportError(
            f"tf.keras is {keras_module.split('.')[0]} (Keras 3); magenta needs Keras 2 (tf-keras): "
            "set TF_USE_LEGACY_KERAS=1 before importing tensorflow, or import groovae.compat first")


def restore_np_bool():
    """2. ``np.bool``.

    Why: magenta's music_vae/data.py (GrooveConverter among others) and
    note_seq's pianoroll_lib use ``np.bool``, removed in NumPy 1.24 and
    re-added as an alias of ``np.bool_`` in NumPy 2.0.  Restores the alias on
    any NumPy, i.e. the behaviour magenta's pinned NumPy 1.21 had.
    """
    import numpy as np
    if not hasattr(np, "bool"):
        np.bool = np.bool_


class _MissingOptionalModule(types.ModuleType):
    """Stand-in whose every attribute access names the missing package."""

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise ImportError(
            f"{self.__name__}.{attr}: '{self.__name__}' is not installed; "
            "note_seq's audio/notebook helpers that need it are not used by groovae")


@contextlib.contextmanager
def optional_module_standins(names=NOTE_SEQ_OPTIONAL_MODULES):
    """3. Import-time stand-ins for note_seq's optional dependencies.

    Why: note_seq 0.0.5 imports librosa, pydub, bokeh, IPython and pandas when
    ``note_seq`` is imported, although only audio_io/notebook_utils use them.
    Installing them would add numba/llvmlite (no wheels for the versions
    note_seq wants) and hundreds of MB.  Stand-ins are placed in sys.modules
    for the packages that are really missing and removed afterwards: a
    lingering fake ``pandas`` makes Keras/TF take it for the real one and
    break.  Restores ``import note_seq`` succeeding, as with its full deps.
    """
    added = []
    for name in names:
        top = name.split(".")[0]
        if name in sys.modules:
            continue
        if top in added or importlib.util.find_spec(top) is None:
            sys.modules[name] = _MissingOptionalModule(name)
            added.append(name)
            parent, _, child = name.rpartition(".")
            if parent in added:  # so that `from IPython import display` works
                setattr(sys.modules[parent], child, sys.modules[name])
    try:
        yield added
    finally:
        for name in added:
            sys.modules.pop(name, None)


class _NativeStderrFilter:
    """Drops NATIVE_NOISE lines written to fd 2; everything else passes through.

    fd 2 becomes a pipe read by a daemon thread that forwards lines to the
    original stderr.  Python's own ``sys.stderr`` (tracebacks, progress bars
    that redraw with \\r) is pointed straight at the original stderr, so it
    is neither delayed nor reordered.
    """

    def __init__(self):
        self.original = os.dup(2)
        read_end, write_end = os.pipe()
        if isinstance(sys.stderr, io.TextIOWrapper) and _fileno(sys.stderr) == 2:
            sys.stderr.flush()
            sys.stderr = io.TextIOWrapper(os.fdopen(os.dup(self.original), "wb", buffering=0),
                                          encoding=sys.stderr.encoding, errors="backslashreplace",
                                          line_buffering=True)
        os.dup2(write_end, 2)
        os.close(write_end)
        self.thread = threading.Thread(target=self._forward, args=(read_end,), daemon=True)
        self.thread.start()
        atexit.register(self.close)

    def _forward(self, read_end):
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not NATIVE_NOISE.search(line.decode(errors="replace")):
                    os.write(self.original, line)

    def close(self):
        """Puts the original stderr back on fd 2 and flushes what is in the pipe."""
        if self.thread is not None:
            os.dup2(self.original, 2)  # closes our pipe's last write end: the thread sees EOF
            self.thread.join(timeout=2)
            self.thread = None


def _fileno(stream):
    try:
        return stream.fileno()
    except (OSError, ValueError, AttributeError):
        return None


_native_filter = None


def filter_native_stderr():
    """Starts dropping TF's native start-up noise from fd 2 (once per process)."""
    global _native_filter
    if _native_filter is None and os.environ.get("GROOVAE_TF_LOGS", "") in ("", "0"):
        _native_filter = _NativeStderrFilter()
    return _native_filter


def _has_zero_size_inner_dim(dataset):
    import tensorflow as tf
    for spec in tf.nest.flatten(dataset.element_spec):
        shape = getattr(spec, "shape", None)
        if shape is not None and shape.rank and 0 in shape.as_list()[1:]:
            return True
    return False


def guard_unbatch():
    """4. ``tf.data.Dataset.unbatch`` on tensors with a zero-size inner dim.

    Why: on TF 2.15-2.21 ``unbatch()`` kills the interpreter with SIGSEGV
    (native crash in batch_util::MaybeMoveSliceToElement) when an element has
    a zero-size dimension after the batch one.  magenta's
    ``data.get_dataset`` unbatches a controls tensor of shape [n, len, 0] for
    every config without controls (all groove configs), so magenta's own
    training/eval input pipeline crashes.  For such datasets the patched
    method splits elements with ``flat_map(from_tensor_slices)``, which gives
    the same elements without the crash (TF 2.9's behaviour); other datasets
    take the original code path.  groovae's own input pipeline never
    creates zero-width controls in the first place (groovae.data).
    """
    import tensorflow as tf
    dataset_cls = tf.data.Dataset
    if getattr(dataset_cls.unbatch, "_groovae_guarded", False):
        return
    original = dataset_cls.unbatch

    def unbatch(self, name=None):
        if _has_zero_size_inner_dim(self):
            return self.flat_map(
                lambda *parts: tf.data.Dataset.from_tensor_slices(
                    parts[0] if len(parts) == 1 else parts))
        return original(self, name=name)

    unbatch._groovae_guarded = True
    unbatch.__doc__ = original.__doc__
    dataset_cls.unbatch = unbatch


@contextlib.contextmanager
def magenta_graph():
    """5. A new default graph with TF1 (ref) variables, as magenta's tools use.

    Why: magenta's entry points (music_vae_train, music_vae_generate) call
    ``tf.disable_v2_behavior()``, under which variables are ref variables.
    With TF2's default resource variables a groovae_4bar training step at
    batch 512 takes ~7.0 s instead of ~6.0 s on this project's 2-core CPU.
    Restores ref variables for the graphs built inside (except those created
    in RNN loop bodies, which TF2 control flow keeps as resource variables;
    that part does not matter for speed here), without disabling eager
    execution for the rest of the process.  Variable names, and so
    checkpoints, are the same either way.
    """
    import tensorflow.compat.v1 as tf1
    with tf1.Graph().as_default() as graph, tf1.variable_scope(tf1.get_variable_scope(), use_resource=False):
        yield graph


def quiet_logs():
    """TF1-era deprecation chatter drowns the progress bars; keep errors only."""
    import warnings
    import tensorflow as tf
    tf.get_logger().setLevel("ERROR")
    warnings.filterwarnings("ignore", message=r".*is deprecated.*", category=UserWarning)


def install():
    """Applies every shim and imports magenta's music_vae; idempotent."""
    filter_native_stderr()  # before TensorFlow prints anything
    check_legacy_keras()  # before magenta, whose import fails obscurely on Keras 3
    restore_np_bool()
    with optional_module_standins():
        import note_seq  # noqa: F401
        import magenta.models.music_vae  # noqa: F401
    guard_unbatch()
    quiet_logs()


install()
