"""Does the confidence score mean something? Spearman correlation between the per-case confidence
(``engine.uncertainty``: mean pairwise Dice of the flip-TTA members) and the per-case Dice, on
out-of-fold predictions of the cross-validation models, and how many of the worst 10 % of cases (by
Dice) are among the 10 % the score ranks least confident.

    PYTHONPATH=src:<repo with training/> python -m benchmarks.uncertainty [--folds 0,1] [--cv-dir DIR]
    python -m benchmarks.uncertainty --shipped      # fallback: lgg-unet2d on the round-1 validation split
    python -m benchmarks.uncertainty --unseen       # BraTS: shipped brats-unet3d on the cases it never saw
    python -m benchmarks.uncertainty --cv-dir training/cv/brats-unet3d-cv   # BraTS folds (uncertainty_brats.py)

Each finished fold k (``<cv-dir>/fold<k>.pt``, default the lgg-unet2d-cv campaign; for an ensemble
config such as ``training/cv/lgg-unet2d-mix``, fold k of each of its recipes) is run on the
held-out patients its record names (``fold<k>.json``: ``held_out_cases``, checked to be the fold of
training/folds.json and disjoint from its ``train_cases``), built exactly as trained from the config
the folder is named after (``training/configs/<cv-dir name>.json``, ``training.train.candidate_spec``/
``predict_case``) on the preprocessed cache.
The labels are the mean of the members after the model's threshold and component cleanup, i.e. the TTA
prediction. Two other scores are recorded for comparison but were not chosen on these data: the soft
"expected Dice" of the mean probability, and the mean disagreement inside the members' union.
Writes benchmarks/results/uncertainty.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from .common import REPO, RESULTS, command_line, machine_description, write_json


def held_out_patients(record: dict, fold_patients: list[str], k: int) -> list[str]:
    """The patients fold k may score: those it held out, never one it trained on."""
    held_out, trained = record["held_out_cases"], set(record["train_cases"])
    if sorted(held_out) != sorted(fold_patients) or trained & set(held_out):
        raise SystemExit(f"fold {k}: its record's held-out patients are not fold {k} of training/folds.json "
                         f"or overlap its training patients ({sorted(trained & set(held_out))})")
    return held_out


def case_scores(networks, case, spec, device) -> dict:
    """``networks``: (net, its spec, its training config) - one, or one per recipe of an ensemble
    config - each run as trained (its own 2.5D context) under every flip; ``spec``: the post-processing."""
    from napari_brainseg.engine.metrics import overlap_metrics
    from napari_brainseg.engine.preprocess import postprocess
    from napari_brainseg.engine.uncertainty import flip_members
    from training.train import predict_case

    # cached LGG image (Z, C, H, W) -> probabilities (K, Z, H, W): flip H and W on both sides
    predicts = [lambda image, n=n, s=s, c=c: predict_case(n, {**case, "image": image}, s, c, device)
                for n, s, c in networks]
    members = flip_members(predicts, case["image"], in_axes=(2, 3), out_axes=(2, 3))
    mean = members.mean
    pred = postprocess(mean, spec)[0]
    truth = case["label"].astype(bool)
    union = (members.probabilities > spec.threshold).any(0).any(0)
    soft = 2 * float((mean[0] * (mean[0] > spec.threshold)).sum()) / max(float(mean[0].sum() + (mean[0] > spec.threshold).sum()), 1e-6)
    return {
        "case": case["name"],
        "dice": overlap_metrics(pred, truth)["dice"],
        "confidence": members.confidence(spec.threshold),
        "expected_dice": soft if mean[0].sum() > 0.5 else 1.0,
        "mean_disagreement_in_union": float(members.disagreement()[union].mean()) if union.any() else 0.0,
        "truth_voxels": int(truth.sum()),
        "pred_voxels": int(pred.sum()),
    }


def load_fold_net(path: Path, spec):
    from training.oof import load_fold_net as load

    return load(path, spec)


def ranking(rows: list[dict], score: str, dice_key: str = "dice") -> dict:
    from scipy.stats import spearmanr

    dice = np.array([r[dice_key] for r in rows])
    values = np.array([r[score] for r in rows])
    n_worst = max(1, math.ceil(0.1 * len(rows)))
    worst = set(np.argsort(dice, kind="stable")[:n_worst].tolist())
    flagged = set(np.argsort(values, kind="stable")[:n_worst].tolist())
    rho, p = spearmanr(values, dice)  # NaN when either is constant: written as null
    return {"spearman_rho": None if np.isnan(rho) else float(rho), "p_value": None if np.isnan(p) else float(p),
            "n_worst_10pct": n_worst,
            "worst_flagged": len(worst & flagged),
            "worst_cases": sorted(rows[i]["case"] for i in worst), "flagged_cases": sorted(rows[i]["case"] for i in flagged)}


def run(args) -> dict:
    import torch

    from napari_brainseg.engine.registry import get_spec, load_model
    from training.data import load_cached
    from training.train import candidate_spec

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    groups = []  # (label, [(net, its spec, its config)], post-processing spec, patients)
    if args.shipped:
        spec = get_spec("lgg-unet2d")
        split = json.loads((REPO / "training" / "split.json").read_text())
        groups.append(("lgg-unet2d (shipped), round-1 validation split", [(load_model(spec.name), spec,
                       {"context": 0, "amp": True})], spec, split["lgg"]["val"]))
    else:
        from training.recipes import recipe_config, recipes
        from training.train import DEFAULTS

        config = args.config or REPO / "training" / "configs" / f"{args.cv_dir.name}.json"
        cfg = {**DEFAULTS, **json.loads(config.read_text())}
        spec = candidate_spec(cfg)  # post-processing; an ensemble config's is the registry's
        # an ensemble config (ensemble_of): fold k of every recipe, their members pooled
        names = recipes(cfg, config)
        sources = ([(args.cv_dir, cfg)] if len(names) == 1 else
                   [(REPO / "training" / "cv" / n, {**DEFAULTS, **recipe_config(n)}) for n in names])
        folds = json.loads((REPO / "training" / "folds.json").read_text())[cfg["dataset"]]["folds"]
        wanted = [int(k) for k in args.folds.split(",")] if args.folds else range(len(folds))
        for k in wanted:
            networks, patients = [], None
            for cv_dir, recipe_cfg in sources:
                weights, record = cv_dir / f"fold{k}.pt", cv_dir / f"fold{k}.json"
                if not (weights.is_file() and record.is_file()):
                    print(f"fold {k}: {weights} not there yet, skipped", file=sys.stderr)
                    break
                patients = held_out_patients(json.loads(record.read_text()), folds[k], k)
                recipe_spec = candidate_spec(recipe_cfg)
                networks.append((load_fold_net(weights, recipe_spec), recipe_spec, recipe_cfg))
            else:
                groups.append((f"fold {k} (out-of-fold)", networks, spec, patients))
    rows = []
    if args.keep and args.output.is_file():  # folds measured before (same code), not recomputed
        fresh = {label for label, *_ in groups}
        rows = [r for r in json.loads(args.output.read_text())["per_case"] if r["group"] not in fresh]
    for label, networks, spec, patients in groups:
        for name in patients:
            started = time.perf_counter()
            case = load_cached(args.cache / f"{name}.npz", "lgg")
            row = {"group": label, **case_scores(networks, case, spec, device)}
            rows.append(row)
            print(f"{label}: {name}: dice {row['dice']:.3f} confidence {row['confidence']:.3f} "
                  f"({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    if not rows:
        raise SystemExit("no finished fold found; use --shipped for the round-1 fallback")
    scores = ("confidence", "expected_dice")
    summary = {s: ranking(rows, s) for s in scores}
    # a larger disagreement means less confidence: rank on its negative
    summary["mean_disagreement_in_union"] = ranking([{**r, "neg": -r["mean_disagreement_in_union"]} for r in rows], "neg")
    return {
        "what": "Spearman correlation of per-case scores with per-case Dice (TTA prediction); worst 10% by Dice "
                "vs the 10% least confident. Primary score: confidence (mean pairwise Dice of the flip-TTA members), "
                "chosen before these numbers were seen.",
        "command": command_line("uncertainty", None),
        "cv_dir": None if args.shipped else str(args.cv_dir),
        "groups": sorted({r["group"] for r in rows}),
        "n_cases": len(rows),
        "summary": summary,
        "per_case": rows,
        "machine": machine_description(),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cv-dir", type=Path, default=REPO / "training" / "cv" / "lgg-unet2d-cv")
    parser.add_argument("--config", type=Path, help="training config of the folds (default: the one the folder is named after)")
    parser.add_argument("--cache", type=Path, default=None,
                        help="training.prepare cache of the dataset (default /work/cache/lgg or /work/cache/brats)")
    parser.add_argument("--folds", help="comma-separated folds (default: every finished one)")
    parser.add_argument("--shipped", action="store_true", help="the shipped lgg-unet2d on the round-1 val split")
    parser.add_argument("--unseen", action="store_true",
                        help="BraTS: the shipped brats-unet3d on the training/folds.json cases it never saw")
    parser.add_argument("--limit", type=int, default=None, help="BraTS: score only the first N cases of each group")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the per-case rows of folds not run this time")
    args = parser.parse_args(argv)
    if args.unseen or dataset_of(args) == "brats":
        from .uncertainty_brats import run_brats

        args.cache = args.cache or Path("/work/cache/brats")
        args.output = args.output or RESULTS / f"uncertainty_brats_{'unseen' if args.unseen else 'cv'}.json"
        result = run_brats(args)
        write_json(args.output, result)
        s = result["pooled"].get("confidence_vs_mean_dice")
        if s:
            print(f"pooled: Spearman {s['spearman_rho']:.3f} over {result['pooled']['n_cases']} cases; "
                  f"worst 10% flagged {s['worst_flagged']}/{s['n_worst_10pct']}", file=sys.stderr)
        print(args.output)
        return 0
    args.cache = args.cache or Path("/work/cache/lgg")
    args.output = args.output or RESULTS / ("uncertainty_shipped.json" if args.shipped else "uncertainty.json")
    result = run(args)
    out = args.output
    write_json(out, result)
    for score, s in result["summary"].items():
        print(f"{score}: Spearman {s['spearman_rho']:.3f} (p {s['p_value']:.3g}) over {result['n_cases']} cases; "
              f"worst 10% flagged {s['worst_flagged']}/{s['n_worst_10pct']}", file=sys.stderr)
    print(out)
    return 0


def dataset_of(args) -> str:
    """The dataset of a cross-validation folder: its training config's ``dataset``."""
    if args.shipped:
        return "lgg"
    config = args.config or REPO / "training" / "configs" / f"{args.cv_dir.name}.json"
    return json.loads(config.read_text()).get("dataset", "lgg") if config.is_file() else "lgg"


if __name__ == "__main__":
    sys.exit(main())
