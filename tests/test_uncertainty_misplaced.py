"""A tumour core in the wrong place, on a real BraTS case through the real inference path.

The confidence is the members' agreement (every network under every flip). So a core that every
member puts in the other hemisphere - what a network that is confidently wrong gives, since its flips
agree - is NOT flagged, while a core that one member alone moves there is. benchmarks.uncertainty
(``--unseen``, ``--cv-dir``) measures how often real predictions misplace the core and how they rank.
"""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.uncertainty_brats import FAR_MM, core_geometry, lr_axis, misplaced_cores
from napari_brainseg.engine.uncertainty import MemberStats

from .conftest import BRATS18_CASE
from .helpers import nibabel_zyx


@pytest.fixture(scope="module")
def real_members(brats18_case):
    """segment_case(uncertainty=True) on the real 2018 case, with each member it streams kept."""
    from napari_brainseg.engine import uncertainty
    from napari_brainseg.engine.segment import segment_case

    members, add = [], uncertainty.MemberStats.add

    def keep(self, probabilities):
        members.append(np.array(probabilities, np.float32))
        add(self, probabilities)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(uncertainty.MemberStats, "add", keep)
        # one network under its four flips: what the agreement sees is the same for each network of an ensemble
        result, case = segment_case(brats18_case, device="cpu", uncertainty=True, fast=True)
    return result, case, members


def stats_of(members, threshold) -> MemberStats:
    stats = MemberStats(threshold)
    for m in members:
        stats.add(m)
    return stats


def test_a_core_every_member_misplaces_is_not_flagged_one_member_moving_it_is(real_members, brats18_case):
    from napari_brainseg.conventions import brats_labels_to_regions, brats_regions_to_labels
    from napari_brainseg.engine.metrics import region_dice
    from napari_brainseg.engine.preprocess import postprocess, preprocess_brats, uncrop
    from napari_brainseg.engine.registry import get_spec

    result, case, members = real_members
    spec = get_spec(result.model)
    tc, et = spec.out_channels.index("TC"), spec.out_channels.index("ET")
    assert len(members) == 4  # identity + one flip per axis, as the widget runs one network
    assert stats_of(members, spec.threshold).confidence() == pytest.approx(result.confidence, abs=1e-12)
    x, box = preprocess_brats(case.model_input())
    shape = result.labels.shape

    def labels_of(ms):
        regions = uncrop(postprocess(stats_of(ms, spec.threshold).mean, spec), box, shape)
        return brats_regions_to_labels(regions, result.label_convention)

    np.testing.assert_array_equal(labels_of(members), result.labels)  # the recorded members are the real run's
    truth = nibabel_zyx(brats18_case / f"{BRATS18_CASE}_seg.nii.gz")
    axis = lr_axis(spec.orientation)
    # 40 mm across the brain's left-right midline: the core of every member lands in the other hemisphere
    core = np.argwhere(stats_of(members, spec.threshold).mean[tc] > spec.threshold_of("TC"))[:, axis].mean()
    midline = np.argwhere(x[0] != 0)[:, axis].mean()
    shift = int(round(40 / spec.spacing_mm[axis])) * (1 if core < midline else -1)

    def core_elsewhere(member):  # the core (TC, and ET inside it) moved; the oedema stays
        moved = member.copy()
        for k in (tc, et):
            moved[k] = np.roll(member[k], shift, axis)
        return moved

    everyone = [core_elsewhere(m) for m in members]
    one = [core_elsewhere(members[0]), *members[1:]]
    before, after = region_dice(result.labels, result.label_convention, truth), region_dice(
        labels_of(everyone), result.label_convention, truth)
    # where it went: the other hemisphere, far from the true core
    moved_tc = brats_labels_to_regions(labels_of(everyone), result.label_convention)[tc]
    true_tc = brats_labels_to_regions(truth, result.label_convention)[tc]
    where = core_geometry(moved_tc, true_tc, case.model_input()[0] != 0, spec.spacing_mm, axis)
    assert moved_tc.any() and where["core_other_hemisphere"] and where["core_centroid_mm"] >= FAR_MM
    assert before["TC"] > 0.7 and after["TC"] < 0.1
    # every member agrees on the wrong core: the confidence cannot tell (moving all keeps every overlap)
    assert stats_of(everyone, spec.threshold).confidence() == pytest.approx(result.confidence, abs=1e-12)
    # one member disagreeing about where the core is: only the pairs without it still agree on the core
    # ((M - 2) / M of them: half with one network's 4 flips)
    alone, m = stats_of(one, spec.threshold), len(members)
    agreed = stats_of(members, spec.threshold).confidence_per_channel()[tc]
    assert alone.confidence_per_channel()[tc] < agreed * (m - 2) / m + 0.05
    assert alone.confidence() < result.confidence - (0.1 if m == 4 else 0.0)


