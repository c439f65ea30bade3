"""A drum kit for pages that play grooves in the browser: one short WAV per drum class.

Rendered from the General MIDI SoundFont FluidSynth uses for the grooves'
WAVs (the same drum sounds as the listening page; softer notes are scaled
from one velocity, VELOCITY, by the page, which approximates FluidSynth's
own velocity curve), all nine hits in one rendering so that their loudness
stays relative (a hi-hat quieter than the kick); without FluidSynth, a small
synthesized kit, so that the page still plays.  Each sound is cut where it
falls below -60 dB and ends in a short fade.
"""
import io
import os
import tempfile

import numpy as np
import pretty_midi
from scipy.io import wavfile

from groovae import audio

SAMPLE_RATE = 22050  # cymbals need more than the grooves' 16 kHz WAVs
SPACING = 2.5  # seconds between the hits in the one rendering: a crash rings about that long
LONGEST = 2.0  # seconds kept of a sound at most
FADE = 0.02  # seconds of fade-out at a cut
SILENCE_DB = -60.0
VELOCITY = 110  # of the rendered hits: loud, below the top of the velocity range the models play


def rendered_kit(pitches, soundfont=None):
    """[float32 mono array] per pitch, rendered with FluidSynth (at one velocity, one pass)."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for k, pitch in enumerate(pitches):
        drums.notes.append(pretty_midi.Note(velocity=VELOCITY, pitch=int(pitch), start=k * SPACING,
                                            end=k * SPACING + LONGEST))
    midi.instruments.append(drums)
    with tempfile.TemporaryDirectory() as tmp:
        midi_path, wav_path = os.path.join(tmp, "kit.mid"), os.path.join(tmp, "kit.wav")
        midi.write(midi_path)
        audio.render_wav(midi_path, wav_path, sample_rate=SAMPLE_RATE, soundfont=soundfont)
        _, pcm = wavfile.read(wav_path)
    mix = pcm.astype(np.float32) / 32768.0
    hop = int(SPACING * SAMPLE_RATE)
    return [mix[k * hop:k * hop + int(LONGEST * SAMPLE_RATE)] for k in range(len(pitches))]


# (seconds, tone Hz or 0 for noise only, noise share, decay per second) of each class's synthesized sound
SYNTH = {"kick": (0.45, 55.0, 0.05, 9.0), "snare": (0.3, 190.0, 0.7, 14.0), "closed_hh": (0.08, 0.0, 1.0, 60.0),
         "open_hh": (0.5, 0.0, 1.0, 7.0), "low_tom": (0.45, 95.0, 0.15, 8.0), "mid_tom": (0.4, 125.0, 0.15, 9.0),
         "high_tom": (0.35, 165.0, 0.15, 10.0), "crash": (1.6, 0.0, 1.0, 2.2), "ride": (1.2, 0.0, 0.8, 3.0)}


def synthesized_kit(names, seed=0):
    """[float32 mono array] per class name: decaying tones and noise, for machines without FluidSynth."""
    random = np.random.RandomState(seed)
    sounds = []
    for name in names:
        seconds, tone, noise, decay = SYNTH[name]
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        sweep = tone * (1.0 + 1.5 * np.exp(-t * 30.0))  # a drum's pitch drops just after the hit
        body = np.sin(2 * np.pi * np.cumsum(sweep) / SAMPLE_RATE) if tone else 0.0
        hiss = random.uniform(-1, 1, t.size)
        if not tone:  # cymbals: noise without its low end
            hiss = np.diff(hiss, prepend=0.0) / 2
        sounds.append(((1 - noise) * body + noise * hiss) * np.exp(-t * decay) * 0.8)
    return [np.asarray(s, np.float32) for s in sounds]


def trimmed(sound):
    """``sound`` cut after its last sample above SILENCE_DB of its peak, with a FADE-long fade-out."""
    peak = float(np.abs(sound).max()) if sound.size else 0.0
    if not peak:
        return sound[:1]
    loud = np.flatnonzero(np.abs(sound) >= peak * 10 ** (SILENCE_DB / 20))
    fade = int(FADE * SAMPLE_RATE)
    end = min(sound.size, loud[-1] + 1 + fade)
    out = sound[:end].copy()
    n = min(fade, out.size)
    out[out.size - n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return out


def wav_bytes(sound):
    """16-bit mono WAV file bytes of a float sound in [-1, 1]."""
    buffer = io.BytesIO()
    wavfile.write(buffer, SAMPLE_RATE, (np.clip(sound, -1, 1) * 32767).astype(np.int16))
    return buffer.getvalue()


def write_kit(folder, names, pitches, soundfont=None):
    """Writes ``<name>.wav`` per drum class into ``folder``; returns how the kit was made (for the page)."""
    reason = audio.unavailable_reason(soundfont)
    if reason is None:
        font = os.path.basename(audio.find_soundfont(soundfont))
        sounds, made = rendered_kit(pitches, soundfont), f"rendered with FluidSynth ({font})"
    else:
        sounds, made = synthesized_kit(names), f"synthesized ({reason})"
    os.makedirs(folder, exist_ok=True)
    for name, sound in zip(names, sounds):
        with open(os.path.join(folder, name + ".wav"), "wb") as f:
            f.write(wav_bytes(trimmed(sound)))
    return made
