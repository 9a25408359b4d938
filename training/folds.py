"""Five-fold cross-validation by patient, stratified by source, written once to training/folds.json.

    python -m training.folds --brats-root /data/brats      # LGG from $BRAINSEG_DATA, BraTS from the roots

Every labelled case is in exactly one fold. Within each source (LGG: the TCGA institution; BraTS: the
dataset and, for BraTS 2018, the institution) cases are shuffled with a fixed seed and dealt to the
folds in turn, continuing where the previous source stopped, so every fold holds each source in
proportion. The file is never rewritten unless --new is given: training, out-of-fold evaluation and
every choice made on out-of-fold predictions must agree on which model never saw which case.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

from .data import data_root, list_brats_cases, list_lgg_patients

FOLDS_FILE = Path(__file__).parent / "folds.json"
N_FOLDS = 5


def source_of(dataset: str, name: str, folder: Path | None = None) -> str:
    """The stratum a case belongs to: institution for LGG, dataset (+ institution for 2018) for BraTS."""
    if dataset == "lgg":
        return "TCGA_" + name.split("_")[1]
    if name.startswith("BraTS-SSA"):
        return "BraTS-Africa-2023"
    if name.startswith("BraTS2021"):
        return "BraTS-2021"
    if name.startswith("BraTS19"):
        return "BraTS-2019"
    match = re.match(r"Brats18_(2013|CBICA|TCIA)", name)
    if match:
        return f"BraTS-2018-{match[1]}"
    return "BraTS-other"


def dataset_group(name: str) -> str:
    """The reporting group of a BraTS case: 2018 (incl. 2019), 2021, or Africa."""
    source = source_of("brats", name)
    if source.startswith("BraTS-2018") or source == "BraTS-2019":
        return "BraTS 2018/2019"
    return {"BraTS-2021": "BraTS 2021", "BraTS-Africa-2023": "BraTS-Africa 2023"}.get(source, "other")


def make_folds(names: list[str], dataset: str, seed: int, n_folds: int = N_FOLDS) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    by_source: dict[str, list[str]] = {}
    for name in sorted(names):
        by_source.setdefault(source_of(dataset, name), []).append(name)
    folds: list[list[str]] = [[] for _ in range(n_folds)]
    turn = 0
    for source in sorted(by_source):
        for name in rng.permutation(by_source[source]):
            folds[turn % n_folds].append(str(name))
            turn += 1
    return [sorted(f) for f in folds]


def load_folds(dataset: str) -> list[list[str]]:
    return json.loads(FOLDS_FILE.read_text())[dataset]["folds"]


def fold_split(dataset: str, fold: int) -> dict[str, list[str]]:
    """Training cases (the other folds) and held-out cases (this fold) of one fold."""
    folds = load_folds(dataset)
    if not 0 <= fold < len(folds):
        raise SystemExit(f"error: fold {fold} does not exist (0..{len(folds) - 1})")
    train = sorted(n for k, f in enumerate(folds) if k != fold for n in f)
    return {"train": train, "val": list(folds[fold])}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--brats-root", type=Path, action="append", default=[])
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--new", action="store_true", help="rewrite folds that already exist")
    args = parser.parse_args(argv)
    existing = json.loads(FOLDS_FILE.read_text()) if FOLDS_FILE.exists() else {}
    found = {"lgg": list(list_lgg_patients(data_root()))}
    if args.brats_root:
        found["brats"] = list(list_brats_cases(args.brats_root))
    for dataset, names in found.items():
        if dataset in existing and not args.new:
            known = {n for f in existing[dataset]["folds"] for n in f}
            if known != set(names):
                print(f"warning: {dataset}: cases on disk differ from {FOLDS_FILE.name} "
                      f"({len(set(names) - known)} new, {len(known - set(names))} missing); kept the file", file=sys.stderr)
            continue
        folds = make_folds(names, dataset, args.seed)
        existing[dataset] = {
            "seed": args.seed,
            "stratified_by": "TCGA institution" if dataset == "lgg" else "dataset (BraTS 2018: institution)",
            "sources": {s: sum(source_of(dataset, n) == s for n in names) for s in sorted({source_of(dataset, n) for n in names})},
            "folds": folds,
        }
        print(f"{dataset}: {len(names)} cases in {N_FOLDS} folds of {[len(f) for f in folds]}")
    FOLDS_FILE.write_text(json.dumps(existing, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
