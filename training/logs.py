"""Training log: a CSV of every epoch and a PNG of the curves, rewritten after each epoch."""

from __future__ import annotations

import csv
from pathlib import Path


def write_log(history: list[dict], log_dir: Path, title: str) -> None:
    log_dir.mkdir(parents=True, exist_ok=True)
    fields = sorted({k for row in history for k in row}, key=lambda k: (k != "epoch", k))
    with open(log_dir / "log.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows(history)
    _plot(history, log_dir / "curves.png", title)


def _plot(history: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
    epochs = [r["epoch"] for r in history]
    ax_loss.plot(epochs, [r["train_loss"] for r in history], label="train loss (Dice + BCE)")
    ax_loss.set_xlabel("epoch")
    ax_loss.legend()
    val_keys = sorted({k for r in history for k in r if k.startswith("val_") and "hd95" not in k})
    for key in val_keys:
        pts = [(r["epoch"], r[key]) for r in history if key in r]
        ax_val.plot(*zip(*pts), marker=".", label=key[4:])
    ax_val.set_xlabel("epoch")
    ax_val.set_ylim(0, 1)
    ax_val.set_title("validation (per volume)")
    ax_val.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
