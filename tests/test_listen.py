"""The listening page (groovae/listen.py): its HTML, and the page itself in headless Chromium.

The browser tests drive Debian's chromium + chromium-driver with selenium
(scripts/setup.sh --test installs them); nothing is downloaded at test time,
and they skip, saying why, where either is missing.
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import urllib.parse
import urllib.request
import wave
import zlib

import pytest

from groovae import listen, synthetic
from groovae.manifest import ManifestError
from tests.conftest import ROOT

SAMPLES = os.path.join(ROOT, "samples")
NO_FLUIDSYNTH = "the fluidsynth program is not installed (apt-get install fluidsynth fluid-soundfont-gm)"


# ---------------------------------------------------------------- a samples folder made here


def tiny_png(path, width=40, height=12):
    """A valid grey PNG (stdlib only)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    rows = b"".join(b"\x00" + bytes((x * 5) % 256 for x in range(width)) for _ in range(height))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def tiny_wav(path, seconds, rate=8000):
    """A quiet click track of ``seconds`` (mono 16-bit)."""
    frames = bytearray(int(seconds * rate) * 2)
    for start in range(0, len(frames) // 2, rate // 2):
        frames[2 * start:2 * start + 2] = struct.pack("<h", 3000)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))


def write_run(folder, mode, prefix, n, temperature=0.5, seed=0, config="groovae_4bar", checkpoint="public",
              step=None, wav=True, inputs=(), hparams="", no_wav_reason=None):
    """Grooves (4 bars at 120 bpm, so 8 s; WAVs 9 s with a 'ring-out') and their manifest entry."""
    os.makedirs(folder, exist_ok=True)
    names = []
    for i in range(n):
        base = os.path.join(folder, f"{prefix}_{i:02d}")
        synthetic.make_groove(bars=4, seed=i).write(base + ".mid")
        tiny_png(base + ".png")
        names += [base + ".mid", base + ".png"]
        if wav:
            tiny_wav(base + ".wav", 9.0)
            names.append(base + ".wav")
    entry = {"mode": mode, "config": config, "hparams": hparams, "checkpoint": checkpoint,
             "checkpoint_sha256": "0" * 64,
             "temperature": temperature, "seed": seed, "n": n, "steps": n if mode == "interpolate" else None,
             "inputs": [{"path": p, "sha256": "0" * 64, "window": None} for p in inputs], "prefix": prefix,
             "wav": wav, "png": True, "files": {os.path.basename(p): "0" * 64 for p in names}}
    if step is not None:
        entry["checkpoint_step"] = step
    if no_wav_reason:
        entry["no_wav_reason"] = no_wav_reason
    path = os.path.join(folder, "manifest.json")
    runs = json.load(open(path))["runs"] if os.path.exists(path) else []
    with open(path, "w") as f:
        json.dump({"runs": runs + [entry]}, f)
    return entry


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    """public (Google's checkpoint), private_flat (two temperatures, interpolation, reconstruction),
    private_hier, no_audio (no WAVs), todo (a README only); odd characters in names and settings."""
    root = str(tmp_path_factory.mktemp("samples"))
    public = os.path.join(root, "public")
    write_run(public, "sample", "sample_t0.5_s0", 2, step=2721)
    flat = os.path.join(root, "private_flat")
    ckpt = "../../runs/groovae_4bar/model.ckpt-800"
    write_run(flat, "sample", "sample_t1_s0", 2, temperature=1.0, checkpoint=ckpt)  # listed first, shown second
    write_run(flat, "sample", "sample_t0.3_s0", 2, temperature=0.3, checkpoint=ckpt, step=800)
    write_run(flat, "interpolate", "interp_s0", 3, checkpoint=ckpt,
              inputs=["sample_t0.3_s0_00.mid", "sample_t0.3_s0_01.mid"])
    write_run(flat, "reconstruct", "recon_s0", 1, checkpoint=ckpt, inputs=["sample_t1_s0_01.mid"])
    with open(os.path.join(flat, "training_summary.json"), "w") as f:
        json.dump({"global_step": 800, "train_hours": 2.07, "final_validation": {"loss": 143.5}}, f)
    write_run(os.path.join(root, "private_hier"), "sample", "odd name & <co>", 1, config="groovae_4bar_hier",
              checkpoint="../../runs/hier/model.ckpt-700", hparams="<script>alert(1)</script>")
    write_run(os.path.join(root, "no_audio"), "sample", "sample_t0.5_s1", 2, seed=1, wav=False,
              checkpoint="../../runs/x/model.ckpt-40", no_wav_reason=NO_FLUIDSYNTH)
    os.makedirs(os.path.join(root, "todo"))
    with open(os.path.join(root, "todo", "README.md"), "w") as f:
        f.write("# todo\nrun groovae generate here\n")
    listen.write_page(root)
    return root


