"""The preprocess report: per-split counts, and one reason for every file that gave no windows.

``make_report`` builds report.json's dict from the per-file results of
groovae.preprocess; ``format_report`` is its console table (a count per
reason with up to ten files each).
"""
import collections
import json

import numpy as np

from groovae.gmd import DRUM_CLASSES, SPLITS
from groovae.windows import SPLIT_BARS


def file_summary(result):
    """What the report keeps of one file's result (groovae.preprocess.process_file): its counts and problem,
    without its NoteSequence and tensors (so that a corpus's summaries fit in memory)."""
    keep = ("id", "split", "file", "time_signature", "error", "reason", "windows", "bars", "unmapped")
    summary = {k: result.get(k) for k in keep}
    summary["unmapped"] = {int(p): int(n) for p, n in (result.get("unmapped") or {}).items()}
    summary["sequence"] = result["sequence"] is not None
    summary["tensors"] = 0 if result["tensors"] is None else int(len(result["tensors"]["lengths"]))
    return summary


def _diagnosis(result):
    """(reason, detail): why a file gave no tensors, as the step that gave up saw it (for the report)."""
    if result.get("reason"):
        return result["reason"], result["error"]
    if result["error"]:
        return "unreadable", result["error"]
    name = result["file"]
    # The meter first: bars are counted in its own beats (a 12/8 bar is 12 of them), so a long 12/8 file
    # would look "too short", and no length would make it fit the converter's 16 sixteenth steps per bar.
    if result["time_signature"] not in ("", "4-4"):
        signature = result["time_signature"].replace("-", "/").replace(",", ", ")
        return "not 4/4", f"{name}: time signature {signature}; the model's bars are 4/4 (16 sixteenth steps)"
    if result["windows"] == 0:
        bars = (f"{result['bars']} bar{'s' if result['bars'] != 1 else ''}" if result["bars"] is not None
                else "no whole bars")
        return "too short", f"{name}: {bars}; a window is {SPLIT_BARS} bars"
    windows_cut = f"{result['windows']} window{'s' if result['windows'] != 1 else ''}"
    return "no converter tensors", (f"{name}: {windows_cut} cut, none kept by the converter (it needs notes into "
                                    f"the last bar, one tempo and one 4/4 time signature per window)")


# ---------------------------------------------------------------- outputs

def hits_per_class(tensors):
    hits = tensors["outputs"][..., :len(DRUM_CLASSES)].sum(axis=(0, 1)) if len(tensors["outputs"]) \
        else np.zeros(len(DRUM_CLASSES))
    return {name: int(h) for name, h in zip(DRUM_CLASSES, hits)}


def make_report(results, split_stats, window_mode, seconds):
    """report.json's dict from the files' summaries (``file_summary``) and per split its tensor count and hits
    per class (``split_stats``: {split: {tensors, hits_per_class}})."""
    report = {"window_mode": window_mode,
              "seconds": round(seconds, 2), "splits": {}, "rejected": []}
    for split in SPLITS:
        mine = [r for r in results if r["split"] == split]
        report["splits"][split] = {
            "files": len(mine),
            "sequences": sum(bool(r["sequence"]) for r in mine),
            "windows": sum(r["windows"] for r in mine),
            "tensors": int(split_stats[split]["tensors"]),
            "hits_per_class": {k: int(split_stats[split]["hits_per_class"].get(k, 0)) for k in DRUM_CLASSES},
        }
    for r in results:
        if r["error"] or not r["tensors"]:
            reason, detail = _diagnosis(r)
            report["rejected"].append({"id": r["id"], "file": r["file"], "split": r["split"],
                                       "reason": reason, "detail": detail})
    counts = collections.Counter(x["reason"] for x in report["rejected"])
    report["rejected_counts"] = dict(counts)
    dropped = collections.Counter()
    for r in results:
        if r["sequence"]:
            dropped.update({int(p): n for p, n in r.get("unmapped", {}).items()})
    report["unmapped_notes"] = {  # dropped from files that were kept (pitches outside the drum map)
        "files": sum(bool(r.get("unmapped")) and bool(r["sequence"]) for r in results),
        "notes": sum(dropped.values()), "pitches": {str(p): n for p, n in dropped.most_common(10)}}
    report["totals"] = {key: sum(s[key] for s in report["splits"].values())
                        for key in ("files", "sequences", "windows", "tensors")}
    return report


