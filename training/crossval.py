"""Cross-validation results: out-of-fold accuracy, and every post-processing choice made on it.

    python -m training.crossval --config training/configs/lgg-unet25d-cv.json --cache /work/cache

Reads the finished folds' records (``training/cv/<config>/fold<k>.json``) and their out-of-fold
probabilities (``runs/<config>/oof/``). Each candidate setting (flip TTA, threshold, relative
component cleanup, and for BraTS the enhancing-tumour small-volume rule and the tumour core's hole
filling) is scored on every
out-of-fold case as the package's own ``postprocess`` and labels give it (``cv_scores``). The accuracy reported is *nested*: the
cases of fold k are scored with the setting that did best on the other folds' cases, so no case
helps choose the setting it is scored with. The setting to ship is the one best on all folds.
Writes ``training/cv/<config>/summary.json``; while folds are missing the summary is marked
``partial`` and must go elsewhere (``--out``): a folds folder's summary.json only ever covers all folds.
An ensemble config (``ensemble_of``: ``recipes``) is scored on the mean of its recipes' out-of-fold
probabilities, case by case; its summary goes to ``training/cv/<ensemble config>/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from .cv_scores import case_scores, grid_threshold, settings
from .data import load_cached
from .folds import N_FOLDS, dataset_group
from .recipes import combined_records, mean_probabilities, recipes
from .train import HERE, candidate_spec


def best(scores: np.ndarray, rows: list[int], allowed: list[int]) -> int:
    """Index of the ``allowed`` setting with the highest mean Dice (over cases and channels) on ``rows``."""
    means = scores[rows].mean(axis=(0, 2))
    return int(allowed[int(np.argmax(means[allowed]))])


def nested_choice(scores: np.ndarray, folds: np.ndarray, allowed: list[int]) -> tuple[np.ndarray, dict]:
    """Each fold's cases scored with the allowed setting best on the other folds' cases."""
    nested = np.full(scores.shape[0:1] + scores.shape[2:], np.nan)
    chosen = {}
    for fold in sorted(set(folds.tolist())):
        pick = best(scores, list(np.flatnonzero(folds != fold)), allowed)
        chosen[int(fold)] = pick
        nested[folds == fold] = scores[folds == fold, pick]
    return nested, chosen


def summarise(values: np.ndarray, names: list[str]) -> dict:
    """Cases, and mean, median, sd and worst of per-case values (cases x channels) per channel name;
    with several channels (BraTS regions) also of their per-case mean."""
    if len(names) > 1:
        values, names = np.concatenate([values, values.mean(axis=1, keepdims=True)], axis=1), [*names, "mean"]
    stats = {name: {"mean": float(values[:, k].mean()), "median": float(np.median(values[:, k])),
                    "sd": float(values[:, k].std(ddof=1)) if len(values) > 1 else 0.0,
                    "worst": float(values[:, k].min())} for k, name in enumerate(names)}
    return {"cases": int(len(values)), **stats}


def by_subset(values: np.ndarray, keys: list, names: list[str]) -> dict:
    """``summarise`` of the cases of each key (a fold, a dataset group), and the spread of their means."""
    parts = {str(key): summarise(values[[k == key for k in keys]], names) for key in sorted(set(keys))}
    channels = [n for n in next(iter(parts.values())) if n != "cases"]
    spread = {ch: float(np.std([p[ch]["mean"] for p in parts.values()], ddof=1)) if len(parts) > 1 else 0.0
              for ch in channels}
    return {**parts, "sd_of_means": spread}


def load_scores(args, dataset: str, spec, cases: list[tuple[int, str]], oof_dirs: list[Path], candidates) -> np.ndarray:
    """cases x settings x channels Dice (of the mean of the recipes' out-of-fold probabilities)."""
    scores = []
    for fold, case in cases:
        prob = mean_probabilities(case, oof_dirs)
        label = load_cached(args.cache / dataset / f"{case}.npz", dataset)["label"].astype(bool)
        truth = label if dataset == "brats" else label[None]
        scores.append(case_scores(prob, truth, spec, candidates))
        print(f"scored {case} (fold {fold})", flush=True)
    return np.array(scores)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument("--oof-dir", type=Path, help="default runs/<config>/oof")
    parser.add_argument("--cv-dir", type=Path, help="the folds' records (default training/cv/<config>)")
    parser.add_argument("--out", type=Path, help="where the summary goes (default <cv-dir>/summary.json; needed "
                                                 "while folds are missing: a partial summary never goes to the shipped path)")
    parser.add_argument("--tta", choices=("choose", "off", "on"), default="choose",
                        help="let the choice include flip TTA, or fix it off or on")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = json.loads(args.config.read_text())
    dataset, name = cfg["dataset"], args.config.stem
    spec = candidate_spec(cfg)
    names = recipes(cfg, args.config)  # an ensemble config: the training recipes whose folds it averages
    if len(names) > 1 and (args.cv_dir or args.oof_dir):
        print("error: --cv-dir/--oof-dir point at one recipe's folds; an ensemble config reads each recipe's own",
              file=sys.stderr)
        return 1
    cv_dir = args.cv_dir or HERE / "cv" / name  # where the summary goes
    cv_dirs = [args.cv_dir or HERE / "cv" / n for n in names]
    oof_dirs = [args.oof_dir or HERE.parent / "runs" / n / "oof" for n in names]
    records = combined_records(names, cv_dirs)[0]  # the folds and cases, the same for every recipe
    if not records:
        print(f"error: no finished fold in {cv_dirs[0]}", file=sys.stderr)
        return 1
    partial = sorted(records) != list(range(N_FOLDS))
    out = args.out or cv_dir / "summary.json"
    shipped_places = {(cv_dir / "summary.json").resolve(), (HERE / "cv" / name / "summary.json").resolve()}
    if partial and out.resolve() in shipped_places:  # where training.ensemble looks for the summary to ship
        print(f"error: only folds {sorted(records)} of {N_FOLDS} are finished; a partial summary never goes to "
              f"{out}, where the shipped one lives - give --out (e.g. /tmp/{name}-partial.json)", file=sys.stderr)
        return 1
    cases = [(fold, r["case"]) for fold, rec in sorted(records.items()) for r in rec["out_of_fold"]["per_case"]]
    for oof_dir in oof_dirs:
        missing = [c for _, c in cases if not (oof_dir / f"{c}.npz").exists()]
        if missing:
            print(f"error: out-of-fold probabilities missing for {missing[:3]} in {oof_dir}; rerun the folds' "
                  "final scoring (python -m training.oof) or point --oof-dir at them", file=sys.stderr)
            return 1
    candidates = settings(dataset)
    shipped = {"tta": False, "threshold": grid_threshold(spec, dataset), "min_component_fraction": spec.min_component_fraction}
    if dataset == "brats":
        shipped.update(enhancing_min_voxels=spec.enhancing_min_voxels, core_hole_fill=spec.core_hole_fill)
    if shipped not in candidates:
        print(f"error: the registry's post-processing {shipped} is not on the grid (training/cv_scores.py GRID); "
              "the 'plain' baseline must be one of its settings", file=sys.stderr)
        return 1
    channels = list(spec.out_channels) if dataset == "brats" else ["tumour"]
    scores = load_scores(args, dataset, spec, cases, oof_dirs, candidates)
    summary = summarise_choices(scores, cases, candidates, candidates.index(shipped), channels, dataset, args.tta)
    summary = {"config": name, **({"ensemble_of": names} if len(names) > 1 else {}),
               "folds_finished": sorted(records), "partial": partial,
               **({"partial_note": f"only folds {sorted(records)} of {N_FOLDS}: not the shipped cross-validation"}
                  if partial else {}),
               "cases": len(cases), **summary,
               "command": f"python -m training.crossval --config {args.config} --tta {args.tta}"}
    summary["definition"] = (
        "per patient volume Dice of out-of-fold predictions" + (
        f" (mean probability of the {len(names)} recipes' fold networks that never saw the case)" if len(names) > 1
        else "") + (", BraTS regions as the written labels give them "
        "(ET inside TC inside WT)" if dataset == "brats" else "") + "; 'nested': each fold's cases post-processed "
        "with the setting best on the other folds' cases; 'plain': final-epoch weights, no TTA, the registry's "
        f"post-processing {json.dumps({k: v for k, v in shipped.items() if k != 'tta'})}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: summary[k] for k in ("folds_finished", "partial", "cases", "nested", "plain", "to_ship")},
                     indent=1))
    print(f"wrote {out}")
    return 0


