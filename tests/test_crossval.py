"""Cross-validation choices for BraTS (training.crossval) on synthetic out-of-fold probabilities.

No real data: six 32^3 cases in two folds, one per dataset group and fold, whose saved
probabilities are built so that each choice has one right answer - flip TTA removes a wrong edema
slab, a false enhancing-tumour speck of 27 voxels in tumours without any asks for the small-volume
rule, and true enhancing tumour of 216 voxels forbids a rule threshold above that. Case names follow
the BraTS datasets, so the per-dataset report is exercised as on the real folds.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_brainseg.conventions import brats_regions_to_labels
from napari_brainseg.engine.preprocess import fill_holes, postprocess
from napari_brainseg.engine.registry import get_spec
from training import crossval

SHAPE = (32, 32, 32)
CASES = {0: ["Brats18_2013_2_1", "BraTS2021_00002", "BraTS-SSA-00002-000"],
         1: ["Brats18_CBICA_AAB_1", "BraTS2021_00005", "BraTS-SSA-00007-000"]}


def _box(lo: int, hi: int) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[lo:hi, lo:hi, lo:hi] = True
    return mask


def _case(with_et: bool, et_outside_core_channel: bool):
    """(2018 labels, plain and TTA probabilities (3, ...) TC, WT, ET)."""
    wt, tc, et = _box(4, 28), _box(8, 24), _box(10, 16)  # ET 216 voxels
    labels = np.where(wt, 2, 0).astype(np.uint8)
    labels[tc] = 1
    pred_et = et if with_et else _box(17, 20)  # no true ET: a false 27-voxel speck inside the core
    if with_et:
        labels[et] = 4
    tta = np.stack([np.where(r, 0.9, 0.05) for r in (tc, wt, pred_et)]).astype(np.float16)
    if et_outside_core_channel:
        tta[0][pred_et] = 0.05  # the network's core channel misses the ET it predicts: the labels nest it
    plain = tta.copy()
    plain[1][28:31, 4:28, 4:28] = 0.8  # a wrong edema slab, touching the tumour (cleanup keeps it); TTA has none
    return labels, plain, tta


@pytest.fixture
def cv_setup(tmp_path):
    cfg = {"model": "brats-unet3d", "dataset": "brats", "patch": [32, 32, 32]}
    config = tmp_path / "brats-cv-synthetic.json"
    config.write_text(json.dumps(cfg))
    cv_dir, oof_dir, cache = tmp_path / "cv", tmp_path / "oof", tmp_path / "cache"
    for folder in (cv_dir, oof_dir, cache / "brats"):
        folder.mkdir(parents=True)
    for fold, names in CASES.items():
        for k, name in enumerate(names):
            labels, plain, tta = _case(with_et=k != 1, et_outside_core_channel=k == 2)
            np.savez_compressed(cache / "brats" / f"{name}.npz", image=np.zeros((4, *SHAPE), np.float16), label=labels)
            np.savez_compressed(oof_dir / f"{name}.npz", prob=plain, prob_tta=tta)
        (cv_dir / f"fold{fold}.json").write_text(json.dumps({"out_of_fold": {"per_case": [{"case": n} for n in names]}}))
    base = ["--config", str(config), "--cache", str(cache), "--cv-dir", str(cv_dir), "--oof-dir", str(oof_dir)]
    return base, tmp_path


def _run(base, out, *extra) -> dict:
    assert crossval.main([*base, "--out", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_brats_choices_are_made_on_out_of_fold_cases_and_reported_per_dataset(cv_setup):
    base, tmp = cv_setup
    summary = _run(base, tmp / "summary.json", "--tta", "choose")
    assert summary["partial"] and summary["folds_finished"] == [0, 1] and summary["cases"] == 6
    # TTA (no edema slab) and the smallest ET rule that drops the 27-voxel speck but keeps 216 true voxels
    assert summary["to_ship"]["tta"] is True and 27 < summary["to_ship"]["enhancing_min_voxels"] <= 216
    assert all(27 < s["enhancing_min_voxels"] <= 216 and s["tta"] for s in summary["chosen_per_fold"].values())
    # nested: every region perfect - the ET missing from the core channel is counted as core, as the labels nest it
    for region in ("TC", "WT", "ET", "mean"):
        assert summary["nested"][region]["mean"] == pytest.approx(1.0)
    # plain (registry: no TTA, no ET rule): the false ET of the two ET-free cases and the edema slab cost Dice
    assert summary["plain"]["ET"]["mean"] == pytest.approx(4 / 6)
    assert summary["plain"]["WT"]["mean"] < 0.95 and summary["plain"]["cases"] == 6
    groups = summary["per_group_nested"]
    assert set(groups) == {"BraTS 2018/2019", "BraTS 2021", "BraTS-Africa 2023", "sd_of_means"}
    assert groups["BraTS 2021"]["cases"] == 2 and summary["per_group_plain"]["BraTS 2021"]["ET"]["mean"] == 0.0
    assert summary["per_group_plain"]["sd_of_means"]["ET"] > 0
    assert set(summary["per_fold_nested"]) == {"0", "1", "sd_of_means"}
    assert {r["group"] for r in summary["per_case"]} == {"BraTS 2018/2019", "BraTS 2021", "BraTS-Africa 2023"}


def test_tta_fixed_off_is_never_chosen(cv_setup):
    base, tmp = cv_setup
    summary = _run(base, tmp / "off.json", "--tta", "off")
    assert summary["to_ship"]["tta"] is False and not any(s["tta"] for s in summary["chosen_per_fold"].values())
    assert summary["nested"]["WT"]["mean"] < summary["nested_if_tta_chosen"]["WT"]["mean"]


def test_a_partial_summary_never_goes_to_the_shipped_path(cv_setup, capsys):
    base, tmp = cv_setup
    shipped = crossval.HERE / "cv" / "brats-cv-synthetic" / "summary.json"
    assert crossval.main([*base, "--out", str(shipped)]) == 1
    assert "partial summary never goes to" in capsys.readouterr().err and not shipped.exists()
    assert crossval.main(base) == 1  # nor, by default, into the folds folder it read
    assert "partial summary never goes to" in capsys.readouterr().err and not (tmp / "cv" / "summary.json").exists()
    one_fold = tmp / "one"
    one_fold.mkdir()
    (one_fold / "fold0.json").write_text((tmp / "cv" / "fold0.json").read_text())
    summary = _run([*base[:-4], "--cv-dir", str(one_fold), *base[-2:]], tmp / "one.json")
    assert summary["partial"] and summary["nested"] is None and summary["plain"]["cases"] == 3


def test_enhancing_rule_relabels_small_et_as_core():
    """postprocess: ET under the rule's size joins the tumour core (written as necrosis/core, label 1)."""
    import dataclasses

    spec = dataclasses.replace(get_spec("brats-unet3d"), enhancing_min_voxels=50, min_component_fraction=None)
    _, _, prob = _case(with_et=False, et_outside_core_channel=True)
    masks = postprocess(prob.astype(np.float32), spec)
    speck = _box(17, 20)
    assert not masks[2].any() and masks[0][speck].all()
    assert (brats_regions_to_labels(masks, "brats2018")[speck] == 1).all()
    large = dataclasses.replace(spec, enhancing_min_voxels=20)
    assert postprocess(prob.astype(np.float32), large)[2][speck].all()  # 27 voxels stay ET above the rule


