"""Groove lab: a static page that samples, interpolates, humanizes and drumifies in the browser.

``build_lab([export, ...], "samples/lab")`` (``groovae lab``) copies magenta.js
exports (``groovae export --format magenta-js``) into ``models/``, writes a
drum kit (``kit/``, groovae.drum_kit), ``lab.json`` (the models, each with
what it can do, and the kit) and ``index.html`` with ``lab_models.js`` (the
models' side) and ``lab.js`` (the page), which run the models with
``@magenta/music``'s ``MusicVAE``: no server code, any
static file server (``python -m http.server``) serves it.  magenta.js comes
from a pinned CDN URL with its integrity hash, or from a local copy
(``magenta_js``) put beside the page for offline use and the tests.

What each model does follows from its converter: humanize models humanize,
tapify models drumify, the others sample and interpolate.
"""
import html
import json
import os
import shutil

from groovae import drum_kit, files
from groovae.errors import RequestError
from groovae.gmd import DRUM_CLASSES
from groovae.listen import CSS
from groovae.listing import LAB_GENERATOR, LAB_INFO, is_lab

MAGENTA_JS_VERSION = "1.23.1"  # the version tests/test_magenta_js.py checks exports against
MAGENTA_JS_URL = f"https://cdn.jsdelivr.net/npm/@magenta/music@{MAGENTA_JS_VERSION}/dist/magentamusic.js"
MAGENTA_JS_INTEGRITY = "sha384-oj8/W05Ba271e6q5zdMVC8iaF0HpQENHdkpkB1em2cs1tYFUtStZwMg6tQVSAuLj"  # the npm file's
ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab_page")
ROLES = {"sample": "samples and interpolates", "humanize": "humanizes a beat", "drumify": "drumifies a rhythm"}

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="generator" content="{generator}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>{css}</style>
<link rel="stylesheet" href="lab.css">
{magenta_js}
<script src="lab_models.js" defer></script>
<script src="lab.js" defer></script>
</head><body><main class="groovae-listen groovae-lab">
<h1>{title}</h1>
<p class="meta">GrooVAE models running in this page with <code>@magenta/music</code> {version}: nothing is sent
anywhere. Serve this folder (<code>python -m http.server</code>) and open it; opened from disk, browsers refuse
to load the models.</p>
<p id="status" class="note" role="status">loading…</p>
<noscript><p class="note">The lab needs JavaScript.</p></noscript>
<div id="controls"></div>
<section class="folder"><h2>Grooves</h2><div id="grooves" class="grooves"></div></section>
<p class="meta" id="about"></p>
</main></body></html>
"""


NUM_STEPS, STEPS_PER_QUARTER = 64, 4  # the lab plays 4-bar grooves on the 16th grid
NEEDED = ("encoder/mu/kernel", "encoder/sigma/kernel", "encoder/sigma/bias")  # the page's posterior (lab_models.js)


def _read_json(folder, name):
    try:
        with open(os.path.join(folder, name)) as f:
            return json.load(f)
    except FileNotFoundError:
        raise RequestError(f"{folder}: not a magenta.js export ({name} missing; make one with groovae export "
                           f"--format magenta-js)") from None
    except (OSError, ValueError) as e:
        raise RequestError(f"{folder}: unreadable {name} ({e})") from None


def _weights(folder, manifest):
    """(names, bytes) of an export's weights, its shards checked to be there."""
    try:
        groups = [(list(group["paths"]), [entry["name"] for entry in group["weights"]]) for group in manifest]
    except (TypeError, KeyError) as e:
        raise RequestError(f"{folder}: weights_manifest.json is not a TensorFlow.js weights manifest ({e!r})") from None
    names, size = set(), 0
    for paths, weights in groups:
        names.update(weights)
        for path in paths:
            if not os.path.isfile(os.path.join(folder, path)):
                raise RequestError(f"{folder}: weight shard {path} missing")
            size += os.path.getsize(os.path.join(folder, path))
    return names, size


