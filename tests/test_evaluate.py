"""Evaluation: every metric on hand-made tensors with known answers; evaluate and its CLI end to end."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from groovae import checkpoints, cli, data, evaluate, metrics, model, report
from groovae.errors import GenerateError, RequestError
from tests.conftest import ROOT

K = 9


def groove(hits, velocities=None, offsets=None):
    """[N, T, 27] groove tensors from [N, T, 9] hits (and optional velocities/offsets)."""
    hits = np.asarray(hits, np.float32)
    velocities = np.zeros_like(hits) if velocities is None else np.asarray(velocities, np.float32)
    offsets = np.zeros_like(hits) if offsets is None else np.asarray(offsets, np.float32)
    return np.concatenate([hits, velocities, offsets], axis=-1)


def empty(n=1, steps=64):
    return np.zeros((n, steps, K), np.float32)


# ---------------------------------------------------------------- reconstruction metrics

def test_hit_accuracy():
    assert metrics.hit_accuracy([[1, 0], [0, 1]], [[1, 1], [0, 1]]) == 0.75
    assert metrics.hit_accuracy(np.zeros((2, 3, 4)), np.zeros((2, 3, 4))) == 1.0


def test_hit_precision_recall_f1_per_class_and_pooled():
    true = np.array([[1, 0, 1], [1, 0, 1], [0, 0, 1], [0, 0, 0]], bool)
    pred = np.array([[1, 0, 1], [0, 0, 1], [1, 0, 1], [0, 0, 1]], bool)
    prf = metrics.hit_prf(true, pred)
    # class 0: tp 1, fp 1, fn 1; class 1: nothing at all (undefined); class 2: tp 3, fp 1, fn 0
    np.testing.assert_allclose(prf["precision"], [0.5, np.nan, 0.75])
    np.testing.assert_allclose(prf["recall"], [0.5, np.nan, 1.0])
    np.testing.assert_allclose(prf["f1"], [0.5, np.nan, 6 / 7])
    assert prf["support"].tolist() == [2, 0, 3] and prf["predicted"].tolist() == [2, 0, 4]
    assert prf["micro_precision"] == pytest.approx(4 / 6)
    assert prf["micro_recall"] == pytest.approx(4 / 5)
    assert prf["micro_f1"] == pytest.approx(8 / 11)
    assert prf["macro_f1"] == pytest.approx((0.5 + 6 / 7) / 2)
    # a class with true hits but no predictions has F1 0, precision undefined
    prf = metrics.hit_prf([[1], [1]], [[0], [0]])
    assert prf["f1"][0] == 0 and prf["recall"][0] == 0 and np.isnan(prf["precision"][0])


def test_velocity_mae_only_counts_true_hits():
    hits = empty(1, 4)
    hits[0, 0, 0] = hits[0, 2, 3] = 1
    true_vel = hits * np.float32(0.5)
    pred_vel = np.full_like(hits, 0.9)  # error 0.9 where no hit: ignored
    pred_vel[0, 0, 0], pred_vel[0, 2, 3] = 0.6, 0.2  # errors 0.1 and 0.3
    assert metrics.velocity_mae(groove(hits, true_vel), groove(hits, pred_vel)) == pytest.approx(0.2)


def test_offset_mae_in_steps_and_ms_at_each_windows_tempo():
    hits = empty(2, 4)
    hits[0, 1, 0] = hits[1, 3, 2] = 1
    true_off = hits * np.float32(0.5)  # played a quarter step early
    pred_off = np.full_like(hits, 1.0)  # where there is no hit: ignored
    pred_off[0, 1, 0], pred_off[1, 3, 2] = -0.5, 0.0  # onset errors 0.5 and 0.25 steps
    true, pred = groove(hits, offsets=true_off), groove(hits, offsets=pred_off)
    assert metrics.offset_mae_steps(true, pred) == pytest.approx(0.375)
    np.testing.assert_allclose(np.sort(metrics.onset_errors_steps(true, pred)), [0.25, 0.5])
    # a 16th at 120 bpm lasts 125 ms, at 60 bpm 250 ms
    assert metrics.step_seconds(120) == pytest.approx(0.125)
    assert metrics.offset_mae_ms(true, pred, [120, 60]) == pytest.approx((0.5 * 125 + 0.25 * 250) / 2)
    assert metrics.offset_mae_ms(true, pred, 120) == pytest.approx(0.375 * 125)


def test_reconstruction_metrics_of_a_perfect_and_an_empty_prediction():
    rng = np.random.RandomState(0)
    hits = (rng.rand(3, 64, K) < 0.2).astype(np.float32)
    true = groove(hits, hits * rng.rand(3, 64, K), hits * rng.uniform(-1, 1, (3, 64, K)))
    perfect = metrics.reconstruction_metrics(true, true, bpm=[100, 110, 120])
    assert perfect["hit_accuracy"] == 1 and perfect["hit_f1"] == 1
    assert perfect["velocity_mae"] == 0 and perfect["offset_mae_steps"] == 0 and perfect["offset_mae_ms"] == 0
    silent = metrics.reconstruction_metrics(true, np.zeros_like(true))
    assert silent["hit_accuracy"] == pytest.approx(1 - hits.mean())
    assert silent["hit_recall"] == 0 and silent["hit_f1"] == 0 and silent["hit_precision"] is not None
    assert silent["offset_mae_ms"] is None  # no tempo given
    json.dumps(silent)


def test_activate_and_loss_terms_match_magentas_definitions():
    probabilities = metrics.activate(np.zeros((1, 2, 27)))
    np.testing.assert_allclose(probabilities[..., :18], 0.5)
    np.testing.assert_allclose(probabilities[..., 18:], 0.0)
    hits = empty(1, 2)
    hits[0, 0, 0] = 1
    true = groove(hits, hits * 0.5, hits * 0.2)
    terms = metrics.loss_terms(true, probabilities)
    # hits: log 2 per class and step; velocities: (0.5 - 0.5)^2 = 0 except... all predictions 0.5
    # velocities err: cell (0,0,0) 0, the other 17 cells 0.5^2; offsets err: 0.2^2 once
    assert terms["hits_loss"][0] == pytest.approx(K * math.log(2), rel=1e-5)
    assert terms["velocities_loss"][0] == pytest.approx((17 * 0.25) / 2)
    assert terms["offsets_loss"][0] == pytest.approx(0.04 / 2)
    assert terms["r_loss"][0] == pytest.approx(2 * K * math.log(2) + 17 * 0.25 + 0.04, rel=1e-5)


# ---------------------------------------------------------------- latent space

def test_kl_per_dim_and_bits():
    mu = np.array([[0.0, 1.0, 0.0]])
    sigma = np.array([[1.0, 1.0, 0.5]])
    kl = metrics.kl_per_dim(mu, sigma)
    np.testing.assert_allclose(kl, [[0.0, 0.5, 0.5 * (0.25 - 1) - math.log(0.5)]])
    assert metrics.kl_bits(mu, sigma)[0] == pytest.approx(kl.sum() / math.log(2))


def test_active_units_threshold():
    mu = np.array([[-1.0, 3.0, 0.1], [1.0, 3.0, 0.2], [-1.0, 3.0, 0.1], [1.0, 3.0, 0.2]])
    count, variance = metrics.active_units(mu)
    np.testing.assert_allclose(variance, [1.0, 0.0, 0.0025])
    assert count == 1
    assert metrics.active_units(mu, threshold=0.001)[0] == 2


def test_model_loss_combines_terms_like_magenta():
    class HP:
        free_bits, beta_rate, max_beta = 0.0, 0.0, 0.2
    mu, sigma = np.array([[1.0, 0.0]]), np.ones((1, 2))
    terms = {"r_loss": np.array([10.0]), "hits_loss": np.array([1.0]), "velocities_loss": np.array([0.0]),
             "offsets_loss": np.array([0.0])}
    losses = evaluate.model_loss(terms, mu, sigma, HP, global_step=5)
    assert losses["kl_bits"] == pytest.approx(0.5 / math.log(2))
    assert losses["loss"] == pytest.approx(10 + 0.2 * 0.5)
    assert evaluate.model_loss(terms, mu, sigma, HP, global_step=0)["kl_beta"] == 0  # 0^0 = 1: beta 0


# ---------------------------------------------------------------- sample statistics

def test_hit_density_per_bar_and_hits_per_bar():
    hits = empty(2)
    hits[0, ::4, 0] = 1  # kick on every beat in window 0: 4 per bar
    hits[1, 0, 1] = 1  # one snare in bar 1 of window 1
    tensors = groove(hits)
    density = metrics.hit_density_per_bar(tensors)
    assert density[0] == pytest.approx(2.0) and density[1] == pytest.approx(1 / 8) and density[2:].sum() == 0
    assert metrics.hits_per_bar(tensors).tolist() == [4, 4, 4, 4, 1, 0, 0, 0]


def test_inter_onset_intervals_stay_within_windows():
    hits = empty(2, 16)
    hits[0, [0, 4, 6], 0] = 1
    hits[0, 4, 2] = 1  # a second drum on the same step is the same onset
    hits[1, [1, 3], 1] = 1
    assert metrics.inter_onset_intervals(groove(hits)).tolist() == [4, 2, 2]
    assert metrics.inter_onset_intervals(groove(empty(2, 16))).size == 0


def test_histogram_overlap_and_kl():
    p = metrics.histogram([0.1, 0.2, 0.9, 5.0], np.array([0.0, 0.5, 1.0]))  # 5.0 clipped into the last bin
    np.testing.assert_allclose(p, [0.5, 0.5])
    a, b = np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.0, 0.5])
    assert metrics.overlapping_area(a, a) == 1 and metrics.overlapping_area(a, b) == 0.5
    assert metrics.overlapping_area(np.array([1.0, 0]), np.array([0, 1.0])) == 0
    assert metrics.histogram_kl(a, a) == pytest.approx(0)
    assert metrics.histogram_kl(np.array([0.5, 0.5]), np.array([0.25, 0.75])) == pytest.approx(
        0.5 * math.log(2) + 0.5 * math.log(2 / 3), rel=1e-4)
    assert metrics.histogram_kl(a, b) > 5  # mass where the other has none: large but finite


def test_statistics_of_identical_sets_match_perfectly():
    rng = np.random.RandomState(1)
    hits = (rng.rand(20, 64, K) < 0.15).astype(np.float32)
    tensors = groove(hits, hits * rng.rand(20, 64, K), hits * rng.uniform(-1, 1, (20, 64, K)))
    stats = metrics.groove_statistics(tensors)
    comparison = metrics.compare_statistics(stats, stats)
    for name in metrics.HISTOGRAM_BINS:
        assert comparison[name]["overlap"] == pytest.approx(1) and comparison[name]["kl"] == pytest.approx(0)
    assert comparison["hit_density_mae"] == 0
    json.dumps(stats)


def test_per_class_velocity_and_timing_spread_known_answers():
    hits = np.zeros((2, 64, K), np.float32)
    velocities, offsets = np.zeros_like(hits), np.zeros_like(hits)
    hits[0, 0, 0] = hits[1, 4, 0] = 1  # kick: velocities 0.5 and 1.0, offsets -0.2 and +0.2 (half steps)
    velocities[0, 0, 0], velocities[1, 4, 0] = 0.5, 1.0
    offsets[0, 0, 0], offsets[1, 4, 0] = -0.2, 0.2
    hits[0, 8, 1], velocities[0, 8, 1] = 1, 0.25  # snare: one hit, so no spread
    tensors = groove(hits, velocities, offsets)
    velocity = metrics.per_class_velocity(tensors)
    assert velocity[0] == pytest.approx(0.75 * 127) and velocity[1] == pytest.approx(0.25 * 127)
    assert np.isnan(velocity[2:]).all()
    spread = metrics.per_class_timing_spread(tensors)
    assert spread[0] == pytest.approx(0.1)  # +-0.1 steps around the mean
    assert np.isnan(spread[1:]).all()
    stats = metrics.groove_statistics(tensors)
    assert stats["velocity_per_class"][2] is None or np.isnan(stats["velocity_per_class"][2])
    json.dumps(stats)


def test_nearest_hamming_known_answers_and_matches_brute_force():
    reference = np.zeros((3, 64, K), bool)
    reference[1, ::4, 0] = True
    reference[2, ::2, 2] = True
    query = reference[[1, 2]].copy()
    query[1, 1, 5] = query[1, 3, 5] = True
    query[1, 0, 2] = False  # 3 bits off pattern 2
    distances, indices = metrics.nearest_hamming(query, reference)
    assert distances.tolist() == [0, 3] and indices.tolist() == [1, 2]

    rng = np.random.RandomState(2)
    q, r = rng.rand(37, 64, K) < 0.1, rng.rand(500, 64, K) < 0.1
    distances, indices = metrics.nearest_hamming(q, r, chunk=8)
    brute = (q.reshape(37, 1, -1) != r.reshape(1, 500, -1)).sum(-1)
    np.testing.assert_array_equal(distances, brute.min(1))
    np.testing.assert_array_equal(brute[np.arange(37), indices], brute.min(1))


def test_novelty_and_duplicates_on_a_gmd_sized_training_set():
    rng = np.random.RandomState(3)
    train_tensors = groove((rng.rand(15600, 64, K) < 0.1).astype(np.float32))
    samples = np.concatenate([train_tensors[[5, 77]], groove((rng.rand(254, 64, K) < 0.1).astype(np.float32))])
    result = metrics.novelty(samples, train_tensors)  # timed within bench_evaluate.py's "samples" phase
    assert result["distances"][:2] == [0, 0] and result["nearest"][:2] == [5, 77]
    assert result["duplicate_rate"] == pytest.approx(2 / 256)
    assert min(result["distances"][2:]) > 10
    with pytest.raises(data.DataError):
        metrics.nearest_hamming(samples[:1, :, :K] > 0.5, np.zeros((0, 64, K), bool))


# ---------------------------------------------------------------- end to end

@pytest.fixture(scope="module")
def tiny_checkpoint(tiny_run):
    return checkpoints.resolve_checkpoint("private", tiny_run[0])


@pytest.fixture(scope="module")
def tiny_test_with_bpm(tiny_tensors_path, tmp_path_factory):
    tensors = data.load_tensors(tiny_tensors_path)
    tensors["bpm"] = np.full(len(tensors["lengths"]), 120.0, np.float32)  # the synthetic grooves' tempo
    path = str(tmp_path_factory.mktemp("test_bpm") / "test.npz")
    data.save_tensors(path, tensors)
    return path


def test_evaluate_takes_a_test_split_larger_than_a_generate_run(tiny_checkpoint, tiny_tensors_path, tmp_path):
    """The GMD's test split has 1,901 windows; decoding them is not a request for 1,901 files."""
    tensors = data.load_tensors(tiny_tensors_path)
    big = {k: np.concatenate([v] * 66) for k, v in tensors.items()}  # 1,056 windows
    path = str(tmp_path / "test.npz")
    data.save_tensors(path, big)
    [results] = evaluate.evaluate_checkpoint("groovae_tiny", tiny_checkpoint, path, n_samples=0, batch_size=512)
    assert results["n_test"] == 1056 and 0 <= results["reconstruction"]["free_running"]["hit_f1"] <= 1


