"""WAV rendering of drum MIDI with FluidSynth and a General MIDI SoundFont.

Uses the ``fluidsynth`` program (Debian: ``apt-get install fluidsynth
fluid-soundfont-gm``) rather than Python bindings: offline rendering needs no
audio device, and the output is deterministic for a given MIDI file.
"""
import io
import os
import shutil
import subprocess
import tempfile

import numpy as np
from scipy.io import wavfile

from groovae import files
from groovae.errors import AudioError

SOUNDFONTS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")
DEFAULT_SAMPLE_RATE = 16000  # mono 16 kHz: small files, enough for drums to listen to


def find_soundfont(soundfont=None):
    """The SoundFont to use: given path, $GROOVAE_SOUNDFONT, or Debian's GM font."""
    candidates = [soundfont] if soundfont else [os.environ.get("GROOVAE_SOUNDFONT"), *SOUNDFONTS]
    for path in filter(None, candidates):
        if os.path.isfile(path):
            return path
    raise AudioError(f"no SoundFont found ({soundfont or ', '.join(SOUNDFONTS)}); "
                     "apt-get install fluid-soundfont-gm or set GROOVAE_SOUNDFONT")


def unavailable_reason(soundfont=None):
    """None when WAVs can be rendered here, else why not (naming what to install)."""
    if not shutil.which("fluidsynth"):
        return "the fluidsynth program is not installed (apt-get install fluidsynth fluid-soundfont-gm)"
    try:
        find_soundfont(soundfont)
    except AudioError as e:
        return str(e)
    return None


def render_wav(midi_path, wav_path, sample_rate=DEFAULT_SAMPLE_RATE, soundfont=None):
    """Renders ``midi_path`` to a mono 16-bit WAV at ``wav_path`` (atomically)."""
    fluidsynth = shutil.which("fluidsynth")
    if not fluidsynth:
        raise AudioError("the fluidsynth program is not installed (apt-get install fluidsynth)")
    soundfont = find_soundfont(soundfont)
    with tempfile.TemporaryDirectory() as tmp:
        raw = os.path.join(tmp, "out.wav")
        cmd = [fluidsynth, "-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0", "-r", str(sample_rate),
               "-T", "wav", "-F", raw, soundfont, midi_path]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if proc.returncode != 0 or not os.path.exists(raw):
            raise AudioError(f"{midi_path}: fluidsynth failed ({proc.stderr.strip()[-200:]})")
        rate, samples = wavfile.read(raw)
    mono = samples.astype(np.float32).reshape(len(samples), -1).mean(axis=1)
    peak = float(np.abs(mono).max()) or 1.0
    pcm = (mono / peak * 0.9 * 32767).astype(np.int16)  # normalised: samples differ a lot in loudness
    buffer = io.BytesIO()
    wavfile.write(buffer, rate, pcm)
    files.atomic_write(wav_path, lambda f: f.write(buffer.getvalue()))
    return wav_path
