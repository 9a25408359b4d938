"""The "check this core" flag (issue 13): below which tumour-core expected Dice should a case be flagged?

    python -m benchmarks.core_flag [--choose 0,2]

Reads the out-of-fold per-case scores of ``benchmarks.uncertainty`` (``results/uncertainty_brats_cv.json``:
one fold network x identity and one flip per axis on the cases its fold held out; LGG:
``results/uncertainty_lgg_mix.json``, the fold network of each of the shipped ensemble's two recipes x flips) and writes ``results/core_flag.json``. No network runs, so it takes a
second and can be rerun whenever a fold is added to those files.

Discipline: the score and its threshold are chosen on the folds in ``--choose`` only (default 0 and 2)
and checked on every other fold there is (1 and 4 while fold 3 is missing); the chosen folds' numbers
are not an accuracy. Rules fixed before any threshold was tried:

- a case to catch ("target"): among the worst 10 % of its split by mean Dice (ceil(0.1 n)), or a
  misplaced core (``uncertainty_brats.misplaced_cores``: TC Dice < 0.3 with WT >= 0.7, core centroid
  >= 20 mm off, or in the other hemisphere);
- a good case: not a target and its tumour core right enough not to need a look (TC Dice >= 0.7;
  LGG: Dice >= 0.7); a good case flagged is a false alarm;
- flagged: score < threshold; thresholds 0.50, 0.51, ..., 0.99; chosen: the largest Youden J
  (share of targets flagged minus share of good cases flagged) on the chosen folds, ties to the
  lowest threshold (fewest flags); the score: the expected-Dice candidate with the largest J, ties
  to the first listed (the core's own expected Dice). The members' agreement of the core, thresholded
  the same way, is recorded as the baseline (the confidence the product already shows).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

from .common import RESULTS, command_line, machine_description, write_json
from .uncertainty_brats import misplaced_cores

GOOD_DICE = 0.7  # a core (LGG: tumour) at least this Dice is not one to check
THRESHOLDS = [round(0.5 + 0.01 * i, 2) for i in range(50)]
BRATS_CANDIDATES = ("expected_dice_TC", "expected_dice", "min_agreement_expected_TC")  # first = preferred on ties
LGG_CANDIDATES = ("expected_dice",)


def fold_of(row: dict) -> int:
    """The fold of a per-case row: its group reads 'fold <k> (out-of-fold)'."""
    found = re.match(r"fold (\d+)\b", row["group"])
    if not found:
        raise SystemExit(f"{row['case']}: group {row['group']!r} is not an out-of-fold group")
    return int(found.group(1))


def labelled(rows: list[dict], misplaced: set[str], good_key: str) -> list[dict]:
    """Each row with ``target`` (worst 10 % of these rows by mean Dice, or a misplaced core) and ``good``."""
    n_worst = max(1, math.ceil(0.1 * len(rows)))
    worst = {r["case"] for r in sorted(rows, key=lambda r: r["dice"])[:n_worst]}
    out = []
    for r in rows:
        target = r["case"] in worst or r["case"] in misplaced
        out.append({**r, "worst": r["case"] in worst, "misplaced": r["case"] in misplaced, "target": target,
                    "good": not target and r[good_key] >= GOOD_DICE})
    return out


def outcome(rows: list[dict], score: str, threshold: float) -> dict:
    """What flagging ``score < threshold`` does on ``rows`` (from :func:`labelled`)."""
    flagged = [r for r in rows if r[score] < threshold]

    def caught(key):
        return {"flagged": sum(r[key] for r in flagged), "of": sum(r[key] for r in rows)}

    good = caught("good")
    targets = caught("target")
    return {"threshold": threshold, "n_cases": len(rows), "n_flagged": len(flagged),
            "worst_10pct": caught("worst"), "misplaced_core": caught("misplaced"), "targets": targets,
            "good_false_alarms": good,
            "false_alarm_rate": good["flagged"] / good["of"] if good["of"] else None,
            "youden_j": _share(targets) - _share(good),
            "flagged_cases": sorted(r["case"] for r in flagged)}


def _share(counts: dict) -> float:
    return counts["flagged"] / counts["of"] if counts["of"] else 0.0


def best_threshold(rows: list[dict], score: str) -> dict:
    """The threshold of largest Youden J on ``rows``; ties to the lowest (fewest flags)."""
    outcomes = [outcome(rows, score, t) for t in THRESHOLDS]
    return max(outcomes, key=lambda o: (o["youden_j"], -o["threshold"]))


def study(rows: list[dict], choose: set[int], candidates, baseline: str, good_key: str) -> dict:
    """Choose the score and threshold on the ``choose`` folds, check them on the others."""
    misplaced = {m["case"] for m in misplaced_cores(rows)} if "dice_TC" in rows[0] else set()
    chosen_rows = labelled([r for r in rows if fold_of(r) in choose], misplaced, good_key)
    check_rows = labelled([r for r in rows if fold_of(r) not in choose], misplaced, good_key)
    if not chosen_rows or not check_rows:
        raise SystemExit(f"folds {sorted(choose)} leave no cases to choose on or none to check on")
    on_chosen = {score: best_threshold(chosen_rows, score) for score in (*candidates, baseline)}
    score = max(candidates, key=lambda s: (on_chosen[s]["youden_j"], -candidates.index(s)))
    threshold = on_chosen[score]["threshold"]
    base_threshold = on_chosen[baseline]["threshold"]
    return {
        "chosen_on_folds": sorted(choose), "checked_on_folds": sorted({fold_of(r) for r in check_rows}),
        "score": score, "threshold": threshold,
        "chosen_folds": on_chosen,  # every candidate's best threshold there: choosing, not accuracy
        "check_folds": outcome(check_rows, score, threshold),
        "baseline": {"score": baseline, "threshold": base_threshold,
                     "check_folds": outcome(check_rows, baseline, base_threshold)},
        "check_cases": [{k: r.get(k) for k in ("case", "group", "dataset", "dice", "dice_TC", score, baseline,
                                               "worst", "misplaced", "good")} for r in check_rows],
    }


def run(args) -> dict:
    choose = {int(k) for k in args.choose.split(",")}
    brats = json.loads(args.brats.read_text())
    out = {
        "what": "Per-case 'check this core' flag: a score below a threshold. Score and threshold chosen on "
                f"out-of-fold cases of folds {sorted(choose)} (largest Youden J: targets flagged minus good cases "
                "flagged), checked on the other folds. Target: worst 10% of the split by mean Dice, or a misplaced "
                f"core; good: not a target and TC Dice >= {GOOD_DICE} (LGG: Dice). Baseline: the core's agreement "
                "(the confidence's TC part) chosen the same way.",
        "command": command_line("core_flag", None),
        "sources": {"brats": str(args.brats.name), "brats_command": brats.get("command"),
                    "brats_members": sorted({r.get("members") for r in brats["per_case"]})},
        "brats": study(brats["per_case"], choose, BRATS_CANDIDATES, "agreement_TC", "dice_TC"),
    }
    if args.lgg.is_file():
        lgg = json.loads(args.lgg.read_text())
        if all("expected_dice" in r for r in lgg["per_case"]):
            out["sources"].update(lgg=str(args.lgg.name), lgg_command=lgg.get("command"))
            out["lgg"] = study(lgg["per_case"], choose, LGG_CANDIDATES, "confidence", "dice")
    out["machine"] = machine_description()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--choose", default="0,2", help="folds to choose the score and threshold on (default 0,2)")
    parser.add_argument("--brats", type=Path, default=RESULTS / "uncertainty_brats_cv.json")
    # the shipped LGG ensemble's recipes: each case's two out-of-fold networks under every flip
    parser.add_argument("--lgg", type=Path, default=RESULTS / "uncertainty_lgg_mix.json")
    parser.add_argument("--output", type=Path, default=RESULTS / "core_flag.json")
    args = parser.parse_args(argv)
    result = run(args)
    write_json(args.output, result)
    for name in ("brats", "lgg"):
        if name in result:
            s, c = result[name], result[name]["check_folds"]
            print(f"{name}: {s['score']} < {s['threshold']:.2f} (chosen on folds {s['chosen_on_folds']}); on folds "
                  f"{s['checked_on_folds']}: worst 10% {c['worst_10pct']['flagged']}/{c['worst_10pct']['of']}, "
                  f"misplaced cores {c['misplaced_core']['flagged']}/{c['misplaced_core']['of']}, false alarms "
                  f"{c['good_false_alarms']['flagged']}/{c['good_false_alarms']['of']}", file=sys.stderr)
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