def page_of(root):
    with open(os.path.join(root, "index.html")) as f:
        return f.read()


def section(page, rel):
    start = page.index(f'<section class="folder" id="{rel}">')
    return page[start:page.index("</section>", start)]


# ---------------------------------------------------------------- the HTML


def test_page_groups_folders_and_runs_and_shows_what_made_each_groove(samples):
    page = page_of(samples)
    order = [m for m in re.findall(r'<section class="folder" id="([^"]+)">', page)]
    assert order == ["public", "no_audio", "private_flat", "private_hier", "todo"]  # the public model first
    public = section(page, "public")
    assert "Google&#x27;s public checkpoint" in public or "Google's public checkpoint" in public
    assert "2,721 training steps" in public and "temperature 0.5" in public and "seed 0" in public
    flat = section(page, "private_flat")
    titles = re.findall(r"<h3>(.*?)</h3>", flat)
    assert [re.sub("<[^>]+>", "", t) for t in titles] == [
        "Samples at temperature 0.3", "Samples at temperature 1",
        "Interpolation from sample_t0.3_s0_00.mid to sample_t0.3_s0_01.mid, 3 steps",
        "Reconstruction of sample_t1_s0_01.mid"]
    assert "<code>model.ckpt-800</code> (800 training steps)" in flat  # step from the manifest or the name
    assert "trained here, flat decoder (groovae_4bar)" in flat and "800 steps, 2.07 h of training" in flat
    assert "hierarchical decoder (groovae_4bar_hier)" in section(page, "private_hier")
    # interpolation in order; the reconstruction right after its input
    assert re.findall(r"<b>(interp_s0_\d\d)</b> · (step \d of 3)</span>", flat) == [
        ("interp_s0_00", "step 1 of 3"), ("interp_s0_01", "step 2 of 3"), ("interp_s0_02", "step 3 of 3")]
    recon = flat[flat.index("Reconstruction of"):]
    assert re.findall(r"<b>([^<]+)</b> · (input|reconstruction)", recon) == [
        ("sample_t1_s0_01", "input"), ("recon_s0_00", "reconstruction")]
    assert 'id="private_flat/sample_t1_s0_01-input"' in recon  # ids stay unique


def test_every_groove_has_player_drum_roll_and_midi_link_with_relative_urls(samples):
    page = page_of(samples)
    figures = re.findall(r'<figure class="groove[^"]*".*?</figure>', page)
    assert len(figures) == 2 + 2 + 2 + 3 + 2 + 1 + 2  # the reconstruction's input shown again beside it
    for figure in figures:
        assert re.search(r'<img loading="lazy" src="[^"]+\.png" width="\d+" height="\d+"', figure)
        assert re.search(r'<a href="[^"]+\.mid" download=', figure)
        assert "<audio" in figure or "no audio" in figure
    for url in re.findall(r'(?:src|href)="([^"#][^"]*)"', page):
        if url.startswith("data:"):
            continue
        assert not url.startswith(("/", "http:", "https:", "file:")), url
        assert os.path.isfile(os.path.join(samples, urllib.parse.unquote(url))), url
    assert "<script src" not in page and "<link rel=\"stylesheet\"" not in page and "@import" not in page


def test_odd_names_and_settings_are_escaped(samples):
    hier = section(page_of(samples), "private_hier")
    assert "<script>alert" not in hier and "&lt;script&gt;alert(1)&lt;/script&gt;" in hier
    assert 'src="private_hier/odd%20name%20%26%20%3Cco%3E_00.wav"' in hier
    assert "<b>odd name &amp; &lt;co&gt;_00</b>" in hier


def test_a_folder_without_wavs_shows_drum_rolls_and_midi_and_says_why(samples):
    no_audio = section(page_of(samples), "no_audio")
    assert "<audio" not in no_audio and no_audio.count("<img") == 2 and no_audio.count(".mid\" download") == 2
    assert "No audio: generated without WAV files: " + NO_FLUIDSYNTH in no_audio
    todo = section(page_of(samples), "todo")
    assert "No grooves in this folder yet" in todo and 'href="todo/README.md"' in todo


