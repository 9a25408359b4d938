"""bf16 autocast vs fp32 for one training step of each cross-validation config, on this CPU or a GPU.

    python -m benchmarks.train_precision [--threads 1] [--steps 3] [--device cpu|cuda] [--batch N] [--out JSON]

One step = forward, DiceCELoss, backward and AdamW update on random input of the config's batch and
patch (LGG 2.5D: 9 channels, 8 x 256^2; round-1 LGG: 3 channels, 16 x 128^2; BraTS: 4 channels,
1 x 128^3), networks built from the registry as training builds them. Minimum of --steps timed
steps after one warm-up. Decides the training precision (RUNS.md); writes
benchmarks/results/train_precision.json (``--device cuda``: train_precision_cuda.json, the step time
that sizes a GPU training campaign; ``--batch`` overrides every config's batch size).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from napari_brainseg.engine.registry import build_network
from training.train import DEFAULTS, candidate_spec

from .common import RESULTS, command_line, machine_description, write_json

CONFIGS = ["lgg-unet25d-cv", "lgg-unet2d-cv", "brats-unet3d-cv"]


def step_seconds(spec, batch: int, patch: tuple[int, ...], bf16: bool, steps: int, device: torch.device) -> float:
    from monai.losses import DiceCELoss

    net = build_network(spec).to(device)
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3)
    loss_fn = DiceCELoss(sigmoid=True, batch=True)
    x = torch.randn(batch, len(spec.in_channels), *patch, device=device)
    y = (torch.rand(batch, len(spec.out_channels), *patch, device=device) > 0.9).float()
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss = loss_fn(out.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()  # GPU work is asynchronous: time it finished, not queued
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def augment_seconds(spec, cfg: dict, cache: Path, samples: int = 10) -> float | None:
    """Median seconds to draw and augment one training patch from the first cached case (None: no cache)."""
    from training.data import load_cached
    from training.sampling import make_train_transform, precompute_indices

    files = sorted((cache / cfg["dataset"]).glob("*.npz"))
    if not files:
        return None
    patch = tuple(cfg["patch"]) if cfg["dataset"] == "brats" else None
    case = precompute_indices(load_cached(files[0], cfg["dataset"]), int(cfg.get("context", 0)), patch)
    transform = make_train_transform(spec, cfg)
    times = []
    for _ in range(samples):
        t0 = time.perf_counter()
        transform(case)
        times.append(time.perf_counter() - t0)
    return round(statistics.median(times), 4)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--batch", type=int, default=None, help="batch size for every config (default: the config's)")
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default benchmarks/results/...)")
    parser.add_argument("--augment-cache", type=Path, default=None,
                        help="preprocessed cache: also time the CPU's patch sampling + augmentation per sample "
                             "(one thread; on a GPU this, not the step, bounds a training process)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels, as training would
    out = args.out or RESULTS / ("train_precision_cuda.json" if device.type == "cuda" else "train_precision.json")
    root = Path(__file__).parents[1]
    rows = []
    for name in CONFIGS:
        cfg = json.loads((root / "training" / "configs" / f"{name}.json").read_text())
        spec = candidate_spec(cfg)
        patch = tuple(cfg["patch"])
        batch = args.batch or cfg["batch_size"]
        row = {"config": name, "batch": batch, "patch": list(patch), "in_channels": len(spec.in_channels)}
        for precision in ("fp32", "bf16"):
            row[f"{precision}_step_s"] = round(step_seconds(spec, batch, patch, precision == "bf16", args.steps, device), 4)
        row["bf16_speed_up"] = round(row["fp32_step_s"] / row["bf16_step_s"], 2)
        if args.augment_cache is not None:
            row["augment_s_per_sample"] = augment_seconds(spec, {**DEFAULTS, **cfg}, args.augment_cache)
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_json(out, {"command": command_line("train_precision", argv), "device": args.device,
                     "threads": args.threads, "steps": args.steps, "machine": machine_description(), "runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
