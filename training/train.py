"""Train a model from the preprocessed cache; resumable, deterministic, torchrun-ready.

    python -m training.train --config training/configs/lgg-unet25d-cv.json --fold 0 --max-minutes 60
    python -m torch.distributed.run --standalone --nproc_per_node=2 -m training.train --config ...

With ``--fold k`` (cross-validation) the model trains on the other four folds of training/folds.json
for the config's fixed schedule; the held-out fold is scored only for the monitoring curves and, at
the end, for the out-of-fold record (no epoch is picked on it). Without ``--fold`` the round-1
train/validation split applies and the best validation epoch is exported (the shipped round-1 models).

Each epoch re-seeds every random generator from (seed, epoch, rank), so a run resumed from its
checkpoint continues exactly as if it had never stopped, and two runs of one config on the CPU give
identical weights. The checkpoint (model, optimizer, scheduler, epoch, history, RNG) is rewritten
atomically after every epoch.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from napari_brainseg.engine.device import autocast
from napari_brainseg.engine.metrics import dice_per_channel, hd95_per_channel, overlap_metrics
from napari_brainseg.engine.preprocess import postprocess, stack_neighbours, stacked_channel_names
from napari_brainseg.engine.registry import ModelSpec, build_network, get_spec, sha256_of
from napari_brainseg.engine.window import predict_slices, predict_volume

from .data import cases_of_config, load_cached, load_split
from .export import export_fold, export_model
from .folds import fold_split
from .logs import write_log
from .sampling import make_train_transform, precompute_indices

HERE = Path(__file__).parent
DEFAULTS = dict(
    epochs=100, iters_per_epoch=100, batch_size=16, lr=2e-3, weight_decay=1e-4, val_every=2, patience=15,
    pos_fraction=0.67, amp=True, seed=0, threads=0, limit_train=None, limit_val=None, sw_overlap=0.25,
    sw_batch_size=2, augment=True, context=0, init_from=None,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--fold", type=int, default=None, help="cross-validation fold to hold out (training/folds.json)")
    parser.add_argument("--cache", type=Path, default=Path("cache"), help="preprocessed cache (python -m training.prepare)")
    parser.add_argument("--checkpoint", type=Path, help="resumable checkpoint (default: see RunPaths)")
    parser.add_argument("--log-dir", type=Path, help="log CSV/PNG folder")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if the checkpoint exists")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (overrides the config)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this much time")
    parser.add_argument("--export-dir", type=Path, default=None, help="where weights and model card / fold record go")
    parser.add_argument("--oof-dir", type=Path, default=None,
                        help="where a fold's out-of-fold probabilities go (default runs/<config>/oof; not committed)")
    return parser.parse_args(argv)


@dataclasses.dataclass
class RunPaths:
    checkpoint: Path
    log_dir: Path
    export_dir: Path | None  # None: the package's weights folder (round-1 model configs only)
    oof_dir: Path | None


def run_paths(args, spec: ModelSpec) -> RunPaths:
    """Where a run keeps its files. Cross-validation folds: committed checkpoint, log and fold record
    under training/; the model's own round-1 config: the shipped files; anything else: runs/<config>/."""
    name = args.config.stem
    if args.fold is not None:
        paths = RunPaths(HERE / "checkpoints" / f"{name}-fold{args.fold}.pt", HERE / "logs" / name / f"fold{args.fold}",
                         HERE / "cv" / name, HERE.parent / "runs" / name / "oof")
    elif name == spec.name:
        paths = RunPaths(HERE / "checkpoints" / f"{spec.name}.pt", HERE / "logs" / spec.name, None, None)
    else:  # a quick or experimental config never resumes from or replaces the shipped model's files
        run_dir = HERE.parent / "runs" / name
        paths = RunPaths(run_dir / "checkpoint.pt", run_dir / "logs", run_dir / "export", run_dir / "oof")
    return RunPaths(args.checkpoint or paths.checkpoint, args.log_dir or paths.log_dir,
                    args.export_dir or paths.export_dir, args.oof_dir or paths.oof_dir)