SHOWN_PER_REASON = 10  # files listed per reason on the console; report.json has them all


def format_report(report):
    lines = [f"{'split':<11}{'files':>7}{'windows':>9}{'tensors':>9}"]
    for split, s in report["splits"].items():
        lines.append(f"{split:<11}{s['files']:>7}{s['windows']:>9}{s['tensors']:>9}")
    t = report["totals"]
    lines.append(f"{'total':<11}{t['files']:>7}{t['windows']:>9}{t['tensors']:>9}")
    if report["rejected_counts"]:
        lines.append("files without tensors: " + ", ".join(f"{n} {reason}" for reason, n in
                                                            sorted(report["rejected_counts"].items())))
    for reason, n in sorted(report["rejected_counts"].items()):
        mine = [x for x in report["rejected"] if x["reason"] == reason]
        lines.append(f"  {reason}: {n} file{'s' if n != 1 else ''}")
        lines += [f"    {x['detail'] or x['file']}" for x in mine[:SHOWN_PER_REASON]]
        if n > SHOWN_PER_REASON:
            lines.append(f"    ... and {n - SHOWN_PER_REASON} more (report.json lists every file)")
    unmapped = report.get("unmapped_notes") or {}
    if unmapped.get("notes"):
        top = ", ".join(f"{p} ({n})" for p, n in unmapped["pitches"].items())
        lines.append(f"dropped {unmapped['notes']} drum notes outside the drum map in {unmapped['files']} kept files "
                     f"(pitch (notes): {top}); --drum_map maps them")
    hits = collections.Counter()
    for s in report["splits"].values():
        hits.update(s["hits_per_class"])
    lines.append("hits per class: " + ", ".join(f"{k} {hits[k]}" for k in DRUM_CLASSES))
    if report.get("corpus"):
        c = report["corpus"]
        lines.append(f"split: by a hash of each file's path ({'/'.join(f'{r:g}' for r in c['split_ratios'])} "
                     f"train/validation/test)" + (f", {c['files_from_split_csv']} files from {c['split_csv']}"
                                                  if c["split_csv"] else ""))
    if not report["splits"]["train"]["tensors"]:
        lines.append("no training windows: the reasons above say why (report.json names every file)")
    lines += [f"warning: {line}" for line in report.get("warnings", [])]
    return "\n".join(lines)


EMPTY_SPLIT_MEANS = {"validation": "train runs without validation (no validation loss to watch)",
                     "test": "evaluate and `groovae windows --split test` have nothing to use"}


def empty_split_warnings(report):
    """One line per empty validation or test split of a corpus of own MIDI, saying what to do.

    A small corpus split by path hash can leave one empty (10 % of 5 files is
    none); the GMD's own split never does.  An empty train split has its own
    line in format_report.
    """
    if not report.get("corpus"):
        return []
    lines = []
    for split, means in EMPTY_SPLIT_MEANS.items():
        counts = report["splits"][split]
        if not counts["tensors"] and report["totals"]["tensors"]:
            lines.append(f"the {split} split is empty ({counts['files']} of {report['totals']['files']} files, "
                         f"no windows): {means}; give it files with --split_ratios (e.g. 0.6,0.2,0.2) or a "
                         f"file,split CSV (--split_csv, or split.csv in the folder)")
    return lines


# ---------------------------------------------------------------- the stage


def main_report_line(report, out_dir):
    return json.dumps({"output_dir": out_dir, **{k: report[k] for k in ("window_mode", "seconds", "totals")}})
