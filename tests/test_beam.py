"""preprocess --runner beam: the Beam pipeline's outputs equal the process pool's, every file accounted for.

Beam runs in this process (FnApiRunner, one worker) to stay fast; the
multi-process local runner and the whole GMD are benchmarks/bench_beam.py's.
"""
import json
import os
import sys

import numpy as np
import pytest

import groovae.compat  # noqa: F401  (shims before TF)
from groovae import beam_pipeline, cli, data, files, gmd, preprocess as pp, shards, synthetic
from groovae.errors import PipelineError, RequestError
from tests.conftest import GMD_ZIP, interrupt, start_with_fault, tree
from tests.test_preprocess import make_gmd_zip

try:
    import apache_beam  # noqa: F401
    BEAM_MISSING = None
except ImportError:
    BEAM_MISSING = "apache-beam is not installed (pip install '.[beam]' or bash scripts/setup.sh --beam)"
needs_beam = pytest.mark.skipif(BEAM_MISSING is not None, reason=str(BEAM_MISSING))
needs_gmd = pytest.mark.skipif(not os.path.isfile(GMD_ZIP), reason=f"Groove MIDI Dataset zip not at {GMD_ZIP}")


def _same_outputs(a, b, sharded=False):
    """The two output folders hold the same tensors (hash per split), NoteSequences and report."""
    for split in gmd.SPLITS:
        if sharded:
            assert shards.split_of(a, split) == shards.split_of(b, split)
            names = [s["file"] for s in shards.split_of(a, split)["shards"]]
            names += [shards.sequence_shard_name(split, k, len(names)) for k in range(len(names))]
        else:
            assert (data.fingerprint(data.load_tensors(os.path.join(a, f"{split}.npz")))
                    == data.fingerprint(data.load_tensors(os.path.join(b, f"{split}.npz"))))
            names = [f"{split}.npz", f"{split}.tfrecord"]
        for name in names:
            assert files.sha256_of(os.path.join(a, name)) == files.sha256_of(os.path.join(b, name)), name
    ra, rb = (json.load(open(os.path.join(d, "report.json"))) for d in (a, b))
    for key in ("splits", "rejected", "rejected_counts", "totals", "unmapped_notes", "inputs"):
        assert ra[key] == rb[key], key
    assert (ra["runner"], rb["runner"]) == ("local", "beam")


@pytest.fixture(scope="module")
def gmd_like(tmp_path_factory):
    """A GMD-like zip of synthetic grooves with broken files among them."""
    return make_gmd_zip(tmp_path_factory.mktemp("zip") / "groove-synthetic.zip")


@needs_beam
@pytest.mark.parametrize("num_shards", [None, 2])
def test_beam_outputs_equal_the_local_ones(gmd_like, tmp_path, num_shards):
    cache = str(tmp_path / "cache")
    outs = {}
    for runner in ("local", "beam"):
        outs[runner] = str(tmp_path / runner)
        pp.preprocess(gmd_like, outs[runner], allow_unverified=True, cache_dir=cache, workers=1, progress=False,
                      runner=runner, num_shards=num_shards)
    _same_outputs(outs["local"], outs["beam"], sharded=bool(num_shards))
    report = json.load(open(os.path.join(outs["beam"], "report.json")))
    assert report["rejected_counts"] == {"unreadable": 3, "too short": 1}  # every bad file named, with its reason
    assert not [name for name in os.listdir(outs["beam"]) if name.startswith(beam_pipeline.WORK)]


@needs_beam
def test_own_midi_in_nested_folders_through_the_cli(tmp_path, capsys):
    root = tmp_path / "drums"
    synthetic.write_grooves(str(root / "x" / "y"), n=5, bars=6)
    synthetic.write_grooves(str(root / "z"), n=4, bars=5, seed=5)
    (root / "z" / "empty.mid").write_bytes(b"")
    for runner in ("local", "beam"):
        assert cli.main(["preprocess", "--source", str(root), "--output_dir", str(tmp_path / runner), "--runner", runner,
                         "--workers", "1", "--shards", "2", "--split_ratios", "0.5,0.25,0.25"]) == 0
    _same_outputs(str(tmp_path / "local"), str(tmp_path / "beam"), sharded=True)
    assert "empty.mid" in capsys.readouterr().err


@needs_beam
def test_a_file_the_pipeline_loses_fails_loudly_and_writes_nothing(gmd_like, tmp_path, monkeypatch):
    run = beam_pipeline.run

    def lossy(*args, **kwargs):
        summaries, groups = run(*args, **kwargs)
        return summaries[1:], groups
    monkeypatch.setattr(beam_pipeline, "run", lossy)
    out = str(tmp_path / "out")
    with pytest.raises(PipelineError, match=r"1 of 8 input files not converted or reported .*outputs not written"):
        pp.preprocess(gmd_like, out, allow_unverified=True, cache_dir=str(tmp_path / "cache"), workers=1,
                      progress=False, runner="beam")
    assert not os.path.exists(out) and os.listdir(tmp_path) == ["cache"]  # no staging left either


