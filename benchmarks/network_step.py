"""Why MONAI UNet for brats-unet3d: the time of one 3D training step against BasicUNet.

    python -m benchmarks.network_step [--threads 1] [--steps 3] [--quick]

One step = forward, DiceCELoss, backward and AdamW update of a batch of 2 patches of 4 x 96^3 (the
brats-unet3d training setting), in bf16 autocast where the CPU has native bf16 (as training runs),
else fp32. Compares the shipped UNet with MONAI BasicUNet at its default widths and at narrow widths
near the shipped parameter count; median of --steps timed steps after one warm-up step. Writes
benchmarks/results/network_step.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from napari_brainseg.engine.device import autocast, cpu_supports_bf16
from napari_brainseg.engine.registry import build_network, get_spec

from .common import RESULTS, command_line, machine_description, write_json


def networks(spec):
    from monai.networks.nets import BasicUNet

    dims, cin, cout = spec.spatial_dims, len(spec.in_channels), len(spec.out_channels)
    return {
        "UNet (shipped brats-unet3d)": build_network(spec),
        "BasicUNet default features (32,32,64,128,256,32)": BasicUNet(dims, cin, cout),
        "BasicUNet narrow features (16,16,32,64,128,16)": BasicUNet(dims, cin, cout, features=(16, 16, 32, 64, 128, 16)),
    }


def time_steps(net, patch, steps: int) -> list[float]:
    from monai.losses import DiceCELoss

    device = torch.device("cpu")
    torch.manual_seed(0)
    x = torch.randn(2, 4, *patch)
    y = (torch.rand(2, 3, *patch) > 0.9).float()
    loss_fn = DiceCELoss(sigmoid=True, batch=True)
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    net.train()
    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        with autocast(device, True):
            logits = net(x)
        loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t0)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="32^3 patches, 1 step: checks the script runs")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = get_spec("brats-unet3d")
    patch = (32, 32, 32) if args.quick else tuple(spec.patch_size)
    steps = 1 if args.quick else args.steps
    rows = []
    for name, net in networks(spec).items():
        times = time_steps(net, patch, steps)
        rows.append({"network": name, "parameters_m": round(sum(p.numel() for p in net.parameters()) / 1e6, 2),
                     "median_step_s": round(statistics.median(times), 3), "steps_s": [round(t, 3) for t in times]})
        print(f"{name}: {rows[-1]['parameters_m']} M parameters, {rows[-1]['median_step_s']} s per step", flush=True)
    out = args.out or RESULTS / ("quick/network_step.json" if args.quick else "network_step.json")
    write_json(out, {"command": command_line("network_step", argv),
                     "quick": args.quick, "machine": machine_description(), "threads": args.threads,
                     "batch": [2, 4, *patch], "precision": "bf16 autocast" if cpu_supports_bf16() else "fp32",
                     "runs": rows})
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
