"""WAV rendering of drum MIDI with FluidSynth and a General MIDI SoundFont.

Uses the ``fluidsynth`` program (Debian: ``apt-get install fluidsynth
fluid-soundfont-gm``) rather than Python bindings: offline rendering needs no
audio device, and the output is deterministic for a given MIDI file.  A WAV
ends at most one bar after its last note (FluidSynth renders cymbals ringing
out for seconds more), with a short fade so that the cut does not click.
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
FADE_SECONDS = 0.05  # the fade-out at a WAV's end: long enough not to click, short enough not to be heard


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
    mono = faded(mono[:end_sample(midi_path, rate)], rate)  # the ring-out past a bar after the last note: cut
    peak = float(np.abs(mono).max(initial=0.0)) or 1.0
    pcm = (mono / peak * 0.9 * 32767).astype(np.int16)  # normalised: samples differ a lot in loudness
    buffer = io.BytesIO()
    wavfile.write(buffer, rate, pcm)
    files.atomic_write(wav_path, lambda f: f.write(buffer.getvalue()))
    return wav_path


def end_sample(midi_path, rate):
    """Where a rendering of ``midi_path`` ends: one bar (at the tempo and meter there) after its last note ends."""
    import pretty_midi
    pm = pretty_midi.PrettyMIDI(midi_path)
    ends = [note.end for instrument in pm.instruments for note in instrument.notes]
    if not ends:
        return None
    last = max(ends)
    times, tempi = pm.get_tempo_changes()
    qpm = float(tempi[np.searchsorted(times, last, side="right") - 1]) if len(tempi) else 120.0
    meter = [ts for ts in pm.time_signature_changes if ts.time <= last][-1:]
    beats = meter[0].numerator * 4 / meter[0].denominator if meter else 4
    return int(np.ceil((last + beats * 60.0 / qpm) * rate))


def faded(samples, rate, seconds=FADE_SECONDS):
    """``samples`` with a linear fade-out over their last ``seconds``."""
    n = min(len(samples), int(seconds * rate))
    if n:
        samples = samples.copy()
        samples[-n:] *= np.linspace(1.0, 0.0, n, dtype=np.float32)
    return samples

