"""BraTS fold-ensemble speed against the MONAI bundle settings on the same CPU (issue 16's 0.5x target).

    python -m training.ensemble --config training/configs/brats-unet3d-cv.json --dry-run /tmp/brats-ens --repeat
    python -m benchmarks.speed_ensemble --candidate /tmp/brats-ens --brats-root DIR [--repeats 1] [--threads 1]

Each setting the widget and CLI offer for the BraTS model, end to end exactly as ``benchmarks.speed``'s
ours-api (read the case folder, segment_case, write the labels; a fresh process per setting, one
warm-up pass, median of ``--repeats``), next to speed.py's bundle configuration on the same case:

  ensemble+tta   every member under identity and one flip per axis (the default when CV chooses TTA)
  ensemble       every member, no TTA
  fast           member 0, no TTA (``segment(fast=True)``)
  bundle         MONAI model-zoo settings (``benchmarks.speed``), the target's yardstick

``--candidate``: an ensemble folder from ``training.ensemble --dry-run`` (with ``--repeat`` the one
finished fold stands for all five: the same work as five different ones); without it, the registry's
model. The bundle peaks near 4 GB: it is skipped, and said so, when less than ``--bundle-memory-gb``
is available, and its worker volunteers first for the kernel's out-of-memory killer.
Wall-clock time decides the target; each pass's CPU seconds (process and children) are kept too, since on a
shared core they do not count the time spent waiting for it. ``--window-study`` adds one 128^3 window through one member: batch 1 versus batch 2 (what batching
members or flips through the sliding window together could gain) and channels-last memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from . import common, speed

CONFIGS = {"ensemble+tta": "ours-api", "ensemble": "ours-api-no-tta", "fast": "ours-api-fast", "bundle": "bundle"}
TARGET_RATIO = speed.TARGETS["brats_ratio"]


def mem_available_gb() -> float:
    with open("/proc/meminfo") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("MemAvailable")) / 2**20


def run_worker(spec: dict) -> dict:
    import contextlib

    from napari_brainseg.engine.registry import get_spec

    if spec["config"] == "bundle":  # the largest process here: let the OOM killer take it before anything else
        Path("/proc/self/oom_score_adj").write_text("1000")
    candidate = contextlib.nullcontext()
    if spec.get("candidate"):
        from training.candidate import installed, load_spec

        folder = Path(spec["candidate"])
        candidate = installed(load_spec(next(folder.glob("*.spec.json"))), folder)
    with candidate:
        result = speed.run_worker(spec)
        if spec["config"] != "bundle":
            result["model"] = _described(get_spec("brats-unet3d"))
    return result


def _described(spec) -> dict:
    """What the worker's registry said while it ran (so a candidate that did not take is seen)."""
    return {"members": spec.members, "tta": spec.tta, "patch_size": list(spec.patch_size)}


def window_study(threads: int | None, repeats: int) -> dict:
    """One 128^3 window through one member: per-window CPU seconds at batch 1 and 2, and channels-last."""
    import copy
    import time

    import torch

    from napari_brainseg.engine.device import autocast
    from napari_brainseg.engine.registry import build_network, get_spec

    if threads:
        torch.set_num_threads(threads)
    spec = get_spec("brats-unet3d")
    patch = (128, 128, 128)
    net = build_network(spec).eval()
    x = torch.randn(1, len(spec.in_channels), *patch)
    cpu = torch.device("cpu")
    channels_last = copy.deepcopy(net).to(memory_format=torch.channels_last_3d)
    variants = {"batch 1": (net, x), "batch 2 (two windows or flips at once)": (net, torch.cat([x, x.flip(2)])),
                "batch 1, channels-last": (channels_last, x.contiguous(memory_format=torch.channels_last_3d))}
    times = {k: [] for k in variants}
    with torch.no_grad(), autocast(cpu, True):
        for _ in range(repeats + 1):  # interleaved, so a change in the machine's load hits every variant alike
            for name, (model, inp) in variants.items():
                start = time.process_time()  # CPU seconds: waiting for a shared core does not count
                model(inp)
                times[name].append((time.process_time() - start) / inp.shape[0])
    return {"patch": list(patch), "clock": "process CPU time", "seconds_per_window_min": {k: min(v[1:]) for k, v in times.items()},
            "seconds_per_window_all": times, "threads": torch.get_num_threads(), "autocast": "bf16 where supported"}