def candidate_spec(cfg: dict) -> ModelSpec:
    """The registry's model, with what a training config changes (network, patch, 2.5D context)."""
    spec = get_spec(cfg["model"])
    # a config trains one network, its input named in full (in_channels), not the shipped ensemble's members
    changes = {"member_contexts": ()}
    if "network" in cfg:
        changes["network"] = {k: tuple(v) if isinstance(v, list) else v for k, v in cfg["network"].items()}
    if spec.spatial_dims == 3 and "patch" in cfg:
        changes["patch_size"] = tuple(cfg["patch"])
    if cfg.get("context"):
        changes["in_channels"] = stacked_channel_names(spec.in_channels, cfg["context"])
    return dataclasses.replace(spec, **changes)


def setup_distributed() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        return dist.get_rank(), world
    return 0, 1


def seed_everything(seed: int, epoch: int, rank: int, transform=None) -> None:
    mixed = int(np.random.SeedSequence([seed, epoch, rank]).generate_state(1)[0]) % (2**31)
    random.seed(mixed)
    np.random.seed(mixed)
    torch.manual_seed(mixed)
    if transform is not None:
        transform.set_random_state(seed=mixed)


def all_gather(obj, world: int) -> list:
    if world == 1:
        return [obj]
    out = [None] * world
    dist.all_gather_object(out, obj)
    return out


def predict_case(net, case: dict, spec: ModelSpec, cfg: dict, device, tta: bool = False) -> np.ndarray:
    """(K, ...) probabilities of one cached case: LGG (Z, K, H, W) slices as a (K, Z, H, W) volume."""
    if spec.spatial_dims == 2:
        slices = stack_neighbours(case["image"], int(cfg.get("context", 0)))
        return np.moveaxis(predict_slices(net, slices, device, batch_size=16, amp=cfg["amp"], tta=tta), 1, 0)
    return predict_volume(net, case["image"], device, spec.patch_size, sw_batch_size=cfg["sw_batch_size"],
                          overlap=cfg["sw_overlap"], amp=cfg["amp"], tta=tta)


def score(pred: np.ndarray, case: dict, spec: ModelSpec) -> dict:
    """Per-volume metrics of post-processed masks (K, ...) against a cached case's truth."""
    if spec.spatial_dims == 2:
        return {"case": case["name"], **overlap_metrics(pred[0], case["label"].astype(bool))}
    truth = case["label"].astype(bool)
    dice, hd = dice_per_channel(pred, truth), hd95_per_channel(pred, truth)
    rec = {"case": case["name"]}
    for k, region in enumerate(spec.out_channels):
        rec[f"dice_{region}"] = dice[k]
        rec[f"hd95_{region}"] = hd[k]
    rec["dice"] = float(np.mean(dice))
    return rec


def validate(net, val_cases, spec, cfg, device) -> list[dict]:
    """Per-volume metrics for this rank's share of the validation cases."""
    net.eval()
    records = [score(postprocess(predict_case(net, case, spec, cfg, device), spec), case, spec) for case in val_cases]
    net.train()
    return records


def out_of_fold(net, val_cases, spec, cfg, device, oof_dir: Path | None) -> list[dict]:
    """The fold's final record: every held-out case scored without and with flip TTA; the
    probabilities are kept (float16) so post-processing choices can be made on them later."""
    net.eval()
    records = []
    for case in val_cases:
        # scored as stored (float16), so every number here can be recomputed from the saved files
        plain = predict_case(net, case, spec, cfg, device).astype(np.float16)
        flipped = predict_case(net, case, spec, cfg, device, tta=True).astype(np.float16)
        rec = score(postprocess(plain.astype(np.float32), spec), case, spec)
        rec.update({f"tta_{k}": v for k, v in score(postprocess(flipped.astype(np.float32), spec), case, spec).items()
                    if k != "case"})
        records.append(rec)
        if oof_dir is not None:
            oof_dir.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(oof_dir / f"{case['name']}.npz", prob=plain, prob_tta=flipped)
    net.train()
    return records


