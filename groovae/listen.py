"""Listening page: every groove of a samples folder playable beside its drum roll.

``write_page("samples")`` (``groovae listen samples/``) writes one static,
self-contained ``samples/index.html``: CSS and a few lines of script inline,
no fonts or scripts from elsewhere, only relative links, so it works opened
from disk and served by GitHub Pages.  groovae.listing reads each folder
(its manifest.json says what made every groove: checkpoint and its steps,
temperature, seed); the page groups the grooves by folder, then by run:
samples by temperature, interpolations in order, reconstructions after their
input.
``player_html`` is the same player for one folder with the files embedded
(data URIs), for notebook outputs, where relative links do not resolve.

Plain Python (no TensorFlow, no audio or image libraries): the drum rolls'
sizes come from the PNG headers.
"""
import base64
import html
import os
import urllib.parse

from groovae import files
from groovae.checkpoints import step_of
from groovae.errors import DataError, write_errors
from groovae.listing import SUMMARY, inside, read_folder, find_folders

PAGE = "index.html"
YOUR_BEAT_MODELS = {"humanize": "humanize model", "transfer": "hits-as-controls model", "drumify": "drumify model"}
GENERATOR = '<meta name="generator" content="groovae listen">'  # marks pages this module may overwrite
MODE_TITLES = {"windows": "Grooves from the data", "sample": "Samples", "interpolate": "Interpolation",
               "reconstruct": "Reconstruction", "humanize": "Humanized", "transfer": "Groove transfer",
               "drumify": "Drumified"}

# Scoped under .groovae-listen so the same player can sit inside a notebook's output.
CSS = """
.groovae-listen{font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;
 max-width:1100px;margin:auto;padding:0 12px}
.groovae-listen code{font-size:90%;background:#f3f3f3;padding:0 3px;border-radius:3px}
.groovae-listen section.folder{border-top:2px solid #ccc;margin-top:28px}
.groovae-listen .run{margin:18px 0 26px}
.groovae-listen .run h3{margin:6px 0 2px}
.groovae-listen .meta,.groovae-listen .note{color:#555;font-size:90%;margin:2px 0}
.groovae-listen .note{color:#8a4b00}
.groovae-listen .grooves{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:12px;margin-top:8px}
.groovae-listen .groove{border:1px solid #ddd;border-radius:6px;padding:6px 8px;margin:0}
.groovae-listen .groove:focus{outline:2px solid #36c}
.groovae-listen .groove.playing{border-color:#36c;background:#f4f8ff}
.groovae-listen .groove.input{background:#fafafa;border-style:dashed}
.groovae-listen .groove img{width:100%;height:auto;display:block}
.groovae-listen .groove audio{width:100%;height:34px}
.groovae-listen figcaption{font-size:88%;display:flex;justify-content:space-between;gap:8px}
"""

# Starting one groove pauses the others; space plays/pauses the focused groove.
SCRIPT = """
(function(){
if(window.groovaeListen)return;window.groovaeListen=1;
document.addEventListener('play',function(e){
 document.querySelectorAll('.groovae-listen audio').forEach(function(a){if(a!==e.target)a.pause();});
 var g=e.target.closest&&e.target.closest('.groove');if(g)g.classList.add('playing');},true);
document.addEventListener('pause',function(e){
 var g=e.target.closest&&e.target.closest('.groove');if(g)g.classList.remove('playing');},true);
document.addEventListener('keydown',function(e){
 if(e.key!==' '||!e.target.closest)return;
 var g=e.target.closest('.groovae-listen .groove');
 if(!g||e.target.closest('a,button,input'))return;
 var a=g.querySelector('audio');if(!a)return;
 e.preventDefault();
 if(a.paused){var p=a.play();if(p)p.catch(function(){});}else a.pause();},true);
})();
"""


# ---------------------------------------------------------------- describing runs


def describe_checkpoint(run):
    """(name, training steps or None): ('model.ckpt-800', 800), ("Google's public checkpoint", 2721)."""
    source = run.get("checkpoint") or "?"
    if source == "public":
        name = "Google's public checkpoint"
    elif files.is_url(source):
        name = f"the checkpoint at {source}"
    else:
        name = source.replace("\\", "/").split("/")[-1]
    step = run.get("checkpoint_step")
    if step is None and source != "public" and not files.is_url(source):
        step = step_of(source)
    return name, step


