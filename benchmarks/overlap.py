"""Sliding-window overlap for brats-unet3d: validation Dice and inference time per overlap.

    python -m benchmarks.overlap --brats-root DIR [--overlaps 0.25,0.5]

Runs the shipped preprocessing, forward pass (Gaussian blending) and post-processing on each BraTS
validation case once per overlap, and writes benchmarks/results/overlap.json, so the overlap used by
``ModelSpec.sw_overlap`` (engine.registry) is a measured choice rather than a default.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_brainseg.conventions import brats_labels_to_regions
from napari_brainseg.engine.metrics import dice_per_channel
from napari_brainseg.engine.preprocess import postprocess, preprocess_brats
from napari_brainseg.engine.registry import get_spec, load_model
from napari_brainseg.engine.window import predict_volume
from napari_brainseg.io.cases import read_case

from .common import (
    RESULTS,
    add_common_args,
    brats_val_folders,
    command_line,
    machine_description,
    quick_cases,
    write_json,
)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--overlaps", default="0.25,0.5")
    args = parser.parse_args(argv)
    overlaps = [float(o) for o in args.overlaps.split(",")]
    tmp = tempfile.TemporaryDirectory(prefix="brainseg-overlap-")  # phantoms / unpacked cases, removed at the end
    if args.quick:
        folders = [quick_cases(Path(tmp.name))["brats"]]
    else:
        folders, missing = brats_val_folders(args.data, args.brats_root, Path(tmp.name))
        if missing:
            print(f"error: BraTS validation cases not found: {', '.join(map(str, missing))}", file=sys.stderr)
            return 1
    spec = get_spec("brats-unet3d")
    net = load_model(spec.name, "cpu")
    rows = []
    for folder in folders:
        case = read_case(folder)
        x, box = preprocess_brats(case.stacked())
        truth = brats_labels_to_regions(case.seg, case.label_convention)
        truth = truth[(slice(None),) + tuple(slice(s, e) for s, e in zip(*box))]
        for overlap in overlaps:
            t0 = time.perf_counter()
            prob = predict_volume(net, x, torch.device("cpu"), spec.patch_size, overlap=overlap)
            seconds = time.perf_counter() - t0
            dice = dice_per_channel(postprocess(prob, spec), truth)
            rows.append({"case": folder.name, "overlap": overlap, "infer_s": seconds,
                         **{f"dice_{r}": d for r, d in zip(spec.out_channels, dice)}})
            print(rows[-1], flush=True)
    summary = {}
    for overlap in overlaps:
        sel = [r for r in rows if r["overlap"] == overlap]
        summary[str(overlap)] = {k: float(np.mean([r[k] for r in sel])) for k in sel[0] if k not in ("case", "overlap")}
    print("| overlap | infer s (mean) | Dice TC | Dice WT | Dice ET |\n|---|---|---|---|---|")
    for overlap, s in summary.items():
        print(f"| {overlap} | {s['infer_s']:.2f} | {s['dice_TC']:.3f} | {s['dice_WT']:.3f} | {s['dice_ET']:.3f} |")
    out = args.out or (RESULTS / ("quick" if args.quick else "") / "overlap.json")
    write_json(out, {"command": command_line("overlap", argv),
                     "quick": args.quick, "machine": machine_description(), "per_case": rows, "mean": summary})
    print(f"wrote {out}")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