def summarize(records: list[dict]) -> dict:
    keys = [k for k in records[0] if k != "case"]
    return {k: float(np.mean([r[k] for r in records])) for k in keys}


def atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_finished_fold(net, cv_dir: Path, fold: int | None, train_names: list[str]) -> str:
    """Start a longer schedule from a finished fold's weights (``init_from``: its ``training/cv/<config>``).

    Only the same fold of the same split may be continued, so the held-out cases stay unseen: the
    finished fold's record must list exactly this run's training cases, and its weights must match
    the sha256 in that record. Returns that sha256."""
    if fold is None:
        raise SystemExit("error: init_from continues a cross-validation fold; give --fold")
    record_path, weights = cv_dir / f"fold{fold}.json", cv_dir / f"fold{fold}.pt"
    if not record_path.is_file() or not weights.is_file():
        raise SystemExit(f"error: init_from: fold {fold} is not finished in {cv_dir}")
    record = json.loads(record_path.read_text())
    if sorted(record["train_cases"]) != sorted(train_names):
        raise SystemExit(f"error: init_from: {record_path} was trained on other cases than fold {fold} of this split")
    if sha256_of(weights) != record["sha256"]:
        raise SystemExit(f"error: init_from: {weights} does not match the sha256 in {record_path.name}")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    net.load_state_dict({k: v.float() for k, v in state.items()})
    return record["sha256"]


def _without_threads(cfg: dict) -> dict:
    """The config as it shapes the run; the thread count may change between resumed chunks."""
    return json.loads(json.dumps({k: v for k, v in cfg.items() if k != "threads"}))  # tuples == lists


def load_data(cfg: dict, args, rank: int, world: int):
    dataset = cfg["dataset"]
    split = fold_split(dataset, args.fold) if args.fold is not None else load_split(dataset)
    train_names, val_names = cases_of_config(cfg, split)
    cache = args.cache / dataset
    context = int(cfg.get("context", 0))
    patch = tuple(cfg["patch"]) if dataset == "brats" and "patch" in cfg else None
    train_cases = [precompute_indices(load_cached(cache / f"{n}.npz", dataset), context, patch) for n in train_names]
    val_cases = [load_cached(cache / f"{n}.npz", dataset) for n in val_names[rank::world]]
    return train_names, val_names, train_cases, val_cases


