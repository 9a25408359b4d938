"""Skull-stripping (the ``[preprocess]`` extra, deepbet) on the LGG kaggle_3m stacks, which are whole heads:
does the engine see them as unstripped, and does the tumour (the manual FLAIR-abnormality mask) lie
inside the brain mask it extracts?

    python -m benchmarks.skull_strip [--lgg-root DIR] [--limit N] [--segment N] [--out JSON]
    python -m benchmarks.skull_strip --brats DIR [DIR ...] [--out JSON]   # skull-stripped cases: untouched?

Each stack goes through the engine's own path for 3D inputs (``to_model_grid`` onto the BraTS model's
1 mm LPS grid, ``zero_background``, ``strip_skull`` in 'auto' mode); the brain mask comes back onto the
stack's grid (nearest) and is compared with the tumour mask there. The voxel size is assumed
(tests/lgg_heads.py): kaggle_3m carries none. ``--segment N``: for the first N patients also run the
BraTS model on the head with and without stripping (FLAIR stands in for the missing T2) and report its
whole-tumour volume outside the brain mask and its WT Dice against the LGG mask. ``--brats``: the
foreground volume of skull-stripped BraTS case folders (found below each DIR), which must stay under the
threshold so that they are never stripped.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import common


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lgg-root", type=Path, default=common.DEFAULT_DATA / "lgg" / "kaggle_3m")
    parser.add_argument("--limit", type=int, default=None, help="only the first N patients (sorted by name)")
    parser.add_argument("--segment", type=int, default=0, metavar="N", help="also segment the first N heads")
    parser.add_argument("--brats", type=Path, nargs="+", metavar="DIR", help="measure BraTS case folders instead")
    parser.add_argument("--out", type=Path, default=None, help="default: results/skull_strip[_brats].json")
    args = parser.parse_args(argv)
    if args.brats:
        return brats_margin(args, argv)
    args.out = args.out or common.RESULTS / "skull_strip.json"

    from napari_brainseg.engine.foreground import zero_background
    from napari_brainseg.engine.metrics import dice_per_channel
    from napari_brainseg.engine.model_grid import to_model_grid
    from napari_brainseg.engine.registry import BRATS_MODEL, get_spec
    from napari_brainseg.engine.segment import segment
    from napari_brainseg.engine.skull_strip import foreground_ml, strip_skull
    from napari_brainseg.io.lgg import read_lgg_patient
    from tests.lgg_heads import PIXEL_MM, head_affine, head_stack, slice_mm

    spec = get_spec(BRATS_MODEL)
    patients = sorted(p for p in args.lgg_root.iterdir() if p.is_dir() and p.name.startswith("TCGA_"))
    rows, commit = [], common.git_commit()  # the tree measured: taken once, the JSON is rewritten as it goes
    for index, folder in enumerate(patients[: args.limit]):
        case = read_lgg_patient(folder)
        stack, affine = head_stack(case.image), head_affine(len(case.image))
        started = time.perf_counter()
        on_grid, grid = to_model_grid(stack, spec, affine=affine)
        cleaned, foreground = zero_background(on_grid)
        stripped = strip_skull(on_grid, cleaned, foreground.mask, spec, "auto")
        seconds = time.perf_counter() - started
        row = {"patient": case.patient_id, "slices": len(case.image), "slice_mm": round(slice_mm(len(case.image)), 2),
               "stripped": bool(stripped.settings),
               "foreground_ml": round(foreground_ml(cleaned, foreground.mask, spec.spacing_mm), 1), "notes": stripped.lines, "seconds": round(seconds, 1)}
        if stripped.settings:
            brain = grid.back(stripped.mask[None].astype(np.float32))[0] >= 0.5
            tumour = case.mask.astype(bool)
            row.update(brain_ml=stripped.settings["brain_ml"], tumour_voxels=int(tumour.sum()), tumour_inside=int((tumour & brain).sum()))
            if index < args.segment:
                row["segment"] = {}
                for mode in ("off", "auto"):
                    result = segment(stack, BRATS_MODEL, affine=affine, device="cpu", skull_strip=mode)
                    whole = result.labels > 0
                    row["segment"][mode] = {
                        "wt_dice": round(float(dice_per_channel(whole[None], tumour[None])[0]), 4),
                        "wt_outside_brain_ml": round(float((whole & ~brain).sum()) * PIXEL_MM**2 * row["slice_mm"] / 1000, 1),
                        "wt_ml": round(float(whole.sum()) * PIXEL_MM**2 * row["slice_mm"] / 1000, 1),
                    }
        rows.append(row)
        print(json.dumps({k: v for k, v in row.items() if k != "notes"}), flush=True)
        write(args, argv, rows, PIXEL_MM, commit)  # after every patient: a long run cut short keeps what it measured
    print(json.dumps(write(args, argv, rows, PIXEL_MM, commit)))
    return 0


def write(args, argv, rows, pixel_mm, commit) -> dict:
    measured = [r for r in rows if r["stripped"] and r["tumour_voxels"]]
    fractions = [r["tumour_inside"] / r["tumour_voxels"] for r in measured]
    summary = {
        "patients": len(rows),
        "foreground_ml_min": min((r["foreground_ml"] for r in rows), default=None),
        "seen_as_unstripped": sum(r["stripped"] for r in rows),
        "with_tumour": len(measured),
        "tumour_voxels_inside_pooled": round(sum(r["tumour_inside"] for r in measured) / max(1, sum(r["tumour_voxels"] for r in measured)), 4),
        "tumour_inside_per_patient_mean": round(float(np.mean(fractions)), 4) if fractions else None,
        "tumour_inside_per_patient_min": round(float(np.min(fractions)), 4) if fractions else None,
        "patients_below_0.99": sum(f < 0.99 for f in fractions),
        "patients_below_0.95": sum(f < 0.95 for f in fractions),
    }
    out = {"machine": common.machine_description(), "commit": commit,
           "command": common.command_line("skull_strip", argv),
           "assumed_voxel_mm": {"in_plane": pixel_mm, "slice": "160 mm / number of slices"},
           "summary": summary, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    return summary



def brats_margin(args, argv) -> int:
    """Foreground volume on the model grid of every BraTS case folder below ``args.brats``, as strip_skull sees it."""
    from napari_brainseg.engine.foreground import zero_background
    from napari_brainseg.engine.model_grid import to_model_grid
    from napari_brainseg.engine.registry import BRATS_MODEL, get_spec
    from napari_brainseg.engine.skull_strip import MAX_BRAIN_ML, foreground_ml
    from napari_brainseg.io.brats import find_case_files, read_brats_case

    spec, rows, commit = get_spec(BRATS_MODEL), [], common.git_commit()
    folders = sorted({p.parent for root in args.brats for p in root.rglob("*.nii*")})
    for folder in folders:
        files = find_case_files(folder)
        if files is None or len(files.images) < 4:
            continue  # not a case folder, or one the 3D model cannot run on
        case = read_brats_case(folder)
        on_grid, _ = to_model_grid(case.model_input(), spec, affine=case.affine)
        cleaned, foreground = zero_background(on_grid)
        rows.append({"case": case.case_id, "foreground_ml": round(foreground_ml(cleaned, foreground.mask, spec.spacing_mm), 1),
                     "exact_zero_background": foreground.exact_zero_background})
        print(json.dumps(rows[-1]), flush=True)
    largest = max(rows, key=lambda r: r["foreground_ml"])
    out = {"machine": common.machine_description(), "commit": commit,
           "command": common.command_line("skull_strip", argv),
           "threshold_ml": MAX_BRAIN_ML, "cases": len(rows), "largest": largest,
           "would_be_stripped": [r["case"] for r in rows if r["foreground_ml"] > MAX_BRAIN_ML], "rows": rows}
    out_path = args.out or common.RESULTS / "skull_strip_brats.json"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("cases", "largest", "would_be_stripped")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
