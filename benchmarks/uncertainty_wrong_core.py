"""Does the real network's member disagreement flag a tumour core it puts in the wrong hemisphere?

    PYTHONPATH=src python -m benchmarks.uncertainty_wrong_core [--cases 10]

An input edit through the real forward pass: in the model's input (the preprocessed cache) the
contrast-enhanced T1, where the core shows, is mirrored left-right across the crop (the brain's
bounding box, so about its midline); FLAIR, T1 and T2 stay, so the enhancement now sits in the
healthy hemisphere, away from the oedema. The cases are those of ``uncertainty_brats_unseen.json`` (the
shipped brats-unet3d, cases it never saw) whose core it found (TC Dice >= 0.8), chosen before this was
run; the unaltered rows come from that file (the same code). Recorded per case, unaltered vs edited:
confidence (overall and TC), TC Dice against the true core, where the predicted core went.
Writes benchmarks/results/uncertainty_wrong_core.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from .common import RESULTS, command_line, machine_description, write_json
from .uncertainty_brats import brats_case_scores, lr_axis, network_on

KEEP = ("confidence", "confidence_TC", "dice_TC", "dice_WT", "pred_voxels_TC", "core_centroid_mm", "core_other_hemisphere")


def mirrored_channel(image: np.ndarray, channel: int, axis: int) -> np.ndarray:
    """(C, z, y, x) with one channel flipped along spatial axis ``axis`` (0-2), the others as they were."""
    edited = image.copy()
    edited[channel] = np.flip(image[channel], axis)
    return edited


def main(argv=None) -> int:
    import torch

    from napari_brainseg.engine.registry import get_spec, load_model
    from training.data import load_cached
    from training.train import DEFAULTS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", type=int, default=10, help="at most this many cases (best TC Dice first)")
    parser.add_argument("--cache", type=Path, default=Path("/work/cache/brats"))
    parser.add_argument("--unaltered", type=Path, default=RESULTS / "uncertainty_brats_unseen.json")
    parser.add_argument("--output", type=Path, default=RESULTS / "uncertainty_wrong_core.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    spec = get_spec("brats-unet3d")
    cfg = {**DEFAULTS, **spec.card()["training"]["config"], "sw_overlap": spec.sw_overlap, "sw_batch_size": spec.batch_size}
    predict = [network_on(load_model(spec.name, "cpu"), spec, cfg, torch.device("cpu"))]
    before = sorted((r for r in json.loads(args.unaltered.read_text())["per_case"] if r["dice_TC"] >= 0.8),
                    key=lambda r: -r["dice_TC"])[: args.cases]
    rows = []
    for unaltered in before:
        started = time.perf_counter()
        case = load_cached(args.cache / f"{unaltered['case']}.npz", "brats")
        edited = {**case, "image": mirrored_channel(case["image"], spec.in_channels.index("t1ce"), lr_axis(spec.orientation))}
        after = brats_case_scores(predict, edited, spec)
        rows.append({"case": unaltered["case"], "dataset": unaltered["dataset"],
                     "unaltered": {k: unaltered[k] for k in KEEP}, "t1ce_mirrored": {k: after[k] for k in KEEP}})
        print(f"{unaltered['case']}: confidence {unaltered['confidence']:.3f} -> {after['confidence']:.3f}, TC Dice "
              f"{unaltered['dice_TC']:.3f} -> {after['dice_TC']:.3f}, core {after['core_centroid_mm']} mm, other "
              f"hemisphere {after['core_other_hemisphere']} ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    drops = [r["unaltered"]["confidence"] - r["t1ce_mirrored"]["confidence"] for r in rows]
    write_json(args.output, {
        "what": "Shipped brats-unet3d on unseen cases it segmented well (TC Dice >= 0.8): the T1ce channel of its input "
                "mirrored left-right (enhancement in the healthy hemisphere), the rest unaltered; confidence and the "
                "predicted core before and after, members = identity + one flip per axis.",
        "command": command_line("uncertainty_wrong_core", None),
        "n_cases": len(rows),
        "median_confidence_drop": float(np.median(drops)) if drops else None,
        "cases_core_moved_to_other_hemisphere": sum(bool(r["t1ce_mirrored"]["core_other_hemisphere"]) for r in rows),
        "per_case": rows,
        "machine": machine_description(),
    })
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