def train_epoch(model, optimizer, loss_fn, transform, train_cases, cfg, epoch, rank, world, device) -> float:
    seed_everything(cfg["seed"], epoch, rank, transform)
    rng = np.random.default_rng(np.random.SeedSequence([cfg["seed"], epoch, rank, 1]))
    per_rank_batch = max(1, cfg["batch_size"] // world)
    losses = []
    for _ in range(cfg["iters_per_epoch"]):
        picks = rng.integers(0, len(train_cases), per_rank_batch)
        samples = [transform(train_cases[i]) for i in picks]
        x = torch.stack([torch.as_tensor(s["image"]) for s in samples]).to(device)
        y = torch.stack([torch.as_tensor(s["label"]) for s in samples]).float().to(device)
        with autocast(device, cfg["amp"]):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(all_gather(float(np.mean(losses)), world)))


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = {**DEFAULTS, **json.loads(args.config.read_text())}
    if args.fold is not None:
        cfg["fold"] = args.fold
    spec = candidate_spec(cfg)
    rank, world = setup_distributed()
    paths = run_paths(args, spec)
    cross_validation = args.fold is not None
    if cross_validation and (paths.export_dir / f"fold{args.fold}.json").exists() and not args.no_resume:
        print(f"fold {args.fold} of {args.config.stem} is complete ({paths.export_dir / f'fold{args.fold}.json'})")
        return 0
    threads = args.threads or cfg["threads"]
    if threads:
        torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else torch.device("cpu")

    train_names, val_names, train_cases, val_cases = load_data(cfg, args, rank, world)

    seed_everything(cfg["seed"], 0, 0)  # same initial weights on every rank
    net = build_network(spec).to(device)
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"], eta_min=cfg["lr"] * 0.01)
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(sigmoid=True, batch=True)
    transform = make_train_transform(spec, cfg)

    state = {"epoch": 0, "best": -1.0, "best_epoch": -1, "bad_validations": 0, "history": [], "elapsed": 0.0}
    resuming = paths.checkpoint.exists() and not args.no_resume
    if cfg["init_from"] and not resuming:
        state["init_sha256"] = load_finished_fold(net, HERE.parent / cfg["init_from"], cfg.get("fold"), train_names)
        if rank == 0:
            print(f"started from {cfg['init_from']} fold {cfg.get('fold')} (sha256 {state['init_sha256'][:12]})")
    if resuming:
        ckpt = torch.load(paths.checkpoint, map_location=device, weights_only=True)
        if _without_threads(ckpt.get("config", {})) != _without_threads(cfg):
            raise SystemExit(f"error: {paths.checkpoint} was written with another configuration than {args.config}; "
                             "pass --no-resume to start afresh or --checkpoint for another file")
        net.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["state"]
        if rank == 0:
            print(f"resumed {paths.checkpoint} at epoch {state['epoch']}")

    start = time.time()
    net.train()
    # cross-validation runs a fixed schedule: no early stopping, no epoch picked on the held-out fold
    patience = float("inf") if cross_validation else cfg["patience"]
    while state["epoch"] < cfg["epochs"] and state["bad_validations"] < patience:
        t0 = time.time()
        train_loss = train_epoch(model, optimizer, loss_fn, transform, train_cases, cfg, state["epoch"], rank, world, device)
        scheduler.step()
        record = {"epoch": state["epoch"] + 1, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"],
                  "epoch_seconds": time.time() - t0}
        state["epoch"] += 1
        if state["epoch"] % cfg["val_every"] == 0 or state["epoch"] == cfg["epochs"]:
            records = [r for part in all_gather(validate(net, val_cases, spec, cfg, device), world) for r in part]
            summary = summarize(records)
            record.update({f"val_{k}": v for k, v in summary.items()})
            if cross_validation:
                pass  # monitoring only
            elif summary["dice"] > state["best"]:
                state.update(best=summary["dice"], best_epoch=state["epoch"], bad_validations=0)
                if rank == 0:
                    export_model(net, spec, cfg, state, records, args, {"train": train_names, "val": val_names},
                                 export_dir=paths.export_dir)
            else:
                state["bad_validations"] += 1
        state["elapsed"] += time.time() - t0
        state["history"].append(record)
        if rank == 0:
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}), flush=True)
            atomic_save({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "state": state, "config": cfg,
                         "torch_rng": torch.get_rng_state()}, paths.checkpoint)
            write_log(state["history"], paths.log_dir, f"{args.config.stem}" + (f" fold {args.fold}" if cross_validation else ""))
        if state["bad_validations"] >= patience:
            if rank == 0:
                print(f"early stop: no improvement in {cfg['patience']} validations")
            break
        if args.max_minutes is not None and (time.time() - start) / 60 >= args.max_minutes:
            if rank == 0:
                print(f"time limit reached at epoch {state['epoch']}; resume with the same command")
            break
    if cross_validation and state["epoch"] >= cfg["epochs"]:
        records = [r for part in all_gather(out_of_fold(net, val_cases, spec, cfg, device, paths.oof_dir), world)
                   for r in part]
        if rank == 0:
            export_fold(net, spec, cfg, state, records, args, {"train": train_names, "val": val_names}, paths.export_dir)
            paths.checkpoint.unlink(missing_ok=True)  # finished: the fold's weights and record replace it
            print(json.dumps({"fold": args.fold, "out_of_fold": summarize(records)}), flush=True)
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
