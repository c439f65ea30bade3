"""Sampling drum grooves from a trained tiny checkpoint."""
import os

import pytest

from groovae import data, generate


@pytest.fixture(scope="module")
def tiny_model(tiny_run):
    run_dir, _ = tiny_run
    return generate.load_model("groovae_tiny", run_dir, batch_size=3)


def test_sample_writes_drum_midi(tiny_model, tmp_path):
    sequences = generate.sample(tiny_model, n=3, temperature=0.5, seed=1)
    paths = generate.write_midi(sequences, str(tmp_path))
    assert [os.path.basename(p) for p in paths] == ["sample_00.mid", "sample_01.mid", "sample_02.mid"]
    for path in paths:
        sequence = data.midi_file_to_sequence(path)
        assert sequence.notes and all(n.is_drum for n in sequence.notes)
        assert sequence.total_time <= 4 * 2.0 + 0.5  # 4 bars at 120 bpm


def test_bad_requests(tiny_model, tmp_path):
    with pytest.raises(generate.GenerateError, match="n must be positive"):
        generate.sample(tiny_model, n=0)
    with pytest.raises(generate.GenerateError, match="temperature must be positive"):
        generate.sample(tiny_model, n=1, temperature=0)
    with pytest.raises(generate.GenerateError, match="no checkpoint in this directory"):
        generate.resolve_checkpoint(str(tmp_path))
