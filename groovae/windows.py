"""The 4-bar windows of tfds' ``groove/4bar-midionly``, cut exactly as tfds cuts them.

tfds cuts each window with PrettyMIDI.adjust_times, writes it to MIDI and the
converter reads it back; the tick rounding of that round trip moves onsets,
hence the tensors' offsets.  ``window_sequences`` reproduces the round trip's
arithmetic directly on arrays (~15x faster per window, before the converter);
``exact_window_sequences`` does the real round trip on a trimmed copy and is
the fallback when a file has tempo changes.
"""
import copy
import io

import numpy as np

from groovae import compat  # noqa: F401  (shims before pretty_midi and note_seq)


SPLIT_BARS = 4


def bar_count(end_time, bpm, beats_per_bar):
    """(bar_duration, bars) of a file as tfds' groove builder counts them."""
    bar_duration = 60 / bpm * beats_per_bar
    return bar_duration, int(round(end_time / bar_duration))  # pads the final bar if at least half full


def window_starts(end_time, bpm, beats_per_bar, split_bars=SPLIT_BARS):
    """(bar_duration, [window start bars]) as tfds' groove builder cuts them."""
    bar_duration, total_bars = bar_count(end_time, bpm, beats_per_bar)
    return bar_duration, list(range(total_bars - split_bars + 1))


def _shell(pm, notes_in):
    """A PrettyMIDI sharing ``pm``'s timing, with only the notes ``notes_in(start, end)`` keeps.

    adjust_times deep-copies the notes it keeps and replaces (never mutates)
    the tick-to-time array, so sharing them with ``pm`` is safe; the time
    signatures it does move, so those are copies.
    """
    import pretty_midi
    shell = pretty_midi.PrettyMIDI(resolution=pm.resolution)
    shell._tick_scales = list(pm._tick_scales)
    shell._PrettyMIDI__tick_to_time = pm._PrettyMIDI__tick_to_time
    shell.time_signature_changes = copy.deepcopy(pm.time_signature_changes)
    for inst in pm.instruments:
        new = pretty_midi.Instrument(inst.program, inst.is_drum, inst.name)
        new.notes = [n for n in inst.notes if notes_in(n.start, n.end)]
        shell.instruments.append(new)
    return shell


def exact_window_sequences(pm, bpm, beats_per_bar, split_bars=SPLIT_BARS):
    """Yields (start_bar, NoteSequence) exactly as tfds makes them, only trimmed.

    tfds deep-copies the whole PrettyMIDI per window; adjust_times keeps only
    notes inside the window anyway, so a copy holding just those gives the same
    MIDI bytes for notes, tempo and time signatures (controllers, which the
    converter ignores, are left out).
    """
    import note_seq
    bar_duration, starts = window_starts(pm.get_end_time(), bpm, beats_per_bar, split_bars)
    for i in starts:
        t0, t1 = i * bar_duration, (i + split_bars) * bar_duration
        shell = _shell(pm, lambda s, e: s >= t0 and e <= t1)
        shell.adjust_times([t0, t1], [0, split_bars * bar_duration])
        shell.time_signature_changes = pm.time_signature_changes  # as tfds does
        buf = io.BytesIO()
        shell.write(buf)
        yield i, note_seq.midi_to_note_sequence(buf.getvalue())


def _times_to_ticks(tick_to_time, final_tick_scale, times):
    """PrettyMIDI.time_to_tick, vectorised (same arithmetic, same rounding)."""
    times = np.asarray(times, np.float64)
    idx = np.searchsorted(tick_to_time, times, side="left")
    last = len(tick_to_time) - 1
    beyond = idx == len(tick_to_time)
    ticks = np.empty(len(times), np.int64)
    ticks[beyond] = np.rint(last + (times[beyond] - tick_to_time[last]) / final_tick_scale)
    i, t = idx[~beyond], times[~beyond]
    prev_closer = (i > 0) & (np.abs(t - tick_to_time[np.maximum(i - 1, 0)]) < np.abs(t - tick_to_time[i]))
    ticks[~beyond] = np.where(prev_closer, i - 1, i)
    return ticks


def _read_back_notes(on_ticks, off_ticks, pitches, velocities):
    """The notes PrettyMIDI reads from the track pretty_midi.write makes of them.

    Reproduces write's event order (tick, then note-offs before note-ons, then
    pitch, velocity; stable) and the reader's pairing of note-offs with open
    note-ons, which fixes the order of notes in the NoteSequence (the
    converter keeps the first of equally loud hits in a step).
    Returns a list of (start_tick, end_tick, pitch, velocity).
    """
    events = []
    for on, off, p, v in zip(on_ticks.tolist(), off_ticks.tolist(), pitches, velocities):
        events.append((on, 10 * 65536 + p * 256 + v, p, v))
        events.append((off, 10 * 65536 + p * 256, p, 0))
    events.sort(key=lambda e: (e[0], e[1]))
    notes, open_notes = [], {}
    for tick, _, pitch, velocity in events:
        if velocity > 0:
            open_notes.setdefault(pitch, []).append((tick, velocity))
        elif pitch in open_notes:
            pending = open_notes[pitch]
            close = [(s, v) for s, v in pending if s != tick]
            keep = [(s, v) for s, v in pending if s == tick]
            notes.extend((s, tick, pitch, v) for s, v in close)
            if close and keep:
                open_notes[pitch] = keep
            else:
                del open_notes[pitch]
    return notes