def test_dataset_windows_are_shown_as_data_with_where_each_comes_from(tmp_path):
    folder = tmp_path / "private" / "test_grooves"
    write_run(str(folder), "windows", "test_window", 2)
    path = folder / "manifest.json"
    run = json.load(open(path))["runs"][0]
    run.update(data="test.npz", data_sha256="ab" * 32, seed=0, windows=[
        {"index": 7, "midi": "test_window_00.mid", "source_id": "drummer1/session1/5", "start_bar": 8, "bpm": 120.0},
        {"index": 9, "midi": "test_window_01.mid"}])
    json.dump({"runs": [run]}, open(path, "w"))
    part = section(listen.render_page(str(tmp_path)), "private/test_grooves")
    assert "without a manifest" not in part and "from the data, not generated" in part
    assert re.sub("<[^>]+>", "", re.search(r"<h3>(.*?)</h3>", part).group(1)) == (
        "Grooves from the data: 2 windows of test.npz (the test split: no model here trained on them)")
    assert re.findall(r"<b>test_window_0\d</b> · ([^<]+)</span>", part) == [
        "drummer1/session1/5, bars 9–12, played at 120 bpm", "window 9"]
    assert "picked with seed 0 from distinct source files" in part and "abababababab" in part


def test_a_missing_wav_is_named(samples, tmp_path):
    shutil.copytree(os.path.join(samples, "public"), tmp_path / "public")
    os.remove(tmp_path / "public" / "sample_t0.5_s0_01.wav")
    page = listen.render_page(str(tmp_path))
    assert "No audio: WAV file missing from this folder for sample_t0.5_s0_01." in page
    assert page.count("<audio") == 1


def test_page_is_small_and_names_no_folder_of_this_machine(samples):
    page = page_of(samples)
    assert len(page.encode()) < 100_000
    for pattern in ("/work/", "/tmp/", "/home/", "/root/", "/Users/", samples):
        assert pattern not in page


def test_committed_page_is_regenerated_from_the_committed_samples():
    with open(os.path.join(SAMPLES, "index.html")) as f:
        committed = f.read()
    assert committed == listen.render_page(SAMPLES), "run: groovae listen samples/"
    assert len(committed.encode()) < 100_000


