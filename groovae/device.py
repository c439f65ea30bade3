"""Where and how TensorFlow computes: the device it sees, and the precision and session settings to train with.

A shared layer below train (and the notebooks' environment line, the
training benchmark): plain functions over the CPU's flags and TF's devices.
"""
import os

from groovae import compat  # noqa: F401  (first: shims and the stderr filter before TensorFlow loads)

import tensorflow.compat.v1 as tf  # noqa: E402
from tensorflow.core.protobuf import rewriter_config_pb2  # noqa: E402


def describe_device():
    """Which device TF will train on, e.g. 'GPU:0 (NVIDIA T4)' or 'CPU (no GPU visible)'."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return f"CPU ({os.cpu_count()} cores; no GPU visible to TensorFlow)"
    details = tf.config.experimental.get_device_details(gpus[0])
    return f"GPU:0 ({details.get('device_name', 'unknown')}), {len(gpus)} GPU(s) visible"


PRECISIONS = ("auto", "fp32", "bf16")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # bfloat16 matrix units; without them bf16 runs no faster


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU's feature flags as a set (Linux); empty where the file is absent."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def choose_precision(requested="auto", gpu=None, flags=None):
    """(precision, why) to train with: 'bf16' only where it measured faster, else 'fp32'.

    bf16 here is oneDNN's automatic mixed-precision rewrite: variables,
    checkpoints and the loss stay fp32.  It pays only on CPUs with bfloat16
    matrix units (AVX512-BF16, AMX): 1.29x faster than fp32 on an EPYC with
    AVX512-BF16, no faster on CPUs without (benchmarks/bench_train.py).
    On a GPU TF trains in fp32 (TF32 matmuls on GPUs that have them); its
    fp16 rewrite would need loss scaling that magenta's graph lacks.
    """
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if gpu is None:
        gpu = bool(tf.config.list_physical_devices("GPU"))
    if requested == "fp32":
        return "fp32", "asked for"
    if gpu:
        return "fp32", f"{'bf16 asked for, but ' if requested == 'bf16' else ''}on a GPU TF trains in fp32 (TF32 where the GPU has it)"
    units = sorted(set(BF16_CPU_FLAGS) & (cpu_flags() if flags is None else flags))
    if units:
        return "bf16", f"this CPU has bfloat16 units ({', '.join(units)})"
    if requested == "bf16":
        return "fp32", "bf16 asked for, but this CPU has no AVX512-BF16/AMX units, where bf16 runs no faster"
    return "fp32", "this CPU has no AVX512-BF16/AMX units"


def session_config(precision="fp32", fast_start=False):
    """ConfigProto.  ``precision='bf16'`` turns on oneDNN's automatic bfloat16 rewrite.

    (TF applies that rewrite only on CPUs with bf16 support; elsewhere it is
    silently skipped, which is why choose_precision says so first.)
    ``fast_start`` skips grappler's graph rewrites, which took ~9 s of a
    training graph's first step and gained nothing per step (CPU time per
    step equal within noise, benchmarks/bench_train.py).  Not with bf16,
    whose rewrite is a grappler pass; not for generation, whose outputs are
    compared bit for bit.
    """
    config = tf.ConfigProto()
    if precision == "bf16":
        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = (
            rewriter_config_pb2.RewriterConfig.ON)
    elif fast_start and not tf.config.list_physical_devices("GPU"):  # measured on CPUs only
        config.graph_options.rewrite_options.disable_meta_optimizer = True
    return config