class _FileWindows:
    """Per-file arrays for cutting tfds windows without PrettyMIDI objects."""

    def __init__(self, pm, last_time):
        self.pm = pm
        # Single tempo only (callers check): the tick grid adjust_times snaps to is
        # 0 + scale * k (as _update_tick_to_time builds it), shared by all windows.
        self.scale = pm._tick_scales[0][1]
        self.tempo = pm.get_tempo_changes()[1][0]
        self.file_ticks = pm._PrettyMIDI__tick_to_time
        last = _times_to_ticks(self.file_ticks, pm._tick_scales[-1][1], [last_time])[0]
        self.grid = 0 + self.scale * np.arange(max(int(last), 0) + 2)
        self.instruments = []
        for inst in pm.instruments:
            notes = inst.notes
            self.instruments.append((
                inst,
                np.array([n.start for n in notes], np.float64),
                np.array([n.end for n in notes], np.float64),
                [n.pitch for n in notes],
                [n.velocity for n in notes],
            ))

    def _write_scale(self, t0, t1, new_end):
        """The tick scale adjust_times gives a single-tempo file for [t0, t1] -> [0, new_end].

        Same steps as adjust_times: snap t0, t1 to the tick grid (extended to
        t1's tick), scale the tempo by the snapped span over the new span.
        """
        k1 = _times_to_ticks(self.file_ticks, self.pm._tick_scales[-1][1], [t1])[0]
        grid = self.grid[:max(int(k1), 0) + 1]
        if len(grid) < int(k1) + 1:
            return None
        snapped = grid[_times_to_ticks(grid, self.scale, [t0, t1])]
        if snapped[0] == snapped[1] or new_end == 0:
            return None
        speed_scale = np.diff(snapped) / np.diff([0, new_end])
        return 60.0 / (self.tempo * speed_scale[0] * self.pm.resolution)

    def sequence(self, t0, t1, new_end):
        """The NoteSequence tfds' MIDI round trip gives for window [t0, t1], or None.

        None when the window's tempo map is not a single tempo (then use the
        exact route).
        """
        import note_seq
        pm = self.pm
        write_scale = self._write_scale(t0, t1, new_end)
        if write_scale is None:
            return None
        tick_to_time = 0 + write_scale * np.arange(2)  # adjust_times' final _update_tick_to_time(1)
        resolution = pm.resolution
        # pretty_midi.write stores an integer tempo; the reader derives its scale from it.
        tempo_us = int(6e7 / (60. / (write_scale * resolution)))
        read_scale = 60.0 / ((6e7 / tempo_us) * resolution)

        seq = note_seq.NoteSequence()
        seq.ticks_per_quarter = resolution
        seq.tempos.add(time=0.0, qpm=60.0 / (read_scale * resolution))
        signatures = pm.time_signature_changes
        if not signatures or min(ts.time for ts in signatures) > 0.0:
            seq.time_signatures.add(time=0.0, numerator=4, denominator=4)  # write's default
        if signatures:
            ts_ticks = _times_to_ticks(tick_to_time, write_scale, [ts.time for ts in signatures])
            order = sorted(range(len(signatures)), key=lambda k: ts_ticks[k])
            for k in order:
                seq.time_signatures.add(time=read_scale * float(ts_ticks[k]),
                                        numerator=signatures[k].numerator,
                                        denominator=signatures[k].denominator)
        index = 0
        for inst, starts, ends, pitches, velocities in self.instruments:
            keep = np.flatnonzero((starts >= t0) & (ends <= t1))
            if not len(keep):
                continue
            on = np.interp(starts[keep], [t0, t1], [0, new_end])
            off = np.interp(ends[keep], [t0, t1], [0, new_end])
            on, off = (on > 0) * on, (off > 0) * off
            valid = off > on  # adjust_times drops notes that became empty
            keep, on, off = keep[valid], on[valid], off[valid]
            notes = _read_back_notes(_times_to_ticks(tick_to_time, write_scale, on),
                                     _times_to_ticks(tick_to_time, write_scale, off),
                                     [pitches[k] for k in keep], [velocities[k] for k in keep])
            if not notes:
                continue  # the reader makes no instrument without notes
            for start, end, pitch, velocity in notes:
                seq.notes.add(instrument=index, program=inst.program, is_drum=inst.is_drum,
                              pitch=pitch, velocity=velocity,
                              start_time=read_scale * float(start), end_time=read_scale * float(end))
            seq.total_time = max(seq.total_time, max(n.end_time for n in seq.notes))
            index += 1
        return seq


def window_sequences(pm, bpm, beats_per_bar, split_bars=SPLIT_BARS):
    """Yields (start_bar, NoteSequence) equal to tfds' windows, computed fast."""
    bar_duration, starts = window_starts(pm.get_end_time(), bpm, beats_per_bar, split_bars)
    if len(pm.get_tempo_changes()[0]) != 1 or not starts:
        yield from exact_window_sequences(pm, bpm, beats_per_bar, split_bars)
        return
    windows = _FileWindows(pm, (starts[-1] + split_bars) * bar_duration)
    exact = None
    for i in starts:
        t0, t1 = i * bar_duration, (i + split_bars) * bar_duration
        seq = windows.sequence(t0, t1, split_bars * bar_duration)
        if seq is None:
            exact = exact or dict(exact_window_sequences(pm, bpm, beats_per_bar, split_bars))
            seq = exact[i]
        yield i, seq
