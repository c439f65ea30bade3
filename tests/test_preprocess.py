"""Preprocess: data fetching, bad input, tfds-identical windows, outputs, CLI."""
import csv
import io
import json
import os
import zipfile

import numpy as np
import pytest

import groovae.compat  # noqa: F401  (shims before TF)
from groovae import cli, data, files, gmd, preprocess as pp, preprocess_report, synthetic, windows
from tests.conftest import GMD_ZIP, interrupt, run_python, run_with_fault, start_with_fault, tree, wait_for_marker

INFO_HEADER = ["drummer", "session", "id", "style", "bpm", "beat_type", "time_signature",
               "midi_filename", "audio_filename", "duration", "split"]
# (id, split, kind): kind "ok" = 8 bars, "short" = 2 bars, else a broken file.
SYNTHETIC_ROWS = [("s/1", "train", "ok"), ("s/2", "train", "ok"), ("s/3", "train", "corrupt"),
                  ("s/4", "validation", "ok"), ("s/5", "validation", "short"),
                  ("s/6", "test", "ok"), ("s/7", "test", "empty"), ("s/8", "test", "truncated")]


def make_gmd_zip(path, rows=SYNTHETIC_ROWS, bpm=120):
    """A zip laid out like the GMD (groove/info.csv + MIDI files) with synthetic grooves."""
    good = io.BytesIO()
    synthetic.make_groove(bars=8, bpm=bpm, seed=9).write(good)
    with zipfile.ZipFile(path, "w") as z:
        table = io.StringIO()
        writer = csv.writer(table)
        writer.writerow(INFO_HEADER)
        for k, (gid, split, kind) in enumerate(rows):
            name = f"drummer1/session1/{k}_rock_{bpm}_beat_4-4.mid"
            writer.writerow(["drummer1", "drummer1/session1", gid, "rock/groove1", bpm, "beat", "4-4",
                             name, "", "16.0", split])
            if kind in ("ok", "short"):
                buf = io.BytesIO()
                synthetic.make_groove(bars=8 if kind == "ok" else 2, bpm=bpm, seed=k).write(buf)
                midi = buf.getvalue()
            else:
                midi = {"corrupt": b"this is not a MIDI file at all", "empty": b"",
                        "truncated": good.getvalue()[:60]}[kind]
            z.writestr("groove/" + name, midi)
        z.writestr("groove/info.csv", table.getvalue())
    return str(path)


@pytest.fixture(scope="module")
def gmd_zip(tmp_path_factory):
    return make_gmd_zip(tmp_path_factory.mktemp("zip") / "groove-synthetic.zip")


@pytest.fixture(scope="module")
def processed(gmd_zip, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("out"))
    cache = str(tmp_path_factory.mktemp("cache"))
    report = pp.preprocess(gmd_zip, out, allow_unverified=True, cache_dir=cache, workers=2, progress=False)
    return out, report, cache


def test_outputs_and_report(processed):
    out, report, _ = processed
    for split in gmd.SPLITS:
        assert os.path.isfile(os.path.join(out, f"{split}.tfrecord"))
        tensors = data.load_tensors(os.path.join(out, f"{split}.npz"))
        n = len(tensors["lengths"])
        assert tensors["inputs"].shape == tensors["outputs"].shape == (n, 64, 27)
        assert tensors["inputs"].dtype == np.float32 and tensors["lengths"].dtype == np.int32
        assert tensors["bpm"].dtype == np.float32 and tensors["start_bar"].dtype == np.int32
        assert tensors["source_id"].dtype.kind == "U"
    # 8 bars at 120 bpm -> round(16 s / 2 s) = 8 bars -> 5 windows with a 1-bar hop.
    splits = report["splits"]
    assert [splits[s]["windows"] for s in gmd.SPLITS] == [10, 5, 5]
    assert [splits[s]["tensors"] for s in gmd.SPLITS] == [10, 5, 5]
    assert [splits[s]["files"] for s in gmd.SPLITS] == [3, 2, 3]
    train = data.load_tensors(os.path.join(out, "train.npz"))
    assert list(train["start_bar"]) == [0, 1, 2, 3, 4] * 2
    assert set(train["source_id"]) == {"s/1", "s/2"} and set(train["bpm"]) == {120.0}
    assert sum(splits["train"]["hits_per_class"].values()) == int(train["outputs"][..., :9].sum())
    assert json.load(open(os.path.join(out, "report.json")))["totals"] == report["totals"]


