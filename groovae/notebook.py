"""What the three notebooks share: one persistent folder, and what they run on.

Colab gives every notebook its own runtime, and a runtime forgets its files
when it disconnects.  So data, runs and samples live in one folder that all
three notebooks name with the same ``DRIVE_DIR``: inside Google Drive in
Colab, a local folder elsewhere.
"""
import os
import platform
import sys

from groovae import compat  # noqa: F401  (the notebooks import this module first: shims before TensorFlow)

COLAB_DRIVE = "/content/drive"  # where Colab mounts Google Drive


def in_colab():
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def workspace(drive_dir):
    """The absolute folder for data, runs and samples, created if needed.

    In Colab a relative ``drive_dir`` (e.g. ``MyDrive/groovae``) is inside
    Google Drive, which is mounted first; elsewhere it is relative to the home
    directory.  An absolute path is used as it is.
    """
    if os.path.isabs(drive_dir):
        path = drive_dir
    elif in_colab():
        path = os.path.join(COLAB_DRIVE, drive_dir)
    else:
        path = os.path.join(os.path.expanduser("~"), drive_dir)
    if in_colab() and path.startswith(COLAB_DRIVE + os.sep) and not os.path.ismount(COLAB_DRIVE):
        from google.colab import drive
        drive.mount(COLAB_DRIVE)
    os.makedirs(path, exist_ok=True)
    return path


def environment():
    """One line: where groovae comes from, the versions that matter, and the device TF will use."""
    import groovae
    from groovae.manifest import package_versions
    from groovae.device import describe_device
    versions = package_versions()
    shown = " | ".join(f"{name} {versions.get(name)}" for name in ("tensorflow", "magenta", "note-seq", "numpy"))
    return (f"groovae {groovae.__version__} ({os.path.dirname(os.path.dirname(groovae.__file__))}) | "
            f"Python {platform.python_version()} | {shown} | device: {describe_device()}")


def checkpoint_path(spec, folder):
    """A checkpoint as the notebooks name it: None, 'public' and 'private' as they are; 'checkpoints/NAME' the model
    committed with the repo (wherever the runtime cloned it) unless ``folder`` holds such a path; else a path
    inside ``folder`` (the drive folder; an absolute path as it is)."""
    from groovae.checkpoints import COMMITTED_DIR
    if spec in (None, "public", "private"):
        return spec
    inside = os.path.join(folder, spec)
    committed = os.path.join(os.path.dirname(COMMITTED_DIR), spec)
    there = lambda path: os.path.exists(path) or os.path.exists(path + ".index")  # noqa: E731  (a folder or a prefix)
    if not there(inside) and spec.split("/")[0] == "checkpoints" and there(committed):
        return committed
    return inside


def beat_file(path, folder):
    """The MIDI file of the notebook's "Your beat" section: ``path`` (relative to ``folder`` unless absolute), or in
    Colab with no path, one the user uploads (saved into ``folder``/uploads); None outside Colab without a path."""
    if path:
        return path if os.path.isabs(path) else os.path.join(folder, path)
    if not in_colab():
        return None
    from google.colab import files as colab_files
    uploaded = colab_files.upload()  # a file picker in the cell's output
    if not uploaded:
        return None
    name, content = next(iter(uploaded.items()))
    dest = os.path.join(folder, "uploads", os.path.basename(name))
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    with open(dest, "wb") as f:
        f.write(content)
    return dest


_servers = {}  # folder -> its server in this runtime: a rerun of the cell shows the same one again


def serve_page(page):
    """Shows a static page (the groove lab) from the notebook: in Colab served from this runtime into an iframe
    in the cell's output; elsewhere the command that serves it.  Returns what the cell shows."""
    import shlex
    folder = os.path.dirname(os.path.abspath(page))
    if not in_colab():
        return (f"serve it and open http://localhost:8000/{os.path.basename(page)}:  "
                f"python -m http.server -d {shlex.quote(folder)}")
    from google.colab import output
    if folder not in _servers:
        import functools
        import http.server
        import threading
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(
            http.server.SimpleHTTPRequestHandler, directory=folder))  # browsers refuse models from file:// pages
        threading.Thread(target=server.serve_forever, daemon=True).start()
        _servers[folder] = server
    port = _servers[folder].server_address[1]
    output.serve_kernel_port_as_iframe(port, path="/" + os.path.basename(page), height=900)
    return f"the lab, served from this runtime (port {port}) while it runs"
