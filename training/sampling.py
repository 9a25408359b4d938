"""Training patches: MONAI transforms that crop around tumour (pos/neg sampling) and augment.

Patches centre on a tumour voxel with probability ``pos_fraction`` and on another brain voxel
otherwise (never on the empty background). LGG patients are cropped as (2c+1, H, W) slabs of the
stacked volume - the slice plus ``context`` neighbours on each side - and folded into channels,
exactly as ``napari_brainseg.engine.preprocess.stack_neighbours`` builds the 2.5D input at inference.

Augmentation follows nnU-Net's default recipe where MONAI has the transform (mirroring, rotation and
scaling, Gaussian noise and blur, brightness, contrast/gamma, low-resolution simulation); like
nnU-Net v2's default, no elastic deformation (its cost on 2 CPU cores buys little).
"""

from __future__ import annotations

import numpy as np
from monai.data import set_track_meta
from monai.transforms import (
    Compose,
    FgBgToIndicesd,
    MapTransform,
    RandAdjustContrastd,
    RandAffined,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandGaussianNoised,
    RandGaussianSmoothd,
    RandScaleIntensityd,
    RandShiftIntensityd,
    RandSimulateLowResolutiond,
)

set_track_meta(False)  # plain tensors: metadata tracking costs time and nothing here needs it

BACKGROUND_INDEX_STRIDE = 8  # keep every 8th background index: a uniform draw, an eighth of the memory


def precompute_indices(case: dict, context: int = 0, patch: tuple[int, ...] | None = None) -> dict:
    """Channel-first training form of a cached case plus its tumour/brain voxel indices.

    An LGG stack (Z, 3, H, W) becomes a (3, Z + 2c, H, W) volume, edge-padded by ``context`` slices
    so the end slices get the same repeated neighbours as at inference. A volume smaller than the
    3D ``patch`` in some axis (a brain crop 126 voxels high for 128^3 patches) is zero-padded to it,
    as sliding-window inference pads it.
    """
    image, label = case["image"], case["label"]
    if patch is not None and image.ndim == len(patch) + 1:
        pad = [(0, 0)] + [((p - s) // 2, p - s - (p - s) // 2) if s < p else (0, 0) for s, p in zip(image.shape[1:], patch)]
        if any(sum(w) for w in pad):
            image, label = np.pad(image, pad), np.pad(label, pad)
    if image.ndim == 4 and label.ndim == 3:  # LGG stack (Z, 3, H, W) -> (3, Z, H, W) volume
        if context:
            image = np.pad(image, ((context, context), (0, 0), (0, 0), (0, 0)), mode="edge")
            label = np.pad(label, ((context, context), (0, 0), (0, 0)), mode="edge")
        image = np.ascontiguousarray(np.moveaxis(image, 1, 0))
        label = label[None]
    brain = (image != 0).any(0, keepdims=True).astype(np.float32)
    out = {"image": image, "label": label.astype(np.float32), "brain": brain, "name": case["name"]}
    indexed = FgBgToIndicesd(keys="label", image_key="brain", image_threshold=0.5)(out)
    indexed.pop("brain")
    indexed["label_fg_indices"] = np.asarray(indexed["label_fg_indices"], dtype=np.int32)
    indexed["label_bg_indices"] = np.asarray(indexed["label_bg_indices"], dtype=np.int32)[::BACKGROUND_INDEX_STRIDE]
    return indexed


class FoldSlabToChannels(MapTransform):
    """(C, 2c+1, H, W) slab -> (C * (2c+1), H, W) image (slice-major, as stack_neighbours) and the
    centre slice's (1, H, W) label."""

    def __init__(self, context: int):
        super().__init__(["image", "label"])
        self.context = context

    def __call__(self, data):
        d = dict(data)
        image = d["image"]  # (C, D, H, W)
        d["image"] = image.transpose(0, 1).reshape(-1, *image.shape[2:])
        d["label"] = d["label"][:, self.context]
        return d


def make_train_transform(spec, cfg: dict) -> Compose:
    pos = float(cfg["pos_fraction"])
    keys = ["image", "label"]
    nnunet = cfg.get("augment") == "nnunet"
    if spec.spatial_dims == 2:
        context = int(cfg.get("context", 0))
        patch = tuple(cfg.get("patch", (128, 128)))
        crop = [
            RandCropByPosNegLabeld(keys, "label", (2 * context + 1, *patch), pos=pos, neg=1 - pos, num_samples=1,
                                   fg_indices_key="label_fg_indices", bg_indices_key="label_bg_indices"),
            FoldSlabToChannels(context),
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
        rotate = 0.52 if nnunet else 0.17  # nnU-Net: +-30 degrees about each axis
    augment = []
    if nnunet:
        augment = flips + [
            RandAffined(keys, prob=0.2, rotate_range=rotate if spec.spatial_dims == 2 else [rotate] * 3,
                        scale_range=[0.3] * spec.spatial_dims, mode=("bilinear", "nearest"), padding_mode="zeros"),
            RandGaussianNoised("image", prob=0.1, std=0.1),
            RandGaussianSmoothd("image", prob=0.2, sigma_x=(0.5, 1.0), sigma_y=(0.5, 1.0), sigma_z=(0.5, 1.0)),
            RandScaleIntensityd("image", factors=0.25, prob=0.15),
            RandAdjustContrastd("image", prob=0.3, gamma=(0.7, 1.5)),
            RandSimulateLowResolutiond("image", prob=0.25, zoom_range=(0.5, 1.0),
                                       upsample_mode="bilinear" if spec.spatial_dims == 2 else "trilinear"),
        ]
    elif cfg.get("augment", True):
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
