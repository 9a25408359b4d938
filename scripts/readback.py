"""Stand-in for the segmentation CLI: read cases through the plugin's readers and write them back.

For each case it writes the case's own labels (or an empty labels volume when it has none) with the
source geometry, plus an overlay PNG of the slice with the most labelled voxels - the same outputs
`napari-brainseg predict` produces, without a model. Proves reading, geometry and writing end to end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from napari_brainseg.errors import BrainsegInputError
from napari_brainseg.io.napari_readers import get_reader
from napari_brainseg.io.nifti import strip_nifti_suffix
from napari_brainseg.io.writer import write_labels


def _overlay_png(image: np.ndarray, labels: np.ndarray, colors: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import to_rgba

    if image.ndim == 3:  # pick the slice with most labels (middle slice when there are none)
        counts = (labels > 0).reshape(labels.shape[0], -1).sum(1)
        index = int(counts.argmax()) if counts.any() else labels.shape[0] // 2
        image, labels, title = image[index], labels[index], f"{title} (slice {index})"
    rgba = np.zeros((*labels.shape, 4))
    for value in np.unique(labels):
        if value:
            rgba[labels == value] = to_rgba(colors.get(int(value), "#e8453c"), 0.5)
    lo, hi = np.percentile(image[image != 0], [0.5, 99.5]) if np.any(image) else (0, 1)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.imshow(image, cmap="gray", vmin=lo, vmax=hi)
    ax.imshow(rgba)
    ax.set_title(title)
    ax.axis("off")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def readback(case: Path, out: Path) -> list[str]:
    reader = get_reader(str(case))
    if reader is None:
        raise BrainsegInputError(f"{case}: not a BraTS case folder, NIfTI file or LGG patient folder")
    layers = reader(str(case))
    images = [(d, k) for d, k, t in layers if t == "image"]
    labels = [(d, k) for d, k, t in layers if t == "labels"]
    image, image_kwargs = images[0] if images else (None, None)
    if labels:
        data, kwargs = labels[0]
    else:
        data, kwargs = np.zeros(image.shape, np.uint8), {**image_kwargs, "metadata": dict(image_kwargs["metadata"])}
        kwargs["metadata"].setdefault("brainseg", {})["kind"] = "labels"
    name = strip_nifti_suffix(case.name)
    meta = kwargs["metadata"]
    if meta.get("brainseg", {}).get("kind", "").startswith("lgg"):
        target = out / f"{name}_masks"
    else:
        target = out / f"{name}_seg.nii.gz"
    written = write_labels(target, data, meta, scale=kwargs["scale"], overwrite=True)
    if image is not None:
        colormap = kwargs.get("colormap")
        colors = {k: v for k, v in getattr(colormap, "color_dict", {}).items() if k}
        colors = {k: tuple(v) if not isinstance(v, str) else v for k, v in colors.items()}
        png = out / f"{name}_overlay.png"
        _overlay_png(np.asarray(image), np.asarray(data), colors, png, name)
        written.append(str(png))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cases", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("out"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    status = 0
    for case in args.cases:
        try:
            for path in readback(case, args.out):
                print(path)
        except BrainsegInputError as exc:
            print(f"error: {exc}", file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
