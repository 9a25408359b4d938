"""The inference path on a CUDA GPU: agreement with the CPU, run-to-run stability, and the real
out-of-memory fallback.

    python -m benchmarks.gpu_check --case DIR [--case DIR ...] [--repeats 3] [--out JSON]

For each case (a BraTS case folder or an LGG patient folder): ``segment_case`` once on the CPU
(the reference) and ``--repeats`` times on CUDA (fp16 autocast), recording each run's wall time,
peak GPU memory and labels; then reports how many voxels differ between the GPU runs (stability)
and the per-label Dice and voxel agreement of the GPU labels against the CPU's (AMP agreement).
Last, it caps the process's GPU memory (``torch.cuda.set_per_process_memory_fraction``) so that the
GPU attempts really run out of memory, and records the fallback messages, the device that made
the labels and whether they equal the CPU reference. Writes benchmarks/results/gpu_check.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from . import common

# GPU memory a capped run may use: too little for any GPU attempt, so every fallback is exercised
OOM_CAP_BYTES = 64 * 2**20


def label_agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """Share of voxels with equal labels and the Dice of each label present in either."""
    from napari_brainseg.engine.metrics import dice_per_channel

    out = {"voxels_differing": int((a != b).sum()), "voxel_agreement": float((a == b).mean())}
    values = sorted(int(v) for v in set(np.unique(a)) | set(np.unique(b)))
    dice = dice_per_channel(np.stack([a == v for v in values]), np.stack([b == v for v in values]))
    out.update({f"dice_label_{v}": float(d) for v, d in zip(values, dice)})
    return out


def timed_run(path: Path, device: str, **kwargs):
    import torch

    from napari_brainseg.engine.segment import segment_case

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    result, _case = segment_case(path, device=device, **kwargs)
    if device == "cuda":
        torch.cuda.synchronize()
    run = {"device_used": result.device, "seconds": round(time.perf_counter() - t0, 3), "method": result.method,
           "messages": list(result.messages)}
    if device == "cuda":
        run["gpu_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result, run


def check_case(path: Path, repeats: int) -> dict:
    import torch

    from napari_brainseg.engine.registry import clear_cache

    reference, cpu_run = timed_run(path, "cpu")
    timed_run(path, "cuda")  # warm-up: weights onto the GPU, cuDNN's kernel choice
    gpu_runs, labels = [], []
    for _ in range(repeats):
        result, run = timed_run(path, "cuda")
        gpu_runs.append(run)
        labels.append(result.labels)
    stable = [label_agreement(labels[0], other)["voxels_differing"] for other in labels[1:]]

    # the real out-of-memory path: free the cached networks and cap the allocator below one window
    clear_cache()
    torch.cuda.empty_cache()
    fraction = OOM_CAP_BYTES / torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(fraction)
    try:
        capped, capped_run = timed_run(path, "cuda")
        capped_run["labels_equal_cpu_reference"] = bool(np.array_equal(capped.labels, reference.labels))
    except Exception as exc:  # a failure here is the finding, recorded rather than raised
        capped_run = {"error": f"{type(exc).__name__}: {exc}"[:500]}
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        clear_cache()
        torch.cuda.empty_cache()
    return {
        "case": path.name,
        "shape": list(reference.labels.shape),
        "method": gpu_runs[0]["method"],
        "cpu": cpu_run,
        "gpu_runs": gpu_runs,
        "gpu_median_s": float(np.median([r["seconds"] for r in gpu_runs])),
        "gpu_runs_voxels_differing_from_first": stable,
        "gpu_vs_cpu": label_agreement(labels[0], reference.labels),
        "oom_cap_mb": OOM_CAP_BYTES / 2**20,
        "oom_fallback": capped_run,
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", type=Path, action="append", required=True, help="BraTS case or LGG patient folder")
    parser.add_argument("--repeats", type=int, default=3, help="timed GPU runs per case")
    parser.add_argument("--out", type=Path, default=common.RESULTS / "gpu_check.json")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available():
        print("error: no CUDA GPU on this machine", file=sys.stderr)
        return 2
    rows = []
    for path in args.case:
        row = check_case(path, args.repeats)
        rows.append(row)
        print({k: row[k] for k in ("case", "method", "gpu_median_s", "gpu_runs_voxels_differing_from_first")},
              row["gpu_vs_cpu"], row["oom_fallback"], flush=True)
    common.write_json(args.out, {"benchmark": "gpu_check", "command": common.command_line("gpu_check", argv),
                                 "machine": common.machine_description(), "models": common.model_cards(),
                                 "torch": torch.__version__, "cases": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