def read_export(folder):
    """The lab.json record of a magenta.js export folder; RequestError naming what is wrong with it."""
    spec, manifest = _read_json(folder, "config.json"), _read_json(folder, "weights_manifest.json")
    converter = spec.get("dataConverter") if isinstance(spec, dict) else None
    if not isinstance(converter, dict) or spec.get("type") != "MusicVAE" or converter.get("type") != "GrooveConverter":
        raise RequestError(f"{folder}: config.json is not a GrooVAE model (MusicVAE with a GrooveConverter)")
    args = converter.get("args") or {}
    if (args.get("numSteps"), args.get("stepsPerQuarter")) != (NUM_STEPS, STEPS_PER_QUARTER):
        raise RequestError(f"{folder}: {args.get('numSteps')} steps at {args.get('stepsPerQuarter')} per quarter; "
                           f"the lab plays 4-bar models ({NUM_STEPS} steps, {STEPS_PER_QUARTER} per quarter)")
    names, size = _weights(folder, manifest)
    missing = [name for name in NEEDED if name not in names]
    if missing:
        raise RequestError(f"{folder}: the weights lack {', '.join(missing)}; export the model again with "
                           f"groovae export --format magenta-js")
    ours = spec.get("groovae", {})
    role = "humanize" if args.get("humanize") else "drumify" if args.get("tapify") else "sample"
    return {"name": os.path.basename(os.path.normpath(folder)), "role": role, "does": ROLES[role],
            "config": ours.get("config"), "step": ours.get("step"), "quantize": ours.get("quantize"),
            "sha256": ours.get("sha256"), "bytes": size, "pitchClasses": args.get("pitchClasses")}


def read_exports(folders):
    """The records of ``folders``, checked to make one lab: unique names, one drum mapping."""
    if not folders:
        raise RequestError("groovae lab: give at least one magenta.js export folder")
    models = [read_export(folder) for folder in folders]
    names = [m["name"] for m in models]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RequestError(f"two exports are named {twice[0]}; the lab names models by folder: rename one")
    for folder, model in zip(folders, models):
        if model["pitchClasses"] != models[0]["pitchClasses"]:
            raise RequestError(f"{folder}: its drum classes differ from {folders[0]}'s; one lab plays one kit")
    if len(models[0]["pitchClasses"] or []) != len(DRUM_CLASSES):
        raise RequestError(f"{folders[0]}: {len(models[0]['pitchClasses'] or [])} drum classes; the lab's kit has "
                           f"{len(DRUM_CLASSES)}")
    return models


def _magenta_js_tag(staging, magenta_js):
    """The page's <script> for magenta.js: the local copy put beside the page, or the pinned URL."""
    if magenta_js is None:
        return (f'<script src="{MAGENTA_JS_URL}" integrity="{MAGENTA_JS_INTEGRITY}" '
                f'crossorigin="anonymous" defer></script>'), MAGENTA_JS_URL
    if not os.path.isfile(magenta_js):
        raise RequestError(f"--magenta_js {magenta_js}: no such file (the dist/magentamusic.js of "
                           f"@magenta/music {MAGENTA_JS_VERSION})")
    shutil.copyfile(magenta_js, os.path.join(staging, "magentamusic.js"))
    return '<script src="magentamusic.js" defer></script>', "magentamusic.js"


def build_lab(export_dirs, output_dir, magenta_js=None, title="groovae lab", soundfont=None):
    """Writes the lab into ``output_dir`` (new, or an earlier lab's: replaced whole); returns its index.html."""
    models = read_exports(export_dirs)
    files.check_replaceable(output_dir, is_lab, "lab")
    with files.atomic_directory(output_dir) as staging:
        script, source = _magenta_js_tag(staging, magenta_js)
        for folder, model in zip(export_dirs, models):
            shutil.copytree(folder, os.path.join(staging, "models", model["name"]))
        pitches = [classes[0] for classes in models[0]["pitchClasses"]]
        made = drum_kit.write_kit(os.path.join(staging, "kit"), DRUM_CLASSES, pitches, soundfont)
        for asset in ("lab_models.js", "lab.js", "lab.css"):
            shutil.copyfile(os.path.join(ASSETS, asset), os.path.join(staging, asset))
        info = {"generator": LAB_GENERATOR, "title": title, "classes": list(DRUM_CLASSES), "numSteps": NUM_STEPS,
                "stepsPerQuarter": STEPS_PER_QUARTER, "pitchClasses": models[0]["pitchClasses"], "models": models,
                "kit": {"made": made, "velocity": drum_kit.VELOCITY,
                        "files": [f"kit/{name}.wav" for name in DRUM_CLASSES]},
                "magentaJs": {"version": MAGENTA_JS_VERSION, "src": source}}
        with open(os.path.join(staging, LAB_INFO), "w") as f:
            json.dump(info, f, indent=1)
        page = PAGE.format(generator=LAB_GENERATOR, title=html.escape(title), css=CSS, magenta_js=script,
                           version=MAGENTA_JS_VERSION)
        with open(os.path.join(staging, "index.html"), "w") as f:
            f.write(page)
    return os.path.join(output_dir, "index.html")