@pytest.fixture(scope="module")
def tiny_results(tiny_checkpoint, tiny_test_with_bpm, tiny_tensors_path):
    [results] = evaluate.evaluate_checkpoint("groovae_tiny", tiny_checkpoint, tiny_test_with_bpm, tiny_tensors_path,
                                             n_samples=6, temperatures=[0.5, 1.0], seed=3, batch_size=5)
    return results


def test_evaluate_checkpoint_end_to_end(tiny_results, tiny_run):
    r = tiny_results
    assert r["n_test"] == 16 and r["global_step"] == 40 and r["has_bpm"]
    # 16 windows in batches of 5: the padded last batch must not leak into the numbers
    assert r["losses"]["r_loss"] == pytest.approx(r["losses"]["magenta_r_loss"], rel=1e-4)
    for mode in ("teacher_forced", "free_running"):
        m = r["reconstruction"][mode]
        assert 0 <= m["hit_accuracy"] <= 1 and 0 <= m["velocity_mae"] <= 1
        assert m["offset_mae_ms"] == pytest.approx(m["offset_mae_steps"] * 125, rel=1e-4)  # 120 bpm
        assert len(m["per_class"]["f1"]) == K
    assert r["latent"]["z_size"] == 16 and 0 <= r["latent"]["active_units"] <= 16
    assert r["losses"]["kl_bits"] == pytest.approx(sum(r["latent"]["kl_per_dim_bits"]), rel=1e-4)
    assert sorted(r["samples"]) == ["0.5", "1"]
    assert len(r["samples"]["1"]["novelty"]["distances"]) == 6
    assert r["test_novelty"]["duplicate_rate"] == 1.0  # test = train here: every window is a duplicate
    assert r["test_guards"]["copying"]["near_copy_share"] == 1.0 and 0 < r["test_guards"]["diversity"] < 1
    assert 0 <= r["samples"]["1"]["copying"]["best_f1_median"] <= 1 and "diversity" in r["samples"]["0.5"]
    assert r["train_statistics"]["vs_test"]["velocity"]["overlap"] == pytest.approx(1)  # same windows
    json.dumps(r)


