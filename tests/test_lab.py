"""groovae lab: a static page that runs magenta.js exports, driven in headless Chromium over 127.0.0.1."""
import base64
import hashlib
import io
import json
import os

import numpy as np
import pretty_midi
import pytest
from scipy.io import wavfile

from groovae import checkpoints, data, drum_kit, export_js, lab, listen, listing, synthetic, train
from groovae.configs import load_config
from groovae.errors import RequestError
from groovae.gmd import DRUM_CLASSES
from tests.conftest import MAGENTA_JS, magenta_js_or_skip, tiny_config


@pytest.fixture(scope="module")
def exports(tiny_run, midi_dir, tmp_path_factory):
    """8-bit magenta.js exports: the tiny flat model ('flat') and tiny humanize and tap2drum models."""
    folder = str(tmp_path_factory.mktemp("exports"))
    made = [export_js.export_magenta_js(checkpoints.newest_checkpoint(tiny_run[0]), os.path.join(folder, "flat"))]
    paths = sorted(os.path.join(midi_dir, f) for f in os.listdir(midi_dir) if f.endswith(".mid"))
    for base, name in (("groovae_4bar_humanize", "humanize"), ("groovae_4bar_tap2drum", "drumify")):
        config = tiny_config(folder, base)
        tensors_path = os.path.join(folder, name + ".npz")
        data.save_tensors(tensors_path, data.midi_files_to_tensors(paths, load_config(config).data_converter)[0])
        run_dir = os.path.join(folder, name + "_run")
        train.train(config, tensors_path, run_dir, num_steps=3, init_from=tiny_run[0], progress=False)
        made.append(export_js.export_magenta_js(checkpoints.newest_checkpoint(run_dir), os.path.join(folder, name)))
    return made


def test_lab_json_says_what_each_model_does(exports, tmp_path):
    page = lab.build_lab(exports, str(tmp_path / "lab"))
    folder = os.path.dirname(page)
    with open(os.path.join(folder, "lab.json")) as f:
        info = json.load(f)
    assert [(m["name"], m["role"]) for m in info["models"]] == [("flat", "sample"), ("humanize", "humanize"),
                                                                 ("drumify", "drumify")]
    assert info["magentaJs"]["src"] == lab.MAGENTA_JS_URL  # by default the pinned URL, with its integrity hash
    html = open(page).read()
    assert f'integrity="{lab.MAGENTA_JS_INTEGRITY}"' in html and not os.path.exists(os.path.join(folder, "magentamusic.js"))
    for m in info["models"]:
        assert m["bytes"] > 0 and os.path.isfile(os.path.join(folder, "models", m["name"], "weights_manifest.json"))
    assert sorted(os.listdir(os.path.join(folder, "kit"))) == sorted(f"{n}.wav" for n in DRUM_CLASSES)
    lab.build_lab(exports[:1], str(tmp_path / "lab"))  # an earlier lab is replaced whole
    assert os.listdir(os.path.join(folder, "models")) == ["flat"]


def test_the_listening_page_links_a_lab_below_it(exports, tmp_path):
    lab.build_lab(exports[:1], str(tmp_path / "samples" / "lab"))
    samples = str(tmp_path / "samples")
    [folder] = [listing.read_folder(samples, rel) for rel in listing.find_folders(samples)]
    assert (folder["path"], folder["lab"], folder["runs"]) == ("lab", True, [])  # its kit and models are no grooves
    page = listen.render_page(samples)
    assert '<a href="lab/index.html">open it</a>' in page and "No grooves in this folder" not in page


def test_the_pinned_integrity_hash_is_the_npm_files():
    if not os.path.isfile(MAGENTA_JS):
        magenta_js_or_skip()
    digest = base64.b64encode(hashlib.sha384(open(MAGENTA_JS, "rb").read()).digest()).decode()
    assert lab.MAGENTA_JS_INTEGRITY == f"sha384-{digest}"
    with open(os.path.join(os.path.dirname(MAGENTA_JS), "..", "package.json")) as f:
        assert json.load(f)["version"] == lab.MAGENTA_JS_VERSION


