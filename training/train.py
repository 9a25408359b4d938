"""Train a registered model from the preprocessed cache; resumable, deterministic, torchrun-ready.

    python training/train.py --config training/configs/lgg-unet2d.json
    torchrun --nproc_per_node=2 training/train.py --config training/configs/quick-lgg.json

Each epoch re-seeds every random generator from (seed, epoch, rank), so a run resumed from its
checkpoint continues exactly as if it had never stopped, and two runs of one config on the CPU give
identical weights. The checkpoint (model, optimizer, scheduler, epoch, history, RNG) is rewritten
atomically after every epoch; the best model by validation Dice is exported into the package with
its model card each time it improves.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).parent))
from data import cases_of_config, load_cached, load_split  # noqa: E402
from export import export_model  # noqa: E402
from logs import write_log  # noqa: E402
from sampling import make_train_transform, precompute_indices  # noqa: E402

from napari_brainseg.device import autocast  # noqa: E402
from napari_brainseg.metrics import dice_per_channel, hd95_per_channel, overlap_metrics  # noqa: E402
from napari_brainseg.models.registry import build_network, get_spec  # noqa: E402
from napari_brainseg.predict import predict_slices, predict_volume  # noqa: E402
from napari_brainseg.transforms import postprocess  # noqa: E402

DEFAULTS = dict(
    epochs=100, iters_per_epoch=100, batch_size=16, lr=2e-3, weight_decay=1e-4, val_every=2, patience=15,
    pos_fraction=0.67, amp=True, seed=0, threads=0, limit_train=None, limit_val=None, sw_overlap=0.25,
    sw_batch_size=2, augment=True,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--cache", type=Path, default=Path("cache"), help="preprocessed cache (training/prepare.py)")
    parser.add_argument("--checkpoint", type=Path, help="resumable checkpoint (default training/checkpoints/<model>.pt "
                        "for the model's own config, runs/<config>/checkpoint.pt for any other)")
    parser.add_argument("--log-dir", type=Path, help="log CSV/JSON/PNG (default training/logs/<model>, or runs/<config>/logs)")
    parser.add_argument("--no-resume", action="store_true", help="start afresh even if the checkpoint exists")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (overrides the config)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this much time")
    parser.add_argument("--export-dir", type=Path, default=None,
                        help="where the best weights and model card go (default: the package's weights folder for "
                        "the model's own config, runs/<config>/export for any other)")
    return parser.parse_args(argv)


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


def validate(net, val_cases, spec, cfg, device) -> list[dict]:
    """Per-volume metrics for this rank's share of the validation cases."""
    net.eval()
    records = []
    for case in val_cases:
        if spec.spatial_dims == 2:
            prob = predict_slices(net, case["image"], device, batch_size=32, amp=cfg["amp"])
            pred = postprocess(np.moveaxis(prob, 1, 0), spec)[0]  # (Z, H, W): the stack is one volume
            records.append({"case": case["name"], **overlap_metrics(pred, case["label"].astype(bool))})
        else:
            prob = predict_volume(net, case["image"], device, spec.patch_size, sw_batch_size=cfg["sw_batch_size"],
                                  overlap=cfg["sw_overlap"], amp=cfg["amp"])
            pred = postprocess(prob, spec)
            truth = case["label"].astype(bool)
            dice = dice_per_channel(pred, truth)
            hd = hd95_per_channel(pred, truth)
            rec = {"case": case["name"]}
            for k, region in enumerate(spec.out_channels):
                rec[f"dice_{region}"] = dice[k]
                rec[f"hd95_{region}"] = hd[k]
            rec["dice"] = float(np.mean(dice))
            records.append(rec)
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


