"""Write the patient split (once) and build the preprocessed cache for one dataset.

    python training/prepare.py lgg   --cache cache/          # kaggle_3m patients from $BRAINSEG_DATA
    python training/prepare.py brats --cache cache/ --brats-root /path/with/BraTS2018

The split is by patient, seeded, and written to training/split.json; it is never regenerated
unless --new-split is given, so training and evaluation always agree on which patients are unseen.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from data import SPLIT_FILE, cache_brats, cases_of_config, cache_lgg, data_root, list_brats_cases, list_lgg_patients, make_split  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=["lgg", "brats"])
    parser.add_argument("--cache", type=Path, default=Path("cache"))
    parser.add_argument("--brats-root", type=Path, action="append", default=[],
                        help="folder(s) holding BraTS case folders (default: $BRAINSEG_DATA/../BraTS unpacked)")
    parser.add_argument("--val-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--new-split", action="store_true", help="write a new split for this dataset")
    parser.add_argument("--only", nargs="*", help="cache only these cases")
    parser.add_argument("--config", type=Path, help="cache only the cases this training config uses")
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

    splits = json.loads(SPLIT_FILE.read_text()) if SPLIT_FILE.exists() else {}
    if args.dataset not in splits or args.new_split:
        splits[args.dataset] = make_split(list(cases), args.val_fraction, args.seed)
        splits[args.dataset]["seed"] = args.seed
        SPLIT_FILE.write_text(json.dumps(splits, indent=1) + "\n")
        print(f"wrote {args.dataset} split to {SPLIT_FILE}")
    split = splits[args.dataset]
    unknown = set(split["train"] + split["val"]) - set(cases)
    if unknown and not (args.only or args.config):
        print(f"error: split names cases not found on disk: {sorted(unknown)[:5]}", file=sys.stderr)
        return 1

    out_dir = args.cache / args.dataset
    out_dir.mkdir(parents=True, exist_ok=True)
    wanted = args.only or split["train"] + split["val"]
    if args.config:
        train_names, val_names = cases_of_config(json.loads(args.config.read_text()), split)
        wanted = train_names + val_names
    build = cache_lgg if args.dataset == "lgg" else cache_brats
    t0 = time.time()
    for i, name in enumerate(sorted(wanted)):
        out = out_dir / f"{name}.npz"
        if out.exists():
            continue
        build(cases[name], out)
        print(f"[{i + 1}/{len(wanted)}] {name} ({time.time() - t0:.0f}s)", flush=True)
    print(f"cache ready: {out_dir} ({len(wanted)} cases)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
