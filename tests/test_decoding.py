"""Decoding policies: velocities and offsets read as magenta's decoder outputs them, or given the hit."""
import json
import os

import numpy as np
import pytest

from groovae import checkpoints, cli, decoding, listen
from groovae.errors import RequestError
from groovae.model import GrooveModel, random_z


@pytest.fixture(scope="module")
def tiny_prefix(tiny_run):
    return checkpoints.newest_checkpoint(tiny_run[0])


def read_both(config, prefix, n=6, temperature=0.5):
    """(magenta's outputs, their hit probabilities, the same z decoded given the hit)."""
    model = GrooveModel(config, prefix)
    z = random_z(n, model.z_size, 3)
    magenta, p = model._run(0, n, ("outputs", "hit_probabilities"), {"z": z, "temperature": temperature})
    return magenta, p, GrooveModel(config, prefix, decoding="given_hit").decode(z, temperature, 0)


def check_given_hit(magenta, p, given):
    """The same hits; at each, velocity and offset are magenta's over the hit probability (floored, clipped)."""
    k = 9
    np.testing.assert_array_equal(given[..., :k], magenta[..., :k])
    hit = magenta[..., :k] > 0.5
    assert hit.any()
    floor = np.maximum(p, decoding.MIN_HIT_PROBABILITY)
    np.testing.assert_allclose(given[..., k:2 * k][hit], np.clip(magenta[..., k:2 * k] / floor, 0, 1)[hit], rtol=1e-6)
    np.testing.assert_allclose(given[..., 2 * k:][hit], np.clip(magenta[..., 2 * k:] / floor, -1, 1)[hit], rtol=1e-6)
    assert np.mean(given[..., k:2 * k][hit]) > np.mean(magenta[..., k:2 * k][hit])


@pytest.mark.parametrize("config", ["groovae_tiny", "groovae_tiny_hier"])
def test_given_hit_reads_the_same_hits_given_the_hit(config, tiny_prefix, tmp_path):
    if config == "groovae_tiny":
        prefix = tiny_prefix
    else:  # the conductor's bars: one loop per bar, their outputs joined
        from tests.test_evaluate import untrained_checkpoint
        prefix = untrained_checkpoint(config, str(tmp_path))
    magenta, p, given = read_both(config, prefix)
    check_given_hit(magenta, p, given)
    np.testing.assert_array_equal(given, read_both(config, prefix)[2])  # reproducible like magenta's
    greedy, p_greedy, _ = read_both(config, prefix, temperature=1e-3)  # the probabilities are those of the hits:
    sure = np.abs(p_greedy - 0.5) > 0.01  # near-greedy, a hit wherever p > 0.5 (where p is not ~0.5)
    assert sure.sum() > 300  # of 6 x 64 x 9 cells
    np.testing.assert_array_equal((greedy[..., :9] > 0.5)[sure], (p_greedy > 0.5)[sure])


def test_unknown_decodings_are_one_line(tiny_prefix):
    with pytest.raises(RequestError, match="unknown decoding 'mean'; one of magenta, given_hit"):
        GrooveModel("groovae_tiny", tiny_prefix, decoding="mean")


def test_generate_records_the_decoding_and_regenerates_it(tiny_run, tmp_path, capsys):
    out = str(tmp_path / "out")
    base = ["generate", "--checkpoint", "private", "--run_dir", tiny_run[0], "--no_wav", "--no_progress",
            "--output_dir", out, "--n", "3"]
    assert cli.main(base + ["--decoding", "given_hit"]) == 0
    assert cli.main(base) == 0  # magenta's beside it: other files, names as before
    with open(os.path.join(out, "manifest.json")) as f:
        given, magenta = json.load(f)["runs"]
    assert given["decoding"] == "given_hit" and given["prefix"].startswith("sample-given_hit_t0.5_s0_")
    assert "decoding" not in magenta and magenta["prefix"].startswith("sample_t0.5_s0_")
    assert set(given["files"]).isdisjoint(magenta["files"])
    capsys.readouterr()
    assert cli.main(["regenerate", os.path.join(out, "manifest.json"), "--output_dir", str(tmp_path / "again")]) == 0
    for name, digest in given["files"].items():
        assert checkpoints.files.sha256_of(str(tmp_path / "again" / name)) == digest
    page = listen.render_page(out)
    assert "velocities and timing read given the hit" in page and "decoding <code>given_hit" in page


def test_evaluate_reports_each_decoding(tiny_run, tiny_tensors_path, tmp_path):
    out = str(tmp_path / "report")
    prefix = checkpoints.newest_checkpoint(tiny_run[0])
    assert cli.main(["evaluate", "--checkpoint", prefix, "--test", tiny_tensors_path, "--n_samples", "8",
                     "--temperatures", "0.5", "--decodings", "magenta", "given_hit", "--output_dir", out,
                     "--no_progress"]) == 0
    with open(os.path.join(out, "comparison.json")) as f:
        magenta, given = json.load(f)["results"]
    assert (magenta["decoding"], given["decoding"]) == ("magenta", "given_hit")
    assert given["label"] == "groovae_tiny · given_hit"
    assert given["reconstruction"]["teacher_forced"] == magenta["reconstruction"]["teacher_forced"]
    assert given["reconstruction"]["free_running"] != magenta["reconstruction"]["free_running"]
    velocity = [r["samples"]["0.5"]["statistics"]["velocity_per_class"] for r in (magenta, given)]
    assert velocity[0] != velocity[1]
    text = open(os.path.join(out, "report.md")).read()
    assert text.startswith("# Samples by prior and decoding")
    assert "groovae_tiny · given_hit T=0.5" in text
    reconstruction = text.split("## Reconstruction")[1].split("![per-class F1]")[0]  # a free-running row per decoding
    assert reconstruction.count("| groovae_tiny · given_hit | ") == 2 and "| groovae_tiny · magenta | " in reconstruction
    losses = text.split("## Loss terms")[1].split("## Latent space")[0]  # the decoding changes no loss
    assert losses.count("| groovae_tiny | ") == 1 and "given_hit" not in losses