def test_model_pass_batches_do_not_change_results(tiny_checkpoint, tiny_tensors_path):
    tensors = data.load_tensors(tiny_tensors_path)
    outs = []
    for batch_size in (16, 3):
        model_pass = model.ModelPass("groovae_tiny", tiny_checkpoint, batch_size)
        outs.append(model_pass.run(tensors))
        model_pass.close()
    for key in ("mu", "sigma", "logits", "r_loss"):
        np.testing.assert_allclose(outs[0][key], outs[1][key], rtol=1e-4, atol=1e-5)
    mu = model.GrooveModel("groovae_tiny", tiny_checkpoint).encode(tensors["inputs"])
    np.testing.assert_allclose(outs[0]["mu"], mu, rtol=1e-4, atol=1e-5)


def untrained_checkpoint(config_name, folder):
    """A randomly initialised checkpoint of a config's inference variables (cheaper than training)."""
    import tensorflow.compat.v1 as tf
    with model.inference_graph(config_name), tf.Session() as session:
        session.run(tf.global_variables_initializer())
        return tf.train.Saver().save(session, os.path.join(folder, "model.ckpt"), global_step=0)


def test_evaluate_hierarchical_config(tiny_tensors_path, tmp_path):
    checkpoint = untrained_checkpoint("groovae_tiny_hier", str(tmp_path))
    [r] = evaluate.evaluate_checkpoint("groovae_tiny_hier", checkpoint, tiny_tensors_path, n_samples=0,
                                     batch_size=16)
    assert r["losses"]["r_loss"] == pytest.approx(r["losses"]["magenta_r_loss"], rel=1e-4)
    assert r["losses"]["kl_beta"] == 0  # step 0
    assert 0 <= r["reconstruction"]["free_running"]["hit_accuracy"] <= 1
    assert r["test_novelty"] is None and r["train_statistics"] is None and r["samples"] == {}