def describe_model(runs):
    """What made a folder's grooves, e.g. 'trained here, flat decoder (groovae_4bar)'."""
    parts = []
    for run in runs:
        if run.get("mode") is None:
            continue
        if run.get("mode") == "windows":
            text = "from the data, not generated"
            if text not in parts:
                parts.append(text)
            continue
        origin = "Google's public checkpoint" if (run.get("checkpoint") == "public"
                                                 or files.is_url(run.get("checkpoint") or "")) else "trained here"
        config = run.get("config") or "?"
        if run.get("mode") in YOUR_BEAT_MODELS:
            text = f"{origin}, {YOUR_BEAT_MODELS[run['mode']]} ({config})"
        else:
            text = f"{origin}, {'hierarchical decoder' if 'hier' in config else 'flat decoder'} ({config})"
        if text not in parts:
            parts.append(text)
    return "; ".join(parts)


def run_title(run, anchor_of):
    mode = run.get("mode")
    if mode is None:
        return "MIDI files without a manifest"
    title = MODE_TITLES.get(mode, str(mode))
    if mode == "windows":
        data = run.get("data") or "?"
        title += f": {run.get('n', '?')} windows of <code>{_text(data)}</code>"
        if data.startswith("test."):
            title += " (the test split: no model here trained on them)"
    elif mode == "sample":
        title += f" at temperature {run.get('temperature'):g}"
        if run.get("prior") == "data":  # z from the checkpoint's data prior, not N(0, I)
            title += ", from the data prior"
    elif mode in ("interpolate", "reconstruct"):
        inputs = [i.get("path", "?") for i in run.get("inputs", [])]
        linked = [f'<a href="#{_attr(anchor_of(p))}">{_text(os.path.basename(p))}</a>' if anchor_of(p) else
                  f"<code>{_text(p)}</code>" for p in inputs]
        title += (" from " + " to ".join(linked)) if mode == "interpolate" else (" of " + ", ".join(linked))
        if mode == "interpolate":
            title += f", {run.get('steps') or run.get('n')} steps"
    elif mode in ("humanize", "transfer", "drumify"):
        names = {i.get("role"): i.get("name") or os.path.basename(i.get("path", "?")) for i in run.get("inputs", [])}
        if mode == "transfer" and "like" not in names:  # humanize --keep_hits: feels from the prior
            title = "Humanized, every hit kept"
        title += f": <code>{_text(names.get('input', '?'))}</code>"
        if "like" in names:
            title += f" with the feel of <code>{_text(names['like'])}</code>"
        title += f", {run.get('bars', '?')} bars at {run.get('bpm', 0):g} bpm"
    if run.get("decoding") == "given_hit":  # generate's modes: velocities and timing read given the hit
        title += ", velocities and timing read given the hit"
    return title


def run_meta(run):
    if run.get("mode") is None:
        return ""
    if run.get("mode") == "windows":
        how = (f"picked with seed {run['seed']} from distinct source files" if run.get("seed") is not None
               else "picked by index")
        return " · ".join([f"data sha256 <code>{_text((run.get('data_sha256') or '?')[:12])}</code>", how,
                           f"config <code>{_text(run.get('config', '?'))}</code>"])
    name, step = describe_checkpoint(run)
    parts = [f"checkpoint <code>{_text(name)}</code>" + (f" ({step:,} training steps)" if step is not None else ""),
             f"config <code>{_text(run.get('config', '?'))}</code>"]
    if run.get("hparams"):
        parts.append(f"hparams <code>{_text(run['hparams'])}</code>")
    parts += [f"temperature {run.get('temperature', '?')}", f"seed {run.get('seed', '?')}"]
    if run.get("mode") == "sample":
        parts.append("z from the data prior (fit-prior)" if run.get("prior") == "data" else "z from N(0, I)")
    if run.get("decoding"):
        parts.append(f"decoding <code>{_text(run['decoding'])}</code>")
    if run.get("prefix"):
        parts.append(f"files <code>{_text(run['prefix'])}_*</code>")
    return " · ".join(parts)


