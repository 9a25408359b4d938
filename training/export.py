"""Export the best network into the package: fp16 weights plus a model card with their sha256."""

from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from napari_brainseg.engine.registry import WEIGHTS_DIR, sha256_of

TERMS = {
    "lgg": "LGG Segmentation Dataset (TCGA via TCIA, Kaggle mateuszbuda/lgg-mri-segmentation), CC BY-NC-SA 4.0; "
           "cite Buda et al. 2019 (doi:10.1016/j.compbiomed.2019.05.002) and Mazurowski et al. 2017.",
    "brats": "BraTS 2018 training data, BraTS challenge terms (research use, with citation): Menze et al. IEEE TMI 2015; "
             "Bakas et al. Sci Data 2017; Bakas et al. arXiv:1811.02629.",
}
INTENDED_USE = "Research use only. Not a medical device; not for clinical decisions."


def _git_commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                                       stderr=subprocess.DEVNULL, text=True).strip()
    except Exception:
        return "unknown"


def hardware() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    return f"{cpu}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, GPU {gpu}"


def postprocessing_text(spec) -> str:
    """The card's words for napari_brainseg.engine.preprocess.postprocess with this model's settings."""
    if isinstance(spec.threshold, tuple):
        text = "sigmoid > " + ", ".join(f"{t} ({c})" for c, t in zip(spec.out_channels, spec.thresholds))
    else:
        text = f"sigmoid > {spec.threshold} per output channel"
    if spec.min_component_fraction is not None:
        text += (f"; connected components smaller than {spec.min_component_fraction:.0%} of the largest "
                 "dropped per channel")
    if spec.enhancing_min_voxels:
        text += f"; enhancing tumour of fewer than {spec.enhancing_min_voxels} voxels relabelled as tumour core"
    if spec.core_hole_fill == "planes":
        text += "; holes the tumour core encloses in any 2D plane (axial, coronal, sagittal) filled as core"
    elif spec.core_hole_fill:
        text += "; cavities the tumour core encloses in 3D filled as core"
    if spec.label_convention != "lgg":
        text += "; nested regions TC/WT/ET converted to BraTS labels in the case's convention"
    return text


def save_half(net, path: Path) -> None:
    """The network's state dict in float16 (what ships), written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".pt.tmp")
    torch.save({k: v.detach().cpu().half() if v.is_floating_point() else v.cpu() for k, v in net.state_dict().items()}, tmp)
    os.replace(tmp, path)


def training_record(cfg, state, command: str) -> dict:
    return {"command": command, "config": cfg,
            "exported_epoch": state["epoch"], "train_seconds": round(state["elapsed"], 1), "hardware": hardware(),
            "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                         "monai": __import__("monai").__version__, "numpy": np.__version__},
            "commit": _git_commit(),
            "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def export_fold(net, spec, cfg, state, records, args, data: dict, out_dir: Path) -> Path:
    """A finished cross-validation fold: its final float16 weights and its out-of-fold record."""
    weights = Path(out_dir) / f"fold{args.fold}.pt"
    save_half(net, weights)
    keys = [k for k in records[0] if k != "case"]
    record = {
        "fold": args.fold, "model": spec.name, "weights": weights.name, "sha256": sha256_of(weights),
        "network": {"in_channels": list(spec.in_channels), "out_channels": list(spec.out_channels),
                    "patch_size": list(spec.patch_size), **{k: list(v) if isinstance(v, tuple) else v
                                                             for k, v in spec.network.items()}},
        "train_cases": sorted(data["train"]), "held_out_cases": sorted(data["val"]),
        "training": training_record(cfg, state, f"python -m training.train --config {args.config} --fold {args.fold}"),
        "out_of_fold": {"metric_definitions": "per patient volume, final epoch (no selection), shipped threshold and "
                        "component cleanup; tta_*: mean of identity and one flip per spatial axis",
                        "mean": {k: float(np.mean([r[k] for r in records])) for k in keys}, "per_case": records},
    }
    path = Path(out_dir) / f"fold{args.fold}.json"
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def export_model(net, spec, cfg, state, records, args, data: dict, export_dir: Path | None = None) -> Path:
    """``data``: the train/val case names, so the card says exactly what the model saw."""
    out_dir = Path(export_dir) if export_dir else WEIGHTS_DIR
    weights = out_dir / f"{spec.name}.pt"
    save_half(net, weights)
    keys = [k for k in records[0] if k != "case"]
    card = {
        "name": spec.name,
        "title": spec.title,
        "architecture": {"class": "monai.networks.nets.UNet", "spatial_dims": spec.spatial_dims,
                         "in_channels": list(spec.in_channels), "out_channels": list(spec.out_channels),
                         **{k: list(v) if isinstance(v, tuple) else v for k, v in spec.network.items()},
                         "parameters": int(sum(p.numel() for p in net.parameters()))},
        "weights": {"file": weights.name, "dtype": "float16", "sha256": None},
        "sha256": None,
        "preprocessing": "z-score per channel over non-zero (brain) voxels; BraTS: cropped to the brain bounding box",
        "postprocessing": postprocessing_text(spec),
        "data": {"dataset": cfg["dataset"], "split_file": "training/split.json",
                 "train_cases": sorted(data["train"]), "val_cases": sorted(data["val"]),
                 "terms": TERMS[cfg["dataset"]]},
        "training": {**training_record(cfg, state, "python -m training.train --config " + str(args.config)),
                     "best_epoch": state["best_epoch"]},
        "validation": {"cases": len(records), "metric_definitions":
                       "per patient volume; empty prediction vs empty truth counts as 1 (Dice/IoU/sensitivity/"
                       "precision), vs non-empty truth as 0; HD95 in voxels (1 mm), 0 if both empty, 373.13 if one is",
                       "mean": {k: float(np.mean([r[k] for r in records])) for k in keys},
                       "per_case": records},
        "intended_use": INTENDED_USE,
    }
    digest = sha256_of(weights)
    card["weights"]["sha256"] = digest
    card["sha256"] = digest
    card_path = out_dir / f"{spec.name}.json"
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    return weights