def test_a_checkpoint_of_another_config_is_refused(tiny_checkpoint, tiny_tensors_path):
    with pytest.raises(GenerateError, match="not a 'groovae_tiny_hier' checkpoint"):
        evaluate.evaluate_checkpoint("groovae_tiny_hier", tiny_checkpoint, tiny_tensors_path, n_samples=0)


def test_reports(tiny_results, tmp_path):
    same = report.comparison_verdict([tiny_results, dict(tiny_results, label="copy")])
    assert "best hit F1 **tie (groovae_tiny, copy)**" in same and "equal-budget" not in same
    worse = {mode: dict(m, hit_f1=m["hit_f1"] - 0.1, offset_mae_ms=m["offset_mae_ms"] + 5)
             for mode, m in tiny_results["reconstruction"].items()}
    verdict = report.comparison_verdict([dict(tiny_results, label="worse", reconstruction=worse), tiny_results])
    assert verdict.count("best hit F1 **groovae_tiny**") == 2 and verdict.count("best timing MAE **groovae_tiny**") == 2
    older = [{"label": "flat"}, {"label": "hier", "decoding": "magenta"}]  # comparison.json from before "model"
    assert [r["label"] for r in report._distinct(older, "model", "decoding")] == ["flat", "hier"]
    other = dict(tiny_results, label="hier", model="hier", global_step=41)
    curves = {"groovae_tiny": [{"step": "10", "split": "train", "loss": "5.0", "r_loss": "4.0", "kl_bits": "1"},
                               {"step": "20", "split": "validation", "loss": "4.5", "r_loss": "4", "kl_bits": "2"}],
              "hier": []}
    path = report.write_comparison_report([tiny_results, other], str(tmp_path), curves=curves)
    text = open(path).read()
    assert os.path.getsize(tmp_path / "training_curves.png") > 1000 and "![training curves]" in text
    assert "Targets at T=0.5" in text and "| groovae_tiny | " in text.split("Targets at T=0.5")[1]
    for table in ("Hits per bar:", "Mean velocity (MIDI 0-127):", "Timing spread"):
        section = text.split(table)[1].split("\n\n")[1]
        assert section.count("| groovae_tiny T=0.5 |") == 1 and section.count("| hier T=1 |") == 1, table
        assert "| test data |" in section and "T=0.3" not in section  # not sampled: no row
    assert "best hit F1" in text and "not an equal-budget comparison" in text and "Temperature sweep" in text
    assert "| groovae_tiny | 40 | teacher-forced |" in text and "training windows (reference)" in text
    single = open(tmp_path / "hier" / "report.md").read()
    assert "| teacher-forced |" in single and "Active units" in single and "T=0.5" in single
    for name in ("per_class_f1.png", "latent.png", "examples.png", "distributions.png", "hit_density.png",
                 "results.json"):
        assert os.path.getsize(tmp_path / "groovae_tiny" / name) > 100
    assert os.path.getsize(tmp_path / "latent.png") > 100
    with pytest.raises(RequestError, match="labels must differ"):
        report.write_comparison_report([tiny_results, tiny_results], str(tmp_path / "bad"))