def describe_summary(summary):
    """'training: 800 steps, batch 512, 2.07 h of training, validation loss 143.5', or ''."""
    if not summary:
        return ""
    parts = []
    if summary.get("global_step") is not None:
        parts.append(f"{summary['global_step']:,} steps")
    if summary.get("hparams_batch_size"):
        parts.append(f"batch {summary['hparams_batch_size']}")
    if summary.get("train_hours") is not None:
        parts.append(f"{summary['train_hours']} h of training")
    loss = (summary.get("final_validation") or {}).get("loss")
    if loss is not None:
        parts.append(f"validation loss {loss}")
    return "training: " + ", ".join(parts) if parts else ""


# ---------------------------------------------------------------- HTML


def _text(value):
    return html.escape(str(value), quote=False)


def _attr(value):
    return html.escape(str(value), quote=True)


def relative_link(rel_folder):
    """Maps a file name inside ``rel_folder`` to a URL relative to the page (quoted)."""
    def link(name):
        path = f"{rel_folder}/{name}" if rel_folder else name
        return urllib.parse.quote(os.path.normpath(path).replace(os.sep, "/"))
    return link


def embedded_link(folder):
    """Maps a file name inside ``folder`` to a data URI (for notebook outputs, where links do not resolve)."""
    types = {".wav": "audio/wav", ".png": "image/png", ".mid": "audio/midi"}

    def link(name):
        with open(os.path.join(folder, name), "rb") as f:
            data = base64.b64encode(f.read()).decode("ascii")
        return f"data:{types.get(os.path.splitext(name)[1], 'application/octet-stream')};base64,{data}"
    return link


def groove_html(g, link, anchor):
    """A groove: caption (name, label, MIDI link), audio player, drum roll."""
    caption = [f"<b>{_text(g['name'])}</b>"]
    if g["label"]:
        caption.append(_text(g["label"]))
    midi = f'<a href="{_attr(link(g["midi"]))}" download="{_attr(os.path.basename(g["midi"]))}">MIDI</a>'
    parts = [f'<figure class="groove{" input" if g.get("input") else ""}" tabindex="0" id="{_attr(anchor)}">',
             f"<figcaption><span>{' · '.join(caption)}</span>{midi}</figcaption>"]
    if g["wav"]:
        parts.append(f'<audio controls preload="none" src="{_attr(link(g["wav"]))}"></audio>')
    else:
        parts.append('<p class="note">no audio</p>')
    if g["png"]:
        width, height = g["png_size"] or (1000, 300)
        parts.append(f'<img loading="lazy" src="{_attr(link(g["png"]))}" width="{width}" height="{height}"'
                     f' alt="drum roll of {_attr(g["name"])}">')
    else:
        parts.append('<p class="note">no drum roll</p>')
    parts.append("</figure>")
    return "".join(parts)


def folder_html(data, link, anchor_prefix="", linked_docs=True):
    """A folder's section: heading, what made it, then its runs.

    ``link`` maps a file name in the folder to a URL; ``linked_docs`` links the
    folder's README and training summary too (not in embedded players).
    """
    rel = data["path"]
    anchor_of = lambda name: (anchor_prefix + (f"{rel}/" if rel else "") + name[:-4]  # noqa: E731
                              if name.endswith(".mid") and inside(name) else None)
    model = describe_model([r["run"] for r in data["runs"]])
    out = [f'<section class="folder" id="{_attr(anchor_prefix + (rel or "grooves"))}">',
           f"<h2>{_text(rel + '/' if rel else 'grooves')}</h2>"]
    if model:
        out.append(f'<p class="meta">{_text(model)}</p>')
    summary = describe_summary(data["summary"])
    if summary:
        source = f' (<a href="{_attr(link(SUMMARY))}">{SUMMARY}</a>)' if linked_docs else ""
        out.append(f'<p class="meta">{_text(summary)}{source}</p>')
    if data["readme"] and linked_docs:
        out.append(f'<p class="meta">About this folder: <a href="{_attr(link("README.md"))}">README.md</a></p>')
    if data.get("lab") and linked_docs:  # a page that runs the models in the browser (groovae lab)
        out.append(f'<p>A groove lab: <a href="{_attr(link("index.html"))}">open it</a> to sample, interpolate, '
                   "humanize and drumify in the browser (served over HTTP, e.g. <code>python -m http.server</code> "
                   "here; browsers refuse models from disk).</p>")
    elif not data["runs"]:
        out.append('<p class="note">No grooves in this folder yet'
                   + (" (its README says how to make them)." if data["readme"] else ".") + "</p>")
    for r in data["runs"]:
        out.append('<div class="run">')
        out.append(f"<h3>{run_title(r['run'], anchor_of)}</h3>")
        meta = run_meta(r["run"])
        if meta:
            out.append(f'<p class="meta">{meta}</p>')
        if r["no_audio"]:
            out.append(f'<p class="note">No audio: {_text(r["no_audio"])}.</p>')
        out.append('<div class="grooves">')
        out += [groove_html(g, link, (anchor_of(g["midi"]) or anchor_prefix + g["name"])
                            + ("-input" if g.get("input") else "")) for g in r["grooves"]]
        out.append("</div></div>")
    out.append("</section>")
    return "\n".join(out)


