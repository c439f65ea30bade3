"""Shared fixtures: small synthetic drum MIDI files and a tiny trained run."""
import os
import sys

import pytest

import groovae.compat  # noqa: F401  (shims before TF)
from groovae import audio, data, synthetic, train
from groovae.configs import load_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# scripts/setup.sh installs FluidSynth where it can (root + apt-get); elsewhere WAV tests skip.
needs_audio = pytest.mark.skipif(audio.unavailable_reason() is not None,
                                 reason=f"no WAV rendering here: {audio.unavailable_reason()}")
GMD_ZIP = os.path.join(ROOT, "..", "shared", "data", "groove-v1.0.0-midionly.zip")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
# scripts/setup.sh --test installs the pinned @magenta/music from npm here (never committed).
MAGENTA_JS = os.path.join(ROOT, ".cache", "magenta-js", "node_modules", "@magenta", "music", "dist", "magentamusic.js")
# A your-beat config (or any groovae_4bar twin) at groovae_tiny's sizes, written by tiny_config.
TINY = '''from groovae.configs import load_config, with_hparams
config = with_hparams(load_config("{base}"), batch_size=8, z_size=16, enc_rnn_size=[32], dec_rnn_size=[32, 32],
                      free_bits=4)
'''


def run_python(code, timeout=300):
    """Runs ``code`` in a fresh interpreter (a native crash fails the test, not pytest)."""
    import subprocess
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=timeout,
                          capture_output=True, text=True)


def gmd_test_performances(n):
    """DrumMidi sequences of the first ``n`` 4/4 beats of the GMD's test split (info.csv), or [] without the zip."""
    import csv
    import io
    import zipfile
    if not os.path.exists(GMD_ZIP):
        return []
    with zipfile.ZipFile(GMD_ZIP) as z:
        [info] = [name for name in z.namelist() if name.endswith("info.csv")]
        rows = list(csv.DictReader(io.TextIOWrapper(z.open(info), encoding="utf-8")))
        names = [os.path.join(os.path.dirname(info), r["midi_filename"]) for r in rows
                 if r["split"] == "test" and r["beat_type"] == "beat" and r["time_signature"] == "4-4"][:n]
        return [data.drum_midi(z.read(name), name).sequence for name in names]


def tiny_config(folder, base):
    """A file config: ``base`` (e.g. groovae_4bar_humanize) at groovae_tiny's sizes."""
    path = os.path.join(folder, base.replace("groovae_4bar", "tiny") + ".py")
    with open(path, "w") as f:
        f.write(TINY.format(base=base))
    return path


@pytest.fixture(scope="session")
def midi_dir(tmp_path_factory):
    """Eight 8-bar synthetic grooves at 120 bpm."""
    out = tmp_path_factory.mktemp("midi")
    synthetic.write_grooves(str(out), n=8, bars=8)
    return str(out)


@pytest.fixture(scope="session")
def tiny_tensors_path(midi_dir, tmp_path_factory):
    paths = sorted(os.path.join(midi_dir, f) for f in os.listdir(midi_dir) if f.endswith(".mid"))
    tensors, skipped = data.midi_files_to_tensors(paths, load_config("groovae_tiny").data_converter)
    assert not skipped and len(tensors["lengths"]) == 16  # 8 files x 2 non-overlapping 4-bar windows
    path = str(tmp_path_factory.mktemp("tensors") / "train.npz")
    data.save_tensors(path, tensors)
    return path


@pytest.fixture(scope="session")
def tiny_run(tiny_tensors_path, tmp_path_factory):
    """A groovae_tiny run dir trained for 40 steps, and its result dict."""
    run_dir = str(tmp_path_factory.mktemp("run"))
    result = train.train("groovae_tiny", tiny_tensors_path, run_dir, num_steps=40, progress=False)
    return run_dir, result


class _Server:
    """Serves ``files`` ({path: bytes}) on 127.0.0.1 with HTTP Range support.

    ``cut[path] = n`` makes the next responses for ``path`` announce the full
    length but close the connection after ``n`` bytes (a dropped download).
    ``requests`` records (path, Range header) of every request.
    """

    def __init__(self):
        import http.server
        import threading
        self.files, self.cut, self.requests = {}, {}, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if self.headers.get("Range"):
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                limit = server.cut.get(self.path)
                self.wfile.write(body[start:start + limit] if limit is not None else body[start:])
                self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    """A local HTTP server (127.0.0.1 only) for download tests; stopped after the test."""
    server = _Server()
    yield server
    server.close()


def serve_as_public(server, prefix, folder):
    """The checkpoint at ``prefix`` packed as Google's groovae_4bar.tar (written in ``folder``) and served by
    ``server``: the URL to give as --public_url."""
    import tarfile
    tar_path = os.path.join(folder, "groovae_4bar.tar")
    with tarfile.open(tar_path, "w") as tar:
        for suffix in (".index", ".data-00000-of-00001"):
            tar.add(prefix + suffix, arcname="groovae_4bar/" + os.path.basename(prefix) + suffix)
    with open(tar_path, "rb") as f:
        server.files["/groovae_4bar.tar"] = f.read()
    return server.url + "/groovae_4bar.tar"