def test_targets_table_known_answers():
    def results(label, density, overlap):
        return {"label": label, "test_statistics": {"hit_density_per_bar": [4, 5, 6, 0.5, 0.4, 0.3, 0.3, 0.1, 2]},
                "samples": {"0.5": {"statistics": {"hit_density_per_bar": density},
                                    "vs_test": {"velocity": {"overlap": overlap}}}}}
    rows = report._targets_table([results("a", [3.5, 5.5, 5.0, 0, 0, 0, 0, 0, 2.28], 0.7994),
                                  results("b", [3.3, 5.0, 7.0, 0, 0, 0, 0, 0, 2.0], 0.8)]).splitlines()
    assert rows[-2] == "| a | -12 % ✓ | +10 % ✓ | -17 % ✗ | +14 % ✓ | 0.799 ✗ | – | – |"  # no guards computed
    assert rows[-1] == "| b | -18 % ✗ | +0 % ✓ | +17 % ✗ | +0 % ✓ | 0.800 ✓ | – | – |"
    guarded = [dict(results(label, [4, 5, 6, 0, 0, 0, 0, 0, 2], 0.9),
                    test_guards={"copying": {"near_copy_share": 0.02, "threshold": 0.9}, "diversity": 0.30})
               for label in "cd"]
    guarded[0]["samples"]["0.5"].update(copying={"near_copy_share": 0.0351}, diversity=0.33)  # within 2 SE
    guarded[1]["samples"]["0.5"].update(copying={"near_copy_share": 0.0391}, diversity=0.2)  # 10/256: above
    for entry in guarded:
        entry["samples"]["0.5"]["statistics"]["n"] = 256
    rows = report._targets_table(guarded).splitlines()
    assert report.near_copy_margin(0.02, 256) == pytest.approx(0.0175, abs=1e-4)
    assert rows[-2].endswith("| 0.900 ✓ | 3.5% ✓ | +10 % ✓ |")
    assert rows[-1].endswith("| 0.900 ✓ | 3.9% ✗ | -33 % ✗ |")


