"""Stage 3b: your beat, played by a drummer: humanize, groove transfer and drumify, 4 bars at a time.

GrooVAE's inverse-sequence models (Gillick et al. 2019) take a transformed
performance in and the performance out:

* **humanize** (``groovae_4bar_humanize``): a beat, quantized and at one
  velocity or not, in; the velocities and micro-timing a drummer would play
  out.  Feels come from the posterior of the beat's code: z = mu + T * sigma * eps.
* **transfer** (``groovae_4bar_hits_control``): the beat's hits are the
  decoder's controls, so the beat keeps every hit; the latent code, the
  feel, is a reference performance's (``--like``: groove transfer) or, with
  no reference, drawn from the prior (``--keep_hits``: z = T * eps).
* **drumify** (``groovae_4bar_tap2drum``): any rhythm (a tapped line, a
  bassline, one drum; any channel or pitch: every onset is a tap) in, a
  drum performance out.

A beat longer than 4 bars is cut into 4-bar windows (the last one overlapping
the one before when the length is not a multiple of 4), each is played, and
they are joined back into one file as long as the input, at its tempo.
"""
import collections
import copy
import os
import shutil

import numpy as np

from groovae import audio, checkpoints, data, files, plots
from groovae.errors import GenerateError
from groovae.model import check_temperature, perform
from groovae.outputs import CONVERTER_QPM, audio_choice, record_run, run_prefix, to_sequence, write_grooves

MODES = {"humanize": "groovae_4bar_humanize", "transfer": "groovae_4bar_hits_control",
         "drumify": "groovae_4bar_tap2drum"}
TRANSFORMS = {"humanize": "_humanize", "transfer": "_hits_as_controls", "drumify": "_tapify"}  # the converter's flag
STEPS_PER_BAR, WINDOW_BARS = 16, 4
WINDOW = STEPS_PER_BAR * WINDOW_BARS
TAP_PITCH = 46  # an onset of a rhythm to drumify becomes an open hi-hat note (tapify squashes every drum there)
MAX_BARS = 1000

Beat = collections.namedtuple("Beat", "name sequence bpm bars")
Beat.__doc__ = "A user's MIDI as the models read it: drum NoteSequence, its tempo and its length in whole bars."


def read_beat(path, drum_map=None, drum_channel=None, taps=False):
    """The Beat of a MIDI file; GenerateError in one line if no model can play it.

    ``taps``: every note of every track is an onset (drumify), else only the
    drum notes (data.drum_midi's rule).  Its length runs to the end of the
    last note read (a rhythm's held notes included).  Refused: no notes, more than one
    tempo, a meter other than 4/4, shorter than 4 bars.
    """
    try:
        _, sequence, _, end_time = (data.read_taps(path, TAP_PITCH) if taps
                                    else data.read_drum_midi(path, drum_map, drum_channel))
    except data.DataError as e:
        raise GenerateError(str(e)) from None
    if not sequence.notes:
        raise GenerateError(f"{path}: no notes" + ("" if taps else " on the drum channel"))
    tempos = {round(t.qpm, 3) for t in sequence.tempos} or {CONVERTER_QPM}
    if len(tempos) > 1:
        raise GenerateError(f"{path}: {len(tempos)} tempos ({', '.join(f'{t:g}' for t in sorted(tempos))} bpm); "
                            f"a beat needs one (its bars must have one length)")
    meters = {(ts.numerator, ts.denominator) for ts in sequence.time_signatures} or {(4, 4)}
    if meters != {(4, 4)}:
        shown = ", ".join(f"{n}/{d}" for n, d in sorted(meters))
        raise GenerateError(f"{path}: time signature {shown}; the models' bars are 4/4 (16 sixteenth steps)")
    bpm = tempos.pop()
    bar_seconds = 4 * 60.0 / bpm
    end = max(end_time, max(n.start_time for n in sequence.notes) + 1e-6)
    bars = int(np.ceil(end / bar_seconds - 0.01))  # a file that ends a hair past the bar line is still N bars
    if bars < WINDOW_BARS:
        raise GenerateError(f"{path}: {bars} bar{'s' if bars != 1 else ''} at {bpm:g} bpm; the models play "
                            f"{WINDOW_BARS}-bar windows (a beat needs at least {WINDOW_BARS} bars)")
    if bars > MAX_BARS:
        raise GenerateError(f"{path}: {bars} bars; at most {MAX_BARS}")
    return Beat(os.path.basename(path), sequence, bpm, bars)