def test_misplaced_core_criteria_and_ranks():
    rows = [{"case": c, "dataset": "d", "dice_TC": tc, "dice_WT": wt, "confidence": conf, "confidence_TC": conf,
             "core_centroid_mm": far, "core_other_hemisphere": other}
            for c, tc, wt, conf, far, other in [("missed core", 0.1, 0.8, 0.9, 5.0, False),
                                                ("far core", 0.5, 0.6, 0.7, 25.0, False),
                                                ("other side", 0.0, 0.5, 0.95, 60.0, True),
                                                ("fine", 0.9, 0.9, 0.8, 1.0, False),
                                                ("no core", 0.0, 0.2, 0.5, None, None)]]
    found = {f["case"]: f for f in misplaced_cores(rows)}
    assert set(found) == {"missed core", "far core", "other side"}
    assert [found[c]["confidence_rank"] for c in ("far core", "missed core", "other side")] == [2, 4, 5]
    assert len(found["other side"]["reasons"]) == 2  # far and in the other hemisphere
    brain = np.ones((4, 6, 10), bool)
    left, right = np.zeros_like(brain), np.zeros_like(brain)
    left[1, 2, 1], right[1, 2, 8] = True, True
    assert core_geometry(left, right, brain, (1.0, 1.0, 2.0), 2) == {"core_centroid_mm": 14.0, "core_other_hemisphere": True}
    assert core_geometry(left, left, brain, (1.0, 1.0, 1.0), 2)["core_other_hemisphere"] is False
    assert lr_axis("LPS") == 2 and lr_axis("RAS") == 2 and lr_axis("SLP") == 1


def test_check_flag_of_the_real_case_and_of_a_core_every_member_hesitates_over(real_members, tmp_path):
    """The run's expected Dice and "check this core" flag are those of its real members. The same members
    with every core probability over the threshold pulled close to it, alike: each member's masks, hence
    the agreement (the confidence), stay exactly the same, yet the expected core Dice drops below the
    threshold and the flag goes up, in volumes.csv's columns and the report."""
    from dataclasses import replace

    from napari_brainseg.case_report import case_report
    from napari_brainseg.engine.check_flag import CHECK_THRESHOLDS, check_flag
    from napari_brainseg.engine.registry import get_spec
    from napari_brainseg.engine.volumes import COLUMNS, case_rows
    from napari_brainseg.io.report import render

    result, case, members = real_members
    spec = get_spec(result.model)
    tc, t = spec.out_channels.index("TC"), spec.threshold_of("TC")
    stats = stats_of(members, spec.threshold)
    expected = dict(zip(spec.out_channels, stats.expected_dice_per_channel()))
    assert result.expected_dice == pytest.approx(expected, abs=1e-12)
    assert result.check == check_flag(expected, tumour_found=True) and result.check.region == "TC"
    assert result.check.raised is (expected["TC"] < CHECK_THRESHOLDS["TC"])

    def hesitant(member):
        out = member.copy()
        out[tc] = np.where(member[tc] > t, t + 0.1 * (member[tc] - t), member[tc])  # still over t, barely
        return out

    unsure = stats_of([hesitant(m) for m in members], spec.threshold)
    assert unsure.agreement_per_channel() == stats.agreement_per_channel()
    unsure_expected = dict(zip(spec.out_channels, unsure.expected_dice_per_channel()))
    assert unsure_expected["TC"] < min(expected["TC"], CHECK_THRESHOLDS["TC"])
    assert unsure_expected["WT"] == expected["WT"]
    flagged = replace(result, expected_dice=unsure_expected, check=check_flag(unsure_expected, True))
    assert flagged.check.raised and flagged.check.summary().startswith("check the tumour core (expected core Dice ")
    rows = case_rows(flagged, case)
    assert list(COLUMNS[-3:]) == ["check_region", "check_expected_dice", "check_flag"]
    assert all((r["check_region"], r["check_expected_dice"], r["check_flag"]) == ("TC", unsure_expected["TC"], "yes")
               for r in rows)
    text = render(case_report(flagged, case, case.name))
    line = (f"Check the tumour core: the model&#x27;s own expected core Dice is {unsure_expected['TC']:.2f} "
            f"(below {CHECK_THRESHOLDS['TC']:.2f}")
    assert f'<p class="warn">{line}' in text
    plain = render(case_report(result, case, case.name))
    assert f"expected core Dice is {expected['TC']:.2f}" in plain
