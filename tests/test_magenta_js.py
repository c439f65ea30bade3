"""An export runs in @magenta/music's MusicVAE in headless Chromium and agrees with the Python model.

scripts/setup.sh --test installs the pinned @magenta/music from npm into .cache/magenta-js (never
committed); the test serves it and the export from a server on 127.0.0.1 to Chromium, decodes fixed
latent vectors and encodes grooves there, and compares with GrooveModel.
"""
import json
import os
import shutil

import numpy as np
import pytest

from groovae import checkpoints, data, export_js
from groovae.model import GrooveModel
from tests.conftest import gmd_test_performances, magenta_js_or_skip

@pytest.fixture(scope="module")
def served(static_server):
    """(base URL, folder) of the static server, its folder holding magentamusic.js and a page that loads it."""
    base, folder = static_server
    shutil.copy(magenta_js_or_skip(), os.path.join(folder, "magentamusic.js"))
    with open(os.path.join(folder, "index.html"), "w") as f:
        f.write('<!DOCTYPE html><meta charset="utf-8"><script src="magentamusic.js"></script>')
    return base, folder


# magenta.js decodes without a temperature by thresholding hit probabilities at 0.5; magenta's Python decoder
# samples Bernoulli(sigmoid(logit / T)), which at T = 1e-30 is that threshold (logits overflow to +-inf).
THRESHOLD_TEMPERATURE = 1e-30

RUN_IN_PAGE = """
const [url, zs, inputs, done] = arguments;
(async () => {
  const model = new mm.MusicVAE(url);
  await model.initialize();
  const decoded = await model.decodeTensors(mm.tf.tensor2d(zs));  // no temperature: hits above 0.5
  const encoded = await model.encodeTensors(mm.tf.tensor3d(inputs), undefined);
  done({decoded: await decoded.array(), encoded: await encoded.array(), zDims: model.zDims});
})().catch(e => done({error: String(e && e.stack || e)}));
"""


def run_in_browser(browser, base, export_name, zs, inputs):
    browser.get(base + "/index.html")
    result = browser.execute_async_script(RUN_IN_PAGE, f"{base}/{export_name}", np.asarray(zs).tolist(),
                                          np.asarray(inputs).tolist())
    assert "error" not in result, result.get("error")
    return result


@pytest.mark.parametrize("quantize", [None, 8])
def test_magenta_js_decodes_and_encodes_as_the_python_model(browser, served, tiny_run, tiny_tensors_path, quantize):
    base, folder = served
    run_dir, _ = tiny_run
    prefix = checkpoints.newest_checkpoint(run_dir)
    name = f"export_q{quantize}"
    export_js.export_magenta_js(prefix, os.path.join(folder, name), quantize=quantize)
    model = GrooveModel("groovae_tiny", prefix)
    zs = np.random.RandomState(7).randn(8, model.z_size).astype(np.float32)
    grooves = data.load_tensors(tiny_tensors_path)["inputs"][:5]
    result = run_in_browser(browser, base, name, zs, grooves)
    assert result["zDims"] == model.z_size
    ours_decoded = model.decode(zs, THRESHOLD_TEMPERATURE)
    theirs_decoded = np.asarray(result["decoded"], np.float32)
    ours_mu, theirs_mu = model.encode(grooves), np.asarray(result["encoded"], np.float32)
    print(f"quantize={quantize}: hits equal {np.mean(theirs_decoded[..., :9] == ours_decoded[..., :9]):.4f}, "
          f"max |velocity, offset diff| {np.abs(theirs_decoded[..., 9:] - ours_decoded[..., 9:]).max():.2e}, "
          f"max |mu diff| {np.abs(theirs_mu - ours_mu).max():.2e}")
    if quantize is None:  # float32: the same hits, velocities and offsets and codes within 1e-4
        np.testing.assert_array_equal(theirs_decoded[..., :9], ours_decoded[..., :9])
        np.testing.assert_allclose(theirs_decoded[..., 9:], ours_decoded[..., 9:], atol=1e-4)
        np.testing.assert_allclose(theirs_mu, ours_mu, atol=1e-4)
    else:  # 8-bit weights: each within half a step of its tensor's range; close, not equal
        assert np.mean(theirs_decoded[..., :9] == ours_decoded[..., :9]) > 0.98
        assert np.abs(theirs_mu - ours_mu).max() < 0.01
    with open(os.path.join(folder, name, "config.json")) as f:
        assert json.load(f)["groovae"]["quantize"] == quantize