# ---------------------------------------------------------------- windows

def whole_tensors(sequence, converter, steps):
    """The converter's tensors of a whole sequence, [steps, depth] each, zero-padded to ``steps``.

    magenta's converter drops a last window shorter than its 4 bars, so it is
    run with no windows at all (``_split_bars`` None: one tensor of every bar
    up to the last onset) and the bars after the last onset are silence.
    """
    whole = copy.copy(converter)
    whole._split_bars = None
    whole.set_mode("eval")
    converted = whole.to_tensors(sequence)
    if not converted.outputs:
        raise GenerateError("the beat gives no tensors (no hits on the 16th-note grid of its bars)")
    arrays = {"inputs": converted.inputs[0], "outputs": converted.outputs[0]}
    if converter.control_depth:
        arrays[data.CONTROLS] = converted.controls[0]
    return {k: np.pad(np.asarray(v, np.float32)[:steps], [(0, steps - min(len(v), steps)), (0, 0)])
            for k, v in arrays.items()}


def window_starts(steps):
    """First step of each 4-bar window: every 64 steps, the last one ending where the beat ends."""
    starts = list(range(0, steps - WINDOW + 1, WINDOW))
    if starts[-1] + WINDOW < steps:
        starts.append(steps - WINDOW)
    return starts


def cut(arrays, starts):
    """{name: [windows, 64, depth]} of whole-beat arrays."""
    return {k: np.stack([v[s:s + WINDOW] for s in starts]) for k, v in arrays.items()}


def join(windows, starts, steps):
    """One [steps, depth] tensor of window tensors: each window adds the steps after the one before."""
    out = np.zeros((steps,) + windows.shape[2:], windows.dtype)
    covered = 0
    for window, start in zip(windows, starts):
        out[covered:start + WINDOW] = window[covered - start:]
        covered = start + WINDOW
    return out


# ---------------------------------------------------------------- the three modes

def play(model, beat, n=1, temperature=0.5, seed=0, like=None, window=None):
    """``n`` performances [n, steps, 27] of ``beat`` by ``model``; with ``like`` (a Beat), its feel on the beat's hits.

    Without ``like``: each window played as model.perform plays it (a
    hits-control model: feels from its prior).  With ``like`` (a hits-control
    model): each window's z is the posterior mean of the reference's window at
    the same place (its windows repeat when it is shorter), decoded with the
    beat's hits.
    ``window`` plays only that 4-bar window.  Returns (performances, window starts).
    """
    check_temperature(temperature)
    if not 1 <= n <= 100:
        raise GenerateError(f"n must be 1..100, got {n}")
    steps = beat.bars * STEPS_PER_BAR
    arrays = whole_tensors(beat.sequence, model.converter, steps)
    starts = window_starts(steps)
    if window is not None:  # one window: the 4 bars from starts[window]
        if not 0 <= window < len(starts):
            raise GenerateError(f"{beat.name}: window {window} out of range 0..{len(starts) - 1}")
        arrays = {k: v[starts[window]:starts[window] + WINDOW] for k, v in arrays.items()}
        steps, starts = WINDOW, [0]
    windows = cut(arrays, starts)
    if like is not None:
        return join(_transfer(model, windows, like, temperature, seed), starts, steps)[None], starts
    decoded = perform(model, windows["inputs"], windows.get(data.CONTROLS), n, temperature, seed)
    return np.stack([join(feel, starts, steps) for feel in decoded]), starts


def _transfer(model, windows, like, temperature, seed):
    if not model.has_controls:
        raise GenerateError(f"--like needs a hits-as-controls model (groovae_4bar_hits_control), not "
                            f"{model.config_name}")
    steps = like.bars * STEPS_PER_BAR
    reference = cut(whole_tensors(like.sequence, model.converter, steps), window_starts(steps))
    mu = model.encode(reference["inputs"], seed, reference[data.CONTROLS])
    return np.stack([model.decode(mu[i % len(mu)][None], temperature, seed, control=control)[0]
                     for i, control in enumerate(windows[data.CONTROLS])])


# ---------------------------------------------------------------- a run: files + manifest entry