def _without_threads(cfg: dict) -> dict:
    """The config as it shapes the run; the thread count may change between resumed chunks."""
    return json.loads(json.dumps({k: v for k, v in cfg.items() if k != "threads"}))  # tuples == lists


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = {**DEFAULTS, **json.loads(args.config.read_text())}
    spec = get_spec(cfg["model"])
    dataset = cfg["dataset"]
    rank, world = setup_distributed()
    here = Path(__file__).parent
    run_name = args.config.stem
    if run_name == spec.name:  # the model's own config: the committed checkpoint, log and shipped weights
        ckpt_path = args.checkpoint or here / "checkpoints" / f"{spec.name}.pt"
        log_dir = args.log_dir or here / "logs" / spec.name
        export_dir = args.export_dir
    else:  # a quick or experimental config never resumes from or replaces the shipped model's files
        run_dir = here.parent / "runs" / run_name
        ckpt_path = args.checkpoint or run_dir / "checkpoint.pt"
        log_dir = args.log_dir or run_dir / "logs"
        export_dir = args.export_dir or run_dir / "export"
    threads = args.threads or cfg["threads"]
    if threads:
        torch.set_num_threads(int(threads))
    torch.use_deterministic_algorithms(True, warn_only=True)
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else torch.device("cpu")

    split = load_split(dataset)
    train_names, val_names = cases_of_config(cfg, split)
    cache = args.cache / dataset
    train_cases = [precompute_indices(load_cached(cache / f"{n}.npz", dataset)) for n in train_names]
    val_cases = [load_cached(cache / f"{n}.npz", dataset) for n in val_names[rank::world]]

    seed_everything(cfg["seed"], 0, 0)  # same initial weights on every rank
    net = build_network(spec).to(device)
    model = torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=cfg["epochs"], eta_min=cfg["lr"] * 0.01)
    from monai.losses import DiceCELoss

    loss_fn = DiceCELoss(sigmoid=True, batch=True)
    transform = make_train_transform(spec, cfg)

    state = {"epoch": 0, "best": -1.0, "best_epoch": -1, "bad_validations": 0, "history": [], "elapsed": 0.0}
    if ckpt_path.exists() and not args.no_resume:
        ckpt = torch.load(ckpt_path, map_location=device, weights_only=True)
        if _without_threads(ckpt.get("config", {})) != _without_threads(cfg):
            raise SystemExit(f"error: {ckpt_path} was written with another configuration than {args.config}; "
                             "pass --no-resume to start afresh or --checkpoint for another file")
        net.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        state = ckpt["state"]
        if rank == 0:
            print(f"resumed {ckpt_path} at epoch {state['epoch']} (best {state['best']:.4f} at {state['best_epoch']})")

    per_rank_batch = max(1, cfg["batch_size"] // world)
    start = time.time()
    net.train()
    while state["epoch"] < cfg["epochs"] and state["bad_validations"] < cfg["patience"]:
        epoch = state["epoch"]
        seed_everything(cfg["seed"], epoch, rank, transform)
        rng = np.random.default_rng(np.random.SeedSequence([cfg["seed"], epoch, rank, 1]))
        t0 = time.time()
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
        scheduler.step()
        train_loss = float(np.mean(all_gather(float(np.mean(losses)), world)))
        record = {"epoch": epoch + 1, "train_loss": train_loss, "lr": optimizer.param_groups[0]["lr"],
                  "epoch_seconds": time.time() - t0}
        state["epoch"] = epoch + 1
        if state["epoch"] % cfg["val_every"] == 0 or state["epoch"] == cfg["epochs"]:
            records = [r for part in all_gather(validate(net, val_cases, spec, cfg, device), world) for r in part]
            summary = summarize(records)
            record.update({f"val_{k}": v for k, v in summary.items()})
            if summary["dice"] > state["best"]:
                state.update(best=summary["dice"], best_epoch=state["epoch"], bad_validations=0)
                if rank == 0:
                    export_model(net, spec, cfg, state, records, args, {"train": train_names, "val": val_names},
                                 export_dir=export_dir)
            else:
                state["bad_validations"] += 1
        state["elapsed"] += time.time() - t0
        state["history"].append(record)
        if rank == 0:
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in record.items()}), flush=True)
            atomic_save({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "state": state, "config": cfg,
                         "torch_rng": torch.get_rng_state()}, ckpt_path)
            write_log(state["history"], log_dir, spec.name)
        if state["bad_validations"] >= cfg["patience"]:
            if rank == 0:
                print(f"early stop: no improvement in {cfg['patience']} validations")
            break
        if args.max_minutes is not None and (time.time() - start) / 60 >= args.max_minutes:
            if rank == 0:
                print(f"time limit reached at epoch {state['epoch']}; resume with the same command")
            break
    if world > 1:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
