"""The data prior: a Gaussian mixture fitted to the codes of the training windows, sampled by generate --prior data."""
import json
import os
import shutil

import numpy as np
import pytest

from groovae import checkpoints, cli, data, fit_prior, prior, runs, synthetic
from groovae.configs import load_config
from groovae.errors import GroovaeError, RequestError


def two_clusters(n, seed):
    random = np.random.RandomState(seed)
    side = random.rand(n) < 0.3
    centres = np.where(side[:, None], [4.0, 0, 0, 0], [-2.0, 1, 0, 0])
    return centres + random.randn(n, 4) * [0.5, 0.5, 1.0, 0.2]


def test_the_mixture_finds_two_clusters_and_validation_picks_two():
    mixture, scores = prior.fit_prior(two_clusters(3000, 0), two_clusters(1000, 1), components=(1, 2, 4))
    assert set(scores) == {1, 2, 4} and scores[2] > scores[1] + 0.5 and scores[2] >= scores[4] - 0.05
    assert len(mixture["weights"]) == 2
    heavy = int(np.argmax(mixture["weights"]))
    np.testing.assert_allclose(sorted(mixture["weights"]), [0.3, 0.7], atol=0.03)
    np.testing.assert_allclose(mixture["means"][heavy], [-2, 1, 0, 0], atol=0.1)
    covariance = mixture["chols"][heavy] @ mixture["chols"][heavy].T
    np.testing.assert_allclose(np.sqrt(np.diag(covariance)), [0.5, 0.5, 1.0, 0.2], rtol=0.1)


def test_samples_follow_the_mixture_and_temperature_scales_the_spread():
    mixture, _ = prior.fit_prior(two_clusters(3000, 0), two_clusters(1000, 1), components=(2,))
    z = prior.sample_codes(mixture, 20000, 1.0, seed=3)
    assert z.dtype == np.float32 and z.shape == (20000, 4)
    np.testing.assert_allclose(z.mean(0), two_clusters(20000, 5).mean(0), atol=0.06)
    narrow = prior.sample_codes(mixture, 20000, 0.25, seed=3)
    assert np.allclose(narrow.mean(0), z.mean(0), atol=0.05)
    heavy = narrow[narrow[:, 0] < 1]
    np.testing.assert_allclose(heavy.std(0), [0.125, 0.125, 0.25, 0.05], rtol=0.1)
    np.testing.assert_array_equal(prior.sample_codes(mixture, 5, 0.5, seed=9), prior.sample_codes(mixture, 5, 0.5, seed=9))


@pytest.fixture(scope="module")
def fitted(tiny_run, tiny_tensors_path, tmp_path_factory):
    """A copy of the tiny run with a data prior fitted on the synthetic windows (validation: the same windows)."""
    folder = tmp_path_factory.mktemp("prior")
    run_dir = str(folder / "run")
    shutil.copytree(tiny_run[0], run_dir)
    data_dir = folder / "data"
    data_dir.mkdir()
    shutil.copy(tiny_tensors_path, data_dir / "train.npz")  # the run's training windows
    held_out = synthetic.write_grooves(str(folder / "held_out"), n=2, bars=8, seed=100)  # other grooves
    data.save_tensors(str(data_dir / "validation.npz"),
                      data.midi_files_to_tensors(held_out, load_config("groovae_tiny").data_converter)[0])
    prefix = checkpoints.newest_checkpoint(run_dir)
    info = fit_prior.fit_checkpoint_prior("groovae_tiny", prefix, str(data_dir), components=(1, 2), log=lambda *a: None)
    return run_dir, prefix, str(data_dir), info


def test_fit_prior_writes_the_prior_beside_the_checkpoint_and_records_it(fitted):
    run_dir, prefix, _, info = fitted
    mixture, stored = prior.load_prior(prefix)
    assert stored == info and info["components"] == len(mixture["weights"]) in (1, 2)
    assert mixture["means"].shape[1] == 16 and info["train"]["windows"] == 16
    assert set(info["validation_log_likelihood"]) == {"1", "2"}
    recorded = runs.read_run_info(run_dir)["prior"]
    assert recorded["file"] == os.path.basename(prefix) + ".prior.npz" and recorded["components"] == info["components"]


def test_generate_samples_from_the_data_prior_and_regenerates_it(fitted, tmp_path, capsys):
    run_dir, prefix, _, _ = fitted
    out = str(tmp_path / "out")
    base = ["generate", "--checkpoint", "private", "--run_dir", run_dir, "--no_wav", "--no_progress",
            "--output_dir", out, "--n", "3"]
    assert cli.main(base + ["--prior", "data"]) == 0
    assert cli.main(base) == 0  # the standard prior beside it: other files, other codes
    with open(os.path.join(out, "manifest.json")) as f:
        data_run, standard_run = json.load(f)["runs"]
    assert data_run["prior"] == "data" and data_run["prefix"].startswith("sample-data_t0.5_s0_")
    assert "prior" not in standard_run and set(data_run["files"]).isdisjoint(standard_run["files"])
    capsys.readouterr()
    assert cli.main(["regenerate", os.path.join(out, "manifest.json"), "--output_dir", str(tmp_path / "again")]) == 0
    for name, digest in data_run["files"].items():
        assert checkpoints.files.sha256_of(str(tmp_path / "again" / name)) == digest
    from groovae import listen
    assert "from the data prior" in listen.render_page(out)
    mixture, info = prior.load_prior(prefix)  # a prior fitted again (or changed): regenerate refuses
    mixture["means"] = mixture["means"] + 1
    prior.save_prior(prior.prior_path(prefix), mixture, info)
    assert cli.main(["regenerate", os.path.join(out, "manifest.json"), "--output_dir", str(tmp_path / "third")]) == 2
    assert "the data prior this manifest's grooves came from is missing or changed" in capsys.readouterr().err


