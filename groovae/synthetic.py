"""Small synthetic drum grooves (pretty_midi) for tests and the smoke demo.

Not music-ML data: a few rock/funk-like 4/4 patterns with humanised velocities
and micro-timing, enough to exercise every stage without the Groove MIDI
Dataset.
"""
import os

import numpy as np
import pretty_midi

KICK, SNARE, CLOSED_HAT, OPEN_HAT, RIDE, CRASH = 36, 38, 42, 46, 51, 49

# 16-step bar patterns: pitch -> steps with a hit.
PATTERNS = (
    {KICK: (0, 8), SNARE: (4, 12), CLOSED_HAT: tuple(range(0, 16, 2))},
    {KICK: (0, 3, 8, 10), SNARE: (4, 12), CLOSED_HAT: tuple(range(16))},
    {KICK: (0, 6, 10), SNARE: (4, 12, 15), OPEN_HAT: (2, 6, 10, 14), CLOSED_HAT: (0, 4, 8, 12)},
    {KICK: (0, 8, 11), SNARE: (4, 12), RIDE: tuple(range(0, 16, 2))},
)


def make_groove(bars=8, bpm=120.0, seed=0, pattern=None, timing_jitter_steps=0.15):
    """A PrettyMIDI drum groove of ``bars`` 4/4 bars at ``bpm``."""
    rng = np.random.RandomState(seed)
    pattern = PATTERNS[seed % len(PATTERNS)] if pattern is None else pattern
    step = 60.0 / bpm / 4  # a 16th note
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    for bar in range(bars):
        for pitch, steps in pattern.items():
            for s in steps:
                if rng.rand() < 0.05:  # an occasional dropped hit
                    continue
                accent = 1.0 if s % 4 == 0 else 0.75
                velocity = int(np.clip(rng.normal(100 * accent, 10), 20, 127))
                start = (bar * 16 + s + rng.uniform(-timing_jitter_steps, timing_jitter_steps)) * step
                start = max(start, 0.0)
                drums.notes.append(pretty_midi.Note(velocity, pitch, start, start + step / 2))
    if bars > 1:  # a crash on the last bar's downbeat, like a fill ending
        drums.notes.append(pretty_midi.Note(110, CRASH, (bars - 1) * 16 * step, (bars - 1) * 16 * step + step))
    pm.instruments.append(drums)
    return pm


def write_grooves(out_dir, n=8, bars=8, bpm=120.0, seed=0):
    """Writes ``n`` groove MIDI files into ``out_dir``; returns their paths."""
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i in range(n):
        path = os.path.join(out_dir, f"groove_{i:03d}.mid")
        make_groove(bars=bars, bpm=bpm, seed=seed + i).write(path)
        paths.append(path)
    return paths


def make_beat(bars=8, bpm=100.0, pattern=None, velocity=100, program_channel=None):
    """A drum-machine beat: ``pattern`` (default PATTERNS[0]) on the exact 16th grid at one velocity.

    ``program_channel``: put it on a melodic track instead of the drum channel
    (as a beat exported on channel 1), to be read with --drum_channel.
    """
    pattern = PATTERNS[0] if pattern is None else pattern
    step = 60.0 / bpm / 4
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    drums = pretty_midi.Instrument(program=0, is_drum=program_channel is None, name="beat")
    drums.notes = [pretty_midi.Note(velocity, pitch, (bar * 16 + s) * step, (bar * 16 + s + 0.5) * step)
                   for bar in range(bars) for pitch, steps in pattern.items() for s in steps]
    pm.instruments.append(drums)
    return pm


def make_taps(bars=4, bpm=100.0, steps=(0, 3, 6, 8, 10, 12, 14), pitch=40, program=33):
    """A rhythm tapped on one key of a melodic instrument (a bass, program 33), the same every bar."""
    step = 60.0 / bpm / 4
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    bass = pretty_midi.Instrument(program=program, name="taps")
    bass.notes = [pretty_midi.Note(90, pitch, (bar * 16 + s) * step, (bar * 16 + s + 1) * step)
                  for bar in range(bars) for s in steps]
    pm.instruments.append(bass)
    return pm


def quantized(path, velocity=100):
    """A PrettyMIDI of a drum MIDI file's drum notes snapped to the 16th grid at one velocity, at its tempo."""
    source = pretty_midi.PrettyMIDI(path)
    bpm = source.get_tempo_changes()[1][0] if len(source.get_tempo_changes()[1]) else 120.0
    step = 60.0 / bpm / 4
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="quantized")
    onsets = {(max(0, int(round(n.start / step))), n.pitch) for i in source.instruments if i.is_drum for n in i.notes}
    drums.notes = [pretty_midi.Note(velocity, pitch, s * step, (s + 0.5) * step) for s, pitch in sorted(onsets)]
    pm.instruments.append(drums)
    return pm
