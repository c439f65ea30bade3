"""The groove lab in headless Chromium: export sizes, load time, and how long each action takes.

    python benchmarks/bench_lab.py [--exports DIR ...] [--magenta_js PATH] [--backend cpu|webgl] [--repeats 3]

Without --exports it exports randomly initialised full-size models (groovae_4bar, groovae_4bar_humanize,
groovae_4bar_tap2drum, 8-bit): the same shapes, weights and work per groove as trained ones, so sizes and
times are theirs.  Needs Debian's chromium + chromium-driver and a local magentamusic.js (scripts/setup.sh
--test puts it in .cache/magenta-js).  Prints JSON: bytes per export, page load to ready, and per action
(sample 4 grooves, interpolate 5 steps, humanize and drumify 2 feels of a clicked pattern) the median ms.
"""
import argparse
import functools
import http.server
import json
import os
import statistics
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import groovae.compat  # noqa: F401,E402  (shims before TF)
from groovae import export_js, lab  # noqa: E402

MAGENTA_JS = os.path.join(ROOT, ".cache", "magenta-js", "node_modules", "@magenta", "music", "dist", "magentamusic.js")
MODELS = {"groovae_4bar": "flat", "groovae_4bar_humanize": "humanize", "groovae_4bar_tap2drum": "drumify"}


def untrained_exports(folder):
    """8-bit magenta.js exports of randomly initialised full-size models (as trained ones in size and work)."""
    import tensorflow.compat.v1 as tf
    from groovae import model
    exports = []
    for config, name in MODELS.items():
        with model.inference_graph(config), tf.Session() as session:
            session.run(tf.global_variables_initializer())
            prefix = tf.train.Saver().save(session, os.path.join(folder, name, "model.ckpt"), global_step=0)
        exports.append(export_js.export_magenta_js(prefix, os.path.join(folder, "exports", name), config=config))
    return exports


def serve(folder):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio", "--window-size=1200,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_script_timeout(600)
    return driver


def wait(driver, script, timeout=600):
    end = time.time() + timeout
    while time.time() < end:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(script)


def action_ms(driver, css):
    """Clicks ``css`` and returns the ms the page took (its status line says when it is done)."""
    driver.execute_script("document.getElementById('status').textContent = ''")
    started = time.time()
    driver.find_element("css selector", css).click()
    status = wait(driver, "const s = document.getElementById('status').textContent; "
                          "return s && !s.endsWith('…') && s")
    if driver.execute_script("return window.groovaeLab.error"):
        raise RuntimeError(status)
    return (time.time() - started) * 1000


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exports", nargs="*", help="magenta.js exports (default: untrained full-size ones)")
    parser.add_argument("--magenta_js", default=MAGENTA_JS)
    parser.add_argument("--backend", choices=("cpu", "webgl"), help="default: the page's own choice")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        exports = args.exports or untrained_exports(tmp)
        lab.build_lab(exports, os.path.join(tmp, "site", "lab"), magenta_js=args.magenta_js)
        with open(os.path.join(tmp, "site", "lab", "lab.json")) as f:
            models = json.load(f)["models"]
        server, driver = serve(os.path.join(tmp, "site")), browser()
        try:
            query = f"?backend={args.backend}" if args.backend else ""
            started = time.time()
            driver.get(f"http://127.0.0.1:{server.server_address[1]}/lab/index.html{query}")
            wait(driver, "return window.groovaeLab.ready || window.groovaeLab.error")
            load_ms = (time.time() - started) * 1000
            if driver.execute_script("return window.groovaeLab.error"):
                raise SystemExit(driver.execute_script("return window.groovaeLab.error"))
            driver.execute_script("document.getElementById('count').value = 4; document.getElementById('feels').value = 2")
            actions = {"sample 4": "#sample", "interpolate 5": "#interpolate"}
            actions.update({f"{m['role']} 2 ({m['name']})": f'button.transform[data-model="{m["name"]}"]'
                            for m in models if m["role"] != "sample"})
            times = {name: [action_ms(driver, css) for _ in range(args.repeats)] for name, css in actions.items()}
            print(json.dumps({
                "exports_bytes": {m["name"]: m["bytes"] for m in models}, "quantize": [m["quantize"] for m in models],
                "backend": driver.execute_script("return window.groovaeLab.backend"),
                "page_load_to_ready_ms": round(load_ms), "models_load_ms": driver.execute_script(
                    "return window.groovaeLab.loadMs"),
                "action_median_ms": {k: round(statistics.median(v)) for k, v in times.items()},
                "action_ms": {k: [round(x) for x in v] for k, v in times.items()},
                "cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}, indent=1))
        finally:
            driver.quit()
            server.shutdown()


if __name__ == "__main__":
    main()