def test_an_ensemble_of_recipes_needs_the_same_folds_and_held_out_cases(tmp_path):
    """Averaging two recipes' out-of-fold probabilities is out of fold only if both held out the same
    cases in every fold: otherwise one recipe's network would score a case it trained on."""
    from training.recipes import combined_records

    dirs = {name: tmp_path / name for name in ("a", "b")}
    for folder in dirs.values():
        folder.mkdir()
    for fold, held in enumerate((["x", "y"], ["z"])):
        (dirs["a"] / f"fold{fold}.json").write_text(json.dumps({"held_out_cases": held}))
    (dirs["b"] / "fold0.json").write_text(json.dumps({"held_out_cases": ["y", "x"]}))
    with pytest.raises(SystemExit, match="the same folds"):
        combined_records(["a", "b"], list(dirs.values()))
    (dirs["b"] / "fold1.json").write_text(json.dumps({"held_out_cases": ["x"]}))
    with pytest.raises(SystemExit, match="fold 1 of b held out other cases"):
        combined_records(["a", "b"], list(dirs.values()))
    (dirs["b"] / "fold1.json").write_text(json.dumps({"held_out_cases": ["z"]}))
    a, b = combined_records(["a", "b"], list(dirs.values()))
    assert a == {0: {"held_out_cases": ["x", "y"]}, 1: {"held_out_cases": ["z"]}}
    assert b == {0: {"held_out_cases": ["y", "x"]}, 1: {"held_out_cases": ["z"]}}


