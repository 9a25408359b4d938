"""Re-measure a bundled model on the validation split and refresh its model card.

    python -m training.evaluate --model lgg-unet2d --cache cache

Loads the weights exactly as users get them (fp16 file, sha256-checked, via the registry), runs the
validation cases through the same forward pass and post-processing as inference, and rewrites the
card's ``validation`` and ``postprocessing`` entries. Used after training
and whenever post-processing changes, so the card never describes a pipeline that no longer ships.
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
from .train import DEFAULTS, summarize, validate


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True)
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = get_spec(args.model)
    card = spec.card()
    cfg = {**DEFAULTS, **card["training"]["config"]}
    # the sliding window as the shipped inference runs it, whatever the training config said
    cfg.update(sw_overlap=spec.sw_overlap, sw_batch_size=spec.batch_size)
    split = load_split(cfg["dataset"])
    val_names = split["val"]
    cases = [load_cached(args.cache / cfg["dataset"] / f"{n}.npz", cfg["dataset"]) for n in val_names]
    net = load_model(spec.name, "cpu")
    t0 = time.time()
    records = validate(net, cases, spec, cfg, torch.device("cpu"))
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
