"""Taking a trained model out of its run: a weights-only checkpoint folder to commit or share.

``export_checkpoint`` writes the variables magenta's ``TrainedModel`` restores
(the config's inference variables, ``global_step`` included), float32 and bit
for bit as trained, without the optimizer's slots (which triple a run's
checkpoint), beside the run's ``run.json`` (so the folder knows its model),
``metrics.csv`` and ``training_summary.json``.  Such a folder is a run dir
of its own: ``--checkpoint``, ``--init_from`` and ``regenerate`` take it as
they take any run.  The project's own models are committed this way in
``checkpoints/<config>/``.
"""
import json
import os

from groovae import compat  # first: shims and the stderr filter before TensorFlow loads

import tensorflow.compat.v1 as tf  # noqa: E402

from groovae import checkpoints, files, prior, runs  # noqa: E402
from groovae.errors import GroovaeError, write_errors  # noqa: E402
from groovae.model import check_checkpoint, model_variables  # noqa: E402

SUMMARY = "training_summary.json"


def export_checkpoint(prefix, output_dir, config=None, hparams=None, source=None):
    """Writes ``prefix``'s weights-only copy into ``output_dir`` (replaced whole); returns the new prefix.

    ``config``/``hparams`` are needed only where no run.json lies beside the
    checkpoint (e.g. the public one).  ``source`` is how the checkpoint was
    asked for, recorded in run.json (default: its file name).  An
    ``output_dir`` that exists must be an earlier export (it holds
    run.json and a checkpoint); anything else is refused untouched.
    """
    config, hparams = runs.model_of(prefix, config, hparams)
    files.check_replaceable(output_dir, _is_export, "export")
    wanted = model_variables(config, hparams or None)
    check_checkpoint(config, prefix, wanted)
    values = checkpoints.read_checkpoint_values(prefix, sorted(wanted))
    step = int(values["global_step"]) if "global_step" in values else checkpoints.step_of(prefix) or 0
    run_dir = runs.run_dir_of(prefix)
    with write_errors(f"nothing written, {output_dir} as before"), files.atomic_directory(output_dir) as staging:
        saved = _save_variables(values, runs.save_prefix(staging), step)
        info = dict(runs.read_run_info(run_dir)) if run_dir else {"config": config, "hparams": _hparams_values(config, hparams)}
        info["weights_from"] = {"checkpoint": source or os.path.basename(prefix),
                                "sha256": checkpoints.checkpoint_sha256(prefix), "step": step}
        _copy_prior(prefix, saved, info)
        if run_dir:
            _move_init_from(info, run_dir, output_dir)
        runs.write_run_info(staging, info)
        if run_dir:
            _copy_history(run_dir, prefix, staging, info.get("init_from"))
        name = os.path.basename(saved)
    return os.path.join(output_dir, name)


def _copy_prior(prefix, saved, info):
    """The checkpoint's data prior (groovae fit-prior), if it has one, beside the copy; run.json's record follows."""
    info.pop("prior", None)  # a run's record may name another of its checkpoints
    path = prior.carry_prior(prefix, saved)
    if path:
        info["prior"] = {"file": os.path.basename(path), "sha256": files.sha256_of(path)}


def _move_init_from(info, run_dir, output_dir):
    """run.json's --init_from path, relative to the run dir, made relative to the copy (e.g. the committed flat
    model seen from checkpoints/groovae_4bar_humanize: ../groovae_4bar/...); 'public' and URLs stay."""
    init = info.get("init_from")
    if init and init.get("checkpoint") and init["checkpoint"] != "public" and not files.is_url(init["checkpoint"]) \
            and not os.path.isabs(init["checkpoint"]):
        where = os.path.normpath(os.path.join(os.path.abspath(run_dir), init["checkpoint"]))
        info["init_from"] = {**init, "checkpoint": os.path.relpath(where, os.path.abspath(output_dir))}


def _is_export(folder):
    try:
        return "weights_from" in (runs.read_run_info(folder) or {})
    except GroovaeError:
        return False


def _save_variables(values, save_prefix, step):
    """A checkpoint holding exactly ``values`` ({name: array}) under their names; returns its prefix."""
    with compat.magenta_graph():
        variables = {name: tf.Variable(tf.zeros(value.shape, tf.as_dtype(value.dtype)), name=name.replace("/", "_"),
                                       trainable=False)
                     for name, value in values.items()}
        saver = tf.train.Saver(var_list=variables, save_relative_paths=True)
        with tf.Session() as session:
            session.run(tf.variables_initializer(list(variables.values())))
            for name, variable in variables.items():
                variable.load(values[name], session)
            return saver.save(session, save_prefix, global_step=step, write_meta_graph=False)


def _hparams_values(config, hparams):
    from groovae.configs import load_config
    return load_config(config, hparams or None).hparams.values()


def _copy_history(run_dir, prefix, staging, init_from):
    """metrics.csv up to the exported step, and the training summary at that step (naming the start point as the
    copy's run.json does)."""
    rows = runs.curve_of(prefix)
    if rows:
        runs.write_metrics(staging, rows)
    summary = {**runs.summarize_run(run_dir, checkpoint=prefix), "init_from": init_from}
    files.atomic_write(os.path.join(staging, SUMMARY),
                       lambda f: f.write(json.dumps(summary, indent=1) + "\n"), mode="w")