def count(folders):
    return sum(len(r["grooves"]) for f in folders for r in f["runs"])


def render_page(root, title="groovae samples"):
    """The whole page for ``root`` as a string."""
    folders = [read_folder(root, rel) for rel in find_folders(root)]
    toc = "".join(f'<li><a href="#{_attr(f["path"] or "grooves")}">{_text((f["path"] or ".") + "/")}</a> '
                  f"({sum(len(r['grooves']) for r in f['runs'])} grooves)</li>" for f in folders)
    body = "\n".join(folder_html(f, relative_link(f["path"])) for f in folders)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
{GENERATOR}
<meta name="viewport" content="width=device-width,initial-scale=1">
<link rel="icon" href="data:,">
<title>{_text(title)}</title>
<style>{CSS}</style>
</head><body><main class="groovae-listen">
<h1>{_text(title)}</h1>
<p>4-bar drum grooves generated with GrooVAE, {count(folders)} in all: each with its sound (WAV), drum roll
(rows are drums, darkness is velocity, shifts off the grid are micro-timing) and MIDI file, and what made it.
Space plays or pauses the focused groove; starting one stops the others.
Regenerate this page with <code>groovae listen {_text(os.path.basename(os.path.normpath(root)))}/</code>.</p>
<ul>{toc}</ul>
{body}
</main><script>{SCRIPT}</script></body></html>
"""


def write_page(root, title="groovae samples"):
    """Writes ``root``/index.html atomically; returns its path."""
    if not os.path.isdir(root):
        raise DataError(f"{root}: no such folder")
    text = render_page(root, title)
    path = os.path.join(root, PAGE)
    with write_errors(f"{path} as before"):
        files.atomic_write(path, lambda f: f.write(text), mode="w")
    return path


def page_above(folder):
    """The nearest index.html written by this module in ``folder`` or a folder above it, or None."""
    here = os.path.abspath(folder)
    while True:
        path = os.path.join(here, PAGE)
        try:
            with open(path, errors="replace") as f:
                if GENERATOR in f.read(4096):
                    return path
        except OSError:
            pass
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def refresh_page_above(folder):
    """Rewrites the listening page that shows ``folder``, if there is one; returns its path or None."""
    path = page_above(folder)
    return write_page(os.path.dirname(path), _title_of(path)) if path else None


def _title_of(path):
    with open(path, errors="replace") as f:
        head = f.read(4096)
    start, end = head.find("<title>"), head.find("</title>")
    return html.unescape(head[start + 7:end]) if 0 <= start < end else "groovae samples"


def player_html(folder, title=None):
    """The page's player for one folder, with every file embedded: for notebook outputs (Colab included)."""
    data = read_folder(folder, "")
    link = embedded_link(folder)
    heading = f"<h2>{_text(title)}</h2>" if title else ""
    section = folder_html(data, link, "groovae-" + os.path.basename(os.path.normpath(folder)) + "-", linked_docs=False)
    return f'<style>{CSS}</style><div class="groovae-listen">{heading}{section}</div><script>{SCRIPT}</script>'
