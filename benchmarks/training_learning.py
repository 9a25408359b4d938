"""Does a short training run learn? The margins of tests/test_training.py's learning test, measured.

    python -m benchmarks.training_learning --cache CACHE [--seeds 0,1,2,3,4] [--steps 25]

For each seed: the quick LGG config (training/configs/quick-lgg.json) with ``--steps`` iterations per
epoch and that seed is trained with ``python -m training.train`` into a temporary folder; the per-epoch
training loss comes from its checkpoint, and the Dice on the patients it trained on (full volumes,
training's own inference and scoring) is taken for the network as train.py initialises it and for the
trained one. CACHE holds ``lgg/<patient>.npz`` from ``python -m training.prepare lgg``. Writes
benchmarks/results/training_learning.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import REPO, RESULTS, command_line, machine_description, write_json

QUICK = REPO / "training" / "configs" / "quick-lgg.json"


def training_cases_dice(net, cfg: dict, cache: Path) -> list[float]:
    import torch

    from napari_brainseg.engine.preprocess import postprocess
    from training.data import cases_of_config, load_cached, load_split
    from training.train import candidate_spec, predict_case, score

    spec, (names, _) = candidate_spec(cfg), cases_of_config(cfg, load_split(cfg["dataset"]))
    net.eval()
    cases = [load_cached(cache / cfg["dataset"] / f"{name}.npz", cfg["dataset"]) for name in names]
    return [score(postprocess(predict_case(net, c, spec, cfg, torch.device("cpu")), spec), c, spec)["dice"] for c in cases]


def one_seed(seed: int, steps: int, cache: Path, work: Path) -> dict:
    import torch

    from napari_brainseg.engine.registry import build_network
    from training.train import DEFAULTS, candidate_spec, seed_everything

    raw = {**json.loads(QUICK.read_text()), "iters_per_epoch": steps, "seed": seed}
    config = work / f"seed{seed}.json"
    config.write_text(json.dumps(raw))
    cfg = {**DEFAULTS, **raw}
    seed_everything(seed, 0, 0)  # the weights train.py starts from
    untrained = training_cases_dice(build_network(candidate_spec(cfg)), cfg, cache)
    started = time.perf_counter()
    run = work / f"run{seed}"
    proc = subprocess.run([sys.executable, "-m", "training.train", "--config", str(config), "--cache", str(cache),
                           "--checkpoint", str(run / "ck.pt"), "--log-dir", str(run / "log"),
                           "--export-dir", str(run / "export"), "--no-resume"],
                          cwd=REPO, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    if proc.returncode:
        raise SystemExit(proc.stderr[-3000:])
    seconds = time.perf_counter() - started
    ckpt = torch.load(run / "ck.pt", weights_only=True)
    net = build_network(candidate_spec(cfg))
    net.load_state_dict(ckpt["model"])
    trained = training_cases_dice(net, cfg, cache)
    losses = [epoch["train_loss"] for epoch in ckpt["state"]["history"]]
    return {"seed": seed, "train_losses": losses, "loss_drop": losses[0] - losses[-1],
            "dice_untrained": untrained, "dice_trained": trained,
            "dice_gain": sum(trained) / len(trained) - sum(untrained) / len(untrained),
            "train_wall_s": round(seconds, 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", type=Path, required=True, help="folder holding lgg/<patient>.npz")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--steps", type=int, default=25, help="iterations per epoch (quick-lgg.json has 3)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", type=Path, default=RESULTS / "training_learning.json")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in (int(s) for s in args.seeds.split(",")):
            rows.append(one_seed(seed, args.steps, args.cache, Path(tmp)))
            r = rows[-1]
            print(f"seed {seed}: loss {r['train_losses'][0]:.3f} -> {r['train_losses'][-1]:.3f}; Dice on its training "
                  f"patients {r['dice_untrained']} untrained -> {r['dice_trained']} trained", file=sys.stderr)
    write_json(args.output, {
        "what": "quick-lgg.json with iters_per_epoch=steps per seed: training loss per epoch, Dice of the untrained "
                "(train.py's initial weights) and trained network on the patients it trained on",
        "command": command_line("training_learning", argv),
        "steps_per_epoch": args.steps, "per_seed": rows,
        "min_loss_drop": min(r["loss_drop"] for r in rows), "min_dice_gain": min(r["dice_gain"] for r in rows),
        "machine": machine_description(),
    })
    print(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
