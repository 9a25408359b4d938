"""Ensembles of several training recipes' folds (an ensemble config names them: ``ensemble_of``).

    {"model": "lgg-unet2d", "dataset": "lgg", "ensemble_of": ["lgg-unet25d-p128-cv", "lgg-unet2d-cv"]}

Each named config trained the same five folds (``training/folds.json``), so a case's out-of-fold
probability of the combined ensemble is the mean of each recipe's out-of-fold probability for it:
every network that contributes never saw the case. ``crossval`` scores that mean and ``ensemble``
packs the recipes' folds in the order given (the first recipe's fold 0 is member 0, the fast setting).
A plain config is its own single recipe.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .train import HERE


def recipes(cfg: dict, config_path: Path) -> list[str]:
    """The configs whose folds an ensemble config combines; a training config is its own only one."""
    if not cfg.get("ensemble_of"):
        return [Path(config_path).stem]
    names = list(cfg["ensemble_of"])
    for name in names:
        member = recipe_config(name)
        if member.get("ensemble_of"):
            raise SystemExit(f"error: {name} is an ensemble config itself; ensemble_of names training configs")
        if (member["model"], member["dataset"]) != (cfg["model"], cfg["dataset"]):
            raise SystemExit(f"error: {name} trains {member['model']} on {member['dataset']}, not {cfg['model']}")
    return names


def recipe_config(name: str) -> dict:
    return json.loads((HERE / "configs" / f"{name}.json").read_text())


def fold_records(cv_dir: Path) -> dict[int, dict]:
    return {int(p.stem[4:]): json.loads(p.read_text()) for p in sorted(Path(cv_dir).glob("fold[0-9].json"))}


def combined_records(names: list[str], cv_dirs: list[Path]) -> list[dict[int, dict]]:
    """Each recipe's fold records, after checking that every recipe finished the same folds with the
    same held-out cases (otherwise a case could be scored by a network that trained on it)."""
    per_recipe = [fold_records(d) for d in cv_dirs]
    first = per_recipe[0]
    for name, records in zip(names[1:], per_recipe[1:]):
        if sorted(records) != sorted(first):
            raise SystemExit(f"error: {name} finished folds {sorted(records)}, {names[0]} {sorted(first)}; "
                             "an ensemble of recipes needs the same folds")
        for fold, record in records.items():
            if sorted(record["held_out_cases"]) != sorted(first[fold]["held_out_cases"]):
                raise SystemExit(f"error: fold {fold} of {name} held out other cases than {names[0]}'s")
    return per_recipe


def mean_probabilities(case: str, oof_dirs: list[Path]) -> dict[str, np.ndarray]:
    """{"prob", "prob_tta"}: the mean over recipes of one case's out-of-fold probabilities (float32)."""
    total = {}
    for oof_dir in oof_dirs:
        with np.load(Path(oof_dir) / f"{case}.npz") as f:
            for key in ("prob", "prob_tta"):
                value = f[key].astype(np.float32)
                total[key] = value if key not in total else total[key] + value
    return {key: value / len(oof_dirs) for key, value in total.items()}