COMMITTED = ("groovae_4bar", "groovae_4bar_humanize", "groovae_4bar_tap2drum")  # the models samples/lab runs


@pytest.mark.parametrize("name, quantize", [(COMMITTED[0], None)] + [(name, 8) for name in COMMITTED])
def test_the_committed_models_agree_in_magenta_js(browser, served, midi_dir, name, quantize):
    """Full-size trained models, as samples/lab runs them: float32 as the tiny model; 8-bit close."""
    from groovae.configs import load_config
    from tests.test_committed import committed_or_skip
    base, folder = served
    prefix = committed_or_skip(name)
    export = f"{name}_q{quantize}"
    export_js.export_magenta_js(prefix, os.path.join(folder, export), quantize=quantize)
    model = GrooveModel(name, prefix)
    zs = np.random.RandomState(7).randn(8, model.z_size).astype(np.float32)
    converter = load_config(name).data_converter
    performances = gmd_test_performances(5)  # the first window of five test-split beats, where the GMD is here
    if performances:
        grooves = np.stack([data.sequence_to_tensors(s, converter)["inputs"][0] for s in performances])
    else:
        paths = sorted(os.path.join(midi_dir, f) for f in os.listdir(midi_dir) if f.endswith(".mid"))[:3]
        grooves = data.midi_files_to_tensors(paths, converter)[0]["inputs"][:5]
    result = run_in_browser(browser, base, export, zs, grooves)
    ours_decoded, theirs_decoded = model.decode(zs, THRESHOLD_TEMPERATURE), np.asarray(result["decoded"], np.float32)
    ours_mu, theirs_mu = model.encode(grooves), np.asarray(result["encoded"], np.float32)
    hits_equal = np.mean(theirs_decoded[..., :9] == ours_decoded[..., :9])
    both_hit = (theirs_decoded[..., :9] == 1) & (ours_decoded[..., :9] == 1)
    assert both_hit.any(), "the decoded grooves share no hit to compare velocities and offsets on"
    velocity, offset = (np.abs(theirs_decoded[..., k:k + 9] - ours_decoded[..., k:k + 9])[both_hit] for k in (9, 18))
    mu = np.abs(theirs_mu - ours_mu)
    print(f"{name} quantize={quantize}, {'GMD test' if performances else 'synthetic'} grooves: "
          f"hits equal {hits_equal:.4f}; on shared hits |velocity diff| mean "
          f"{velocity.mean():.2e} max {velocity.max():.2e}, |offset diff| mean {offset.mean():.2e} max "
          f"{offset.max():.2e}; |mu diff| mean {mu.mean():.2e} max {mu.max():.2e} (mu's spread {ours_mu.std():.2f})")
    if quantize is None:
        np.testing.assert_array_equal(theirs_decoded[..., :9], ours_decoded[..., :9])
        np.testing.assert_allclose(theirs_decoded[..., 9:], ours_decoded[..., 9:], atol=1e-4)
        np.testing.assert_allclose(theirs_mu, ours_mu, atol=1e-4)
    else:
        # 8-bit weights (per tensor, as tfjs-converter and the hosted checkpoints): at full size 98.8-99.5 % of
        # the hits, velocities within 0.02-0.025 (of 1) and codes within 0.011-0.017 on average
        assert hits_equal > 0.97 and velocity.mean() < 0.05 and offset.mean() < 0.1 and mu.mean() < 0.1 * ours_mu.std()