def test_cli_evaluate(tiny_run, tiny_test_with_bpm, tiny_tensors_path, tmp_path):
    out = str(tmp_path / "report")
    assert cli.main(["evaluate", "--config", "groovae_tiny", "--checkpoint", "private", "--run_dir", tiny_run[0],
                     "--test", tiny_test_with_bpm, "--output_dir", out, "--n_samples", "0", "--no_progress"]) == 0
    assert json.load(open(os.path.join(out, "results.json")))["n_samples"] == 0
    assert "Samples vs test data" not in open(os.path.join(out, "report.md")).read()

    data_dir = tmp_path / "data"  # a preprocess dir: test.npz (no train.npz: no novelty check)
    data_dir.mkdir()
    os.symlink(tiny_test_with_bpm, data_dir / "test.npz")
    cmp_dir = str(tmp_path / "cmp")
    proc = subprocess.run([sys.executable, "-m", "groovae", "evaluate", "--compare",
                           f"flat=groovae_tiny:{tiny_run[0]}", f"again=groovae_tiny:{tiny_run[0]}",
                           "--data", str(data_dir), "--output_dir", cmp_dir, "--n_samples", "0", "--no_progress"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().splitlines()[-1] == os.path.join(cmp_dir, "report.md")
    assert os.path.exists(os.path.join(cmp_dir, "flat", "report.md"))
    assert "best hit F1" in open(os.path.join(cmp_dir, "report.md")).read()
    assert os.path.getsize(os.path.join(cmp_dir, "training_curves.png")) > 1000  # from the run dir's metrics.csv
    for folder, _, files in os.walk(cmp_dir):  # paths relative to the report: none of this machine's folders
        for name in files:
            if name.endswith((".md", ".json")):
                assert str(tmp_path) not in open(os.path.join(folder, name)).read(), name
    results = json.load(open(os.path.join(cmp_dir, "flat", "results.json")))
    assert os.path.normpath(os.path.join(cmp_dir, "flat", results["test_path"])) == str(data_dir / "test.npz")
    assert len(results["checkpoint_sha256"]) == 64


@pytest.mark.parametrize("args, message", [
    (["--compare", "flat=", "--test", os.path.abspath(__file__)], "--compare takes [label=][config:]checkpoint"),
    (["--test", "/nonexistent/test.npz"], "/nonexistent/test.npz: no such tensor file"),
    ([], "give --data"),
    (["--checkpoint", "/nonexistent/ckpt", "--test", os.path.abspath(__file__)], "no such checkpoint"),
])
def test_cli_evaluate_errors_are_one_line(args, message, tmp_path, capsys):
    assert cli.main(["evaluate", "--config", "groovae_tiny", "--output_dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("groovae evaluate: error:") and message in err[-1]


def test_copying_and_diversity_known_answers():
    from groovae import metrics
    def groove(*cells):  # hits at (step, class); velocities and offsets do not matter here
        t = np.zeros((64, 27), np.float32)
        for step, k in cells:
            t[step, k] = 1
        return t
    a, b, c = groove((0, 0), (4, 1)), groove((0, 0), (8, 1)), groove((2, 2), (6, 2), (10, 2))
    # a vs b share one of two hits each: F1 0.5; c shares nothing with either
    np.testing.assert_allclose(metrics.best_hit_f1(np.stack([a, c]), np.stack([b, c])), [0.5, 1.0])
    assert metrics.diversity(np.stack([a, b, c])) == pytest.approx((0.5 + 0 + 0) / 3)
    assert metrics.copying(np.stack([a, c]), np.stack([b, c])) == {"best_f1_median": 0.75, "near_copy_share": 0.5,
                                                                   "threshold": 0.9}