@needs_beam
def test_a_full_disk_in_a_beam_worker_is_one_line_and_the_old_outputs_stay(gmd_like, tmp_path, monkeypatch, capsys):
    import errno
    out = str(tmp_path / "data" / "gmd")
    argv = ["preprocess", "--source", gmd_like, "--allow_unverified", "--output_dir", out, "--cache_dir",
            str(tmp_path / "cache"), "--workers", "1", "--runner", "beam", "--shards", "2"]
    assert cli.main(argv) == 0
    before = tree(tmp_path / "data")

    def full(path, tensors):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
    monkeypatch.setattr(shards, "write_shard", full)
    assert cli.main(argv + ["--force"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(f": cannot write (No space left on device); nothing written, {out} as before"), err[-1]
    assert "Traceback" not in "\n".join(err)
    assert tree(tmp_path / "data") == before


@needs_beam
def test_ctrl_c_during_a_beam_run_removes_its_staging(gmd_like, tmp_path):
    out = str(tmp_path / "data" / "gmd")
    argv = ["preprocess", "--source", gmd_like, "--allow_unverified", "--output_dir", out, "--cache_dir",
            str(tmp_path / "cache"), "--workers", "1", "--runner", "beam"]
    assert cli.main(argv) == 0
    before = tree(tmp_path / "data")
    marker = tmp_path / "marker"
    proc = start_with_fault(argv + ["--force"], "groovae.preprocess_outputs.write_group", "stall", marker)
    err = interrupt(proc, "SIGINT", marker)
    assert proc.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == f"groovae preprocess: interrupted; nothing written, {out} as before"
    assert tree(tmp_path / "data") == before


def test_a_group_missing_a_file_fails_loudly():
    rows = [{"split": "train", "id": "a"}, {"split": "train", "id": "b"}]
    summaries = [{"split": "train", "id": "a"}, {"split": "train", "id": "b"}]
    with pytest.raises(PipelineError, match="1 of 2 input files not written to a split"):
        from groovae.preprocess_outputs import check_accounted
        check_accounted(rows, summaries, [{"split": "train", "files": ["a"]}], "here")


@needs_beam
def test_unknown_or_bad_beam_options_are_one_line():
    with pytest.raises(RequestError, match="unknown pipeline option --no_such_option"):
        beam_pipeline.pipeline_options("--no_such_option=3", 1)
    with pytest.raises(RequestError, match="'runner' is not a pipeline option"):
        beam_pipeline.pipeline_options("runner", 1)
    options = beam_pipeline.pipeline_options("--runner=DataflowRunner --project=p --region=europe-west1", 2)
    assert options.get_all_options()["runner"] == "DataflowRunner"
    assert options.get_all_options()["direct_num_workers"] == 2


def test_runner_beam_without_apache_beam_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "apache_beam", None)  # import apache_beam now raises ImportError
    got = cli.main(["preprocess", "--source", str(tmp_path), "--output_dir", str(tmp_path / "o"), "--runner", "beam"])
    err = capsys.readouterr().err.strip().splitlines()
    assert got == 2 and len(err) == 1 and "pip install '.[beam]'" in err[0] and "scripts/setup.sh --beam" in err[0]
    assert not os.path.exists(tmp_path / "o")


@needs_beam
@needs_gmd
def test_beam_equals_local_on_gmd_files(tmp_path):
    """A dozen real GMD files (beats, fills, odd meters) through both runners."""
    source = gmd.get_data(GMD_ZIP, str(tmp_path / "cache"), allow_unverified=True, progress=False)
    for runner in ("local", "beam"):
        pp.preprocess(source, str(tmp_path / runner), max_files=12, workers=1, progress=False, runner=runner,
                      num_shards=2)
    _same_outputs(str(tmp_path / "local"), str(tmp_path / "beam"), sharded=True)
    report = json.load(open(tmp_path / "beam" / "report.json"))
    assert report["totals"]["files"] == 12 and report["totals"]["tensors"] > 0
    windows = shards.load_split(str(tmp_path / "beam"), "train")
    assert np.all(windows["bpm"] > 0)


@needs_beam
@needs_gmd
@pytest.mark.slow
def test_beam_equals_local_on_the_whole_gmd(tmp_path):
    for runner in ("local", "beam"):
        pp.preprocess(GMD_ZIP, str(tmp_path / runner), allow_unverified=True, cache_dir=str(tmp_path / "cache"),
                      progress=False, runner=runner)
    _same_outputs(str(tmp_path / "local"), str(tmp_path / "beam"))
