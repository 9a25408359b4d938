"""Re-measure a bundled model on the validation split and refresh its model card.

    python -m training.evaluate --model lgg-unet2d --cache cache
    python -m training.evaluate --model brats-unet3d --cache cache --unseen

``--unseen`` scores it instead on every case of ``training/folds.json`` that is in neither its
training nor its validation list (cases added after it was trained: nothing about it was chosen on
them) and writes the card's ``unseen`` entry, per case and per dataset group.

Loads the weights exactly as users get them (fp16 file, sha256-checked, via the registry), runs the
validation cases through the same forward pass and post-processing as inference, and rewrites the
card's ``validation`` and ``postprocessing`` entries. Used after training
and whenever post-processing changes, so the card never describes a pipeline that no longer ships.
Single models only: a fold ensemble's card quotes its cross-validation (``training.ensemble``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from napari_brainseg.engine.registry import get_spec, load_model

from .data import load_cached, load_split
from .export import postprocessing_text
from .folds import FOLDS_FILE, dataset_group
from .train import DEFAULTS, summarize, validate


def unseen_cases(card: dict, dataset: str) -> list[str]:
    """The cross-validation pool's cases the model neither trained nor was validated on."""
    pool = [n for fold in json.loads(FOLDS_FILE.read_text())[dataset]["folds"] for n in fold]
    used = set(card["data"]["train_cases"]) | set(card["data"]["val_cases"])
    return sorted(n for n in pool if n not in used)


def unseen_entry(records: list[dict], spec) -> dict:
    groups = sorted({dataset_group(r["case"]) for r in records})
    return {
        "cases": len(records),
        "definition": "cases in training/folds.json the model never trained on and that chose nothing about it "
                      "(epoch, post-processing); shipped float16 weights, forward pass and post-processing, no TTA; "
                      "python -m training.evaluate --model " + spec.name + " --unseen",
        "mean": summarize(records),
        "per_group": {g: {"cases": sum(dataset_group(r["case"]) == g for r in records),
                          **summarize([r for r in records if dataset_group(r["case"]) == g])} for g in groups},
        "per_case": records,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--unseen", action="store_true", help="score the pool's cases the model never saw")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = get_spec(args.model)
    card = spec.card()
    if spec.members > 1 or "validation" not in card:
        # a fold ensemble has no held-out split: every pool case trained all members but one
        print(f"error: {spec.name} is an ensemble of {spec.members} fold networks; every case in {FOLDS_FILE.name} "
              "trained most of its members, so its accuracy is the out-of-fold cross-validation in its card "
              "(python -m training.crossval), not a re-measure here", file=sys.stderr)
        return 1
    cfg = {**DEFAULTS, **card["training"]["config"]}
    # the sliding window as the shipped inference runs it, whatever the training config said
    cfg.update(sw_overlap=spec.sw_overlap, sw_batch_size=spec.batch_size)
    split = load_split(cfg["dataset"])
    val_names = unseen_cases(card, cfg["dataset"]) if args.unseen else split["val"]
    if not val_names:
        print(f"error: no case in {FOLDS_FILE.name} is unseen by {spec.name}", file=sys.stderr)
        return 1
    cases = [load_cached(args.cache / cfg["dataset"] / f"{n}.npz", cfg["dataset"]) for n in val_names]
    net = load_model(spec.name, "cpu")
    t0 = time.time()
    records = validate(net, cases, spec, cfg, torch.device("cpu"))
    if args.unseen:
        card["unseen"] = unseen_entry(records, spec)
        spec.card_path.write_text(json.dumps(card, indent=1) + "\n")
        print(json.dumps({"model": spec.name, "seconds": round(time.time() - t0, 1), **card["unseen"]["per_group"]},
                         indent=1))
        return 0
    card["validation"].update(
        cases=len(records), mean=summarize(records), per_case=records,
        measured_with="exported float16 weights through the shipped forward pass and post-processing "
                      f"(threshold {spec.threshold}, min_component_fraction {spec.min_component_fraction}); "
                      "python -m training.evaluate --model " + spec.name,
    )
    card["postprocessing"] = postprocessing_text(spec)
    card["data"].update(train_cases=sorted(split["train"]), val_cases=sorted(val_names))
    spec.card_path.write_text(json.dumps(card, indent=1) + "\n")
    print(json.dumps({"model": spec.name, "seconds": round(time.time() - t0, 1), **card["validation"]["mean"]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
