"""Build the preprocessed cache for one dataset (every labelled case found, or the ones named).

    python -m training.prepare lgg   --cache cache/          # kaggle_3m patients from $BRAINSEG_DATA
    python -m training.prepare brats --cache cache/ --brats-root /data/brats   # all BraTS folders below

Cases are read with the package's own readers and preprocessed with its own transforms (BraTS:
reoriented to LPS, cropped to the brain, z-scored), so training sees what inference feeds the
network. Existing cache files are kept; delete the folder to rebuild.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .data import cache_brats, cache_lgg, cases_of_config, data_root, list_brats_cases, list_lgg_patients, load_split
from .folds import fold_split


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["lgg", "brats"])
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument("--brats-root", type=Path, action="append", default=[],
                        help="folder(s) holding BraTS case folders, searched recursively")
    parser.add_argument("--only", nargs="*", help="cache only these cases")
    parser.add_argument("--config", type=Path, help="cache only the cases this training config uses")
    parser.add_argument("--fold", type=int, help="with --config: the cross-validation fold it runs")
    args = parser.parse_args(argv)

    if args.dataset == "lgg":
        cases = list_lgg_patients(data_root())
    else:
        if not args.brats_root:
            parser.error("--brats-root is required for brats (unpack with shared/data/brats/unpack.sh)")
        cases = list_brats_cases(args.brats_root)
    if not cases:
        print(f"error: no {args.dataset} cases found", file=sys.stderr)
        return 1
    wanted = list(args.only or cases)
    if args.config:
        split = fold_split(args.dataset, args.fold) if args.fold is not None else load_split(args.dataset)
        train_names, val_names = cases_of_config(json.loads(args.config.read_text()), split)
        wanted = train_names + val_names
    unknown = sorted(set(wanted) - set(cases))
    if unknown:
        print(f"error: cases not found on disk: {unknown[:5]}", file=sys.stderr)
        return 1

    out_dir = args.cache / args.dataset
    out_dir.mkdir(parents=True, exist_ok=True)
    build = cache_lgg if args.dataset == "lgg" else cache_brats
    t0 = time.time()
    for i, name in enumerate(sorted(wanted)):
        out = out_dir / f"{name}.npz"
        if out.exists():
            continue
        tmp = out.with_name(out.stem + ".part.npz")
        build(cases[name], tmp)
        tmp.replace(out)
        print(f"[{i + 1}/{len(wanted)}] {name} ({time.time() - t0:.0f}s)", flush=True)
    print(f"cache ready: {out_dir} ({len(wanted)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
