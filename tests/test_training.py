"""The training pipeline on tiny configs: runs, exports a verified model, is deterministic,
resumes exactly, and runs under torchrun with two CPU processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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


def test_quick_lgg_run_exports_model_card_and_logs(lgg_cache, tmp_path):
    ckpt = train(lgg_cache, tmp_path, "--no-resume")
    assert ckpt["state"]["epoch"] == 2 and set(ckpt) >= {"model", "optimizer", "scheduler", "state", "torch_rng"}
    card = json.loads((tmp_path / "weights" / "lgg-unet2d.json").read_text())
    from napari_brainseg.engine.registry import sha256_of

    assert card["sha256"] == sha256_of(tmp_path / "weights" / "lgg-unet2d.pt")
    assert 0.0 <= card["validation"]["mean"]["dice"] <= 1.0
    assert card["validation"]["cases"] == 2
    assert (tmp_path / "log" / "log.csv").read_text().startswith("epoch,")
    assert (tmp_path / "log" / "curves.png").stat().st_size > 1000


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
    proc = subprocess.run([sys.executable, "training/train.py", "--config", str(other), "--cache", str(lgg_cache),
                           "--checkpoint", str(tmp_path / "ck.pt"), "--log-dir", str(tmp_path / "log"),
                           "--export-dir", str(tmp_path / "weights")], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode != 0 and "written with another configuration" in proc.stderr, proc.stderr[-2000:]
    after = torch.load(tmp_path / "ck.pt", weights_only=True)
    assert after["state"] == before["state"] and all(torch.equal(after["model"][k], v) for k, v in before["model"].items())
