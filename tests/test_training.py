"""The training pipeline on tiny configs: runs, exports a verified model, is deterministic,
resumes exactly, runs under torchrun with two CPU processes, and runs cross-validation folds that
score only the patients they never saw."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from .conftest import DATA, REPO

TRAINING = REPO / "training"
pytestmark = pytest.mark.skipif(not (DATA / "lgg" / "kaggle_3m").is_dir(), reason=f"real data not found at {DATA}")


def run(args, **kw):
    env = {**os.environ, "BRAINSEG_DATA": str(DATA), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def lgg_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    run([sys.executable, "-m", "training.prepare", "lgg", "--cache", str(cache), "--config", "training/configs/quick-lgg.json"])
    return cache


def train(cache, out: Path, *extra, config="training/configs/quick-lgg.json", launcher=None):
    launcher = launcher or [sys.executable]
    run(launcher + ["-m", "training.train", "--config", config, "--cache", str(cache), "--checkpoint", str(out / "ck.pt"),
                    "--log-dir", str(out / "log"), "--export-dir", str(out / "weights"), *extra])
    return torch.load(out / "ck.pt", weights_only=True)


# The learning test trains the quick LGG config with 25 steps per epoch instead of 3: 6 steps move
# the training patients' Dice only from ~0.02 to ~0.04, 50 steps to 0.20-0.66 (seeds 0-4). Margins
# from `python -m benchmarks.training_learning --cache CACHE` (benchmarks/results/training_learning.json,
# at 45f7741): over seeds 0-4 the loss fell by 0.05-0.21 from epoch 1 to 2 and the mean Dice rose by
# 0.18-0.66 (untrained 0.004-0.028); the thresholds leave room below the weakest seed. The other tests
# keep the quick config itself.
LEARNING_STEPS_PER_EPOCH = 25
LOSS_DROP = 0.02
DICE_GAIN = 0.10


def test_quick_lgg_run_learns_and_exports_model_card_and_logs(lgg_cache, tmp_path):
    """Training learns: the loss falls and the trained network segments the patients it trained on
    far better than the network train.py starts from (a run that does not learn passes neither)."""
    from benchmarks.training_learning import training_cases_dice
    from napari_brainseg.engine.registry import build_network, sha256_of
    from training.train import DEFAULTS, candidate_spec, seed_everything

    raw = {**json.loads((TRAINING / "configs" / "quick-lgg.json").read_text()), "iters_per_epoch": LEARNING_STEPS_PER_EPOCH}
    config = tmp_path / "quick-lgg-learning.json"
    config.write_text(json.dumps(raw))
    ckpt = train(lgg_cache, tmp_path, "--no-resume", config=str(config))
    assert ckpt["state"]["epoch"] == 2 and set(ckpt) >= {"model", "optimizer", "scheduler", "state", "torch_rng"}
    card = json.loads((tmp_path / "weights" / "lgg-unet2d.json").read_text())
    assert card["sha256"] == sha256_of(tmp_path / "weights" / "lgg-unet2d.pt")
    assert 0.0 <= card["validation"]["mean"]["dice"] <= 1.0
    assert card["validation"]["cases"] == 2
    assert (tmp_path / "log" / "log.csv").read_text().startswith("epoch,")
    assert (tmp_path / "log" / "curves.png").stat().st_size > 1000

    losses = [epoch["train_loss"] for epoch in ckpt["state"]["history"]]
    assert losses[-1] < losses[0] - LOSS_DROP, losses
    cfg = {**DEFAULTS, **raw}
    seed_everything(cfg["seed"], 0, 0)  # the weights train.py starts from
    untrained = training_cases_dice(build_network(candidate_spec(cfg)), cfg, lgg_cache)
    net = build_network(candidate_spec(cfg))
    net.load_state_dict(ckpt["model"])
    trained = training_cases_dice(net, cfg, lgg_cache)
    assert np.mean(trained) > np.mean(untrained) + DICE_GAIN, (untrained, trained)


def test_two_runs_of_one_config_give_identical_weights(lgg_cache, tmp_path):
    a = train(lgg_cache, tmp_path / "a", "--no-resume")["model"]
    b = train(lgg_cache, tmp_path / "b", "--no-resume")["model"]
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resumed_run_matches_uninterrupted_run(lgg_cache, tmp_path):
    whole = train(lgg_cache, tmp_path / "whole", "--no-resume")["model"]
    first = train(lgg_cache, tmp_path / "split", "--no-resume", "--max-minutes", "0")  # stops after epoch 1
    assert first["state"]["epoch"] == 1
    resumed = train(lgg_cache, tmp_path / "split")
    assert resumed["state"]["epoch"] == 2
    assert all(torch.equal(whole[k], resumed["model"][k]) for k in whole)


def test_compacted_checkpoint_resumes_close_to_the_full_one(lgg_cache, tmp_path):
    """training.compact halves a checkpoint for committing; the trainer resumes from it as it is, and
    the run ends within rounding of the uninterrupted one (not bit-identical: that is the full checkpoint)."""
    from training import compact

    whole = train(lgg_cache, tmp_path / "whole", "--no-resume")["model"]
    train(lgg_cache, tmp_path / "split", "--no-resume", "--max-minutes", "0")  # stops after epoch 1
    checkpoint = tmp_path / "split" / "ck.pt"
    full_size = checkpoint.stat().st_size
    assert compact.main([str(checkpoint)]) == 0
    assert checkpoint.stat().st_size < 0.6 * full_size
    small = torch.load(checkpoint, weights_only=True)
    assert "compacted" in small and all(v.dtype == torch.float16 for v in small["model"].values() if v.is_floating_point())
    resumed = train(lgg_cache, tmp_path / "split")
    assert resumed["state"]["epoch"] == 2 and "compacted" not in resumed  # the next save is a full one again
    weights = [k for k, v in whole.items() if v.is_floating_point() and v.dim() > 1]
    assert all(torch.allclose(whole[k], resumed["model"][k], rtol=0.02, atol=2e-3) for k in weights)
    assert any(not torch.equal(whole[k], resumed["model"][k]) for k in weights)
    (tmp_path / "other.pt").write_bytes(b"not a checkpoint")
    assert compact.main([str(tmp_path / "other.pt")]) == 1


def test_torchrun_with_two_cpu_processes(lgg_cache, tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    ckpt = train(lgg_cache, tmp_path, "--no-resume", launcher=launcher)
    assert ckpt["state"]["epoch"] == 2
    card = json.loads((tmp_path / "weights" / "lgg-unet2d.json").read_text())
    assert card["validation"]["cases"] == 2  # per-case metrics gathered from both ranks


def test_quick_brats_run(tmp_path):
    unpacked = tmp_path / "brats"
    cases = json.loads((TRAINING / "configs" / "quick-brats.json").read_text())
    names = cases["train_cases"] + cases["val_cases"]
    run(["bash", str(DATA / "brats" / "unpack.sh"), str(unpacked), *names])
    cache = tmp_path / "cache"
    run([sys.executable, "-m", "training.prepare", "brats", "--cache", str(cache), "--brats-root", str(unpacked),
         "--config", "training/configs/quick-brats.json"])
    ckpt = train(cache, tmp_path / "run", "--no-resume", config="training/configs/quick-brats.json")
    assert ckpt["state"]["epoch"] == 2
    card = json.loads((tmp_path / "run" / "weights" / "brats-unet3d.json").read_text())
    assert set(card["validation"]["mean"]) >= {"dice_TC", "dice_WT", "dice_ET", "hd95_WT", "dice"}


def test_resume_refuses_a_checkpoint_of_another_config(lgg_cache, tmp_path):
    """A checkpoint is only continued by the config that wrote it (a quick config never resumes the real run)."""
    before = train(lgg_cache, tmp_path, "--no-resume")
    other = tmp_path / "other-config.json"
    other.write_text(json.dumps({**json.loads((TRAINING / "configs" / "quick-lgg.json").read_text()), "lr": 0.5}))
    env = {**os.environ, "BRAINSEG_DATA": str(DATA), "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-m", "training.train", "--config", str(other), "--cache", str(lgg_cache),
                           "--checkpoint", str(tmp_path / "ck.pt"), "--log-dir", str(tmp_path / "log"),
                           "--export-dir", str(tmp_path / "weights")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0 and "written with another configuration" in proc.stderr, proc.stderr[-2000:]
    after = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert after["state"] == before["state"] and all(torch.equal(after["model"][k], v) for k, v in before["model"].items())


def test_folds_hold_every_case_once_and_spread_each_source():
    from training.data import list_lgg_patients
    from training.folds import FOLDS_FILE, load_folds, source_of

    recorded = json.loads(FOLDS_FILE.read_text())
    for dataset in ("lgg", "brats"):
        folds = load_folds(dataset)
        names = [n for f in folds for n in f]
        assert len(folds) == 5 and len(names) == len(set(names)), dataset
        for source, total in recorded[dataset]["sources"].items():
            per_fold = [sum(source_of(dataset, n) == source for n in f) for f in folds]
            assert sum(per_fold) == total and max(per_fold) - min(per_fold) <= 1, (dataset, source, per_fold)
    assert set(names) >= {"Brats18_2013_20_1", "BraTS-SSA-00002-000", "BraTS2021_00000"}
    assert sorted(n for f in load_folds("lgg") for n in f) == sorted(list_lgg_patients(DATA))


def test_fold_assignment_is_reproducible():
    from training.folds import load_folds, make_folds

    lgg = sorted(n for f in load_folds("lgg") for n in f)
    assert make_folds(lgg, "lgg", seed=20261122) == load_folds("lgg")
    assert make_folds(lgg, "lgg", seed=1) != load_folds("lgg")


def test_cross_validation_fold_scores_only_its_held_out_patients(tmp_path):
    from napari_brainseg.engine.registry import build_network, sha256_of
    from training.folds import fold_split
    from training.train import candidate_spec

    config = "training/configs/quick-lgg-cv.json"
    cache = tmp_path / "cache"
    run([sys.executable, "-m", "training.prepare", "lgg", "--cache", str(cache), "--config", config, "--fold", "3"])
    args = ["-m", "training.train", "--config", config, "--fold", "3", "--cache", str(cache), "--checkpoint",
            str(tmp_path / "ck.pt"), "--log-dir", str(tmp_path / "log"), "--export-dir", str(tmp_path / "cv"),
            "--oof-dir", str(tmp_path / "oof")]
    run([sys.executable, *args])
    record = json.loads((tmp_path / "cv" / "fold3.json").read_text())
    split = fold_split("lgg", 3)
    assert record["held_out_cases"] == split["val"][:2] and record["train_cases"] == sorted(split["train"][:2])
    assert not set(record["held_out_cases"]) & set(split["train"])
    assert [r["case"] for r in record["out_of_fold"]["per_case"]] == split["val"][:2]
    assert {"dice", "tta_dice"} <= set(record["out_of_fold"]["per_case"][0])
    assert record["sha256"] == sha256_of(tmp_path / "cv" / "fold3.pt")
    assert not (tmp_path / "ck.pt").exists()  # a finished fold keeps no resumable checkpoint
    cfg = json.loads(Path(REPO / config).read_text())
    net = build_network(candidate_spec(cfg))  # 2.5D: 3 sequences x 3 slices in
    net.load_state_dict(torch.load(tmp_path / "cv" / "fold3.pt", weights_only=True))
    assert net.model[0].conv.unit0.conv.in_channels == 9
    with np.load(tmp_path / "oof" / f"{split['val'][0]}.npz") as oof:
        assert oof["prob"].shape == oof["prob_tta"].shape and oof["prob"].shape[0] == 1
        assert not np.array_equal(oof["prob"], oof["prob_tta"])  # the flips were really applied
    again = run([sys.executable, *args])
    assert "is complete" in again.stdout

    # crossval re-scores the saved out-of-fold probabilities through the shipped postprocess: its
    # "plain" setting must reproduce the fold's own record, and one fold gives no nested estimate
    run([sys.executable, "-m", "training.crossval", "--config", config, "--cache", str(cache),
         "--cv-dir", str(tmp_path / "cv"), "--oof-dir", str(tmp_path / "oof"), "--out", str(tmp_path / "partial.json")])
    summary = json.loads((tmp_path / "partial.json").read_text())
    assert summary["folds_finished"] == [3] and summary["partial"] and summary["nested"] is None
    by_case = {r["case"]: r["dice"] for r in record["out_of_fold"]["per_case"]}
    assert {r["case"]: r["plain_dice_tumour"] for r in summary["per_case"]} == pytest.approx(by_case, abs=1e-6)
    assert set(summary["to_ship"]) == {"tta", "threshold", "min_component_fraction"}

    # on a machine that did not train the fold, its probabilities come back from the committed weights
    # (float16) and reproduce the record: crossval scores them as it scored the originals
    for f in (tmp_path / "oof").iterdir():
        f.unlink()
    oof_args = ["--config", config, "--cache", str(cache), "--cv-dir", str(tmp_path / "cv"), "--oof-dir", str(tmp_path / "oof")]
    done = run([sys.executable, "-m", "training.oof", *oof_args])
    assert "fold 3: wrote 2 cases" in done.stdout
    assert sorted(p.stem for p in (tmp_path / "oof").iterdir()) == sorted(record["held_out_cases"])
    assert "every held-out case's probabilities are in" in run([sys.executable, "-m", "training.oof", *oof_args]).stdout
    run([sys.executable, "-m", "training.crossval", "--config", config, "--cache", str(cache),
         "--cv-dir", str(tmp_path / "cv"), "--oof-dir", str(tmp_path / "oof"), "--out", str(tmp_path / "again.json")])
    again = json.loads((tmp_path / "again.json").read_text())
    assert {r["case"]: r["plain_dice_tumour"] for r in again["per_case"]} == pytest.approx(by_case, abs=0.02)


def test_reorient_mirrors_data_but_keeps_every_voxel_in_place_in_the_world():
    from napari_brainseg.engine.preprocess import reorient

    rng = np.random.default_rng(0)
    volume = rng.random((1, 4, 5, 6)).astype(np.float32)  # (C, z, y, x): k=4, j=5, i=6
    ras = np.diag([1.0, 1.0, 1.0, 1.0])
    ras[:3, 3] = (10, -20, 5)
    out, lps = reorient(volume, ras, "LPS")
    assert out.shape == volume.shape and lps[0, 0] == -1 and lps[1, 1] == -1 and lps[2, 2] == 1
    k, j, i = 1, 2, 3
    world = ras @ (i, j, k, 1)
    i2, j2, k2, _ = np.rint(np.linalg.inv(lps) @ world).astype(int)
    assert out[0, k2, j2, i2] == volume[0, k, j, i]
    back, again = reorient(out, lps, "RAS")
    assert np.array_equal(back, volume) and np.allclose(again, ras)