def test_bad_exports_and_output_dirs_get_one_line_and_nothing_written(exports, tmp_path):
    out = str(tmp_path / "out")
    with pytest.raises(RequestError, match=r"not a magenta.js export \(config.json missing"):
        lab.build_lab([str(tmp_path)], out)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "weights_manifest.json"):
        (broken / name).write_bytes(open(os.path.join(exports[0], name), "rb").read())
    with pytest.raises(RequestError, match="weight shard group1-shard1of1 missing"):
        lab.build_lab([str(broken)], out)
    (broken / "config.json").write_text("[1, 2]")
    with pytest.raises(RequestError, match="config.json is not a GrooVAE model"):
        lab.build_lab([str(broken)], out)
    (broken / "config.json").write_bytes(open(os.path.join(exports[0], "config.json"), "rb").read())
    (broken / "weights_manifest.json").write_text('[{"paths": ["x"]}]')
    with pytest.raises(RequestError, match="not a TensorFlow.js weights manifest"):
        lab.build_lab([str(broken)], out)
    with pytest.raises(RequestError, match="two exports are named flat"):
        lab.build_lab([exports[0], exports[0]], out)
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    with pytest.raises(RequestError, match="exists with other files"):
        lab.build_lab(exports[:1], str(tmp_path / "taken"))
    with pytest.raises(RequestError, match="--magenta_js nowhere.js: no such file"):
        lab.build_lab(exports[:1], out, magenta_js="nowhere.js")
    assert not os.path.exists(out) and os.listdir(tmp_path / "taken") == ["notes.txt"]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_lab_command_line(exports, tmp_path, capsys):
    from groovae import cli
    assert cli.main(["lab", str(tmp_path), "--output_dir", str(tmp_path / "lab")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith("not a magenta.js export (config.json missing; make one with groovae "
                                            "export --format magenta-js)")
    assert cli.main(["lab", *exports[:2], "--output_dir", str(tmp_path / "lab"), "--title", "two models"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "lab" / "index.html")
    assert "<title>two models</title>" in open(tmp_path / "lab" / "index.html").read()


def test_synthesized_kit_without_fluidsynth(tmp_path, monkeypatch):
    monkeypatch.setattr(drum_kit.audio, "unavailable_reason", lambda soundfont=None: "no fluidsynth here")
    made = drum_kit.write_kit(str(tmp_path), DRUM_CLASSES, [36, 38, 42, 46, 45, 48, 50, 49, 51])
    assert made == "synthesized (no fluidsynth here)"
    for name in DRUM_CLASSES:
        rate, pcm = wavfile.read(str(tmp_path / f"{name}.wav"))
        assert rate == drum_kit.SAMPLE_RATE and 0 < len(pcm) <= drum_kit.LONGEST * rate and np.abs(pcm).max() > 1000
        assert abs(int(pcm[-1])) < 50  # faded out, no click


# ---------------------------------------------------------------- in the browser

@pytest.fixture(scope="module")
def page(browser, static_server, exports):
    """The lab (magenta.js copied beside it) served on 127.0.0.1 and opened in Chromium, once ready."""
    base, folder = static_server
    lab.build_lab(exports, os.path.join(folder, "lab"), magenta_js=magenta_js_or_skip())
    browser.get(f"{base}/lab/index.html")
    wait_for(browser, "return window.groovaeLab && (window.groovaeLab.ready || window.groovaeLab.error)", 120)
    assert browser.execute_script("return window.groovaeLab.error") is None
    return browser


def wait_for(browser, script, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(browser, timeout, poll_frequency=0.1).until(lambda b: b.execute_script(script))


def act(browser, css):
    """Clicks ``css`` and waits for the action to finish; returns the status line."""
    count = browser.execute_script("return window.groovaeLab.grooves.length")
    browser.execute_script("document.getElementById('status').textContent = ''")
    browser.find_element("css selector", css).click()
    wait_for(browser, "const s = document.getElementById('status'); "
                      "return s.textContent && !s.textContent.endsWith('…') && s.textContent")
    status = browser.execute_script("return document.getElementById('status').textContent")
    return status, browser.execute_script("return window.groovaeLab.grooves.length") - count


def midi_of(browser, groove_id):
    """The groove's MIDI download, read back from the blob the page links to, parsed."""
    href = browser.execute_script(f"return document.querySelector('figure[data-id=\"{groove_id}\"] a.midi').href")
    assert href.startswith("blob:")
    raw = browser.execute_async_script("""
        const [href, done] = arguments;
        fetch(href).then(r => r.arrayBuffer()).then(b => done(Array.from(new Uint8Array(b))));""", href)
    return pretty_midi.PrettyMIDI(io.BytesIO(bytes(raw))), bytes(raw)


def errors_in_console(browser):
    return [e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE"]


def test_lab_samples_plays_and_downloads_four_bars(page, exports):
    status, made = act(page, "#sample")
    assert made == 3, status
    newest = page.execute_script("return window.groovaeLab.grooves.at(-1).id")
    page.find_element("css selector", f'figure[data-id="{newest}"] button.play').click()
    wait_for(page, "return window.groovaeLab.playing !== null")
    assert "playing" in page.find_element("css selector", f'figure[data-id="{newest}"]').get_attribute("class")
    midi, raw = midi_of(page, newest)
    [drums] = midi.instruments
    bar = 4 * 60.0 / midi.get_tempo_changes()[1][0]
    assert drums.is_drum and drums.notes and all(0 <= n.start < 4 * bar for n in drums.notes)
    with open(os.path.join(exports[0], "config.json")) as f:
        classes = json.load(f)["dataConverter"]["args"]["pitchClasses"]
    assert {n.pitch for n in drums.notes} <= {c[0] for c in classes}
    act(page, "#sample")  # the same seed: the same grooves
    assert midi_of(page, newest + 3)[1] == raw
    page.execute_script("document.getElementById('seed').value = 1")
    act(page, "#sample")  # another seed: other grooves
    assert midi_of(page, newest + 6)[1] != raw
    page.execute_script("document.getElementById('seed').value = 0")
    assert act(page, "#interpolate")[1] == 5
    page.execute_script("document.getElementById('temperature').value = -1")
    status, made = act(page, "#sample")
    assert made == 0 and status == "sampling: temperature must be a number from 0.01"
    page.execute_script("document.getElementById('temperature').value = 0.5; window.groovaeLab.error = null")
    assert errors_in_console(page) == []


def test_lab_humanizes_a_clicked_pattern_and_refuses_other_meters(page, tmp_path):
    cells = page.find_elements("css selector", "#grid button.cell.on")
    for cell in cells:  # clear the starting beat, then click a new one
        cell.click()
    for row, step in ((0, 0), (0, 8), (1, 4), (1, 12), (2, 2), (2, 6), (2, 10), (2, 14)):
        page.find_element("css selector", f'#grid button[data-row="{row}"][data-step="{step}"]').click()
    status, made = act(page, 'button.transform[data-model="humanize"]')
    assert made == 3, status  # the input beat and two feels
    grooves = page.execute_script("return window.groovaeLab.grooves.slice(-3).map(g => g.ns.notes.length)")
    assert grooves[0] == 8 * 4  # the clicked bar, four times
    midi, _ = midi_of(page, page.execute_script("return window.groovaeLab.grooves.at(-1).id"))
    assert midi.instruments[0].is_drum
    status, made = act(page, 'button.transform[data-model="drumify"]')
    assert made == 3, status
    compound = pretty_midi.PrettyMIDI(initial_tempo=120)
    compound.time_signature_changes.append(pretty_midi.TimeSignature(12, 8, 0))
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes = [pretty_midi.Note(100, 36, t * 0.25, t * 0.25 + 0.1) for t in range(48)]
    compound.instruments.append(drums)
    path = str(tmp_path / "twelve_eight.mid")
    compound.write(path)
    page.execute_script("document.getElementById('status').textContent = ''")
    page.find_element("css selector", "#file").send_keys(path)
    wait_for(page, "const s = document.getElementById('status').textContent; return s && !s.endsWith('…')")
    assert "time signature 12/8; the models' bars are 4/4" in page.execute_script(
        "return document.getElementById('status').textContent")
    beat = synthetic.make_beat(bars=6, bpm=100)  # a 4/4 file: its first four bars, at its own tempo
    beat.write(str(tmp_path / "beat.mid"))
    page.find_element("css selector", "#file").send_keys(str(tmp_path / "beat.mid"))
    wait_for(page, "return document.getElementById('dropped').textContent.includes('beat.mid')")
    status, made = act(page, 'button.transform[data-model="humanize"]')
    assert made == 3, status
    midi, _ = midi_of(page, page.execute_script("return window.groovaeLab.grooves.at(-1).id"))
    bar = 4 * 60.0 / midi.get_tempo_changes()[1][0]
    assert midi.get_tempo_changes()[1][0] == pytest.approx(100, abs=0.5) and midi.instruments[0].is_drum
    assert midi.instruments[0].notes and all(0 <= n.start < 4 * bar for n in midi.instruments[0].notes)
    assert errors_in_console(page) == []


def test_a_lab_of_beat_models_only(browser, static_server, exports):
    """Humanize and drumify without a model that samples: the settings are there all the same."""
    base, folder = static_server
    lab.build_lab(exports[1:], os.path.join(folder, "beat_lab"), magenta_js=magenta_js_or_skip())
    browser.get(f"{base}/beat_lab/index.html")
    wait_for(browser, "return window.groovaeLab && (window.groovaeLab.ready || window.groovaeLab.error)", 120)
    assert browser.find_elements("css selector", "#sample") == []
    status, made = act(browser, 'button.transform[data-model="humanize"]')
    assert made == 3, status
    assert errors_in_console(browser) == []
