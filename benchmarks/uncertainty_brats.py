"""BraTS half of ``benchmarks.uncertainty``: does the confidence rank BraTS cases by their Dice, and
does a misplaced tumour core stand out?

    PYTHONPATH=src python -m benchmarks.uncertainty --unseen                 # shipped brats-unet3d
    PYTHONPATH=src python -m benchmarks.uncertainty --cv-dir training/cv/brats-unet3d-cv [--folds 0]

Each case of the preprocessed cache (``training.prepare``: the package's own reorientation, crop and
z-score) is predicted by every network given under every flip (identity plus one flip per spatial
axis), the members streamed through ``engine.uncertainty.flip_member_stats`` as ``segment(...,
uncertainty=True)`` does; the labels are their mean after the model's threshold and cleanup, the
regions scored as the written labels give them back (ET inside TC inside WT, as ``training.cv_scores``). Per
case: Dice per region (TC, WT, ET; ``engine.metrics.dice_per_channel``) and the confidence (mean over
the regions, and per region). Summaries: Spearman between the confidence and each region's Dice and
the mean Dice, and how many of the worst 10 % by mean Dice are among the 10 % least confident; per
dataset group (``training.folds.dataset_group``) and pooled. "Misplaced core" lists the cases whose
predicted tumour core misses the true one (TC Dice < 0.3 with WT Dice >= 0.7, its centroid >= 20 mm
from the true core's, or in the other hemisphere) with their confidence rank.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from .common import REPO, command_line, machine_description
from .uncertainty import held_out_patients, load_fold_net, ranking

FAR_MM = 20.0  # a core centroid this far from the true one is "misplaced" (a lobe is ~5-10 cm across)


def lr_axis(orientation: str) -> int:
    """The array axis running left-right: axcodes name the NIfTI (i, j, k) axes, arrays are (z, y, x) =
    (k, j, i), so 'LPS' -> 2 (the brain masks of the cache are mirror-symmetric along that axis)."""
    return 2 - next(i for i, code in enumerate(orientation) if code in "LR")


def core_geometry(pred_tc: np.ndarray, true_tc: np.ndarray, brain: np.ndarray, spacing, lr: int) -> dict:
    """Where the predicted core lies relative to the true one: centroid distance (mm) and whether
    it is in the other hemisphere (centroid on the other side of the brain's centroid, left-right)."""
    if not pred_tc.any() or not true_tc.any():
        return {"core_centroid_mm": None, "core_other_hemisphere": None}
    scale = np.asarray(spacing, float)
    pred_c, true_c = (np.argwhere(m).mean(0) * scale for m in (pred_tc, true_tc))
    mid = np.argwhere(brain).mean(0)[lr] * scale[lr]
    return {"core_centroid_mm": float(np.linalg.norm(pred_c - true_c)),
            "core_other_hemisphere": bool((pred_c[lr] - mid) * (true_c[lr] - mid) < 0)}


def candidate_scores(stats) -> dict[str, list[float]]:
    """Per-channel scores compared as the confidence (issue 13: a core every flip misplaces alike):
    the members' agreement, the mean probability's expected Dice of its own mask, and the lower of the two."""
    agreement, expected = stats.agreement_per_channel(), stats.expected_dice_per_channel()
    return {"agreement": agreement, "expected_dice": expected,
            "min_agreement_expected": [min(a, e) for a, e in zip(agreement, expected)]}


CANDIDATES = ("agreement", "expected_dice", "min_agreement_expected")


def brats_case_scores(predicts, case: dict, spec) -> dict:
    """Confidence and Dice per region of one cached case under every network x every flip."""
    from napari_brainseg.conventions import brats_labels_to_regions, brats_regions_to_labels
    from napari_brainseg.engine.metrics import dice_per_channel
    from napari_brainseg.engine.preprocess import postprocess
    from napari_brainseg.engine.uncertainty import flip_member_stats
    from training.folds import dataset_group

    stats = flip_member_stats(predicts, case["image"], (1, 2, 3), (1, 2, 3), spec.threshold, channel_axis=0)
    # scored as the written labels give the regions back (ET inside TC inside WT), as training.cv_scores does
    pred = brats_labels_to_regions(brats_regions_to_labels(postprocess(stats.mean, spec), "brats2018"), "brats2018")
    truth = case["label"].astype(bool)
    dice = dice_per_channel(pred, truth)
    confidence = stats.confidence_per_channel()
    candidates = candidate_scores(stats)
    tc = spec.out_channels.index("TC")
    row = {"case": case["name"], "dataset": dataset_group(case["name"]), "members": stats.n,
           **{f"dice_{r}": d for r, d in zip(spec.out_channels, dice)}, "dice": float(np.mean(dice)),
           "confidence": float(np.mean(confidence)),
           **{f"confidence_{r}": c for r, c in zip(spec.out_channels, confidence)},
           **{name: float(np.mean(values)) for name, values in candidates.items()},
           **{f"{name}_{r}": c for name, values in candidates.items() for r, c in zip(spec.out_channels, values)},
           **{f"truth_voxels_{r}": int(truth[k].sum()) for k, r in enumerate(spec.out_channels)},
           **{f"pred_voxels_{r}": int(pred[k].sum()) for k, r in enumerate(spec.out_channels)}}
    brain = np.any(case["image"] != 0, axis=0)
    return {**row, **core_geometry(pred[tc], truth[tc], brain, spec.spacing_mm, lr_axis(spec.orientation))}


def summarise(rows: list[dict], regions=("TC", "WT", "ET")) -> dict:
    """Spearman of the confidence with each region's Dice and the mean Dice; worst 10 % by mean Dice
    among the 10 % least confident; each region's own confidence against its Dice (secondary)."""
    out = {"n_cases": len(rows), "mean_dice": float(np.mean([r["dice"] for r in rows]))}
    if len(rows) < 3:
        return out  # a rank correlation of two cases says nothing
    out["confidence_vs_mean_dice"] = ranking(rows, "confidence", dice_key="dice")
    out["confidence_vs_region_dice"] = {r: ranking(rows, "confidence", dice_key=f"dice_{r}")["spearman_rho"]
                                        for r in regions}
    out["region_confidence_vs_region_dice"] = {r: ranking(rows, f"confidence_{r}", dice_key=f"dice_{r}")["spearman_rho"]
                                               for r in regions}
    if all(name in r for r in rows for name in CANDIDATES):  # rows of older runs lack them
        out["candidates_vs_mean_dice"] = {name: ranking(rows, name, dice_key="dice") for name in CANDIDATES}
    return out


def misplaced_cores(rows: list[dict]) -> list[dict]:
    """Cases whose predicted core misses the true one, with their confidence rank (1 = least confident)."""
    order = sorted(range(len(rows)), key=lambda i: rows[i]["confidence"])
    rank = {i: n + 1 for n, i in enumerate(order)}
    found = []
    for i, r in enumerate(rows):
        reasons = []
        if r["dice_TC"] < 0.3 and r["dice_WT"] >= 0.7:
            reasons.append("TC Dice < 0.3 with WT Dice >= 0.7")
        if r.get("core_centroid_mm") is not None and r["core_centroid_mm"] >= FAR_MM:
            reasons.append(f"core centroid {r['core_centroid_mm']:.0f} mm from the true core's")
        if r.get("core_other_hemisphere"):
            reasons.append("core in the other hemisphere")
        if reasons:
            found.append({"case": r["case"], "dataset": r["dataset"], "dice_TC": r["dice_TC"], "dice_WT": r["dice_WT"],
                          "confidence": r["confidence"], "confidence_TC": r["confidence_TC"],
                          "confidence_rank": rank[i], "of": len(rows), "reasons": reasons,
                          **{f"{name}_rank": candidate_rank(rows, i, name) for name in CANDIDATES if name in r}})
    return sorted(found, key=lambda f: f["confidence_rank"])


def candidate_rank(rows: list[dict], i: int, name: str) -> int:
    """Rank of case i by the score ``name`` (1 = least confident)."""
    return 1 + sum(r.get(name, np.inf) < rows[i][name] for r in rows)


def groups_to_run(args) -> tuple[list, dict]:
    """(label, networks, spec, cfg, cases) per group, and what the result file says about them."""
    from napari_brainseg.engine.registry import get_spec, load_model
    from training.evaluate import unseen_cases
    from training.folds import load_folds
    from training.train import DEFAULTS, candidate_spec

    if args.unseen:
        spec = get_spec("brats-unet3d")
        card = spec.card()
        try:  # the sliding window as shipped inference runs it, as training.evaluate --unseen does
            cfg = {**DEFAULTS, **card["training"]["config"], "sw_overlap": spec.sw_overlap, "sw_batch_size": spec.batch_size}
            cases = unseen_cases(card, "brats")
        except KeyError:
            cases = []
        if not cases:  # e.g. a fold ensemble: every pool case trained one of its networks
            raise SystemExit(f"error: no case in training/folds.json is unseen by {spec.name} (a fold ensemble? "
                             "score its folds out-of-fold with --cv-dir)")
        model = load_model(spec.name, "cpu")
        nets = list(model) if spec.members > 1 else [model]  # every network of an ensemble is its own member
        return [(f"{spec.name} (shipped), unseen pool", nets, spec, cfg, cases)], {
            "model": f"{spec.name} (shipped float16 weights, {len(nets)} network(s))",
            "cases": "training/folds.json cases in neither its train_cases nor val_cases (training.evaluate.unseen_cases)"}
    config = args.config or REPO / "training" / "configs" / f"{args.cv_dir.name}.json"
    cfg = {**DEFAULTS, **json.loads(config.read_text())}
    spec = candidate_spec(cfg)
    folds = load_folds("brats")
    wanted = [int(k) for k in args.folds.split(",")] if args.folds else range(len(folds))
    groups = []
    for k in wanted:
        weights, record = args.cv_dir / f"fold{k}.pt", args.cv_dir / f"fold{k}.json"
        if weights.is_file() and record.is_file():
            cases = held_out_patients(json.loads(record.read_text()), folds[k], k)
            groups.append((f"fold {k} (out-of-fold)", [load_fold_net(weights, spec)], spec, cfg, cases))
        else:
            print(f"fold {k}: {weights} not there yet, skipped", file=sys.stderr)
    return groups, {"model": f"{args.cv_dir.name} fold models (float16 fold<k>.pt)",
                    "cases": "each fold's held_out_cases, scored by the fold model that did not train on them"}


def network_on(net, spec, cfg, device):
    """(C, z, y, x) volume -> probabilities of one network, its sliding window as ``cfg`` says."""
    from training.train import predict_case

    return lambda image: predict_case(net, {"image": image}, spec, cfg, device)


def run_brats(args) -> dict:
    import torch

    from training.data import load_cached

    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    groups, about = groups_to_run(args)
    rows = []
    if args.keep and args.output.is_file():  # folds measured before (same code), not recomputed
        fresh = {label for label, *_ in groups}
        rows = [r for r in json.loads(args.output.read_text())["per_case"] if r["group"] not in fresh]
    for label, nets, spec, cfg, cases in groups:
        for name in cases[: args.limit]:
            started = time.perf_counter()
            case = load_cached(args.cache / f"{name}.npz", "brats")
            predicts = [network_on(net, spec, cfg, device) for net in nets]
            row = {"group": label, **brats_case_scores(predicts, case, spec)}
            rows.append(row)
            print(f"{label}: {name}: dice TC/WT/ET {row['dice_TC']:.3f}/{row['dice_WT']:.3f}/{row['dice_ET']:.3f} "
                  f"confidence {row['confidence']:.3f} ({time.perf_counter() - started:.1f} s)", file=sys.stderr)
    if not rows:
        raise SystemExit("no BraTS case scored (no finished fold, or --limit 0)")
    datasets = sorted({r["dataset"] for r in rows})
    return {
        "what": "BraTS: Spearman of the per-case confidence (mean pairwise Dice of the members' masks, mean over TC/WT/ET; "
                "members = every network x identity and one flip per axis) with the Dice of the members' mean after "
                "threshold and cleanup; worst 10% by mean Dice vs the 10% least confident.",
        "command": command_line("uncertainty", None),
        **about,
        "cv_dir": None if args.unseen else str(args.cv_dir),
        "groups": sorted({r["group"] for r in rows}),
        "pooled": summarise(rows),
        "by_dataset": {d: summarise([r for r in rows if r["dataset"] == d]) for d in datasets},
        "misplaced_core": misplaced_cores(rows),
        "per_case": rows,
        "machine": machine_description(),
    }
