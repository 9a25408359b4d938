"""Render the benchmark JSON files as Markdown tables, so no number is ever typed by hand.

    python benchmarks/report.py [--results DIR] [--update-readme]

Prints the tables for every results file present (accuracy.json, speed.json, widget.json).
``--update-readme`` also replaces the block between ``<!-- results:begin -->`` and
``<!-- results:end -->`` in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import references

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def _f(value, digits=3) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}"
    return str(value)


def _machine_line(payload: dict) -> str:
    m = payload.get("machine", {})
    gpu = m.get("gpu") or {}
    v = m.get("versions", {})
    return (f"_Machine: {m.get('cpu')} ({m.get('cpu_affinity') or m.get('cpu_cores_logical')} cores, "
            f"{m.get('ram_gb')} GB RAM, bf16 {_bf16(m)}), GPU "
            f"{gpu.get('name', 'none')}; torch {v.get('torch')}, monai {v.get('monai')}, numpy {v.get('numpy')}; "
            f"commit {_commit_note(m.get('git_commit'))}; {m.get('date')}; command `{payload.get('command')}`"
            + (" **(--quick: synthetic phantoms, numbers meaningless)**" if payload.get("quick") else "") + "_")


def _bf16(machine: dict) -> str:
    if not machine.get("cpu_bf16"):
        return "no"
    flags = machine.get("cpu_bf16_flags")
    return f"yes: {', '.join(flags)}" if flags else "yes (AMX or AVX512-BF16, not recorded which)"


def _commit_note(commit) -> str:
    """The commit a result came from, flagged when that tree had uncommitted changes or the code moved on since."""
    if not commit:
        return "unknown"
    text = str(commit)[:12]
    if str(commit).endswith("+dirty"):
        text += " **with uncommitted changes** (the exact code is not in git)"
    later = _later_code_commits(str(commit).removesuffix("+dirty"))
    if later:
        text += f" ({later} commit(s) changing src/ since, when rendered)"
    return text


def _later_code_commits(commit: str) -> int | None:
    import subprocess

    try:
        out = subprocess.run(["git", "-C", str(HERE), "rev-list", "--count", f"{commit}..HEAD", "--", "../src"],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip())
    except (OSError, ValueError, subprocess.CalledProcessError):
        return None


# ------------------------------------------------------------------------------------ accuracy


def render_accuracy(payload: dict) -> str:
    lines = ["### Accuracy on the validation split", "", _machine_line(payload), ""]
    results = payload.get("results", {})
    models = payload.get("models", {})
    if "lgg" in results:
        sha = str(models.get("lgg-unet2d", {}).get("sha256"))[:12]
        lines += [f"**LGG (lgg-unet2d, sha256 {sha}...)**, per patient volume, mean (median Dice) over "
                  f"{next(iter(results['lgg'].values()))['cases']} patients", "",
                  "| system | Dice | IoU | sensitivity | precision | cases / protocol |",
                  "|---|---|---|---|---|---|"]
        for variant, label in (("no_tta", "ours"), ("tta", "ours + flip TTA")):
            if variant in results["lgg"]:
                r = results["lgg"][variant]
                m = r["mean"]
                lines.append(f"| {label} | {_f(m.get('dice'))} ({_f(m.get('dice_median'))}) | {_f(m.get('iou'))} | "
                             f"{_f(m.get('sensitivity'))} | {_f(m.get('precision'))} | {r['cases']} validation "
                             f"patients (training/split.json) |")
        for ref in references.LGG_REFERENCES:
            lines.append(f"| {ref['system']} | {_f(ref['dice'])} ({_f(ref['dice_median'])}) | - | - | - | "
                         f"{ref['metric']} |")
        lines.append("")
    if "brats" in results:
        sha = str(models.get("brats-unet3d", {}).get("sha256"))[:12]
        first = next(iter(results["brats"].values()))
        lines += [f"**BraTS (brats-unet3d, sha256 {sha}...)**, per case then mean over {first['cases']} cases; "
                  "HD95 in mm", "",
                  "| system | Dice TC | Dice WT | Dice ET | mean Dice | HD95 TC | HD95 WT | HD95 ET | cases / protocol |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for variant, label in (("no_tta", "ours"), ("tta", "ours + flip TTA")):
            if variant in results["brats"]:
                r = results["brats"][variant]
                m = r["mean"]
                lines.append(f"| {label} | " + " | ".join(_f(m.get(f"dice_{k}")) for k in ("TC", "WT", "ET"))
                             + f" | {_f(m.get('dice_mean'))} | "
                             + " | ".join(_f(m.get(f"hd95_{k}"), 1) for k in ("TC", "WT", "ET"))
                             + f" | {r['cases']} validation cases (training/split.json), BraTS empty-region rule |")
        for ref in references.BRATS_REFERENCES:
            d, h = ref["dice"], ref.get("hd95") or {}
            lines.append(f"| {ref['system']} | " + " | ".join(_f(d[k], 4) for k in ("TC", "WT", "ET"))
                         + f" | {_f(ref['dice_mean'], 4)} | "
                         + " | ".join(_f(h.get(k), 1) for k in ("TC", "WT", "ET")) + f" | {ref['metric']} |")
        lines.append("")
    lines.append("Comparability: " + " ".join(
        f"{r['system']}: {r['comparable']}." for r in references.LGG_REFERENCES[:1] + references.BRATS_REFERENCES))
    lines.append("Sources: " + "; ".join(
        f"{r['system']}: {r['source']}" for r in references.LGG_REFERENCES + references.BRATS_REFERENCES) + ".")
    if payload.get("missing_cases"):
        lines.append(f"\nMissing validation cases (not evaluated): {', '.join(payload['missing_cases'])}")
    if payload.get("figure"):
        lines.append(f"\nFigure: `{Path(payload['figure']).name}` (image / ground truth / prediction).")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ speed


def _mem(run: dict) -> str:
    rss = run.get("peak_rss_mb")
    gpu = run.get("gpu_peak_mb")
    return _f(rss, 0) + (f" (GPU {_f(gpu, 0)})" if gpu is not None else "")


def render_speed(payload: dict) -> str:
    lines = ["### Speed and memory", "", _machine_line(payload), "",
             f"Median of {payload.get('repeats')} runs per configuration; each configuration in a fresh process "
             "(peak RSS of that process = ru_maxrss, includes Python + torch + the model). End to end = read the "
             "case folder -> preprocess -> infer -> write the labels file.", "",
             "| benchmark | configuration | device | median s | per case s | min s | peak RSS MB | note |",
             "|---|---|---|---|---|---|---|---|"]
    for run in payload.get("runs", []):
        if run.get("error"):
            lines.append(f"| {run['benchmark']} | {run['config']} | {run.get('device')} | - | - | - | - | "
                         f"failed: {run['error'][:80]} |")
            continue
        lines.append(f"| {run['benchmark']} | {run['config']} | {run['device']} | {_f(run['median_s'], 2)} | "
                     f"{_f(run['median_s'] / max(run.get('cases', 1), 1), 2)} | {_f(run['min_s'], 2)} | {_mem(run)} | "
                     f"{run.get('note', '')} |")
    ratios = payload.get("ratios", {})
    if ratios:
        lines += ["", "| ratio (ours / reference, median end to end) | value |", "|---|---|"]
        lines += [f"| {k} | {_f(v, 2)} |" for k, v in ratios.items()]
    # recomputed from the runs, so a stored file is judged by the current rule (e.g. the LGG batch counts too)
    from speed import targets as speed_targets

    if payload.get("runs") and not payload.get("quick"):
        targets = speed_targets(payload["runs"], HERE / "results" / "accuracy.json", payload.get("cases"))[1]
    else:
        targets = payload.get("targets", [])
    if targets:
        lines += ["", "| target | measured | result |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['measured']} | **{t['result']}** |" for t in targets]
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ widget


def render_widget(payload: dict) -> str:
    target = payload.get("target_ms")
    lines = ["### Widget responsiveness", "", _machine_line(payload), "",
             "Longest event-loop gap (ms) on the main thread, timer every "
             f"{_first(payload, 'timer_interval_ms')} ms; target < {target} ms.", "",
             "| case | device | run s | while the network runs (max / p99) | adding the result layer | "
             "whole run | verdict while running | verdict whole run |",
             "|---|---|---|---|---|---|---|---|"]
    for run in payload.get("runs", []):
        lines.append(f"| {run['case']} | {run['device']} | {_f(run['run_s'], 1)} | "
                     f"{_f(run.get('inference_max_gap_ms'), 0)} / {_f(run.get('inference_p99_gap_ms'), 0)} | "
                     f"{_f(run.get('adding_max_gap_ms'), 0)} | {_f(run['max_gap_ms'], 0)} | "
                     f"**{run.get('result_while_running', 'n/a')}** | **{run['result']}** |")
    floors = [f["max_gap_ms"] for f in payload.get("napari_add_labels", []) if f.get("max_gap_ms") is not None]
    if floors:
        lines += ["", "napari's own `viewer.add_labels` of the same array (no plugin code): "
                  + ", ".join(_f(v, 0) for v in floors) + " ms."]
    opening = payload.get("open_widget")
    if opening:
        lines += ["", f"Docking the widget: the call blocks {_f(opening['dock_call_ms'], 0)} ms; torch and MONAI then "
                  f"load in a background thread for {_f(opening['warm_up_s'], 1)} s, longest gap "
                  f"{_f(opening.get('warm_up_max_gap_ms'), 0)} ms"
                  + (" (torch was already imported)" if opening.get("torch_imported_before") else "") + "."]
    return "\n".join(lines)


def _first(payload: dict, key: str):
    runs = payload.get("runs") or [{}]
    return runs[0].get(key)


RENDERERS = {"accuracy.json": render_accuracy, "speed.json": render_speed, "widget.json": render_widget}


def render_all(results: Path) -> str:
    parts = []
    for name, render in RENDERERS.items():
        path = results / name
        if path.is_file():
            parts.append(render(json.loads(path.read_text())))
        else:
            parts.append(f"_{name}: not run yet_")
    return "\n\n".join(parts)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--update-readme", action="store_true")
    parser.add_argument("--readme", type=Path, default=HERE / "README.md")
    args = parser.parse_args(argv)
    text = render_all(args.results)
    print(text)
    if args.update_readme:
        readme = args.readme.read_text()
        if BEGIN not in readme or END not in readme:
            print(f"error: {args.readme} has no {BEGIN} ... {END} block", file=sys.stderr)
            return 1
        head, rest = readme.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        args.readme.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
        print(f"\nupdated {args.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
