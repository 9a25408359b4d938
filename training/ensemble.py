"""Ship a model's cross-validation folds as one fold ensemble, with a model card built from the CV.

    python -m training.ensemble --config training/configs/lgg-unet2d-cv.json \\
        --reference $BRAINSEG_DATA/lgg/kaggle_3m/TCGA_CS_6290_20000917

Needs every fold finished (``training/cv/<config>/fold<k>.{pt,json}``) and ``training.crossval``
run over all of them (``summary.json``). Writes ``<weights dir>/<model>.pt``: the folds' float16
state dicts in one file, keys prefixed with the member index (``registry.ModelSpec.members``), and
the card ``<model>.json``: members, out-of-fold cross-validation (the accuracy to quote), the
post-processing chosen on it, and ``reference_outputs``, the shipped ensemble's Dice on the
``--reference`` cases. Those cases were in the training data of four of the five members, so the
reference outputs are a check that the package reproduces the shipped model (the tests compare with
them), never an accuracy.

The post-processing is written once, in the registry; this refuses to ship when the registry's
threshold or component cleanup is not the one cross-validation chose.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from napari_brainseg.engine.registry import clear_cache, get_spec, sha256_of

from .export import INTENDED_USE, TERMS, postprocessing_text
from .folds import N_FOLDS
from .train import HERE

# post-processing settings cross-validation chooses that live in the registry
REGISTRY_SETTINGS = ("threshold", "min_component_fraction", "enhancing_min_voxels")


def members_state(cv_dir: Path, records: dict[int, dict]) -> dict:
    """The folds' state dicts as one, each key prefixed with its member index (fold order)."""
    state = {}
    for index, fold in enumerate(sorted(records)):
        path = cv_dir / records[fold]["weights"]
        if sha256_of(path) != records[fold]["sha256"]:
            raise SystemExit(f"error: {path} does not match the sha256 in fold{fold}.json")
        for key, value in torch.load(path, map_location="cpu", weights_only=True).items():
            state[f"{index}.{key}"] = value
    return state


def registry_mismatch(spec, to_ship: dict) -> dict:
    return {k: (getattr(spec, k), v) for k, v in to_ship.items()
            if k in REGISTRY_SETTINGS and getattr(spec, k) != v}


def reference_outputs(model: str, folders: list[Path]) -> list[dict]:
    """The shipped ensemble's Dice on each reference case (default settings: no TTA, all members)."""
    from napari_brainseg.engine.metrics import region_dice
    from napari_brainseg.engine.segment import segment_case

    rows = []
    for folder in folders:
        result, case = segment_case(folder, model)
        truth = case.seg if case.kind == "brats" else case.mask
        scores = region_dice(result.labels, result.label_convention, truth, case.label_convention)
        keys = {"tumour": "dice"} if case.kind == "lgg" else {r: f"dice_{r}" for r in scores}
        rows.append({"case": case.name, **{keys[r]: float(v) for r, v in scores.items()}})
        print(f"reference {case.name}: {rows[-1]}", flush=True)
    return rows


def card_of(spec, cfg, config_path: Path, records: dict, summary: dict, digest: str, references: list[dict]) -> dict:
    return {
        "name": spec.name,
        "title": spec.title,
        "architecture": {"class": "monai.networks.nets.UNet", "spatial_dims": spec.spatial_dims,
                         "in_channels": list(spec.in_channels), "out_channels": list(spec.out_channels),
                         **{k: list(v) if isinstance(v, tuple) else v for k, v in spec.network.items()},
                         "ensemble": f"{len(records)} fold models, mean of sigmoid probabilities "
                                     "(napari_brainseg.engine.ensemble); the fast setting runs member 0 alone"},
        "weights": {"file": spec.weights_path.name, "dtype": "float16", "sha256": digest,
                    "layout": "one state dict; key '<member>.<parameter>'"},
        "sha256": digest,
        "members": [{"member": i, "fold": fold, "fold_weights_sha256": records[fold]["sha256"],
                     "train_cases": len(records[fold]["train_cases"]),
                     "held_out_cases": records[fold]["held_out_cases"],
                     "out_of_fold_mean": records[fold]["out_of_fold"]["mean"]}
                    for i, fold in enumerate(sorted(records))],
        "preprocessing": "z-score per channel over non-zero (brain) voxels; BraTS: cropped to the brain bounding box",
        "postprocessing": postprocessing_text(spec),
        "data": {"dataset": cfg["dataset"], "folds_file": "training/folds.json",
                 "cases": sum(len(r["held_out_cases"]) for r in records.values()), "terms": TERMS[cfg["dataset"]]},
        "training": {"command": f"python -m training.train --config {config_path} --fold K  (K = 0..{N_FOLDS - 1})",
                     "config": cfg, "per_fold": {fold: r["training"] for fold, r in sorted(records.items())},
                     "ensemble_command": f"python -m training.ensemble --config {config_path}"},
        "cross_validation": {
            "definition": summary["definition"],
            "nested": summary["nested"], "plain": summary["plain"],
            "per_fold_nested_mean": summary["per_fold_nested_mean"],
            "per_group_nested": summary["per_group_nested"],
            "chosen_per_fold": summary["chosen_per_fold"], "to_ship": summary["to_ship"],
            "per_case": summary["per_case"], "command": summary["command"],
            "what_it_measures": "each case scored by the one member that never saw it (single-model accuracy); "
                                "the ensemble of all members has no out-of-fold estimate, since every case "
                                f"trained {len(records) - 1} of its members",
        },
        "reference_outputs": {
            "what": "the shipped ensemble (all members, no TTA, the registry's post-processing) on these cases; "
                    f"each trained {len(records) - 1} of the {len(records)} members, so this is a reproduction "
                    "check for the tests, not an accuracy",
            "per_case": references,
        },
        "intended_use": INTENDED_USE,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--reference", type=Path, action="append", default=[],
                        help="a case folder whose Dice the card records for the tests (repeatable)")
    args = parser.parse_args(argv)
    cfg = json.loads(args.config.read_text())
    name = args.config.stem
    spec = get_spec(cfg["model"])
    cv_dir = HERE / "cv" / name
    records = {int(p.stem[4:]): json.loads(p.read_text()) for p in sorted(cv_dir.glob("fold[0-9].json"))}
    if sorted(records) != list(range(N_FOLDS)):
        print(f"error: {cv_dir} has folds {sorted(records)}; all {N_FOLDS} must be finished", file=sys.stderr)
        return 1
    summary = json.loads((cv_dir / "summary.json").read_text())
    if summary["folds_finished"] != list(range(N_FOLDS)):
        print("error: summary.json is not over all folds; run python -m training.crossval first", file=sys.stderr)
        return 1
    if spec.members != N_FOLDS:
        print(f"error: the registry says {spec.name} has {spec.members} members, not {N_FOLDS}", file=sys.stderr)
        return 1
    mismatch = registry_mismatch(spec, summary["to_ship"])
    if mismatch:
        print(f"error: the registry's post-processing differs from cross-validation's choice (registry, chosen): "
              f"{mismatch}; update engine/registry.py first", file=sys.stderr)
        return 1
    out = spec.weights_path
    tmp = out.with_suffix(".pt.tmp")
    torch.save(members_state(cv_dir, records), tmp)
    os.replace(tmp, out)
    digest = sha256_of(out)
    card_path = spec.card_path
    # the reference outputs are computed by the package itself, so the new weights need a card first
    card = card_of(spec, cfg, args.config, records, summary, digest, [])
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    clear_cache()
    card["reference_outputs"]["per_case"] = reference_outputs(spec.name, args.reference)
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {len(records)} members) and {card_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