def test_rerun_with_same_inputs_keeps_outputs_and_force_or_changes_rebuild(processed, gmd_zip, tmp_path, capsys):
    import shutil
    out = str(tmp_path / "out")
    shutil.copytree(processed[0], out)
    cache = processed[2]
    stamps = lambda: {f: os.stat(os.path.join(out, f)).st_mtime_ns for f in sorted(os.listdir(out))}  # noqa: E731
    before = stamps()
    again = pp.preprocess(gmd_zip, out, allow_unverified=True, cache_dir=cache, workers=1, progress=False)
    assert again == processed[1] and stamps() == before
    assert "is up to date" in capsys.readouterr().err
    pp.preprocess(gmd_zip, out, allow_unverified=True, cache_dir=cache, workers=1, progress=False, force=True)
    rebuilt = stamps()
    assert all(rebuilt[f] != before[f] for f in before)
    pp.preprocess(gmd_zip, out, allow_unverified=True, cache_dir=cache, workers=1, progress=False, max_files=4)
    assert stamps()["train.npz"] != rebuilt["train.npz"]  # other rows: other data


def test_bad_info_csv_rows_are_skipped_with_their_reason(tmp_path):
    folder = tmp_path / "groove"
    (folder / "d").mkdir(parents=True)
    synthetic.make_groove(bars=8, bpm=120, seed=1).write(str(folder / "d" / "ok.mid"))
    rows = [("ok", "120", "4-4", "d/ok.mid"), ("zero", "0", "4-4", "d/ok.mid"), ("word", "fast", "4-4", "d/ok.mid"),
            ("sig", "120", "", "d/ok.mid"), ("escape", "120", "4-4", "../../etc/passwd"),
            ("absolute", "120", "4-4", "/etc/passwd"), ("short", None, None, None)]
    with open(folder / "info.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(INFO_HEADER)
        for gid, bpm, signature, name in rows:
            row = ["drummer1", "drummer1/session1", gid, "rock", bpm, "beat", signature, name, "", "16.0", "train"]
            writer.writerow(row if bpm is not None else row[:3])  # a short row: later columns missing
    with open(folder / "info.csv") as f:  # a short row would lack 'split'; give it one at the end
        text = f.read().replace("drummer1,drummer1/session1,short\n", "drummer1,drummer1/session1,short" + "," * 8 + "train\n")
    (folder / "info.csv").write_text(text)
    report = pp.preprocess(str(folder), str(tmp_path / "out"), workers=1, progress=False)
    reasons = {x["id"]: (x["reason"], x["detail"]) for x in report["rejected"]}
    assert set(reasons) == {"zero", "word", "sig", "escape", "absolute", "short"}
    assert all(reason == "bad info.csv row" for reason, _ in reasons.values())
    assert "bad bpm 0" in reasons["zero"][1] and "bad bpm 'fast'" in reasons["word"][1]
    assert "bad time_signature ''" in reasons["sig"][1] and "bad midi_filename" in reasons["escape"][1]
    assert report["splits"]["train"]["tensors"] == 5  # the good row still counts
    assert "6 bad info.csv row" in preprocess_report.format_report(report)


def test_stages_agree_on_drum_notes(tmp_path):
    """Melodic notes are not drums: preprocess and generate both drop them (a piano-only file gives nothing)."""
    import pretty_midi
    from groovae import generate
    from groovae.configs import load_config
    folder = tmp_path / "groove"
    folder.mkdir()
    drums = synthetic.make_groove(bars=8, bpm=120, seed=4)
    drums.write(str(folder / "drums.mid"))
    mixed = synthetic.make_groove(bars=8, bpm=120, seed=4)
    bass = pretty_midi.Instrument(program=33)
    bass.notes = [pretty_midi.Note(90, 36 + k % 5, k * 0.5, k * 0.5 + 0.4) for k in range(32)]
    mixed.instruments.append(bass)
    mixed.write(str(folder / "mixed.mid"))
    piano = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano.instruments.append(pretty_midi.Instrument(program=0))
    piano.instruments[0].notes = [pretty_midi.Note(80, 60, k * 0.5, k * 0.5 + 0.4) for k in range(32)]
    piano.write(str(folder / "piano.mid"))
    with open(folder / "info.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(INFO_HEADER)
        for gid in ("drums", "mixed", "piano"):
            writer.writerow(["d1", "d1/s1", gid, "rock", "120", "beat", "4-4", f"{gid}.mid", "", "16.0", "train"])
    report = pp.preprocess(str(folder), str(tmp_path / "out"), workers=1, progress=False)
    rejected = {x["id"]: x for x in report["rejected"]}
    assert list(rejected) == ["piano"] and rejected["piano"]["reason"] == "no drum notes"
    assert "32 notes on non-drum tracks, programs [0]" in rejected["piano"]["detail"]
    train = data.load_tensors(str(tmp_path / "out" / "train.npz"))
    by_file = {sid: train["outputs"][train["source_id"] == sid] for sid in ("drums", "mixed")}
    np.testing.assert_array_equal(by_file["drums"], by_file["mixed"])  # the bass changed nothing
    converter = load_config("groovae_tiny").data_converter
    np.testing.assert_array_equal(generate.groove_windows(str(folder / "mixed.mid"), converter),
                                  generate.groove_windows(str(folder / "drums.mid"), converter))
    with pytest.raises(generate.GenerateError, match="piano.mid: no drum notes"):
        generate.groove_windows(str(folder / "piano.mid"), converter)


def test_bad_midi_is_skipped_and_named(processed):
    _, report, _ = processed
    rejected = {x["id"]: x for x in report["rejected"]}
    assert {k: v["reason"] for k, v in rejected.items()} == {
        "s/3": "unreadable", "s/7": "unreadable", "s/8": "unreadable", "s/5": "too short"}
    assert "empty MIDI file" in rejected["s/7"]["detail"]
    assert rejected["s/3"]["detail"].startswith("drummer1/session1/2_rock")
    text = preprocess_report.format_report(report)
    assert "3 unreadable" in text and "1 too short" in text


def test_sequences_carry_gmd_metadata(processed):
    out, _, _ = processed
    sequences = pp.read_tfrecord_sequences(os.path.join(out, "train.tfrecord"))
    assert [s.id for s in sequences] == ["s/1", "s/2"]  # the corrupt s/3 is left out
    meta = gmd.metadata(sequences[0])
    assert meta["drummer"] == "drummer1" and meta["bpm"] == "120" and meta["beat_type"] == "beat"
    assert meta["time_signature"] == "4-4" and meta["split"] == "train"
    assert list(sequences[0].sequence_metadata.genre) == ["rock", "groove1"]
    assert len(sequences[0].notes) > 50


def test_fast_windows_equal_the_real_midi_round_trip(gmd_zip, processed):
    import pretty_midi
    conv = pp._converter("groovae_4bar")
    for bpm in (120, 97):  # 97 bpm: bars that do not fall on ticks
        pm = synthetic.make_groove(bars=7, bpm=bpm, seed=3)
        pm = pretty_midi.PrettyMIDI(io.BytesIO(_midi_bytes(pm)))
        fast = list(windows.window_sequences(pm, bpm, 4))
        slow = list(windows.exact_window_sequences(pm, bpm, 4))
        assert [i for i, _ in fast] == [i for i, _ in slow] == [0, 1, 2, 3]
        for (_, a), (_, b) in zip(fast, slow):
            ta, tb = data.sequence_to_tensors(a, conv), data.sequence_to_tensors(b, conv)
            assert all(np.array_equal(ta[k], tb[k]) for k in data.TENSOR_KEYS)


def _midi_bytes(pm):
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def test_magenta_window_mode(gmd_zip, processed, tmp_path):
    _, _, cache = processed
    report = pp.preprocess(gmd_zip, str(tmp_path), window_mode="magenta", allow_unverified=True,
                           cache_dir=cache, workers=1, progress=False)
    # Whole 8-bar files, non-overlapping 4-bar windows: 2 per file.
    assert [report["splits"][s]["tensors"] for s in gmd.SPLITS] == [4, 2, 2]
    assert list(data.load_tensors(str(tmp_path / "train.npz"))["start_bar"]) == [0, 4, 0, 4]


def test_outputs_are_atomic(gmd_zip, processed, tmp_path, monkeypatch):
    _, _, cache = processed
    out = str(tmp_path)
    pp.preprocess(gmd_zip, out, allow_unverified=True, cache_dir=cache, workers=1, progress=False)
    before = {f: os.path.getmtime(os.path.join(out, f)) for f in os.listdir(out)}

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # as if killed while writing
    monkeypatch.setattr(np, "savez", killed)
    with pytest.raises(KeyboardInterrupt):
        pp.preprocess(gmd_zip, out, allow_unverified=True, cache_dir=cache, workers=1, progress=False, force=True)
    after = os.listdir(out)
    assert not [f for f in after if f.endswith(".tmp")], after
    assert set(after) == set(before)
    # The whole set is the old one: train.tfrecord was written before savez failed, yet not put in place.
    assert {f: os.path.getmtime(os.path.join(out, f)) for f in after} == before
    assert not [f for f in os.listdir(tmp_path.parent) if f.startswith(tmp_path.name + ".")]  # no staging left


def test_atomic_outputs_get_the_usual_permissions(tmp_path):
    """Temp files are 0600 / 0700; the renamed outputs follow the umask like any other file."""
    old = os.umask(0o022)
    try:
        files.atomic_write(str(tmp_path / "a.txt"), lambda f: f.write("x"), mode="w")
        with files.atomic_directory(str(tmp_path / "d")) as d:
            open(os.path.join(d, "b"), "w").close()
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o644
    assert os.stat(tmp_path / "d").st_mode & 0o777 == 0o755


def test_atomic_write_leaves_the_process_umask_alone(tmp_path, monkeypatch):
    old = os.umask(0o027)
    try:
        def no_umask(mask):
            raise AssertionError("os.umask called: it races with other threads")
        monkeypatch.setattr(os, "umask", no_umask)
        files.atomic_write(str(tmp_path / "a.txt"), lambda f: f.write("x"), mode="w")
        with files.atomic_directory(str(tmp_path / "d")):
            pass
    finally:
        monkeypatch.undo()
        os.umask(old)
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o640
    assert os.stat(tmp_path / "d").st_mode & 0o777 == 0o750


def test_wrong_or_truncated_zip_is_a_one_line_error(gmd_zip, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"not a zip")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(open(gmd_zip, "rb").read()[:500])
    for path in (bad, truncated):
        with pytest.raises(data.DataError) as e:
            gmd.get_data(str(path), str(tmp_path / "cache"), allow_unverified=True)
        assert "\n" not in str(e.value) and str(path) in str(e.value)
    with pytest.raises(data.DataError, match="official GMD archive"):
        gmd.get_data(gmd_zip, str(tmp_path / "cache"))  # verified by default
    no_info = tmp_path / "no_info.zip"
    with zipfile.ZipFile(no_info, "w") as z:
        z.writestr("groove/readme.txt", "hi")
    with pytest.raises(data.DataError, match="no info.csv"):
        gmd.get_data(str(no_info), str(tmp_path / "cache"), allow_unverified=True)


def test_zip_slip_member_is_refused(tmp_path):
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as z:
        z.writestr("groove/info.csv", ",".join(INFO_HEADER) + "\n")
        z.writestr("../escaped.txt", "gotcha")
    with pytest.raises(data.DataError, match="outside the target folder"):
        files.safe_extract(str(evil), str(tmp_path / "cache" / "x"))
    assert not (tmp_path / "cache" / "escaped.txt").exists()
    assert not (tmp_path / "escaped.txt").exists()


def test_download_resumes_a_partial_file(tmp_path):
    payload = os.urandom(200_000)
    src = tmp_path / "remote.bin"
    src.write_bytes(payload)
    dest = str(tmp_path / "dl" / "copy.bin")
    os.makedirs(os.path.dirname(dest))
    with open(dest + ".part", "wb") as f:
        f.write(payload[:70_000])  # a download killed part-way
    files.download(src.as_uri(), dest, progress=False)
    assert open(dest, "rb").read() == payload and not os.path.exists(dest + ".part")
    with open(dest + ".part", "wb") as f:  # a partial file bigger than the source: restart
        f.write(payload + b"junk")
    os.remove(dest)
    files.download(src.as_uri(), dest, progress=False)
    assert open(dest, "rb").read() == payload


def test_http_download_that_ends_early_is_not_promoted_and_resumes(http_server, tmp_path):
    payload = os.urandom(300_000)
    http_server.files["/a.bin"] = payload
    http_server.cut["/a.bin"] = 100_000  # the connection drops after 100 kB of 300 kB
    dest = str(tmp_path / "a.bin")
    with pytest.raises(data.DataError, match=r"ended early \(100,000 of 300,000 bytes\); run again to resume"):
        files.download(http_server.url + "/a.bin", dest, progress=False)
    assert not os.path.exists(dest) and os.path.getsize(dest + ".part") == 100_000
    del http_server.cut["/a.bin"]
    files.download(http_server.url + "/a.bin", dest, progress=False)
    assert open(dest, "rb").read() == payload and not os.path.exists(dest + ".part")
    assert http_server.requests[-1] == ("/a.bin", "bytes=100000-")  # resumed, not restarted


def test_http_download_whose_part_is_already_complete_finishes(http_server, tmp_path):
    payload = os.urandom(50_000)
    http_server.files["/b.bin"] = payload
    dest = str(tmp_path / "b.bin")
    with open(dest + ".part", "wb") as f:  # killed after the last byte, before the rename
        f.write(payload)
    files.download(http_server.url + "/b.bin", dest, progress=False)  # the server answers 416
    assert open(dest, "rb").read() == payload
    assert http_server.requests == [("/b.bin", "bytes=50000-")]


def test_cached_archive_that_fails_verification_is_fetched_again(http_server, gmd_zip, tmp_path):
    good = open(gmd_zip, "rb").read()
    http_server.files["/" + gmd.ARCHIVE_NAME] = good
    cache = str(tmp_path / "cache")
    cached = os.path.join(cache, "downloads", gmd.ARCHIVE_NAME)
    os.makedirs(os.path.dirname(cached))
    with open(cached, "wb") as f:
        f.write(good[:1000])  # a damaged copy from an earlier run
    folder = gmd.get_data(http_server.url + "/" + gmd.ARCHIVE_NAME, cache, allow_unverified=True, progress=False)
    assert os.path.isfile(os.path.join(folder, "info.csv")) and open(cached, "rb").read() == good
    http_server.files["/" + gmd.ARCHIVE_NAME] = b"not a zip"  # a server now sending junk: an error, nothing kept
    os.remove(cached)
    with pytest.raises(data.DataError, match="not a readable zip"):
        gmd.get_data(http_server.url + "/" + gmd.ARCHIVE_NAME, cache, allow_unverified=True, progress=False)
    assert not os.path.exists(cached)


def test_zip_bomb_is_refused_before_extraction(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("groove/info.csv", ",".join(INFO_HEADER) + "\n")
        z.writestr("groove/zeros.mid", b"\0" * 5_000_000)  # compresses to a few kB
    assert os.path.getsize(bomb) < 50_000
    with pytest.raises(data.DataError, match="would unpack to 5,000,0"):
        files.safe_extract(str(bomb), str(tmp_path / "x"), max_bytes=1_000_000)
    assert not os.path.exists(tmp_path / "x")


def test_download_checksum_mismatch_is_an_error(gmd_zip, tmp_path):
    # Served under the official archive name, the synthetic zip fails the size/sha256 check...
    served = tmp_path / "srv" / gmd.ARCHIVE_NAME
    os.makedirs(served.parent)
    served.write_bytes(open(gmd_zip, "rb").read())
    cache = str(tmp_path / "cache")
    with pytest.raises(data.DataError, match="allow_unverified"):
        gmd.get_data(served.as_uri(), cache, progress=False)
    # ...and is accepted, being a valid GMD-like archive, with allow_unverified.
    folder = gmd.get_data(served.as_uri(), cache, allow_unverified=True, progress=False)
    assert os.path.isfile(os.path.join(folder, "info.csv"))


def test_extracted_folder_is_a_source(processed):
    _, _, cache = processed
    folder = gmd.find_data_dir(os.path.join(cache, "extracted", os.listdir(os.path.join(cache, "extracted"))[0]))
    assert gmd.get_data(folder) == folder
    assert gmd.get_data(os.path.dirname(folder)) == folder


def test_official_checksum_matches_tfds():
    import tensorflow_datasets
    path = os.path.join(os.path.dirname(tensorflow_datasets.__file__), "datasets", "groove", "checksums.tsv")
    lines = [line.split("\t") for line in open(path).read().splitlines()]
    assert [gmd.OFFICIAL_URL, str(gmd.OFFICIAL_SIZE), gmd.OFFICIAL_SHA256] in [line[:3] for line in lines]


def test_cli_tfds_without_source_fetches_the_official_archive(tmp_path, monkeypatch, capsys):
    fetched = []

    def download(url, path, *args, **kwargs):
        fetched.append(url)
        raise pp.DataError(f"{url}: offline in this test")
    monkeypatch.setattr(pp.files, "download", download)
    assert cli.main(["preprocess", "--tfds", "--cache_dir", str(tmp_path)]) == 2
    assert fetched == [gmd.OFFICIAL_URL], capsys.readouterr().err


def test_cli(gmd_zip, processed, tmp_path, capsys):
    _, _, cache = processed
    out = str(tmp_path / "out")
    assert cli.main(["preprocess", "--source", gmd_zip, "--allow_unverified", "--output_dir", out,
                     "--cache_dir", cache, "--workers", "1", "--max_files", "2"]) == 0
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["totals"]["tensors"] == 10 and os.path.isfile(os.path.join(out, "report.json"))
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 truncated")
    assert cli.main(["preprocess", "--source", str(bad), "--allow_unverified", "--output_dir", out,
                     "--cache_dir", cache]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("groovae preprocess: error: ") and "bad.zip" in err[0]


# ---------------------------------------------------------------- the real GMD

needs_gmd = pytest.mark.skipif(not os.path.isfile(GMD_ZIP), reason=f"Groove MIDI Dataset zip not at {GMD_ZIP}")
# Short files of several kinds: 4/4 beats and fills, 3/4, 6/8, different drummers and tempi.
FAITHFUL_IDS = ["drummer1/eval_session/1", "drummer1/eval_session/10"]


@pytest.fixture(scope="module")
def gmd_dir(tmp_path_factory):
    return gmd.get_data(GMD_ZIP, str(tmp_path_factory.mktemp("gmd_cache")), allow_unverified=True,
                       progress=False)


def _pick_rows(rows):
    """A handful of short GMD files covering beats, fills and odd meters."""
    picked = [r for r in rows if r["id"] in FAITHFUL_IDS]
    for want in (("4-4", "fill"), ("3-4", "beat"), ("6-8", "beat"), ("5-4", "beat")):
        picked += [r for r in rows if (r["time_signature"], r["beat_type"]) == want
                   and 8 < float(r["duration"]) < 30][:1]
    picked += [r for r in rows if r["split"] == "validation" and 20 < float(r["duration"]) < 35][:2]
    for drummer in sorted({r["drummer"] for r in rows}):  # one beat per drummer
        picked += [r for r in rows if r["drummer"] == drummer and r["beat_type"] == "beat"
                   and r["time_signature"] == "4-4" and 15 < float(r["duration"]) < 30][:1]
    return picked


@needs_gmd
def test_windows_equal_tfds_own_generator(gmd_dir):
    """tfds' groove builder's own example generator, then magenta's converter, vs ours."""
    from tensorflow_datasets.datasets.groove import groove_dataset_builder
    import note_seq
    builder = groove_dataset_builder.Builder(config="4bar-midionly")
    conv = pp._converter("groovae_4bar")
    rows = _pick_rows(gmd.read_info(gmd_dir))
    assert len(rows) >= 6
    compared = 0
    for row in rows:
        # tfds yields one dict mutated per window: take the MIDI as it goes.
        theirs = [example["midi"] for _, example in builder._generate_examples([row], gmd_dir)]
        ours = pp.process_file(pp.FileJob(row, gmd_dir, "tfds", "groovae_4bar", False, {}))
        assert ours["error"] is None and ours["windows"] == len(theirs), row["id"]
        parts = [data.sequence_to_tensors(note_seq.midi_to_note_sequence(m), conv) for m in theirs]
        expected = data.concat_tensors(parts, conv)
        for key in data.TENSOR_KEYS:
            assert np.array_equal(ours["tensors"][key], expected[key]), (row["id"], key)
        starts = [i for i, p in enumerate(parts) for _ in range(len(p["lengths"]))]
        assert list(ours["tensors"]["start_bar"]) == starts
        compared += len(expected["lengths"])
    assert compared > 100


@needs_gmd
def test_gmd_subset_end_to_end(gmd_dir, tmp_path):
    report = pp.preprocess(gmd_dir, str(tmp_path), max_files=12, workers=2, progress=False)
    assert report["totals"]["files"] == 12 and not report["rejected_counts"].get("unreadable")
    assert report["totals"]["tensors"] > 0


@needs_gmd
@pytest.mark.slow
def test_whole_gmd_counts_equal_tfds(tmp_path):
    report = pp.preprocess(GMD_ZIP, str(tmp_path), allow_unverified=True, progress=False)
    assert [report["splits"][s]["windows"] for s in gmd.SPLITS] == [17261, 2121, 2033]
    assert [report["splits"][s]["tensors"] for s in gmd.SPLITS] == [15591, 1929, 1901]


def test_kill_9_during_preprocess_leaves_the_old_outputs_whole(gmd_zip, tmp_path):
    """A rebuild killed while it writes its staging folder: the folder keeps the complete earlier set."""
    import signal
    import subprocess
    import sys
    from tests.conftest import ROOT
    out = tmp_path / "gmd"
    args = [sys.executable, "-m", "groovae", "preprocess", "--source", gmd_zip, "--allow_unverified",
            "--output_dir", str(out), "--cache_dir", str(tmp_path / "cache"), "--workers", "1"]
    subprocess.run(args, cwd=ROOT, check=True, capture_output=True, timeout=300)
    before = {f: (out / f).read_bytes() for f in os.listdir(out)}
    marker = tmp_path / "writing"  # it stalls while it writes its staging folder (polling for the folder raced)
    proc = start_with_fault(args[3:] + ["--force"], "groovae.data.save_tensors", "stall@2", marker)
    wait_for_marker(proc, marker)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert {f: (out / f).read_bytes() for f in os.listdir(out)} == before
    subprocess.run(args + ["--force"], cwd=ROOT, check=True, capture_output=True, timeout=300)  # and it recovers
    assert sorted(os.listdir(out)) == sorted(before)
    assert not [f for f in os.listdir(tmp_path) if f.startswith("gmd.")]  # the killed run's staging cleaned


POOL_RACE = """
import multiprocessing
from groovae import preprocess
from groovae.errors import terminate_as_interrupt
with terminate_as_interrupt():  # the parent's SIGTERM handler, as in preprocess
    for _ in range(100):
        with preprocess._start_pool(multiprocessing.get_context("fork"), 2) as pool:
            list(pool.imap(abs, [1, -2], chunksize=2))  # done before the second worker may have run at all
print("done")
"""


def test_a_pool_shut_down_before_its_workers_ran_ends():
    """Pool.terminate()'s SIGTERM to a worker that has not run since its fork was taken by the parent's handler and
    dropped: the worker lived on and the parent waited for it forever (2 of 3 such loops hung on a loaded machine;
    preprocess hung the same way in a test).  Workers now start with the signals blocked."""
    proc = run_python(POOL_RACE, timeout=240)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr  # nor a worker's Terminated raised in the parent's handler


@pytest.mark.parametrize("signum, code, stage", [
    ("SIGINT", 130, "groovae.data.save_tensors"), ("SIGTERM", 143, "groovae.data.save_tensors"),
    ("SIGINT", 130, "groovae.preprocess.process_file"), ("SIGTERM", 143, "groovae.preprocess.process_file")])
def test_an_interrupted_rebuild_removes_its_staging_and_keeps_the_old_outputs(gmd_zip, tmp_path, signum, code,
                                                                             stage):
    """Ctrl-C (to the process group, workers included) or SIGTERM while the workers convert files or while the
    staging folder is written: the staging folder is gone, the earlier outputs whole, one line, exit 130/143."""
    out = str(tmp_path / "data" / "gmd")
    argv = ["preprocess", "--source", gmd_zip, "--allow_unverified", "--output_dir", out, "--cache_dir",
            str(tmp_path / "cache"), "--workers", "2"]
    assert cli.main(argv) == 0
    before = tree(tmp_path / "data")
    marker = tmp_path / "stalled"
    proc = start_with_fault(argv + ["--force"], stage, "stall", marker)
    err = interrupt(proc, signum, marker)
    assert proc.returncode == code, err[-2000:]
    assert err.strip().splitlines()[-1] == f"groovae preprocess: interrupted; nothing written, {out} as before"
    assert "Traceback" not in err, err[-2000:]
    assert tree(tmp_path / "data") == before  # and no staging or .old folder beside it


@pytest.mark.parametrize("target, fault, reason, extra", [
    ("groovae.preprocess_outputs.write_tfrecord", "fsize", "File too large", []),  # TF's TFRecordWriter really fails
    ("groovae.data.save_tensors", "ENOSPC@2", "No space left on device", []),
    ("groovae.shards.write_shard", "fsize", "File too large", ["--shards", "2"])])
def test_a_full_disk_is_one_line_and_the_old_outputs_stay_whole(gmd_zip, tmp_path, target, fault, reason, extra):
    out = str(tmp_path / "data" / "gmd")
    argv = ["preprocess", "--source", gmd_zip, "--allow_unverified", "--output_dir", out, "--cache_dir",
            str(tmp_path / "cache"), "--workers", "1"]
    assert cli.main(argv) == 0
    before = tree(tmp_path / "data")
    code, err = run_with_fault(argv + ["--force"] + extra, target, fault, tmp_path / "marker")
    assert code == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"groovae preprocess: error: {out}.") and ".tmp/" in last, last  # in the staging folder
    assert last.endswith(f": cannot write ({reason}); nothing written, {out} as before"), last
    assert "Traceback" not in err
    assert tree(tmp_path / "data") == before


def test_staging_of_a_killed_run_is_cleaned_by_the_next_run_and_a_live_runs_is_not(gmd_zip, tmp_path):
    """A run stalled while writing its staging folder holds it: a second run beside it leaves it alone.  Once the
    first is killed (-9), the next run, even one that finds the outputs up to date, removes what it left."""
    import signal
    data_dir = tmp_path / "data"
    out = str(data_dir / "gmd")
    argv = ["preprocess", "--source", gmd_zip, "--allow_unverified", "--output_dir", out, "--cache_dir",
            str(tmp_path / "cache"), "--workers", "1"]
    assert cli.main(argv) == 0
    marker = tmp_path / "stalled"
    proc = start_with_fault(argv + ["--force"], "groovae.data.save_tensors", "stall", marker)
    wait_for_marker(proc, marker)
    live = sorted(set(os.listdir(data_dir)) - {"gmd"})
    assert [name.rsplit(".", 1)[1] for name in live] == ["lock", "tmp"], live
    assert cli.main(argv + ["--force"]) == 0  # a run beside it
    assert sorted(os.listdir(data_dir)) == sorted(["gmd"] + live)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert cli.main(argv) == 0  # up to date, and the killed run's staging is gone
    assert os.listdir(data_dir) == ["gmd"]


def test_a_swap_cut_short_by_a_kill_gets_the_last_outputs_back(gmd_zip, tmp_path, capsys):
    """kill -9 between atomic_directory's two renames leaves the last whole outputs in <name>.<random>.old and no
    folder: the next run puts them back (here: finds them up to date)."""
    data_dir = tmp_path / "data"
    out = data_dir / "gmd"
    argv = ["preprocess", "--source", gmd_zip, "--allow_unverified", "--output_dir", str(out), "--cache_dir",
            str(tmp_path / "cache"), "--workers", "1"]
    assert cli.main(argv) == 0
    before = tree(out)
    (data_dir / "gmd.k1ll3d_9.old").mkdir()
    os.replace(out, data_dir / "gmd.k1ll3d_9.old" / "previous")
    (data_dir / "gmd.k1ll3d_9.tmp").mkdir()  # the new outputs that never arrived
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert "is up to date" in capsys.readouterr().err
    assert os.listdir(data_dir) == ["gmd"] and tree(out) == before


def test_other_files_in_the_output_folder_survive_a_rebuild(gmd_zip, processed, tmp_path):
    _, _, cache = processed
    out = tmp_path / "gmd"
    out.mkdir()
    (out / "my_notes.txt").write_text("mine")
    pp.preprocess(gmd_zip, str(out), allow_unverified=True, cache_dir=cache, workers=1, progress=False)
    pp.preprocess(gmd_zip, str(out), allow_unverified=True, cache_dir=cache, workers=1, progress=False, force=True)
    assert (out / "my_notes.txt").read_text() == "mine" and (out / "train.npz").is_file()
    assert sorted(os.listdir(tmp_path)) == ["gmd"]  # no staging or .old folder left
