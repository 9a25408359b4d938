"""A PNG showing a few slices through the tumour with the labels in their fixed colours.

The batch CLI writes one per case so that a cohort run can be checked at a glance without napari.
Drawn with matplotlib's object API on the Agg canvas (no pyplot state, safe outside the main thread).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import conventions as label_conventions

N_PANELS = 3


def pick_slices(labels: np.ndarray, n: int = N_PANELS) -> list[int]:
    """Slice indices (axis 0) spread over the tumour's extent, one of them the slice with the most
    tumour; the middle of the stack when there is no tumour."""
    depth = labels.shape[0]
    counts = (labels > 0).reshape(depth, -1).sum(1)
    hit = np.flatnonzero(counts)
    lo, hi = (int(hit[0]), int(hit[-1])) if hit.size else (depth // 4, depth - 1 - depth // 4)
    picks = np.linspace(lo, hi, n + 2)[1:-1].round().astype(int) if hi > lo else np.array([lo])
    if hit.size:
        best = int(counts.argmax())
        picks[np.abs(picks - best).argmin()] = best
    return sorted({int(i) for i in picks})


def _label_rgba(labels: np.ndarray, convention: str, alpha: float = 0.5) -> np.ndarray:
    from matplotlib.colors import to_rgba

    rgba = np.zeros((*labels.shape, 4), dtype=np.float32)
    for cls in label_conventions.CONVENTIONS[convention].classes:
        rgba[labels == cls.value] = to_rgba(cls.color, alpha)
    return rgba


def write_overlay_png(
    path, image: np.ndarray, labels: np.ndarray, convention: str, title: str, *, overwrite: bool = True,
    slice_numbers=None,
) -> str:
    """``image``/``labels`` (Z, H, W) or (H, W) -> PNG at ``path``, written atomically (an existing file is
    replaced only with ``overwrite``). Each panel says which slice it shows: the file's own number
    (``slice_numbers``, e.g. kaggle_3m's 1-based ones) or the axial index as napari's slider shows it; the
    legend names every colour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    from .writer import atomic_write

    image, labels = np.asarray(image, dtype=np.float32), np.asarray(labels)
    if labels.ndim == 2:
        image, labels = image[None], labels[None]
    picks = pick_slices(labels)
    nonzero = image[image != 0]
    lo, hi = np.percentile(nonzero, [0.5, 99.5]) if nonzero.size else (0.0, 1.0)
    fig = Figure(figsize=(4 * len(picks), 4.6), dpi=100)
    FigureCanvasAgg(fig)
    for k, index in enumerate(picks):
        ax = fig.add_subplot(1, len(picks), k + 1)
        ax.imshow(image[index], cmap="gray", vmin=lo, vmax=hi)
        ax.imshow(_label_rgba(labels[index], convention))
        name = f"slice {slice_numbers[index]}" if slice_numbers is not None else f"axial slice {index} (0-{len(labels) - 1})"
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    table = label_conventions.CONVENTIONS[convention]
    handles = [Patch(color=c.color, label=f"{c.value}: {c.name}") for c in table.classes]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    path = Path(path)
    atomic_write(path, lambda fh: fig.savefig(fh, format="png"), overwrite=overwrite)
    return str(path)