def _browser_missing():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing:
        return f"no headless browser: {', '.join(missing)} missing (apt-get install chromium chromium-driver)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -r requirements-test.txt)"
    return None


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Selenium (Debian's chromium + chromium-driver); skips without them, fails
    without them where GROOVAE_REQUIRE_BROWSER is set (CI)."""
    reason = _browser_missing()
    if reason and os.environ.get("GROOVAE_REQUIRE_BROWSER"):  # CI installs it: a skip there would hide a failure
        pytest.fail(f"GROOVAE_REQUIRE_BROWSER is set, but {reason}")
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)  # both given: no Selenium Manager
    driver.set_script_timeout(60)
    yield driver
    driver.quit()


def magenta_js_or_skip():
    """The npm copy of magentamusic.js; skips without it (fails where GROOVAE_REQUIRE_BROWSER is set: CI)."""
    if not os.path.isfile(MAGENTA_JS):
        reason = f"{MAGENTA_JS} missing (bash scripts/setup.sh --test installs @magenta/music with npm)"
        if os.environ.get("GROOVAE_REQUIRE_BROWSER"):
            pytest.fail(f"GROOVAE_REQUIRE_BROWSER is set, but {reason}")
        pytest.skip(reason)
    return MAGENTA_JS


@pytest.fixture(scope="module")
def static_server(tmp_path_factory):
    """(base URL, folder): a static file server on 127.0.0.1 over a folder the test fills."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    folder = tmp_path_factory.mktemp("served")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", str(folder)
    server.shutdown()
    server.server_close()


# A groovae command in its own process with one function replaced by a fault: "stall" (touch the marker file,
# then sleep: the test sends a signal meanwhile), "wait" (touch the marker, then run the function once the
# test creates <marker>.go), "touch" (touch the marker, then run it), an errno name such as "ENOSPC" (raise that
# OSError, as a full disk does) or "fsize" (the process's file size limit drops to 1 byte while the function
# runs, so that every write it makes, TensorFlow's included, really fails: EFBIG, "File too large"); from the Nth
# call on with "@N" ("ENOSPC@3").  The target is 'module.function' or 'module.Class.method'.
_FAULT_RUNNER = r"""
import errno, importlib, os, resource, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C's handler, even where pytest runs as a background job
target, fault, marker = sys.argv[1:4]
fault, _, after = fault.partition("@")
parts = target.split(".")
for k in range(len(parts) - 1, 0, -1):
    try:
        owner = importlib.import_module(".".join(parts[:k]))
        break
    except ImportError:
        continue
for part in parts[k:-1]:
    owner = getattr(owner, part)
name = parts[-1]
original, calls = getattr(owner, name), []

def faulty(*args, **kwargs):
    calls.append(1)
    if len(calls) < int(after or 1):
        return original(*args, **kwargs)
    if fault in ("stall", "wait", "touch"):
        open(marker, "w").close()
    if fault == "stall":
        time.sleep(600)
    if fault == "wait":
        while not os.path.exists(marker + ".go"):
            time.sleep(0.02)
    if fault in ("wait", "touch"):
        return original(*args, **kwargs)
    if fault == "fsize":
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel's signal ends the process
        limits = resource.getrlimit(resource.RLIMIT_FSIZE)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1, limits[1]))
        try:
            return original(*args, **kwargs)
        finally:
            resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    code = getattr(errno, fault)
    path = next((a for a in args if isinstance(a, str)), marker)
    raise OSError(code, os.strerror(code), path)

setattr(owner, name, faulty)
from groovae import cli
sys.exit(cli.main(sys.argv[4:]))
"""


def start_with_fault(argv, target, fault, marker):
    """Popen of ``groovae argv`` with ``target`` ('module.function') replaced by ``fault`` (see above); its own
    process group, as a command started from a terminal (``interrupt`` sends Ctrl-C's SIGINT to all of it)."""
    import subprocess
    env = dict(os.environ, PYTHONPATH=ROOT)
    return subprocess.Popen([sys.executable, "-c", _FAULT_RUNNER, target, fault, str(marker), *argv], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def run_with_fault(argv, target, fault, marker, timeout=300):
    """(exit code, stderr) of ``groovae argv`` run to its end with ``target`` failing as ``fault`` says."""
    proc = start_with_fault(argv, target, fault, marker)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def wait_for_marker(proc, marker, timeout=180):
    """Waits until ``proc`` reaches its fault (the marker file appears); fails with its stderr if it ends first."""
    import time
    deadline = time.time() + timeout
    while not os.path.exists(marker) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    if not os.path.exists(marker) and proc.poll() is None:  # hung before its fault: end it, don't wait on it
        import signal
        os.killpg(proc.pid, signal.SIGKILL)
    assert os.path.exists(marker), proc.communicate(timeout=timeout)[1][-3000:]


def interrupt(proc, signum, marker, timeout=180):
    """Waits until ``proc`` stalls (its marker file appears), then sends ``signum`` ('SIGINT': to its process
    group, as Ctrl-C in a terminal does; 'SIGTERM': to the process, as a scheduler does); returns its stderr."""
    import signal
    wait_for_marker(proc, marker, timeout)
    if signum == "SIGINT":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(getattr(signal, signum))
    return proc.communicate(timeout=timeout)[1]


def tree(folder):
    """{relative path: bytes} of every file below ``folder`` (what a fault must leave as it was)."""
    found = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, folder)] = f.read()
    return found
