"""Post-processing choice: validation Dice (and BraTS HD95) of the shipped models per cleanup rule.

    python -m benchmarks.postprocess --brats-root DIR [--fractions none,0.05,0.1,0.2,1]

Segments each validation case once through the shipped path (``segment_case`` with
``return_probabilities``), then applies ``transforms.postprocess`` with each
``min_component_fraction`` to the same probabilities: ``none`` keeps every component above the
threshold, ``1`` keeps only the largest, 0.1 is what ships. Writes benchmarks/results/postprocess.json.
The validation cases picked the best epoch, so small differences between rules are within noise.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

from napari_brainseg.conventions import brats_labels_to_regions
from napari_brainseg.engine.metrics import dice_per_channel, hd95_per_channel, overlap_metrics
from napari_brainseg.engine.preprocess import postprocess
from napari_brainseg.engine.registry import get_spec
from napari_brainseg.engine.segment import segment_case

from .common import (
    RESULTS,
    add_common_args,
    brats_val_folders,
    command_line,
    lgg_val_folders,
    machine_description,
    quick_cases,
    write_json,
)


def _rules(text: str) -> dict[str, float | None]:
    return {r: (None if r == "none" else float(r)) for r in text.split(",")}


def score_lgg(folder: Path, rules: dict) -> list[dict]:
    result, case = segment_case(folder, device="cpu", return_probabilities=True)
    rows = []
    for rule, fraction in rules.items():
        spec = dataclasses.replace(get_spec(result.model), min_component_fraction=fraction)
        mask = postprocess(result.probabilities, spec)[0]  # the slice stack is one volume, as in training
        rows.append({"model": result.model, "case": case.patient_id, "rule": rule,
                     "dice": overlap_metrics(mask, case.mask > 0)["dice"]})
    return rows


def score_brats(folder: Path, rules: dict) -> list[dict]:
    result, case = segment_case(folder, device="cpu", return_probabilities=True)
    truth = brats_labels_to_regions(case.seg, case.label_convention)
    rows = []
    for rule, fraction in rules.items():
        spec = dataclasses.replace(get_spec(result.model), min_component_fraction=fraction)
        regions = postprocess(result.probabilities, spec)
        dice = dice_per_channel(regions, truth)
        hd95 = hd95_per_channel(regions, truth, spacing=case.spacing)
        row = {"model": result.model, "case": case.case_id, "rule": rule}
        for name, d, h in zip(spec.out_channels, dice, hd95):
            row.update({f"dice_{name}": d, f"hd95_{name}": h})
        rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_args(parser)
    parser.add_argument("--fractions", default="none,0.05,0.1,0.2,1")
    args = parser.parse_args(argv)
    rules = _rules(args.fractions)
    tmp = tempfile.TemporaryDirectory(prefix="brainseg-postprocess-")
    if args.quick:
        quick = quick_cases(Path(tmp.name))
        lgg, brats = [quick["lgg"]], [quick["brats"]]
    else:
        lgg = lgg_val_folders(args.data)
        brats, missing = brats_val_folders(args.data, args.brats_root, Path(tmp.name))
        if missing:
            print(f"error: BraTS validation cases not found: {', '.join(map(str, missing))}", file=sys.stderr)
            return 1
    rows = [r for f in lgg for r in score_lgg(f, rules)] + [r for f in brats for r in score_brats(f, rules)]
    means = {}
    for model in dict.fromkeys(r["model"] for r in rows):
        for rule in rules:
            sel = [r for r in rows if r["model"] == model and r["rule"] == rule]
            keys = [k for k in sel[0] if k not in ("model", "case", "rule")]
            means.setdefault(model, {})[rule] = {k: float(np.mean([r[k] for r in sel])) for k in keys} | {"cases": len(sel)}
    for model, by_rule in means.items():
        keys = [k for k in next(iter(by_rule.values())) if k != "cases"]
        print(f"\n{model}\n| rule | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
        for rule, m in by_rule.items():
            print(f"| {rule} | " + " | ".join(f"{m[k]:.3f}" for k in keys) + " |")
    out = args.out or (RESULTS / ("quick" if args.quick else "") / "postprocess.json")
    write_json(out, {"command": command_line("postprocess", argv),
                     "quick": args.quick, "machine": machine_description(), "shipped_fraction": {
                         m: get_spec(m).min_component_fraction for m in means}, "mean": means, "per_case": rows})
    tmp.cleanup()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