def ratios(runs: list[dict]) -> list[dict]:
    bundle = next((r for r in runs if r["setting"] == "bundle" and "median_s" in r), None)
    rows = []
    for run in runs:
        if run["setting"] == "bundle" or "median_s" not in run:
            continue
        ratio = run["median_s"] / bundle["median_s"] if bundle else None
        cpu_ratio = run["cpu_median_s"] / bundle["cpu_median_s"] if bundle else None
        rows.append({"setting": run["setting"], "seconds": run["median_s"], "ratio_to_bundle": ratio,
                     "cpu_ratio_to_bundle": cpu_ratio,
                     "meets_target": None if ratio is None else ratio <= TARGET_RATIO})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.add_common_args(parser)
    parser.add_argument("--candidate", type=Path, help="a training.ensemble --dry-run folder (default: the registry's)")
    parser.add_argument("--settings", default=",".join(CONFIGS), help=f"of {', '.join(CONFIGS)}")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch threads in each worker")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--bundle-memory-gb", type=float, default=5.0, help="run the bundle only with this much free")
    parser.add_argument("--window-study", action="store_true")
    parser.add_argument("--note", default="", help="the conditions, in words (pinning, nice, load)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        args.worker_out.write_text(json.dumps(run_worker(json.loads(args.worker.read_text()))))
        return 0

    tmp = Path(tempfile.mkdtemp(prefix="brainseg-speed-ensemble-"))
    if args.quick:
        found = [common.quick_cases(tmp)["brats"]]
    else:
        found, _ = common.brats_val_folders(args.data, args.brats_root, tmp, limit=1)
    if not found:
        print("error: no BraTS case found: give --brats-root or set BRAINSEG_DATA", file=sys.stderr)
        return 1
    out = args.out or common.RESULTS / ("quick/speed_brats_ensemble.json" if args.quick else "speed_brats_ensemble.json")
    candidate = None
    if args.candidate:
        spec_file = next(args.candidate.glob("*.spec.json"), None)
        if spec_file is None:
            print(f"error: {args.candidate} holds no *.spec.json (make it with training.ensemble --dry-run)",
                  file=sys.stderr)
            return 1
        candidate = json.loads(spec_file.read_text())
    payload = {"benchmark": "speed_brats_ensemble", "command": common.command_line("speed_ensemble", argv),
               "quick": args.quick,
               "machine": common.machine_description(), "conditions": args.note, "repeats": args.repeats,
               "case": found[0].name, "target_ratio": TARGET_RATIO,
               "candidate": None if candidate is None else
               {k: candidate[k] for k in ("members", "tta", "patch_size", "sw_overlap", "batch_size")}, "runs": []}
    for setting in [s.strip() for s in args.settings.split(",") if s.strip()]:
        spec = {"config": CONFIGS[setting], "device": "cpu", "cases": [str(found[0])], "repeats": args.repeats,
                "warmup": not args.quick, "threads": args.threads,
                **({"bundle_roi": list(speed.QUICK_ROI)} if args.quick else {}),
                "candidate": str(args.candidate) if args.candidate and setting != "bundle" else None}
        if setting == "bundle" and mem_available_gb() < args.bundle_memory_gb:
            run = {"error": f"skipped: {mem_available_gb():.1f} GB available, the bundle needs ~4"}
        else:
            print(f"{setting} ...", file=sys.stderr, flush=True)
            run = speed.launch(spec, args.timeout, module="speed_ensemble")
        payload["runs"].append({"setting": setting, **run})
        print(f"  {setting}: {run.get('median_s', run.get('error'))}", file=sys.stderr, flush=True)
        common.write_json(out, payload)
    payload["ratios"] = ratios(payload["runs"])
    if args.window_study:
        payload["window_study"] = window_study(args.threads, args.repeats + 1)
    common.write_json(out, payload)
    from .render_studies import render_speed_ensemble

    print(render_speed_ensemble(payload))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
