"""Accuracy of the bundled models on the validation split, through the same path users take.

    python -m benchmarks.accuracy [--models lgg,brats] [--tta both|off|on] [--brats-root DIR ...]
                                  [--device auto|cpu|cuda] [--limit N] [--out JSON] [--quick]

Each validation case folder (training/split.json "val") is read and segmented with
``napari_brainseg.engine.segment.segment_case`` - exactly what the CLI and the Python API do - with and
without flip test-time augmentation. Metrics (napari_brainseg.engine.metrics, MONAI underneath; conventions
in its docstring): LGG per-patient-volume Dice, IoU, sensitivity, precision; BraTS Dice and HD95 (mm,
from the voxel spacing) for TC/WT/ET. Writes benchmarks/results/accuracy.json (machine, versions,
model sha256, per case, means), benchmarks/results/accuracy_overlays.png, and prints a Markdown table
with the published reference figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from napari_brainseg.conventions import BRATS_REGIONS

from . import common

LGG_METRICS = ("dice", "iou", "sensitivity", "precision")
REGIONS = BRATS_REGIONS  # TC, WT, ET


def _summary(rows: list[dict], keys) -> dict:
    out = {}
    for key in keys:
        values = [r[key] for r in rows if key in r]
        if values:
            out[key] = float(np.mean(values))
            out[key + "_median"] = float(np.median(values))
    return out


def _tumour_slice(mask: np.ndarray) -> int:
    """Index along axis 0 with the most foreground (the middle slice when empty)."""
    area = mask.reshape(mask.shape[0], -1).sum(axis=1)
    return int(np.argmax(area)) if area.max() > 0 else mask.shape[0] // 2


def evaluate_lgg(folder: Path, tta: bool, device: str) -> tuple[dict, dict]:
    from napari_brainseg.engine.metrics import overlap_metrics
    from napari_brainseg.engine.segment import segment_case

    started = time.perf_counter()
    result, case = segment_case(folder, device=device, tta=tta)
    seconds = time.perf_counter() - started
    if case.mask is None:
        raise SystemExit(f"{folder}: no ground-truth masks")
    row = {"case": case.patient_id, "slices": int(case.image.shape[0]), "seconds": round(seconds, 3)}
    row.update(overlap_metrics(result.labels > 0, case.mask > 0))
    k = _tumour_slice(case.mask)
    panel = {"case": case.patient_id, "kind": "lgg", "image": case.image[k, ..., 1], "truth": case.mask[k] > 0,
             "pred": result.labels[k] > 0, "where": f"slice {case.slice_numbers[k]}"}
    return row, panel


def evaluate_brats(folder: Path, tta: bool, device: str) -> tuple[dict, dict]:
    from napari_brainseg.conventions import brats_labels_to_regions
    from napari_brainseg.engine.metrics import hd95_per_channel, region_dice
    from napari_brainseg.engine.segment import segment_case

    started = time.perf_counter()
    result, case = segment_case(folder, device=device, tta=tta)
    seconds = time.perf_counter() - started
    if case.seg is None:
        raise SystemExit(f"{folder}: no ground-truth segmentation")
    pred = brats_labels_to_regions(result.labels, result.label_convention)
    truth = brats_labels_to_regions(case.seg, case.label_convention)
    by_region = region_dice(result.labels, result.label_convention, case.seg, case.label_convention)
    dice = [by_region[name] for name in REGIONS]
    hd95 = hd95_per_channel(pred, truth, spacing=case.spacing)
    row = {"case": case.case_id, "shape": list(case.seg.shape), "spacing_mm": list(case.spacing),
           "seconds": round(seconds, 3)}
    for name, d, h in zip(REGIONS, dice, hd95):
        row[f"dice_{name}"] = d
        row[f"hd95_{name}"] = h
        row[f"truth_empty_{name}"] = not truth[REGIONS.index(name)].any()
    row["dice_mean"] = float(np.mean(dice))
    k = _tumour_slice(truth[1])
    panel = {"case": case.case_id, "kind": "brats", "image": case.images["flair"][k],
             "truth": case.seg[k], "pred": result.labels[k], "where": f"axial slice z={k}",
             "convention": case.label_convention}
    return row, panel


def overlay_figure(panels: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    colours = ListedColormap([(0, 0, 0, 0), (1, 0.2, 0.2, 0.55), (0.2, 0.9, 0.2, 0.45), (1, 0.85, 0, 0.6)])

    def classes(labels, panel):
        if panel["kind"] == "lgg":
            return np.where(labels, 2, 0)  # green: FLAIR abnormality
        et = 4 if panel.get("convention") == "brats2018" else 3
        out = np.zeros(labels.shape, np.uint8)
        out[labels == 2] = 2  # edema green
        out[labels == 1] = 1  # necrotic / non-enhancing core red
        out[labels == et] = 3  # enhancing yellow
        return out

    fig, axes = plt.subplots(len(panels), 3, figsize=(9, 3 * len(panels)), squeeze=False)
    for row, panel in zip(axes, panels):
        image = np.asarray(panel["image"], dtype=np.float32)
        hi = np.percentile(image, 99.5) or 1.0
        for ax, title, labels in zip(row, ("image (FLAIR)", "ground truth", "prediction"),
                                     (None, panel["truth"], panel["pred"])):
            ax.imshow(image, cmap="gray", vmin=0, vmax=hi)
            if labels is not None:
                ax.imshow(classes(np.asarray(labels), panel), cmap=colours, vmin=0, vmax=3, interpolation="nearest")
            ax.set_title(f"{panel['case']}\n{title}, {panel['where']}" if title.startswith("image") else title,
                         fontsize=8)
            ax.axis("off")
    fig.suptitle("Validation cases (no TTA). LGG: green = FLAIR abnormality. BraTS: red = necrotic/non-enhancing "
                 "core, green = edema, yellow = enhancing", fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--models", default="lgg,brats", help="comma list of lgg, brats")
    parser.add_argument("--tta", choices=("both", "off", "on"), default="both")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--limit", type=int, default=None, help="first N validation cases per model")
    parser.add_argument("--figure-cases", type=int, default=2, help="cases per model in the overlay figure")
    parser.add_argument("--figure", type=Path, default=None, help="PNG path (default next to the JSON)")
    args = parser.parse_args(argv)

    out = args.out or common.RESULTS / ("quick/accuracy.json" if args.quick else "accuracy.json")
    figure = args.figure or out.with_name(out.stem + "_overlays.png")
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    variants = {"both": [False, True], "off": [False], "on": [True]}[args.tta]

    tmp = tempfile.TemporaryDirectory(prefix="brainseg-accuracy-")
    cases: dict[str, list[Path]] = {}
    missing: list[str] = []
    if args.quick:
        quick = common.quick_cases(Path(tmp.name))
        cases = {m: [quick[m]] for m in models}
    else:
        if "lgg" in models:
            cases["lgg"] = common.lgg_val_folders(args.data, args.limit)
        if "brats" in models:
            found, missing = common.brats_val_folders(args.data, args.brats_root, Path(tmp.name), args.limit)
            if missing:
                print(f"warning: BraTS validation cases not found (give --brats-root): {', '.join(missing)}",
                      file=sys.stderr)
            cases["brats"] = found

    payload = {
        "benchmark": "accuracy",
        "command": common.command_line("accuracy", argv),
        "quick": args.quick,
        "machine": common.machine_description(),
        "models": common.model_cards(),
        "split": "synthetic phantoms (--quick)" if args.quick else str(common.SPLIT_FILE.relative_to(common.REPO)),
        "metric_definitions": {
            "lgg": "per patient volume (all slices together): Dice, IoU, sensitivity, precision of the binary "
                   "FLAIR-abnormality mask; empty prediction and empty truth count as 1, one empty as 0",
            "brats": "per case, per nested region TC (labels 1+4), WT (1+2+4), ET (4): Dice and HD95 in mm "
                     "(MONAI HausdorffDistanceMetric, 95th percentile, voxel spacing from the NIfTI header); "
                     "BraTS rule: both empty -> Dice 1 / HD95 0, one empty -> Dice 0 / HD95 373.13",
            "tta": "flip TTA: mean of sigmoid outputs over identity + one flip per spatial axis",
            "path": "napari_brainseg.engine.segment.segment_case on the raw case folder (read, preprocess, infer, "
                    "threshold), as the CLI and the widget do",
        },
        "missing_cases": missing,
        "results": {},
    }
    panels = []
    for model, folders in cases.items():
        evaluate = evaluate_lgg if model == "lgg" else evaluate_brats
        keys = LGG_METRICS if model == "lgg" else [f"{m}_{r}" for m in ("dice", "hd95") for r in REGIONS] + ["dice_mean"]
        for tta in variants:
            rows = []
            for index, folder in enumerate(folders):
                row, panel = evaluate(folder, tta, args.device)
                rows.append(row)
                print(f"{model} tta={'on' if tta else 'off'} {row['case']}: "
                      + ", ".join(f"{k} {row[k]:.3f}" for k in keys if k in row), file=sys.stderr)
                if not tta and index < args.figure_cases:
                    panels.append(panel)
            payload["results"].setdefault(model, {})["tta" if tta else "no_tta"] = {
                "cases": len(rows), "mean": _summary(rows, keys), "per_case": rows,
            }
        common.write_json(out, payload)  # after each model, so a long run leaves partial results

    if panels:
        payload["figure"] = str(overlay_figure(panels, figure))
    common.write_json(out, payload)
    tmp.cleanup()

    from . import report

    print(report.render_accuracy(payload))
    print(f"\nwrote {out}" + (f" and {figure}" if panels else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
