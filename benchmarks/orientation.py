"""Does bringing a case to the model's orientation help? BraTS-Africa (stored RAS) with the shipped model.

    python -m benchmarks.orientation [--root DIR] [--limit N] [--out JSON]

Every labelled case under ``--root`` (default /work/data/brats/BraTS2023-SSA) is segmented twice with
``segment`` on the case's arrays: "as stored" (what main did before the model grid was introduced:
the arrays as they lie on disk) and "model grid" (``segment_case``: reoriented to the model's
orientation and spacing, then mapped back). Dice TC/WT/ET against the case's own labels.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from . import common

REGIONS = ("TC", "WT", "ET")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=Path("/work/data/brats/BraTS2023-SSA"))
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--out", type=Path, default=common.RESULTS / "orientation.json")
    args = parser.parse_args(argv)

    from napari_brainseg.conventions import brats_labels_to_regions
    from napari_brainseg.engine.metrics import dice_per_channel
    from napari_brainseg.engine.segment import segment
    from napari_brainseg.io.brats import read_brats_case

    folders = sorted(p for p in args.root.iterdir() if p.is_dir())
    if args.limit:
        folders = folders[: args.limit]
    rows = []
    for folder in folders:
        case = read_brats_case(folder, require_all=True)
        if case.seg is None:
            continue
        truth = brats_labels_to_regions(case.seg, case.label_convention)
        row = {"case": case.case_id, "axcodes": "".join(__import__("nibabel").aff2axcodes(case.affine))}
        for mode in ("as_stored", "model_grid"):
            started = time.perf_counter()
            if mode == "as_stored":
                result = segment(case.stacked(), "brats-unet3d", convention=case.label_convention, device="cpu")
            else:
                result = segment(case, "brats-unet3d", device="cpu")
            pred = brats_labels_to_regions(result.labels, case.label_convention)
            row[mode] = dict(zip(REGIONS, dice_per_channel(pred, truth)))
            row[mode + "_s"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    means = {mode: {r: float(np.mean([row[mode][r] for row in rows])) for r in REGIONS} for mode in ("as_stored", "model_grid")}
    out = {"machine": common.machine_description(), "commit": common.git_commit(), "root": str(args.root),
           "cases": rows, "mean": means}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(means), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
