"""Each shim of groovae.compat, on the pinned stack."""
import importlib.util
import sys

import numpy as np
import pytest
import tensorflow as tf

from groovae import compat
from tests.conftest import run_python


def test_magentas_lstm_cells_run_through_compat():
    """Shim 1 (Keras 2): magenta's LSTM cells need tf-keras; one step of the encoder's cell runs in a fresh process."""
    proc = run_python(
        "import groovae.compat\n"
        "import numpy as np, tensorflow.compat.v1 as tf\n"
        "from magenta.contrib import rnn  # 'RNNCell is not available with Keras 3' without the shim\n"
        "with groovae.compat.magenta_graph():\n"
        "    cell = rnn.LSTMBlockCell(4)\n"
        "    out, _ = cell(tf.ones([2, 3]), cell.zero_state(2, tf.float32))\n"
        "    with tf.Session() as s:\n"
        "        s.run(tf.global_variables_initializer())\n"
        "        print(s.run(out).shape, type(tf.keras.layers.Layer()).__module__.split('.')[0])\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["(2,", "4)", "tf_keras"]


def test_tf_keras_is_keras_2():
    assert tf.keras.layers.Layer.__module__.startswith("tf_keras")


def test_keras_3_is_refused_with_a_clear_error():
    proc = run_python(
        "import os; os.environ['TF_USE_LEGACY_KERAS'] = '0'\n"
        "import tensorflow as tf; tf.keras.layers.Layer\n"
        "import groovae.compat\n")
    assert proc.returncode != 0
    assert "magenta needs Keras 2" in proc.stderr


def test_np_bool_restored(monkeypatch):
    monkeypatch.delattr(np, "bool", raising=False)  # as on NumPy 1.24-1.26
    compat.restore_np_bool()
    assert np.bool is np.bool_
    from magenta.models.music_vae import data
    assert data.np_onehot([1], 3).dtype == np.bool_  # default dtype=np.bool


def test_optional_module_standins_are_removed_afterwards():
    name = "groovae_test_surely_missing_pkg"
    with compat.optional_module_standins([name, name + ".sub"]) as added:
        assert added == [name, name + ".sub"]
        module = sys.modules[name]
        with pytest.raises(ImportError, match=name):
            module.some_function
        exec(f"from {name} import sub")  # as note_seq does `from IPython import display`
    assert name not in sys.modules and name + ".sub" not in sys.modules


def test_no_fake_modules_linger_after_import():
    for name in compat.NOTE_SEQ_OPTIONAL_MODULES:
        module = sys.modules.get(name)
        assert not isinstance(module, compat._MissingOptionalModule), name
    if importlib.util.find_spec("pandas") is None:
        assert "pandas" not in sys.modules


def test_guarded_unbatch_matches_original_and_handles_zero_width():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    plain = tf.data.Dataset.from_tensors((x, np.arange(2))).unbatch()
    assert [e[1].numpy() for e in plain] == [0, 1]
    empty_controls = np.zeros((2, 3, 0), np.float32)
    guarded = tf.data.Dataset.from_tensors((x, empty_controls)).unbatch()
    elements = list(guarded)
    assert len(elements) == 2
    np.testing.assert_array_equal(elements[1][0].numpy(), x[1])
    assert elements[1][1].shape == (3, 0)


def test_magenta_get_dataset_without_crash(midi_dir, tmp_path):
    """magenta's own input pipeline on a groove config: SIGSEGV without guard_unbatch."""
    proc = run_python(f"""
import glob, groovae.compat, note_seq, tensorflow.compat.v1 as tf
from magenta.models.music_vae import data as mdata
from groovae.configs import load_config
from groovae.data import read_drum_midi
path = {str(tmp_path / "seqs.tfrecord")!r}
with tf.io.TFRecordWriter(path) as w:
    for f in sorted(glob.glob({midi_dir!r} + '/*.mid')):
        w.write(read_drum_midi(f).sequence.SerializeToString())
config = load_config('groovae_tiny')._replace(eval_examples_path=path)
ds = mdata.get_dataset(config, is_training=False)
inputs, outputs, controls, lengths = next(iter(ds))
print('shapes', tuple(inputs.shape), tuple(controls.shape))
""")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "shapes (8, 64, 27) (8, 64, 0)" in proc.stdout


def test_unbatch_still_crashes_without_the_guard():
    """Canary: if a TF upgrade fixes the crash, this fails and the guard can go."""
    proc = run_python(
        "import numpy as np, tensorflow as tf\n"
        "ds = tf.data.Dataset.from_tensors(np.zeros((3, 4, 0), np.float32)).unbatch()\n"
        "print(len(list(ds)))\n")
    assert proc.returncode == -11, (proc.returncode, proc.stderr[-500:])


def test_import_works_when_none_of_the_optional_modules_is_installed():
    """As in the runtime venv (no IPython/pandas/bokeh/librosa/pydub), even if the test venv has some."""
    proc = run_python(
        "import importlib.util, sys\n"
        "real = importlib.util.find_spec\n"
        "hidden = {'librosa', 'pydub', 'bokeh', 'IPython', 'pandas'}\n"
        "importlib.util.find_spec = lambda n, *a: None if n in hidden else real(n, *a)\n"
        "import groovae.compat\n"
        "import note_seq.notebook_utils as nu\n"
        "print('left:', sorted(m for m in hidden if m in sys.modules and not hasattr(sys.modules[m], '__file__')))\n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "left: []" in proc.stdout


def test_magenta_graph_uses_ref_variables_with_unchanged_names():
    from groovae.configs import load_config

    def build(context):
        config = load_config("groovae_tiny")
        with context() as graph:
            hp = config.hparams
            config.model.build(hp, config.data_converter.output_depth, is_training=False)
            x = tf.compat.v1.placeholder(tf.float32, [hp.batch_size, hp.max_seq_len, 27])
            config.model.eval(x, x, tf.fill([hp.batch_size], hp.max_seq_len))
            variables = graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
        return {v.op.name: type(v).__name__ for v in variables}

    ours = build(compat.magenta_graph)
    plain = build(lambda: tf.Graph().as_default())
    assert ours.keys() == plain.keys() and "encoder/mu/kernel" in ours
    # Outside the RNN loops (dense layers, global step) ref variables; inside TF2
    # while-loop bodies TF keeps resource variables.
    assert ours["encoder/mu/kernel"] == ours["decoder/z_to_initial_state/kernel"] == "RefVariable"
    assert set(plain.values()) == {"ResourceVariable"}


NOISE_PROBE = (
    "import os, groovae.compat\n"
    "import tensorflow as tf\n"
    "tf.config.list_physical_devices('GPU')  # CUDA probing: native log lines on a CPU machine\n"
    "os.write(2, b'I0000 00:00:1.2 99 cudart_stub.cc:31] Could not find cuda drivers on your machine\\n')\n"
    "os.write(2, b'E0000 00:00:1.2 99 util.cc:131] oneDNN supports DT_INT32 only on platforms with AVX-512. "
    "Falling back to the default Eigen-based implementation if present.\\n')\n"
    "os.write(2, b'native line kept\\n')\n"
    "raise SystemExit('python error kept')\n")


def test_tf_native_startup_noise_is_dropped():
    proc = run_python(NOISE_PROBE)
    assert "native line kept" in proc.stderr and "python error kept" in proc.stderr
    for noise in ("absl::InitializeLog", "cudart_stub", "cuInit", "oneDNN supports DT_INT32"):
        assert noise not in proc.stderr, proc.stderr


def test_groovae_tf_logs_keeps_the_native_lines(monkeypatch):
    monkeypatch.setenv("GROOVAE_TF_LOGS", "1")
    proc = run_python(NOISE_PROBE)
    assert "cudart_stub.cc:31] Could not find cuda" in proc.stderr
    assert "native line kept" in proc.stderr and "python error kept" in proc.stderr
