"""Training patches: MONAI transforms that crop around tumour (pos/neg sampling) and augment.

Patches centre on a tumour voxel with probability ``pos_fraction`` and on another brain voxel
otherwise (never on the empty background), so small tumours are seen often without teaching the
network that tumour is everywhere. LGG patients are cropped as (1, 128, 128) slabs of the stacked
volume and squeezed to 2D, which samples tumour-bearing slices without a separate slice sampler.
"""

from __future__ import annotations

import numpy as np
from monai.data import set_track_meta
from monai.transforms import (
    Compose,
    FgBgToIndicesd,
    RandAffined,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    SqueezeDimd,
)

set_track_meta(False)  # plain tensors: metadata tracking costs time and nothing here needs it


def precompute_indices(case: dict) -> dict:
    """Channel-first training form of a cached case plus its tumour/brain voxel indices."""
    image, label = case["image"], case["label"]
    if image.ndim == 4 and label.ndim == 3:  # LGG stack (Z, 3, H, W) -> (3, Z, H, W) volume
        image = np.ascontiguousarray(np.moveaxis(image, 1, 0))
        label = label[None]
    brain = (image != 0).any(0, keepdims=True).astype(np.float32)
    out = {"image": image, "label": label.astype(np.float32), "brain": brain, "name": case["name"]}
    indexed = FgBgToIndicesd(keys="label", image_key="brain", image_threshold=0.5)(out)
    indexed.pop("brain")
    return indexed


def make_train_transform(spec, cfg: dict) -> Compose:
    pos = float(cfg["pos_fraction"])
    keys = ["image", "label"]
    if spec.spatial_dims == 2:
        patch = tuple(cfg.get("patch", (128, 128)))
        crop = [
            RandCropByPosNegLabeld(keys, "label", (1, *patch), pos=pos, neg=1 - pos, num_samples=1,
                                   fg_indices_key="label_fg_indices", bg_indices_key="label_bg_indices"),
            SqueezeDimd(keys, dim=1),
        ]
        flips = [RandFlipd(keys, prob=0.5, spatial_axis=1)]  # left-right only: slices are axial
        rotate = 0.26  # 15 degrees in-plane
    else:
        patch = tuple(cfg.get("patch", spec.patch_size))
        crop = [
            RandCropByPosNegLabeld(keys, "label", patch, pos=pos, neg=1 - pos, num_samples=1,
                                   fg_indices_key="label_fg_indices", bg_indices_key="label_bg_indices"),
        ]
        flips = [RandFlipd(keys, prob=0.5, spatial_axis=a) for a in range(3)]
        rotate = 0.17
    augment = []
    if cfg.get("augment", True):
        augment = flips + [
            RandAffined(keys, prob=0.2 if spec.spatial_dims == 3 else 0.3, rotate_range=rotate,
                        scale_range=0.1, mode=("bilinear", "nearest"), padding_mode="zeros"),
            RandScaleIntensityd("image", factors=0.1, prob=0.5),
            RandShiftIntensityd("image", offsets=0.1, prob=0.5),
        ]
    inner = Compose(crop + augment)
    return _FirstSample(inner)


class _FirstSample:
    """RandCropByPosNegLabeld returns a list of samples; training takes one per draw."""

    def __init__(self, compose: Compose):
        self.compose = compose

    def set_random_state(self, seed: int) -> None:
        self.compose.set_random_state(seed=seed)

    def __call__(self, case: dict) -> dict:
        out = self.compose(case)
        return out[0] if isinstance(out, list) else out
