"""Ship a model's cross-validation folds as one fold ensemble, with a model card built from the CV.

    python -m training.ensemble --config training/configs/lgg-unet2d-cv.json \\
        --reference $BRAINSEG_DATA/lgg/kaggle_3m/TCGA_CS_6290_20000917

Needs every fold finished (``training/cv/<config>/fold<k>.{pt,json}``) and ``training.crossval``
run over all of them (``summary.json``). An ensemble config (``ensemble_of``, ``recipes``) ships
every named recipe's five folds, recipe by recipe, with crossval's summary of their mean. Writes ``<weights dir>/<model>.pt``: the folds' float16
state dicts in one file, keys prefixed with the member index (``registry.ModelSpec.members``), and
the card ``<model>.json``: members, out-of-fold cross-validation (the accuracy to quote), the
post-processing chosen on it, and ``reference_outputs``, the shipped ensemble's Dice on the
``--reference`` cases. Those cases were in the training data of four of the five members, so the
reference outputs are a check that the package reproduces the shipped model (the tests compare with
them), never an accuracy.

The registry is the one description of a model: this refuses to ship while it differs from what the
folds were trained with (network, patch size, window overlap) or from cross-validation's choices
(TTA, threshold, cleanup, enhancing-tumour rule), and lists the fields to set (``candidate``).

``--interim`` ships the folds that are finished (two or more) while the others still train, with
crossval's partial summary over them (``--summary``); the card says which folds and how many cases
its cross-validation covers, and the full ensemble replaces it once every fold is done.

``--dry-run DIR`` tries the path before all folds exist: the folds that are finished (``--repeat``:
repeated up to five members), a partial summary (``--summary``, from ``crossval --out``), and the spec
the registry will need, written to DIR (never the package) and run through ``load_model`` and
``segment`` on the ``--reference`` cases.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from napari_brainseg.engine import registry

from .candidate import ensemble_spec, installed, registry_changes, save_spec
from .export import INTENDED_USE, TERMS, postprocessing_text
from .folds import N_FOLDS
from .recipes import combined_records, recipe_config, recipes
from .train import HERE

# the cross-validation pool goes beyond the round-1 model's data (training/folds.json)
POOL_TERMS = {"brats": " The pool adds BraTS 2019/2021 cases (BraTS 2021: Baid et al., arXiv:2107.02314) and "
                       "BraTS-Africa 2023 cases (Adewole et al., arXiv:2305.19369), under the same challenge terms."}


def members_state(members: list[tuple[Path, dict]]) -> dict:
    """The folds' state dicts as one, member i holding ``members[i]`` (folds folder, fold record),
    keys prefixed "<i>."."""
    state, checked = {}, set()
    for index, (cv_dir, record) in enumerate(members):
        path = cv_dir / record["weights"]
        if path not in checked and registry.sha256_of(path) != record["sha256"]:
            raise SystemExit(f"error: {path} does not match the sha256 in fold{record['fold']}.json")
        checked.add(path)
        for key, value in torch.load(path, map_location="cpu", weights_only=True).items():
            state[f"{index}.{key}"] = value
    return state


def reference_outputs(model: str, folders: list[Path]) -> list[dict]:
    """The shipped ensemble's Dice on each reference case, with the model's default settings."""
    from napari_brainseg.engine.metrics import region_dice
    from napari_brainseg.engine.segment import segment_case

    rows = []
    for folder in folders:
        started = time.perf_counter()
        result, case = segment_case(folder, model)
        seconds = time.perf_counter() - started
        truth = case.seg if case.kind == "brats" else case.mask
        scores = region_dice(result.labels, result.label_convention, truth, case.label_convention)
        keys = {"tumour": "dice"} if case.kind == "lgg" else {r: f"dice_{r}" for r in scores}
        rows.append({"case": case.name, **{keys[r]: float(v) for r, v in scores.items()}})
        print(f"reference {case.name} ({result.method}, {seconds:.1f} s): {rows[-1]}", flush=True)
    return rows


def card_of(spec, cfg, config_path: Path, sources: list[tuple[str, dict, dict]], order: list[int], summary: dict,
            digest: str) -> dict:
    """``spec``: the registry's spec of the shipped ensemble; ``sources``: (recipe name, training config,
    fold records) whose folds ``order`` are its members, recipe by recipe (member 0: the first's ``order[0]``)."""
    cv_keys = ("definition", "partial_note", "nested", "plain", "per_fold_nested_mean", "per_fold_nested",
               "per_fold_plain", "per_group_nested", "per_group_plain", "chosen_per_fold", "to_ship", "per_case",
               "command")
    tta = "flip TTA (identity and one flip per spatial axis)" if spec.tta else "no TTA"
    records = sources[0][2]
    members = [(name, recipe_cfg, recs[fold], fold) for name, recipe_cfg, recs in sources for fold in order]
    several = len(sources) > 1
    what = (f"{len(order)} fold models of each of {len(sources)} recipes ({', '.join(n for n, _, _ in sources)})"
            if several else f"{len(order)} fold models")
    return {
        "name": spec.name,
        "title": spec.title,
        "architecture": {"class": "monai.networks.nets.UNet", "spatial_dims": spec.spatial_dims,
                         "in_channels": list(spec.in_channels), "out_channels": list(spec.out_channels),
                         **{k: list(v) if isinstance(v, tuple) else v for k, v in spec.network.items()},
                         **({"member_contexts": list(spec.member_contexts),
                             "neighbouring_slices": "member i also sees member_contexts[i] slices either side "
                                                    "as extra input channels (2.5D)"} if spec.member_contexts else {}),
                         "ensemble": f"{what}, mean of sigmoid probabilities "
                                     "(napari_brainseg.engine.ensemble); the fast setting runs member 0 alone"},
        "weights": {"file": spec.weights_path.name, "dtype": "float16", "sha256": digest,
                    "layout": "one state dict; key '<member>.<parameter>'"},
        "sha256": digest,
        "members": [{"member": i, **({"recipe": name, "context": int(recipe_cfg.get("context", 0))} if several else {}),
                     "fold": fold, "fold_weights_sha256": record["sha256"],
                     "train_cases": len(record["train_cases"]), "held_out_cases": record["held_out_cases"],
                     "out_of_fold_mean": record["out_of_fold"]["mean"]}
                    for i, (name, recipe_cfg, record, fold) in enumerate(members)],
        "inference": {"default": f"all {len(members)} members, {tta}", "fast": "member 0, no TTA",
                      **({"roi_size": list(spec.patch_size), "sw_overlap": spec.sw_overlap, "blending": "gaussian"}
                         if spec.spatial_dims == 3 else {})},
        "preprocessing": "z-score per channel over non-zero (brain) voxels; BraTS: cropped to the brain bounding box",
        "postprocessing": postprocessing_text(spec),
        "data": {"dataset": cfg["dataset"], "folds_file": "training/folds.json",
                 "cases": sum(len(r["held_out_cases"]) for r in records.values()),
                 "terms": TERMS[cfg["dataset"]] + POOL_TERMS.get(cfg["dataset"], "")},
        "training": {**({"recipes": {name: {"command": f"python -m training.train --config training/configs/{name}.json "
                                                      f"--fold K  (K = 0..{N_FOLDS - 1})",
                                            "config": recipe_cfg,
                                            "per_fold": {fold: r["training"] for fold, r in sorted(recs.items())}}
                                     for name, recipe_cfg, recs in sources}} if several else
                        {"command": f"python -m training.train --config {config_path} --fold K  (K = 0..{N_FOLDS - 1})",
                         "config": cfg, "per_fold": {fold: r["training"] for fold, r in sorted(records.items())}}),
                     "ensemble_command": f"python -m training.ensemble --config {config_path}"},
        "cross_validation": {
            **{k: summary[k] for k in cv_keys if k in summary},
            "what_it_measures": ("each case scored by the networks that never saw it: the fold model of each recipe "
                                 "whose fold held it out, their probabilities averaged (one network per recipe); "
                                 if several else "each case scored by the one member that never saw it (single-model "
                                 "accuracy); ") +
                                "the ensemble of all members has no out-of-fold estimate, since every case "
                                f"trained {len(records) - 1} of each recipe's folds (all of them while folds are missing)",
        },
        "reference_outputs": {
            "what": f"the shipped ensemble (all members, {tta}, the registry's post-processing) on these cases; "
                    f"each trained at least {len(records) - 1} of the {len(records)} folds, so this is a reproduction "
                    "check for the tests, not an accuracy",
            "per_case": [],
        },
        "intended_use": INTENDED_USE,
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--reference", type=Path, action="append", default=[],
                        help="a case folder whose Dice the card records for the tests (repeatable)")
    parser.add_argument("--cv-dir", type=Path, help="the folds' records and weights (default training/cv/<config>)")
    parser.add_argument("--summary", type=Path, help="crossval's summary (default <cv-dir>/summary.json)")
    parser.add_argument("--dry-run", type=Path, metavar="DIR",
                        help="write the ensemble and card to DIR instead of the package, from the folds there are")
    parser.add_argument("--repeat", action="store_true", help="--dry-run: repeat the finished folds up to "
                                                              f"{N_FOLDS} members (timing as shipped)")
    parser.add_argument("--interim", action="store_true",
                        help="ship the finished folds (at least 2) and their partial cross-validation while the others train")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = json.loads(args.config.read_text())
    name = args.config.stem
    spec = registry.get_spec(cfg["model"])
    names = recipes(cfg, args.config)  # an ensemble config: several training recipes' folds
    if len(names) > 1 and args.cv_dir:
        print("error: --cv-dir points at one recipe's folds; an ensemble config reads each recipe's own", file=sys.stderr)
        return 1
    cv_dir = args.cv_dir or HERE / "cv" / name
    cv_dirs = [args.cv_dir or HERE / "cv" / n for n in names]
    per_recipe = combined_records(names, cv_dirs)
    records = per_recipe[0]  # the folds and cases, the same for every recipe
    summary_path = args.summary or cv_dir / "summary.json"
    dry = args.dry_run is not None
    if not records or not summary_path.is_file():
        print(f"error: need finished folds in {cv_dir} and crossval's summary {summary_path}", file=sys.stderr)
        return 1
    summary = json.loads(summary_path.read_text())
    if summary["folds_finished"] != sorted(records):
        print(f"error: {summary_path} is over folds {summary['folds_finished']}, {cv_dir} has {sorted(records)}; "
              "rerun python -m training.crossval", file=sys.stderr)
        return 1
    if summary.get("ensemble_of") != (names if len(names) > 1 else None):
        print(f"error: {summary_path} scores {summary.get('ensemble_of')}, not {names}; rerun python -m training.crossval "
              f"--config {args.config}", file=sys.stderr)
        return 1
    complete = sorted(records) == list(range(N_FOLDS)) and not summary.get("partial")
    if args.interim and (args.repeat or len(records) < 2):
        print(f"error: --interim ships the finished folds as they are (at least 2; {cv_dir} has {sorted(records)}), "
              "never repeated", file=sys.stderr)
        return 1
    if not dry and not args.interim and (not complete or args.repeat):
        print(f"error: {cv_dir} has folds {sorted(records)}; all {N_FOLDS} must be finished and cross-validated "
              "to ship (--interim ships the finished ones meanwhile; --dry-run DIR tries it)", file=sys.stderr)
        return 1
    order = [sorted(records)[i % len(records)] for i in range(N_FOLDS if args.repeat else len(records))]
    if len(names) > 1 and (dry or args.interim or not complete):
        print("error: an ensemble of recipes ships their five finished folds each (no --dry-run, --interim)",
              file=sys.stderr)
        return 1
    sources = [(n, recipe_config(n) if len(names) > 1 else cfg, recs) for n, recs in zip(names, per_recipe)]
    wanted = ensemble_spec(spec, [(c, r) for _, c, r in sources], summary["to_ship"], len(order))
    changes = registry_changes(spec, wanted)
    if changes:
        listing = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in changes.items())
        if not dry:
            print(f"error: engine/registry.py must describe the ensemble first ({spec.name}: {listing})", file=sys.stderr)
            return 1
        print(f"dry run: the registry will need, for {spec.name}: {listing}")
    out_dir = args.dry_run or registry.WEIGHTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    with installed(wanted, out_dir):
        out = wanted.weights_path
        tmp = out.with_suffix(".pt.tmp")
        torch.save(members_state([(d, recs[fold]) for d, (_, _, recs) in zip(cv_dirs, sources) for fold in order]), tmp)
        os.replace(tmp, out)
        # the reference outputs are computed by the package itself, so the new weights need a card first
        card = card_of(wanted, cfg, args.config, sources, order, summary, registry.sha256_of(out))
        if not complete and not dry:
            card["interim"] = (f"folds {sorted(records)} of {N_FOLDS}: their cross-validation covers "
                               f"{summary['cases']} cases; the other folds are still training")
        if dry:
            card["dry_run"] = (f"not shipped: folds {sorted(records)} as members {order}, summary {summary_path}"
                               + (f"; {summary['partial_note']}" if summary.get("partial_note") else ""))
            save_spec(wanted, out_dir)
        wanted.card_path.write_text(json.dumps(card, indent=1) + "\n")
        registry.clear_cache()
        card["reference_outputs"]["per_case"] = reference_outputs(wanted.name, args.reference)
        card_path = wanted.card_path
        card_path.write_text(json.dumps(card, indent=1) + "\n")
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, {wanted.members} members) and {card_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