def test_an_ensemble_of_recipes_is_scored_on_the_mean_of_their_probabilities(tmp_path):
    from training.recipes import mean_probabilities, recipes

    dirs = [tmp_path / "a", tmp_path / "b"]
    for folder, value in zip(dirs, (0.2, 0.7)):
        folder.mkdir()
        np.savez(folder / "case.npz", prob=np.full((1, 2, 3), value, np.float16),
                 prob_tta=np.full((1, 2, 3), value / 2, np.float16))
    mean = mean_probabilities("case", dirs)
    assert mean["prob"].dtype == np.float32
    np.testing.assert_allclose(mean["prob"], 0.45, atol=1e-3)
    np.testing.assert_allclose(mean["prob_tta"], 0.225, atol=1e-3)
    # the shipped LGG ensemble config names two trained recipes; a recipe of another model is refused
    shipped = crossval.HERE / "configs" / "lgg-unet2d-mix.json"
    assert recipes(json.loads(shipped.read_text()), shipped) == ["lgg-unet25d-p128-cv", "lgg-unet2d-cv"]
    with pytest.raises(SystemExit, match="not brats-unet3d"):
        recipes({"model": "brats-unet3d", "dataset": "brats", "ensemble_of": ["lgg-unet2d-cv"]}, tmp_path / "x.json")


def test_core_hole_fill_makes_the_necrosis_an_enhancing_rim_encloses_core():
    """postprocess: the network predicts the enhancing rim but misses the necrosis inside it. The rim
    is open at its top and bottom (a tube), as real rims often are, so a 3D fill finds no cavity; the
    plane-wise fill closes it in every axial slice, and the labels write it as necrosis (label 1)."""
    import dataclasses

    spec = dataclasses.replace(get_spec("brats-unet3d"), min_component_fraction=None, core_hole_fill=None)
    tube = _box(8, 24)
    necrosis = np.zeros(SHAPE, bool)
    necrosis[8:24, 11:21, 11:21] = True  # the inside of a 3-voxel rim, open at both ends along axis 0
    rim = tube & ~necrosis
    prob = np.stack([np.where(rim, 0.2, 0.05), np.where(_box(4, 28), 0.9, 0.05), np.where(rim, 0.9, 0.05)])
    prob = prob.astype(np.float32)
    as_predicted = postprocess(prob, spec)
    volume = postprocess(prob, dataclasses.replace(spec, core_hole_fill="volume"))
    planes = postprocess(prob, dataclasses.replace(spec, core_hole_fill="planes"))
    assert not as_predicted[0][necrosis].any() and not volume[0][necrosis].any()  # open in 3D: no cavity
    assert planes[0][necrosis].all() and planes[0].sum() == tube.sum()  # the hole filled, nothing outside it
    labels = brats_regions_to_labels(planes, "brats2018")
    assert (labels[necrosis] == 1).all() and (labels[rim] == 4).all() and (labels[_box(4, 28) & ~tube] == 2).all()
    # a closed cavity is filled either way, and a core without holes is left as it is
    closed_prob = prob.copy()
    closed_prob[2] = np.where(tube & ~_box(11, 21), 0.9, 0.05)
    assert postprocess(closed_prob, dataclasses.replace(spec, core_hole_fill="volume"))[0][_box(11, 21)].all()
    solid = postprocess(np.where(np.stack([tube, tube, tube]), 0.9, 0.05).astype(np.float32),
                        dataclasses.replace(spec, core_hole_fill="planes"))
    assert (solid[0] == tube).all()
    # a 2D mask (one slice) is filled as the plane it is, not line by line: a C shape stays open
    c_shape = np.zeros((9, 9), bool)
    c_shape[1:8, 1:3] = c_shape[1:3, 1:8] = c_shape[6:8, 1:8] = True
    np.testing.assert_array_equal(fill_holes(c_shape, "planes"), c_shape)


def test_a_threshold_per_region_in_postprocess_member_stats_and_the_card():
    """``ModelSpec.threshold`` per output channel (TC, WT, ET): each region is cut at its own threshold
    by postprocess and by the members' statistics, and the card says so; a count that does not match
    the channels is refused."""
    import dataclasses

    from napari_brainseg.engine.uncertainty import MemberStats
    from training.export import postprocessing_text

    spec = dataclasses.replace(get_spec("brats-unet3d"), threshold=(0.6, 0.4, 0.6), min_component_fraction=None,
                               enhancing_min_voxels=None, core_hole_fill=None)
    assert spec.thresholds == (0.6, 0.4, 0.6) and spec.threshold_of("WT") == 0.4
    prob = np.full((3, *SHAPE), 0.5, np.float32)
    masks = postprocess(prob, spec)
    assert masks[1].all() and not masks[0].any() and not masks[2].any()  # 0.5: over WT's 0.4 only
    stats = MemberStats(spec.threshold)
    stats.add(prob)
    # expected Dice 2 sum(p m) / (sum(p) + sum(m)): WT's mask is everything (2 * 0.5 / 1.5), TC's empty
    assert stats.expected_dice_per_channel() == pytest.approx([0.0, 2 / 3, 0.0])
    assert "sigmoid > 0.6 (TC), 0.4 (WT), 0.6 (ET)" in postprocessing_text(spec)
    with pytest.raises(ValueError, match="2 thresholds for output channels"):
        dataclasses.replace(spec, threshold=(0.5, 0.5))
