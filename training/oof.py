"""Recompute the out-of-fold probabilities of finished folds from their committed weights, so that
``training.crossval`` runs on a machine that did not train them.

    python -m training.oof --config training/configs/brats-unet3d-cv.json --cache CACHE [--folds 0,2]

A fold writes its held-out cases' probabilities when it finishes (``runs/<config>/oof/``), but they
stay local: a fresh machine has only ``training/cv/<config>/fold<k>.{pt,json}``. This runs each
finished fold's network, from its float16 weights as the ensemble ships them, on the cases its record
held out, the way the fold's final scoring did (``training.train.out_of_fold``: plain and flip TTA),
writes the same files, and compares the per-case Dice with the record's, which came from the float32
network: a difference over ``TOLERANCE`` means the weights do not reproduce the record, and it stops.
Cases whose file is already there are skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from .data import load_cached
from .folds import fold_split
from .train import DEFAULTS, HERE, candidate_spec, out_of_fold

TOLERANCE = 0.02  # Dice per case and region; float16 rounding of the weights moves it by ~1e-3


def load_fold_net(path: Path, spec):
    """A fold's network from its float16 state dict, in float32 and eval mode."""
    from napari_brainseg.engine.registry import build_network

    net = build_network(spec)
    state = torch.load(path, map_location="cpu", weights_only=True)
    net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return net.eval()


def held_out_of(record: dict, dataset: str, k: int) -> list[str]:
    """The cases fold k held out, checked against training/folds.json: in fold k, none trained on."""
    held_out, split = record["held_out_cases"], fold_split(dataset, k)
    if not set(held_out) <= set(split["val"]) or set(held_out) & set(record["train_cases"]):
        raise SystemExit(f"error: fold {k}'s record holds out cases that are not fold {k} of training/folds.json "
                         "or that it trained on")
    return held_out


def differences(recomputed: list[dict], record: dict) -> dict[str, float]:
    """Per case, the largest Dice difference between the recomputed scores and the record's."""
    recorded = {r["case"]: r for r in record["out_of_fold"]["per_case"]}
    return {r["case"]: max(abs(v - recorded[r["case"]][k]) for k, v in r.items() if k.startswith(("dice", "tta_dice")))
            for r in recomputed}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument("--cv-dir", type=Path, help="the folds' records and weights (default training/cv/<config>)")
    parser.add_argument("--oof-dir", type=Path, help="where the probabilities go (default runs/<config>/oof)")
    parser.add_argument("--folds", help="comma-separated folds (default: every finished one)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    cfg = {**DEFAULTS, **json.loads(args.config.read_text())}
    name = args.config.stem
    cv_dir = args.cv_dir or HERE / "cv" / name
    oof_dir = args.oof_dir or HERE.parent / "runs" / name / "oof"
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = candidate_spec(cfg)
    finished = sorted(int(p.stem[4:]) for p in cv_dir.glob("fold[0-9].json") if p.with_suffix(".pt").is_file())
    wanted = [int(k) for k in args.folds.split(",")] if args.folds else finished
    if not set(wanted) <= set(finished) or not wanted:
        print(f"error: folds {sorted(set(wanted) - set(finished)) or wanted} of {name} are not finished in {cv_dir}",
              file=sys.stderr)
        return 1
    for k in wanted:
        record = json.loads((cv_dir / f"fold{k}.json").read_text())
        todo = [c for c in held_out_of(record, cfg["dataset"], k) if not (oof_dir / f"{c}.npz").is_file()]
        if not todo:
            print(f"fold {k}: every held-out case's probabilities are in {oof_dir}")
            continue
        net = load_fold_net(cv_dir / f"fold{k}.pt", spec)
        cases = [load_cached(args.cache / cfg["dataset"] / f"{c}.npz", cfg["dataset"]) for c in todo]
        off = differences(out_of_fold(net, cases, spec, cfg, torch.device("cpu"), oof_dir), record)
        worst = max(off, key=off.get)
        print(f"fold {k}: wrote {len(todo)} cases to {oof_dir}; largest Dice difference from the record "
              f"{off[worst]:.4f} ({worst})")
        if off[worst] > TOLERANCE:
            print(f"error: fold {k}'s weights do not reproduce its record ({worst}: Dice off by {off[worst]:.3f}); "
                  "its probabilities are not fit for crossval", file=sys.stderr)
            for c in todo:
                (oof_dir / f"{c}.npz").unlink(missing_ok=True)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