def beat_run(mode, model, path, out_dir, n=4, temperature=0.5, seed=0, like=None, window=None, source=None,
             wav=True, png=True, drum_map=None, drum_channel=None, prefix=None, names=None):
    """One humanize / transfer / drumify run into ``out_dir``: the beat (and reference) and its performances.

    Files: ``<prefix>_input.mid`` (a copy of the beat, with its WAV and drum
    roll; ``_like`` for the reference), ``<prefix>_NN.mid/.wav/.png`` per
    performance; the entry in manifest.json names the copies, so
    ``regenerate`` rebuilds the run from the folder alone.  ``drum_map`` is
    {pitch: class} (data.read_drum_map); ``names`` {role: file name} (default:
    the inputs' own) are how the page and drum rolls name the inputs.
    Returns the entry.
    """
    if mode not in MODES:
        raise GenerateError(f"unknown mode '{mode}'; one of {', '.join(MODES)}")
    if like is not None and mode != "transfer":
        raise GenerateError(f"{mode} takes no reference performance (--like): groove transfer does")
    beat = read_beat(path, drum_map, drum_channel, taps=mode == "drumify")
    reference = read_beat(like, drum_map, drum_channel) if like else None
    if not getattr(model.converter, TRANSFORMS[mode], False):
        raise GenerateError(f"{model.checkpoint}: a '{model.config_name}' model; {mode} needs one trained on that "
                            f"transform ({MODES[mode]} or a config like it)")
    names = names or {"input": os.path.basename(path), "like": like and os.path.basename(like)}
    performances, _ = play(model, beat, 1 if like else n, temperature, seed, reference, window)
    inputs = [(path, "input")] + ([(like, "like")] if like else [])
    checkpoint_hash = checkpoints.checkpoint_sha256(model.checkpoint)
    drums = data.drums_record(drum_map, drum_channel)
    prefix = prefix or run_prefix(mode, temperature, seed, {
        "config": model.config_name, "hparams": model.hparams or "", "checkpoint": checkpoint_hash, "n": n,
        "window": window, "inputs": [files.sha256_of(p) for p, _ in inputs], **drums})
    records = [{"path": f"{prefix}_{role}.mid", "name": names[role], "sha256": files.sha256_of(p),
                "role": role} for p, role in inputs]
    wav, no_wav_reason = audio_choice(wav)
    entry = {"mode": mode, "config": model.config_name, "hparams": model.hparams or "",
             "checkpoint": checkpoints.portable_name(source, model.checkpoint, out_dir),
             "checkpoint_sha256": checkpoint_hash, "checkpoint_step": checkpoints.step_of(model.checkpoint),
             "temperature": temperature, "seed": seed, "n": len(performances), "window": window,
             "bpm": beat.bpm, "bars": len(performances[0]) // STEPS_PER_BAR, "inputs": records, **drums,
             "prefix": prefix, "wav": wav, "no_wav_reason": no_wav_reason, "png": png}

    def write(staging):
        names_written = []
        for (original, role), beat_of in zip(inputs, [beat, reference]):  # the inputs as they came, and as read
            copy_path = os.path.join(staging, f"{prefix}_{role}.mid")
            shutil.copyfile(original, copy_path)
            names_written.append(os.path.basename(copy_path))
            if wav:
                names_written.append(os.path.basename(audio.render_wav(copy_path, copy_path[:-4] + ".wav")))
            if png:
                steps = beat_of.bars * STEPS_PER_BAR
                roll = whole_tensors(beat_of.sequence, model.converter, steps)["outputs"]
                names_written.append(os.path.basename(plots.save_figure(
                    plots.drum_roll(roll, title=names[role]), copy_path[:-4] + ".png")))
        grooves = [(f"{prefix}_{k:02d}", to_sequence(model.converter, performance, beat.bpm), performance)
                   for k, performance in enumerate(performances)]
        return names_written + write_grooves(grooves, staging, wav, png)
    return record_run(out_dir, entry, write)


def regenerate(entry, out_dir, manifest_dir, model):
    """Re-runs a humanize / transfer / drumify entry into ``out_dir`` from the inputs copied beside its manifest."""
    paths, names = {}, {}
    for record in entry["inputs"]:
        path = os.path.join(manifest_dir, record["path"])
        if not os.path.isfile(path) or files.sha256_of(path) != record["sha256"]:
            raise GenerateError(f"{path}: input missing or changed since the manifest was written")
        paths[record["role"]], names[record["role"]] = path, record.get("name")
    return beat_run(entry["mode"], model, paths["input"], out_dir, entry["n"], entry["temperature"], entry["seed"],
                    like=paths.get("like"), window=entry.get("window"), source=None, wav=entry["wav"],
                    png=entry["png"], prefix=entry["prefix"], names=names, **data.drums_of_record(entry))
