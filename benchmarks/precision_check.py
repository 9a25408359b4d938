"""One case under fp32, fp16 and bf16 autocast: why the networks never run in fp16.

    python -m benchmarks.precision_check --case DIR [--device cpu|cuda] [--out JSON]

Segments the case once with the product's precision on the CPU (the reference), then on ``--device``
with autocast forced to each of fp32 (none), fp16 and bf16, recording the labels' class counts,
non-finite probabilities, the largest probability difference from the reference, the share of
equal labels and the run's messages (the product recomputes non-finite probabilities in fp32 and
says so). Under fp16 it also records the largest absolute output of every layer (forward
hooks), which shows where the activations leave fp16's range (65504). Reproduces on a CPU: no GPU
needed. Writes benchmarks/results/precision_check.json.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

import numpy as np

from . import common

MODES = ("fp32", "fp16", "bf16")


def _counts(labels: np.ndarray) -> dict[int, int]:
    return {int(v): int((labels == v).sum()) for v in np.unique(labels)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", type=Path, required=True, help="BraTS case or LGG patient folder")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--out", type=Path, default=common.RESULTS / "precision_check.json")
    args = parser.parse_args(argv)

    import torch

    import napari_brainseg.engine.window as window
    from napari_brainseg.engine.registry import load_model
    from napari_brainseg.engine.segment import segment_case

    reference, case = segment_case(args.case, device="cpu", return_probabilities=True)
    rows = {"reference (product precision, cpu)": {"labels": _counts(reference.labels)}}
    dtypes = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}
    product_autocast = window.autocast
    try:
        for mode in MODES:
            dtype = dtypes[mode]
            # the product's fp32 recompute of non-finite probabilities (enabled=False) stays fp32
            window.autocast = (lambda _dev, enabled=True, dt=dtype: contextlib.nullcontext()
                               if dt is None or not enabled else torch.autocast(args.device, dtype=dt))
            peaks, hooks = {}, []
            if mode == "fp16":
                net = load_model(reference.model, args.device)

                def record(name, peaks=peaks):
                    def hook(_module, _inputs, output):
                        if torch.is_tensor(output):
                            peaks[name] = max(peaks.get(name, 0.0), float(output.detach().float().abs().max()))
                    return hook

                hooks = [m.register_forward_hook(record(n)) for n, m in net.named_modules() if n]
            result, _ = segment_case(case, device=args.device, return_probabilities=True)
            for h in hooks:
                h.remove()
            prob = result.probabilities
            row = {"labels": _counts(result.labels), "non_finite_probabilities": int((~np.isfinite(prob)).sum()),
                   "max_abs_probability_difference": float(np.nanmax(np.abs(prob - reference.probabilities))),
                   "equal_labels": float((result.labels == reference.labels).mean()), "messages": result.messages}
            if peaks:
                row["largest_layer_outputs"] = sorted(peaks.items(), key=lambda kv: -kv[1])[:8]
            rows[mode] = row
            print(mode, {k: v for k, v in row.items() if k != "largest_layer_outputs"}, flush=True)
    finally:
        window.autocast = product_autocast
    common.write_json(args.out, {"benchmark": "precision_check", "command": common.command_line("precision_check", argv),
                                 "case": args.case.name, "model": reference.model, "device": args.device,
                                 "machine": common.machine_description(), "runs": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
