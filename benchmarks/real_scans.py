"""The issue-11 variants of real BraTS cases (thick slices, 0.8 mm, PSR axis order, noisy background,
modalities on different grids), each segmented through ``segment_case`` and scored against the
truth moved with it; the original prediction moved onto the same grid is the reference.

    python -m benchmarks.real_scans --cases DIR [DIR ...] [--crop] [--variants NAME ...] [--out JSON]

The same variants as tests/test_real_scans.py (built by tests/scan_variants.py), on more cases.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from . import common

REGIONS = ("TC", "WT", "ET")


def variant_makers(variants) -> dict:
    return {
        "1x1x3 mm": lambda s, d: variants.resample_case(s, d, (1.0, 1.0, 3.0)),
        "0.8 mm": lambda s, d: variants.resample_case(s, d, (0.8, 0.8, 0.8)),
        "PSR axis order": lambda s, d: variants.reorder_case(s, d, "PSR"),
        "noisy background": variants.noisy_background_case,
        "different grids": variants.different_grids_case,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=Path, nargs="+", required=True)
    parser.add_argument("--crop", action="store_true", help="cut each case to its brain first (as the tests do)")
    parser.add_argument("--variants", nargs="+", metavar="NAME", help="only these variants (default: all), e.g. 'noisy background'")
    parser.add_argument("--out", type=Path, default=common.RESULTS / "real_scans.json")
    args = parser.parse_args(argv)

    from napari_brainseg.conventions import brats_labels_to_regions
    from napari_brainseg.engine.metrics import dice_per_channel
    from napari_brainseg.engine.segment import segment_case
    from tests import scan_variants as variants  # the variants are built by the tests' own helper
    from tests.test_real_scans import _on_grid_of

    def dice(labels, truth, convention):
        return dict(zip(REGIONS, dice_per_channel(*(brats_labels_to_regions(a, convention) for a in (labels, truth)))))

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for source in args.cases:
            if args.crop:
                source = variants.crop_case(source, Path(tmp) / "crop" / source.name)
            result, case = segment_case(source, device="cpu")
            original = dice(result.labels, case.seg, case.label_convention)
            makers = variant_makers(variants)
            for name, make in ((n, makers[n]) for n in (args.variants or makers)):
                started = time.perf_counter()
                folder = make(source, Path(tmp) / name.replace(" ", "_") / source.name)
                result_v, case_v = segment_case(folder, device="cpu")
                row = {
                    "case": case.case_id, "variant": name, "original": original,
                    "reference": dice(_on_grid_of(result.labels, case, case_v), case_v.seg, case.label_convention),
                    "variant_dice": dice(result_v.labels, case_v.seg, case.label_convention),
                    "notes": result_v.messages, "seconds": round(time.perf_counter() - started, 1),
                }
                row["mean_change"] = float(np.mean([row["variant_dice"][r] - row["reference"][r] for r in REGIONS]))
                rows.append(row)
                print(json.dumps({k: row[k] for k in ("case", "variant", "reference", "variant_dice", "mean_change")}), flush=True)
    out = {"machine": common.machine_description(), "commit": common.git_commit(), "crop": args.crop, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
