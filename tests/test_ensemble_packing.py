"""training.ensemble packs BraTS cross-validation folds into one ensemble that the package loads and runs.

No real data: one fold of the registry's BraTS network (random weights, 48^3 patches) stands for the
folds, a hand-written partial summary for crossval's, and a small phantom written as a case folder for
the reference case. The dry run must never touch the package's weights; shipping must refuse while
folds are missing or the registry does not describe the ensemble.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from napari_brainseg.engine import registry
from napari_brainseg.engine.ensemble import MeanProbabilityEnsemble
from napari_brainseg.engine.segment import segment
from napari_brainseg.phantoms import make_brats_phantom, write_brats_phantom
from training import ensemble
from training.candidate import installed, load_spec

from .conftest import REPO

MODEL = "brats-unet3d"
PATCH = [48, 48, 48]
TO_SHIP = {"tta": True, "threshold": 0.5, "min_component_fraction": 0.1, "enhancing_min_voxels": 100}


def _fold(cv_dir, fold: int, weights: str = "fold0.pt") -> None:
    spec = registry.get_spec(MODEL)
    record = {"fold": fold, "weights": weights, "sha256": registry.sha256_of(cv_dir / weights),
              "network": {"in_channels": list(spec.in_channels), "out_channels": list(spec.out_channels),
                          "patch_size": PATCH, **{k: list(v) if isinstance(v, tuple) else v for k, v in spec.network.items()}},
              "train_cases": ["a", "b"], "held_out_cases": [f"case{fold}"],
              "training": {"config": {"sw_overlap": 0.25, "patch": PATCH}},
              "out_of_fold": {"mean": {"dice": 0.5}, "per_case": [{"case": f"case{fold}"}]}}
    (cv_dir / f"fold{fold}.json").write_text(json.dumps(record))


@pytest.fixture
def folds(tmp_path, monkeypatch):
    # every test starts from a single-network registry entry, as before a fold ensemble first ships,
    # whatever the package ships today
    monkeypatch.setitem(registry.MODELS, MODEL, dataclasses.replace(registry.get_spec(MODEL), members=1))
    cv_dir = tmp_path / "cv"
    cv_dir.mkdir()
    torch.manual_seed(0)
    net = registry.build_network(registry.get_spec(MODEL))
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}, cv_dir / "fold0.pt")
    _fold(cv_dir, 0)
    summary = {"folds_finished": [0], "partial": True, "partial_note": "only folds [0] of 5", "to_ship": TO_SHIP,
               "definition": "synthetic", "nested": None, "plain": {"cases": 1}}
    (tmp_path / "partial.json").write_text(json.dumps(summary))
    config = tmp_path / "brats-unet3d-cv.json"
    config.write_text(json.dumps({"model": MODEL, "dataset": "brats", "patch": PATCH}))
    case = write_brats_phantom(tmp_path / "cases", make_brats_phantom(shape=(48, 48, 48)))
    return tmp_path, ["--config", str(config), "--cv-dir", str(cv_dir), "--summary", str(tmp_path / "partial.json")], case


def test_dry_run_packs_five_members_that_load_and_segment_through_the_package(folds, capsys):
    tmp, args, case = folds
    shipped = registry.get_spec(MODEL)
    before = registry.sha256_of(shipped.weights_path)
    out = tmp / "dry"
    assert ensemble.main([*args, "--dry-run", str(out), "--repeat", "--reference", str(case)]) == 0
    printed = capsys.readouterr().out
    assert "the registry will need" in printed and "members: 1 -> 5" in printed and "(48, 48, 48)" in printed
    assert registry.sha256_of(shipped.weights_path) == before and registry.get_spec(MODEL) is shipped  # untouched

    card = json.loads((out / f"{MODEL}.json").read_text())
    assert card["sha256"] == registry.sha256_of(out / f"{MODEL}.pt") and "not shipped" in card["dry_run"]
    assert [m["fold"] for m in card["members"]] == [0] * 5 and card["inference"]["roi_size"] == PATCH
    assert "fewer than 100 voxels relabelled as tumour core" in card["postprocessing"]
    assert set(card["reference_outputs"]["per_case"][0]) == {"case", "dice_TC", "dice_WT", "dice_ET"}
    state = torch.load(out / f"{MODEL}.pt", weights_only=True)
    assert {k.split(".")[0] for k in state} == {"0", "1", "2", "3", "4"}

    spec = load_spec(out / f"{MODEL}.spec.json")
    assert dataclasses.replace(spec, network={}) == dataclasses.replace(
        shipped, members=5, patch_size=(48, 48, 48), network={}, **TO_SHIP)
    image = make_brats_phantom(shape=(48, 48, 48)).model_input()
    with installed(spec, out):
        net = registry.load_model(MODEL)
        assert isinstance(net, MeanProbabilityEnsemble) and len(net) == 5
        full = segment(image, MODEL, tta=False)
        fast = segment(image, MODEL, fast=True)
        default = segment(image, MODEL)
    assert full.settings["networks"] == 5 and fast.settings["networks"] == 1 and default.method == "5-network ensemble + flip TTA"
    # five copies of one fold: their mean is that fold alone
    assert np.array_equal(full.labels, fast.labels)
    assert registry.get_spec(MODEL) is shipped

    # the speed benchmark runs the candidate's settings against the bundle's
    speed = tmp / "speed.json"
    proc = subprocess.run([sys.executable, "-m", "benchmarks.speed_ensemble", "--quick", "--candidate", str(out),
                           "--settings", "ensemble+tta,fast,bundle", "--out", str(speed), "--bundle-memory-gb", "0"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    payload = json.loads(speed.read_text())
    assert payload["candidate"]["members"] == 5 and payload["candidate"]["tta"] is True
    assert all(r.get("median_s", 0) > 0 for r in payload["runs"]), payload["runs"]
    assert all(r["model"] == {"members": 5, "tta": True, "patch_size": PATCH} for r in payload["runs"]
               if r["setting"] != "bundle"), payload["runs"]
    assert [r["setting"] for r in payload["ratios"]] == ["ensemble+tta", "fast"]
    assert "BraTS fold ensemble: speed" in proc.stdout


def test_shipping_refuses_partial_folds_and_a_registry_that_differs_then_ships(folds, capsys, monkeypatch):
    tmp, args, case = folds
    shipped = registry.get_spec(MODEL)
    before = registry.sha256_of(shipped.weights_path)
    assert ensemble.main(args) == 1
    assert "all 5 must be finished" in capsys.readouterr().err
    cv_dir = tmp / "cv"
    for fold in range(1, 5):
        _fold(cv_dir, fold)
    summary = {**json.loads((tmp / "partial.json").read_text()), "folds_finished": [0, 1, 2, 3, 4], "partial": False}
    (tmp / "summary.json").write_text(json.dumps(summary))
    assert ensemble.main([*args[:-1], str(tmp / "summary.json")]) == 1
    err = capsys.readouterr().err
    assert "engine/registry.py must describe the ensemble first" in err and "members: 1 -> 5" in err
    assert "tta: False -> True" in err and "enhancing_min_voxels: None -> 100" in err
    assert registry.sha256_of(shipped.weights_path) == before

    # once the registry describes the ensemble, it ships into the (here: a private) weights folder
    weights = tmp / "weights"
    weights.mkdir()
    monkeypatch.setattr(registry, "WEIGHTS_DIR", weights)
    monkeypatch.setitem(registry.MODELS, MODEL, dataclasses.replace(shipped, members=5, patch_size=(48, 48, 48), **TO_SHIP))
    assert ensemble.main([*args[:-1], str(tmp / "summary.json"), "--reference", str(case)]) == 0
    card = registry.get_spec(MODEL).card()
    assert "dry_run" not in card and card["sha256"] == registry.sha256_of(weights / f"{MODEL}.pt")
    assert [m["fold"] for m in card["members"]] == [0, 1, 2, 3, 4] and card["reference_outputs"]["per_case"]
    registry.clear_cache()
    assert len(registry.load_model(MODEL)) == 5
    registry.clear_cache()


def test_interim_ships_the_finished_folds_with_their_partial_cross_validation(folds, capsys, monkeypatch):
    """While some folds still train, --interim ships the finished ones (never repeated, at least two) and
    its card says which folds its cross-validation covers; without it a partial summary is refused."""
    tmp, args, case = folds
    shipped = registry.get_spec(MODEL)
    weights = tmp / "weights"
    weights.mkdir()
    monkeypatch.setattr(registry, "WEIGHTS_DIR", weights)
    assert ensemble.main([*args, "--interim"]) == 1  # one fold is not an ensemble
    assert "at least 2" in capsys.readouterr().err
    _fold(tmp / "cv", 2)
    summary = {**json.loads((tmp / "partial.json").read_text()), "folds_finished": [0, 2], "cases": 2,
               "partial_note": "only folds [0, 2] of 5"}
    (tmp / "partial.json").write_text(json.dumps(summary))
    assert ensemble.main(args) == 1
    assert "--interim ships the finished ones" in capsys.readouterr().err
    assert ensemble.main([*args, "--interim", "--repeat"]) == 1
    assert not list(weights.iterdir())

    monkeypatch.setitem(registry.MODELS, MODEL, dataclasses.replace(shipped, members=2, patch_size=(48, 48, 48), **TO_SHIP))
    assert ensemble.main([*args, "--interim", "--reference", str(case)]) == 0
    card = registry.get_spec(MODEL).card()
    assert card["interim"] == "folds [0, 2] of 5: their cross-validation covers 2 cases; the other folds are still training"
    assert [m["fold"] for m in card["members"]] == [0, 2] and "dry_run" not in card
    assert card["cross_validation"]["partial_note"] == "only folds [0, 2] of 5"
    registry.clear_cache()
    assert len(registry.load_model(MODEL)) == 2
    registry.clear_cache()


def test_evaluate_refuses_a_fold_ensemble_in_one_line(capsys):
    """training.evaluate re-measures single models on their held-out split; the shipped LGG fold ensemble has none."""
    from training import evaluate

    assert evaluate.main(["--model", "lgg-unet2d"]) == 1
    err = capsys.readouterr().err.strip()
    members = registry.get_spec("lgg-unet2d").members
    assert err.startswith(f"error: lgg-unet2d is an ensemble of {members} fold networks") and "\n" not in err