def summarise_choices(scores, cases, candidates, baseline: int, channels, dataset: str, tta: str) -> dict:
    """The choices and their effects: nested (each fold chosen on the others), plain, per fold and group."""
    folds = np.array([f for f, _ in cases])
    allowed = [i for i, s in enumerate(candidates) if tta == "choose" or s["tta"] == (tta == "on")]
    # nested: a fold's cases get the setting chosen on the other folds; with one fold there are no others
    has_nested = len(set(folds.tolist())) > 1
    nested, picks = nested_choice(scores, folds, allowed) if has_nested else (None, {})
    final = best(scores, list(range(len(cases))), allowed)
    # what letting the choice include TTA would add (when TTA is fixed)
    tta_choice = nested_choice(scores, folds, list(range(len(candidates))))[0] if has_nested else None
    groups = [dataset_group(c) if dataset == "brats" else c.split("_")[1] for _, c in cases]
    fold_keys = folds.tolist()
    per_case = [{"case": c, "fold": int(f), "group": groups[i],
                 **({f"dice_{ch}": float(nested[i, k]) for k, ch in enumerate(channels)} if has_nested else {}),
                 **{f"plain_dice_{ch}": float(scores[i, baseline, k]) for k, ch in enumerate(channels)}}
                for i, (f, c) in enumerate(cases)]
    plain = scores[:, baseline]
    return {
        "tta": tta,
        "nested": summarise(nested, channels) if has_nested else None,
        "nested_if_tta_chosen": summarise(tta_choice, channels) if has_nested else None,
        "plain": summarise(plain, channels),
        "per_fold_nested_mean": {int(f): {ch: float(nested[folds == f, k].mean()) for k, ch in enumerate(channels)}
                                 for f in sorted(set(fold_keys))} if has_nested else None,
        "per_fold_plain_mean": {int(f): {ch: float(plain[folds == f, k].mean()) for k, ch in enumerate(channels)}
                                for f in sorted(set(fold_keys))},
        "per_fold_nested": by_subset(nested, fold_keys, channels) if has_nested else None,
        "per_fold_plain": by_subset(plain, fold_keys, channels),
        "per_group_nested": by_subset(nested, groups, channels) if has_nested else None,
        "per_group_plain": by_subset(plain, groups, channels),
        "chosen_per_fold": {int(f): candidates[i] for f, i in picks.items()},
        "to_ship": candidates[final],
        "effects_on_all_folds": {json.dumps(s): {ch: float(scores[:, i, k].mean()) for k, ch in enumerate(channels)}
                                 for i, s in enumerate(candidates)},
        "per_case": per_case,
    }


if __name__ == "__main__":
    sys.exit(main())