def test_the_public_checkpoint_gets_its_prior_by_the_same_command(fitted, http_server, tmp_path):
    """'public' (Google's tar; here the tiny checkpoint's, served on 127.0.0.1): fit-prior writes its prior beside
    the extracted checkpoint in the cache, and generate --checkpoint public --prior data samples from it."""
    from tests.conftest import serve_as_public
    _, prefix, data_dir, _ = fitted
    url = serve_as_public(http_server, prefix, str(tmp_path))
    common = ["--config", "groovae_tiny", "--public_url", url,
              "--cache_dir", str(tmp_path / "cache"), "--no_progress"]
    assert cli.main(["fit-prior", "public", "--data", data_dir, *common]) == 0
    [cached] = [os.path.join(d, n[:-len(".prior.npz")]) for d, _, names in os.walk(tmp_path / "cache")
                for n in names if n.endswith(".prior.npz")]
    assert prior.load_prior(cached)[1]["train"]["windows"] == 16
    out = str(tmp_path / "out")
    assert cli.main(["generate", "--checkpoint", "public", "--prior", "data", "--n", "2", "--no_wav",
                     "--output_dir", out, *common]) == 0
    [run] = json.load(open(os.path.join(out, "manifest.json")))["runs"]
    assert run["prior"] == "data" and run["checkpoint"] == url


def test_data_prior_refusals_are_one_line(tiny_run, fitted, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert cli.main(["generate", "--checkpoint", "private", "--run_dir", tiny_run[0], "--no_wav", "--no_progress",
                     "--output_dir", out, "--prior", "data"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "no data prior beside it" in err and "groovae fit-prior" in err
    from groovae import generate
    with pytest.raises(GroovaeError, match="is for sampling"):
        generate.prior_of(fitted[1], "data", "interpolate")
    with pytest.raises(RequestError, match="unknown prior 'gaussian'"):
        prior.check_prior("gaussian")
    assert cli.main(["fit-prior", tiny_run[0], "--data", str(tmp_path)]) == 2
    assert "train.npz: no such tensor file" in capsys.readouterr().err
    assert not os.path.exists(out)
    other = tmp_path / "other"  # windows the run was not trained on
    other.mkdir()
    tensors = data.load_tensors(os.path.join(fitted[2], "train.npz"))
    for split in ("train", "validation"):
        data.save_tensors(str(other / f"{split}.npz"), {k: v[:8] for k, v in tensors.items()})
    assert cli.main(["fit-prior", fitted[0], "--data", str(other)]) == 2
    assert "not the windows model.ckpt-40 was trained on (16 windows" in capsys.readouterr().err
    earlier = checkpoints.complete_checkpoints(fitted[0])[0]  # a prior beside a checkpoint it was not fitted to
    assert earlier != fitted[1]
    shutil.copy(prior.prior_path(fitted[1]), prior.prior_path(earlier))
    with pytest.raises(RequestError, match="fitted to another checkpoint"):
        prior.load_prior(earlier)
    os.remove(prior.prior_path(earlier))


def test_export_carries_the_prior(fitted, tmp_path):
    from groovae import export
    run_dir, prefix, _, _ = fitted
    copy = export.export_checkpoint(prefix, str(tmp_path / "exported"))
    (theirs, info), (ours, _) = prior.load_prior(copy), prior.load_prior(prefix)  # tied to the copy's own sha256
    assert info["copied_from"] == os.path.basename(prefix) and info["checkpoint_sha256"] != _["checkpoint_sha256"]
    np.testing.assert_array_equal(theirs["chols"], ours["chols"])
    assert runs.read_run_info(str(tmp_path / "exported"))["prior"]["file"] == os.path.basename(copy) + ".prior.npz"


def test_evaluate_reports_each_prior_with_the_guards(fitted, tmp_path, monkeypatch):
    run_dir, prefix, data_dir, _ = fitted
    shutil.copy(os.path.join(data_dir, "train.npz"), os.path.join(data_dir, "test.npz"))
    out = str(tmp_path / "report")
    from groovae import plots
    plotted, plot = [], plots.training_curves_compared
    monkeypatch.setattr(plots, "training_curves_compared", lambda runs, *a: plotted.append(list(runs)) or plot(runs, *a))
    assert cli.main(["evaluate", "--checkpoint", prefix, "--data", data_dir, "--n_samples", "8",
                     "--temperatures", "0.5", "--priors", "standard", "data", "--output_dir", out,
                     "--no_progress"]) == 0
    with open(os.path.join(out, "comparison.json")) as f:
        standard, data_prior = json.load(f)["results"]
    assert (standard["prior"], data_prior["prior"]) == ("standard", "data")
    assert data_prior["label"] == "groovae_tiny · data prior" and data_prior["reconstruction"] == standard["reconstruction"]
    assert standard["samples"]["0.5"]["statistics"] != data_prior["samples"]["0.5"]["statistics"]
    text = open(os.path.join(out, "report.md")).read()
    assert "| test windows | 1.000 | 100.0% |" in text  # test = train here: every test window is a copy
    assert "groovae_tiny · data prior T=0.5" in text and "near copies (≤ test's)" in text
    reconstruction = text.split("## Reconstruction")[1].split("## Latent space")[0]  # the prior changes none of it
    assert "| groovae_tiny | " in reconstruction and "prior" not in reconstruction
    assert plotted == [["groovae_tiny"]]  # one training curve per run, whatever the priors
