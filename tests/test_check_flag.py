"""The "check this core" flag (engine.check_flag): its rule, where its threshold comes from, and that the
benchmark choosing it never looks at the folds it is checked on. The flag on a real BraTS case is in
test_uncertainty_misplaced.py; on a real LGG run in the CLI, report and widget tests."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import core_flag
from napari_brainseg.engine.check_flag import CHECK_THRESHOLDS, CheckFlag, check_flag
from napari_brainseg.engine.uncertainty import MemberStats

RESULTS = core_flag.RESULTS / "core_flag.json"


def test_flag_rule_on_member_stats():
    """Members that hesitate alike over the core (probability 0.55 under every flip) agree perfectly, yet
    their mean expects only 2 * 0.55 / 1.55 = 0.71 of its core: flagged; sure members raise nothing."""
    members = np.zeros((3, 6, 8, 8), np.float32)  # (K, z, y, x) = TC, WT, ET
    members[0, 2:4, 2:6, 2:6] = 0.55
    members[1, 1:5, 1:7, 1:7] = 1.0
    stats = MemberStats(0.5)
    for _ in range(4):
        stats.add(members)
    expected = dict(zip(("TC", "WT", "ET"), stats.expected_dice_per_channel()))
    assert stats.agreement_per_channel()[0] == 1.0 and expected["TC"] == pytest.approx(1.1 / 1.55)
    flag = check_flag(expected, tumour_found=True)
    assert flag.region == "TC" and flag.threshold == CHECK_THRESHOLDS["TC"]
    assert flag.raised and flag.expected_dice == expected["TC"] < CHECK_THRESHOLDS["TC"]
    assert CheckFlag("TC", 0.74, 0.75).raised and not CheckFlag("TC", 0.75, 0.75).raised
    sure = MemberStats(0.5)
    sure.add((members > 0.5).astype(np.float32))
    assert not check_flag(dict(zip(("TC", "WT", "ET"), sure.expected_dice_per_channel())), True).raised
    # no members, nothing found, or no watched channel: no flag at all
    assert check_flag(None, True) is None and check_flag(expected, tumour_found=False) is None
    assert check_flag({"WT": 0.1}, True) is None
    assert check_flag({"tumour": 0.5}, True).threshold == CHECK_THRESHOLDS["tumour"]


def test_flag_wording_columns_and_record():
    raised, calm = CheckFlag("TC", 0.42, 0.75), CheckFlag("tumour", 0.912, 0.77)  # any threshold
    assert raised.line().startswith("Check the tumour core: the model's own expected core Dice is 0.42 (below 0.75")
    assert raised.summary() == "check the tumour core (expected core Dice 0.42, below 0.75)"
    assert calm.summary() == "expected Dice 0.912" and "Check" not in calm.line() and "0.77" in calm.line()
    assert raised.columns() == {"check_region": "TC", "check_expected_dice": 0.42, "check_flag": "yes"}
    assert calm.columns()["check_flag"] == "no"
    assert CheckFlag.from_record(raised.as_record()) == raised and CheckFlag.from_record(None) is None
    json.dumps(raised.as_record())  # layer metadata stays plain values


def test_package_thresholds_are_the_benchmarks_choice():
    """The one constant in the package is what benchmarks/core_flag.py chose (results/core_flag.json)."""
    result = json.loads(RESULTS.read_text())
    regions = {"expected_dice_TC": "TC", "min_agreement_expected_TC": "TC", "expected_dice": "tumour"}
    assert result["brats"]["score"] == "expected_dice_TC"  # the score the package computes
    assert CHECK_THRESHOLDS[regions[result["brats"]["score"]]] == result["brats"]["threshold"]
    assert CHECK_THRESHOLDS["tumour"] == result["lgg"]["threshold"]
    assert result["brats"]["chosen_on_folds"] == [0, 2] and 0 not in result["brats"]["checked_on_folds"]


def test_benchmark_reruns_and_never_chooses_on_the_checked_folds(tmp_path):
    """Rerunning gives the committed result; scrambling every score of the checked folds changes their
    outcome but not the score or threshold chosen."""
    out = tmp_path / "core_flag.json"
    assert core_flag.main(["--output", str(out)]) == 0
    fresh, committed = json.loads(out.read_text()), json.loads(RESULTS.read_text())
    for name in ("brats", "lgg"):
        assert fresh[name] == committed[name]
    brats = json.loads(core_flag.RESULTS.joinpath("uncertainty_brats_cv.json").read_text())
    rng = np.random.default_rng(0)
    for row in brats["per_case"]:
        if core_flag.fold_of(row) not in (0, 2):
            for key in core_flag.BRATS_CANDIDATES:
                row[key] = float(rng.uniform(0.5, 1.0))
    scrambled = tmp_path / "scrambled.json"
    scrambled.write_text(json.dumps(brats))
    assert core_flag.main(["--brats", str(scrambled), "--output", str(out)]) == 0
    again = json.loads(out.read_text())["brats"]
    assert (again["score"], again["threshold"], again["chosen_folds"]) == (
        committed["brats"]["score"], committed["brats"]["threshold"], committed["brats"]["chosen_folds"])
    assert again["check_folds"] != committed["brats"]["check_folds"]


def test_benchmark_counts():
    """Targets, good cases and false alarms counted as the benchmark's docstring says, on a toy split."""
    rows = [{"case": f"c{i}", "group": f"fold {i % 2} (out-of-fold)", "dice": d, "dice_TC": tc, "score": s}
            for i, (d, tc, s) in enumerate([(0.2, 0.1, 0.5), (0.9, 0.9, 0.6), (0.8, 0.8, 0.95), (0.7, 0.5, 0.7),
                                            (0.85, 0.9, 0.9), (0.6, 0.65, 0.99)])]
    labelled = core_flag.labelled(rows, misplaced={"c3"}, good_key="dice_TC")
    assert [r["target"] for r in labelled] == [True, False, False, True, False, False]
    assert [r["good"] for r in labelled] == [False, True, True, False, True, False]
    got = core_flag.outcome(labelled, "score", 0.75)
    assert got["worst_10pct"] == {"flagged": 1, "of": 1} and got["misplaced_core"] == {"flagged": 1, "of": 1}
    assert got["good_false_alarms"] == {"flagged": 1, "of": 3} and got["false_alarm_rate"] == pytest.approx(1 / 3)
    assert got["youden_j"] == pytest.approx(1 - 1 / 3) and got["flagged_cases"] == ["c0", "c1", "c3"]
    best = core_flag.best_threshold(labelled, "score")
    # c0 and c3 both flagged from 0.71 on, with c1: J 2/3 up to 0.90, then c4 too; ties go to the lowest
    assert best["threshold"] == 0.71 and best["youden_j"] == pytest.approx(2 / 3)
