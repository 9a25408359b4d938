"""Render the benchmark JSON files as Markdown tables, so no number is ever typed by hand.

    python -m benchmarks.report [--results DIR] [--update-readme]

Prints the tables for every results file present in ``results/`` (accuracy, speed and widget first,
then every other study; ``render_studies`` holds the smaller studies' renderers).
``--update-readme`` also replaces the block between ``<!-- results:begin -->`` and
``<!-- results:end -->`` in benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import references
from . import render_studies as studies
from .format import fmt, machine_line

HERE = Path(__file__).resolve().parent
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


# ------------------------------------------------------------------------------------ accuracy


def render_accuracy(payload: dict) -> str:
    lines = ["### Accuracy on the validation split", "", machine_line(payload), ""]
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
                lines.append(f"| {label} | {fmt(m.get('dice'))} ({fmt(m.get('dice_median'))}) | {fmt(m.get('iou'))} | "
                             f"{fmt(m.get('sensitivity'))} | {fmt(m.get('precision'))} | {r['cases']} validation "
                             f"patients (training/split.json) |")
        for ref in references.LGG_REFERENCES:
            lines.append(f"| {ref['system']} | {fmt(ref['dice'])} ({fmt(ref['dice_median'])}) | - | - | - | "
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
                lines.append(f"| {label} | " + " | ".join(fmt(m.get(f"dice_{k}")) for k in ("TC", "WT", "ET"))
                             + f" | {fmt(m.get('dice_mean'))} | "
                             + " | ".join(fmt(m.get(f"hd95_{k}"), 1) for k in ("TC", "WT", "ET"))
                             + f" | {r['cases']} validation cases (training/split.json), BraTS empty-region rule |")
        for ref in references.BRATS_REFERENCES:
            d, h = ref["dice"], ref.get("hd95") or {}
            lines.append(f"| {ref['system']} | " + " | ".join(fmt(d[k], 4) for k in ("TC", "WT", "ET"))
                         + f" | {fmt(ref['dice_mean'], 4)} | "
                         + " | ".join(fmt(h.get(k), 1) for k in ("TC", "WT", "ET")) + f" | {ref['metric']} |")
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
    return fmt(rss, 0) + (f" (GPU {fmt(gpu, 0)})" if gpu is not None else "")


def render_speed(payload: dict) -> str:
    lines = ["### Speed and memory", "", machine_line(payload), "",
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
        lines.append(f"| {run['benchmark']} | {run['config']} | {run['device']} | {fmt(run['median_s'], 2)} | "
                     f"{fmt(run['median_s'] / max(run.get('cases', 1), 1), 2)} | {fmt(run['min_s'], 2)} | {_mem(run)} | "
                     f"{run.get('note', '')} |")
    ratios = payload.get("ratios", {})
    if ratios:
        lines += ["", "| ratio (ours / reference, median end to end) | value |", "|---|---|"]
        lines += [f"| {k} | {fmt(v, 2)} |" for k, v in ratios.items()]
    # recomputed from the runs, so a stored file is judged by the current rule (e.g. the LGG batch counts too)
    from .speed import targets as speed_targets

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
    lines = ["### Widget responsiveness", "", machine_line(payload), "",
             "Longest event-loop gap (ms) on the main thread, timer every "
             f"{_first(payload, 'timer_interval_ms')} ms; target < {target} ms.", "",
             "| case | device | run s | while the network runs (max / p99) | adding the result layer | "
             "whole run | verdict while running | verdict whole run |",
             "|---|---|---|---|---|---|---|---|"]
    for run in payload.get("runs", []):
        lines.append(f"| {run['case']} | {run['device']} | {fmt(run['run_s'], 1)} | "
                     f"{fmt(run.get('inference_max_gap_ms'), 0)} / {fmt(run.get('inference_p99_gap_ms'), 0)} | "
                     f"{fmt(run.get('adding_max_gap_ms'), 0)} | {fmt(run['max_gap_ms'], 0)} | "
                     f"**{run.get('result_while_running', 'n/a')}** | **{run['result']}** |")
    floors = [f["max_gap_ms"] for f in payload.get("napari_add_labels", []) if f.get("max_gap_ms") is not None]
    if floors:
        lines += ["", "napari's own `viewer.add_labels` of the same array (no plugin code): "
                  + ", ".join(fmt(v, 0) for v in floors) + " ms."]
    opening = payload.get("open_widget")
    if opening:
        lines += ["", f"Docking the widget: the call blocks {fmt(opening['dock_call_ms'], 0)} ms; torch and MONAI then "
                  f"load in a background thread for {fmt(opening['warm_up_s'], 1)} s, longest gap "
                  f"{fmt(opening.get('warm_up_max_gap_ms'), 0)} ms"
                  + (" (torch was already imported)" if opening.get("torch_imported_before") else "") + "."]
    return "\n".join(lines)


def _first(payload: dict, key: str):
    runs = payload.get("runs") or [{}]
    return runs[0].get(key)


RENDERERS = {"accuracy": render_accuracy, "speed": render_speed, "widget": render_widget, **studies.RENDERERS}
EXPECTED = ("accuracy.json", "speed.json", "widget.json")  # said "not run yet" when absent


def renderer_for(name: str):
    """The renderer of a results file: by its stem, or by the stem's first word (widget_before_x.json)."""
    stem = Path(name).stem
    # the longest matching key wins: uncertainty_brats_cv.json is not an uncertainty.json
    prefixes = sorted((key for key in RENDERERS if stem.startswith(key + "_")), key=len, reverse=True)
    return RENDERERS.get(stem) or (RENDERERS[prefixes[0]] if prefixes else None)


def render_all(results: Path) -> str:
    """Every results file in ``results``: the three headline ones first, then the rest by name."""
    present = {p.name for p in results.glob("*.json")}
    parts = [f"_{name}: not run yet_" for name in EXPECTED if name not in present]
    for name in sorted(present, key=lambda n: (n not in EXPECTED, EXPECTED.index(n) if n in EXPECTED else 0, n)):
        render = renderer_for(name)
        payload = json.loads((results / name).read_text())
        text = render(payload) if render else f"### {name}\n\n_no renderer yet; keys: {', '.join(payload)}_"
        parts.append(f"{text}\n\n_From `results/{name}`._")
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