def test_cli_writes_the_page_and_refuses_a_missing_folder(samples, tmp_path):
    shutil.copytree(os.path.join(samples, "public"), tmp_path / "s" / "public")
    proc = subprocess.run([sys.executable, "-m", "groovae", "listen", str(tmp_path / "s")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "s" / "index.html") and "<audio" in page_of(tmp_path / "s")
    proc = subprocess.run([sys.executable, "-m", "groovae", "listen", str(tmp_path / "nowhere")], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "no such folder" in proc.stderr


def test_a_corrupt_manifest_is_one_clear_error(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="manifest.json: not a groovae manifest"):
        listen.render_page(str(tmp_path))


def test_generate_refreshes_only_pages_listen_wrote(samples, tmp_path):
    root = tmp_path / "s"
    shutil.copytree(os.path.join(samples, "public"), root / "public")
    assert listen.refresh_page_above(str(root / "public")) is None  # no page yet: nothing written
    assert not (root / "index.html").exists()
    listen.write_page(str(root), title="my grooves")
    write_run(str(root / "public"), "sample", "sample_t0.9_s0", 1, temperature=0.9)
    assert listen.refresh_page_above(str(root / "public")) == str(root / "index.html")
    page = page_of(root)
    assert "sample_t0.9_s0_00" in page and "<title>my grooves</title>" in page
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "index.html").write_text("<html>someone's own page</html>")
    assert listen.refresh_page_above(str(tmp_path / "other")) is None
    assert (tmp_path / "other" / "index.html").read_text() == "<html>someone's own page</html>"


def test_embedded_player_for_notebooks_needs_no_files_beside_it(samples):
    player = listen.player_html(os.path.join(samples, "private_flat"))
    urls = re.findall(r'(?:src|href)="([^"#][^"]*)"', player)
    assert urls and all(u.startswith("data:") for u in urls)
    assert player.count("<audio") == 9 and player.count("<img") == 9 and "<script>" in player


def test_listen_loads_no_tensorflow():
    code = "import sys; from groovae import listen; print('tensorflow' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.stdout.strip() == "False", proc.stderr


# ---------------------------------------------------------------- in a real browser


def open_page(driver, root):
    """Opens root/index.html from disk (file://), as a listener who double-clicks it does."""
    driver.get("file://" + urllib.request.pathname2url(os.path.abspath(os.path.join(root, "index.html"))))
    driver.get_log("browser")  # only this page's messages from here on


def groove_seconds(midi_path):
    """The groove's length: the end of its last note."""
    import pretty_midi
    return pretty_midi.PrettyMIDI(midi_path).get_end_time()


def file_of(url):
    assert url.startswith("file://"), url
    return urllib.request.url2pathname(urllib.parse.urlparse(url).path)


LOAD_ALL_AUDIO = """
const done = arguments[arguments.length - 1], players = [...document.querySelectorAll('audio')];
Promise.all(players.map(a => new Promise(resolve => {
  a.addEventListener('loadedmetadata', () => resolve([a.currentSrc, a.duration]), {once: true});
  a.addEventListener('error', () => resolve([a.currentSrc, 'error ' + (a.error && a.error.code)]), {once: true});
  a.load();
}))).then(done);
"""


def check_page_in_browser(driver, root):
    """Item 4 of issue 14: console, audio durations, images, MIDI links, one groove plays at a time.

    Returns the number of distinct WAV files played, of images and of MIDI links."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait
    open_page(driver, root)
    # every <audio> source loads, as long as its groove plus the kit's ring-out (cymbals ring up to ~10 s)
    durations = driver.execute_async_script(LOAD_ALL_AUDIO)
    assert durations, "no <audio> on the page"
    for url, seconds in durations:
        assert isinstance(seconds, (int, float)) and seconds > 0, (url, seconds)
        wav = file_of(url)
        with wave.open(wav) as w:
            assert abs(seconds - w.getnframes() / w.getframerate()) < 0.05, url
        groove = groove_seconds(wav[:-4] + ".mid")
        assert groove - 0.05 <= seconds <= groove + 12, (url, seconds, groove)
    # every drum roll loads (they are lazy: scroll each into view)
    images = driver.find_elements("css selector", "img")
    for img in images:
        driver.execute_script("arguments[0].scrollIntoView()", img)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "return [...document.images].every(i => i.complete)"))
    broken = driver.execute_script("return [...document.images].filter(i => !(i.naturalWidth > 0)).map(i => i.src)")
    assert images and not broken, broken
    # every MIDI link resolves to a file
    midis = [a.get_attribute("href") for a in driver.find_elements("css selector", "a[download]")]
    assert midis and all(os.path.isfile(file_of(url)) for url in midis), midis
    # clicking play on one groove pauses another; space toggles the focused groove
    players = driver.find_elements("css selector", "audio")
    if len(players) >= 2:
        state = "return [...document.querySelectorAll('audio')].slice(0, 2).map(a => a.paused)"
        for player in players[:2]:  # the play button sits at the left end of the native controls
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", player)
            play_button = -player.size["width"] // 2 + 16
            ActionChains(driver).move_to_element_with_offset(player, play_button, 0).click().perform()
            WebDriverWait(driver, 10).until(lambda d: not player.get_property("paused"))
        # the page pauses the first player from its 'play' event handler, which may run after the second's
        # state flips: wait for the state, do not read it at once (that raced under load: [False, False])
        WebDriverWait(driver, 10).until(lambda d: d.execute_script(state) == [True, False])
        first = driver.find_elements("css selector", "figure.groove")[0]
        driver.execute_script("arguments[0].focus()", first)
        ActionChains(driver).send_keys(" ").perform()
        WebDriverWait(driver, 10).until(lambda d: d.execute_script(state) == [False, True])
        ActionChains(driver).send_keys(" ").perform()
        WebDriverWait(driver, 10).until(lambda d: d.execute_script(state) == [True, True])
        assert driver.execute_script("return window.scrollY") > 0  # space did not scroll the page back
    # no console errors
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors
    return len({file_of(url) for url, _ in durations}), len(images), len(midis)  # a reconstruction's original plays twice


def test_page_works_in_headless_chromium(browser, samples):
    # WAVs of public, private_flat, private_hier; the reconstruction's original is one of private_flat's samples
    assert check_page_in_browser(browser, samples) == (2 + 9 + 1 - 1, 14, 14)


def test_committed_samples_page_works_in_headless_chromium(browser):
    audio, images, midis = check_page_in_browser(browser, SAMPLES)
    from groovae import listing
    wavs = [f for rel in listing.find_folders(SAMPLES) for f in os.listdir(os.path.join(SAMPLES, rel))
            if f.endswith(".wav")]  # the grooves' (a lab's kit is the lab's own)
    assert audio == len(wavs) and images == midis > 0


def test_page_renders(browser, samples, tmp_path):
    open_page(browser, samples)
    shot = tmp_path / "page.png"
    assert browser.save_screenshot(str(shot))
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    import matplotlib.image
    pixels = matplotlib.image.imread(str(shot))
    assert pixels.shape[0] >= 600 and pixels.shape[1] >= 1000
    assert len({tuple(p) for p in pixels.reshape(-1, pixels.shape[-1])[::97].round(2).tolist()}) > 20  # not blank
