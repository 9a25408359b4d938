"""Shrink a resumable checkpoint for committing: half the bytes, resumes with rounded state.

    python -m training.compact training/checkpoints/brats-unet3d-cv-long-fold0.pt

The trainer writes fp32 checkpoints (weights, AdamW moments) so that a resume is exact; a BraTS
fold's is 23 MB, too much to commit every session. This rewrites it in place with the weights in
float16 and the optimizer's moments in bfloat16 (their squared gradients span more decades than
float16 holds). ``training.train`` resumes from it unchanged: loading copies the weights into the
fp32 network and the optimizer casts its state back to its parameters' dtype. The resumed run is
then not bit-identical to an uninterrupted one (the rounding of one step's update, about), so the
checkpoint says it was compacted and RUNS.md must too.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch


def _rounded(value, dtype):
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() > 0:
        return value.to(dtype)
    if isinstance(value, dict):
        return {k: _rounded(v, dtype) for k, v in value.items()}
    return value


def compact(checkpoint: dict) -> dict:
    """The checkpoint with float16 weights and bfloat16 optimizer state (scalars such as step kept)."""
    out = dict(checkpoint)
    out["model"] = _rounded(checkpoint["model"], torch.float16)
    optimizer = dict(checkpoint["optimizer"])
    optimizer["state"] = {k: _rounded(v, torch.bfloat16) for k, v in optimizer["state"].items()}
    out["optimizer"] = optimizer
    out["compacted"] = "weights float16, optimizer state bfloat16 (training.compact): resumes, not bit-exactly"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path)
    args = parser.parse_args(argv)
    try:
        checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    except Exception as exc:  # missing, truncated, not a torch file, pickled code: one line, no traceback
        print(f"error: cannot read {args.checkpoint} ({type(exc).__name__})", file=sys.stderr)
        return 1
    if not {"model", "optimizer", "state"} <= set(checkpoint):
        print(f"error: {args.checkpoint} is not a training.train checkpoint", file=sys.stderr)
        return 1
    before = args.checkpoint.stat().st_size
    tmp = args.checkpoint.with_suffix(".pt.tmp")
    torch.save(compact(checkpoint), tmp)
    os.replace(tmp, args.checkpoint)
    print(f"{args.checkpoint}: {before / 1e6:.1f} MB -> {args.checkpoint.stat().st_size / 1e6:.1f} MB "
          f"(epoch {checkpoint['state']['epoch']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
