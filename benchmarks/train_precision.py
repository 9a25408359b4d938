"""bf16 autocast vs fp32 for one training step of each cross-validation config, on this CPU.

    python -m benchmarks.train_precision [--threads 1] [--steps 3]

One step = forward, DiceCELoss, backward and AdamW update on random input of the config's batch and
patch (LGG 2.5D: 9 channels, 8 x 256^2; round-1 LGG: 3 channels, 16 x 128^2; BraTS: 4 channels,
1 x 128^3), networks built from the registry as training builds them. Minimum of --steps timed
steps after one warm-up. Decides the training precision (RUNS.md); writes
benchmarks/results/train_precision.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from napari_brainseg.engine.registry import build_network
from training.train import candidate_spec

from .common import RESULTS, command_line, machine_description, write_json

CONFIGS = ["lgg-unet25d-cv", "lgg-unet2d-cv", "brats-unet3d-cv"]


def step_seconds(spec, batch: int, patch: tuple[int, ...], bf16: bool, steps: int) -> float:
    from monai.losses import DiceCELoss

    net = build_network(spec)
    optimizer = torch.optim.AdamW(net.parameters(), 1e-3)
    loss_fn = DiceCELoss(sigmoid=True, batch=True)
    x = torch.randn(batch, len(spec.in_channels), *patch)
    y = (torch.rand(batch, len(spec.out_channels), *patch) > 0.9).float()
    times = []
    for _ in range(steps + 1):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            out = net(x)
        loss = loss_fn(out.float(), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    root = Path(__file__).parents[1]
    rows = []
    for name in CONFIGS:
        cfg = json.loads((root / "training" / "configs" / f"{name}.json").read_text())
        spec = candidate_spec(cfg)
        patch = tuple(cfg["patch"])
        row = {"config": name, "batch": cfg["batch_size"], "patch": list(patch), "in_channels": len(spec.in_channels)}
        for precision in ("fp32", "bf16"):
            row[f"{precision}_step_s"] = round(step_seconds(spec, cfg["batch_size"], patch, precision == "bf16", args.steps), 3)
        row["bf16_speed_up"] = round(row["fp32_step_s"] / row["bf16_step_s"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    write_json(RESULTS / "train_precision.json", {"command": command_line("train_precision", argv),
                                                   "threads": args.threads, "steps": args.steps,
                                                   "machine": machine_description(), "runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
