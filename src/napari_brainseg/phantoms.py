"""Procedural phantoms: synthetic brain MRI with a tumour, so demos and tests need no patient data.

Real BraTS/LGG data cannot ship in the package. These phantoms are generated from a seed (same seed,
same voxels) with the project's own simple anatomy. BraTS: a skull-stripped ellipsoidal brain with
white and grey matter, two ventricles and a tumour at contrasts measured on BraTS 2018 (edema and core
bright on FLAIR and T2, an enhancing rim bright on T1ce). LGG: a kaggle_3m-like axial stack with scalp
fat, skull, CSF, folded grey over white matter and a FLAIR-bright, non-enhancing lesion at 8-bit levels
measured on kaggle_3m. They show that the pipeline runs and that layers, labels and geometry line up;
they are not data to judge a model on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import nibabel as nib
import numpy as np
from scipy import ndimage

from .conventions import Convention
from .io.brats import MODALITIES, BratsVolumes
from .io.lgg import LggSlices
from .io.nifti import napari_to_nifti

BRATS_PHANTOM_CASE = "Synthetic_phantom_1"  # BraTS-2018-style names: Synthetic_phantom_1_flair.nii.gz
LGG_PHANTOM_PATIENT = "SYNTHETIC_LGG_0001"  # kaggle_3m-style names: SYNTHETIC_LGG_0001_7.tif
BRATS_FULL_SHAPE = (155, 240, 240)  # (z, y, x) of a real BraTS volume at 1 mm

# Tissue intensities per modality. Tumour levels follow the ratios to the healthy-brain mean measured
# on four BraTS 2018 cases (FLAIR: edema, enhancing and necrotic core 1.4-2.7x; T1: 0.7-1.0x; T1ce:
# enhancing 1.3-1.6x (set higher here: the thin rim loses contrast to partial volume), edema 0.8-1.0x,
# core 0.8-1.0x (darker here, so that it stays darker than the blurred rim); T2: 1.3-2.1x, the core brightest).
_TISSUES = ("wm", "gm", "csf", "edema", "enhancing", "necrosis")
_CONTRAST = {
    "flair": {"wm": 330, "gm": 430, "csf": 90, "edema": 710, "enhancing": 700, "necrosis": 670},
    "t1": {"wm": 720, "gm": 520, "csf": 200, "edema": 565, "enhancing": 520, "necrosis": 430},
    "t1ce": {"wm": 720, "gm": 540, "csf": 210, "edema": 575, "enhancing": 1200, "necrosis": 340},
    "t2": {"wm": 300, "gm": 460, "csf": 1050, "edema": 630, "enhancing": 650, "necrosis": 775},
}


@dataclass
class BratsPhantom(BratsVolumes):
    case_id: str
    images: dict[str, np.ndarray]  # flair, t1, t1ce, t2 -> (z, y, x) int16
    seg: np.ndarray  # (z, y, x) uint8, BraTS 2018 labels: 1 necrotic core, 2 edema, 4 enhancing
    spacing: tuple[float, float, float]  # (z, y, x) mm
    affine: np.ndarray  # 4x4 NIfTI affine, voxel (i, j, k) = (x, y, z) -> RAS mm, BraTS-like orientation

    label_convention = Convention.BRATS2018
    warnings: tuple[str, ...] = ()  # generated on one grid: nothing resampled or assumed
    transforms = MappingProxyType({})

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.seg.shape

    def stacked(self) -> np.ndarray:
        return np.array([self.images[m] for m in MODALITIES], dtype=np.float32)

    def nifti_header(self) -> nib.Nifti1Header:
        return nifti_header(self.spacing, np.uint8, self.shape)


@dataclass
class LggPhantom(LggSlices):
    patient_id: str
    image: np.ndarray  # (Z, H, W, 3) uint8: pre-contrast, FLAIR, post-contrast
    mask: np.ndarray  # (Z, H, W) uint8 0/1, the FLAIR abnormality
    slice_numbers: list[int]  # 1-based, as in kaggle_3m


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Zero-mean, unit-ish smooth random field (for wobbly boundaries and bias fields)."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma)
    return field / (field.std() + 1e-6)


def _ellipsoid(grid, centre, radii, wobble=None) -> np.ndarray:
    """Normalised squared distance to ``centre``; < 1 inside the (optionally wobbly) ellipsoid."""
    r2 = sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii))
    return r2 if wobble is None else r2 * (1 + wobble)


def _tissue_maps(shape, rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Boolean maps of each tissue (mutually exclusive) and the BraTS-2018 label volume."""
    grid = np.meshgrid(*(np.linspace(-1, 1, n, dtype=np.float32) for n in shape), indexing="ij")
    z, y, x = grid
    coarse = tuple(max(8, n // 4) for n in shape)
    wobble = ndimage.zoom(_smooth_noise(rng, coarse, 1.5), [n / c for n, c in zip(shape, coarse)], order=1)
    wobble = wobble[: shape[0], : shape[1], : shape[2]]

    brain = _ellipsoid(grid, (0, 0, 0), (0.82, 0.86, 0.72), 0.04 * wobble) < 1
    white = _ellipsoid(grid, (0, 0, 0), (0.62, 0.68, 0.55), 0.12 * wobble) < 1
    ventricles = (_ellipsoid(grid, (0.05, -0.05, -0.12), (0.28, 0.30, 0.07)) < 1) | (
        _ellipsoid(grid, (0.05, -0.05, 0.12), (0.28, 0.30, 0.07)) < 1
    )

    # tumour in one hemisphere, away from the midline; position and size depend on the seed
    side = rng.choice([-1.0, 1.0])
    centre = (rng.uniform(-0.2, 0.25), rng.uniform(-0.3, 0.3), side * rng.uniform(0.22, 0.3))
    core_r = rng.uniform(0.14, 0.2)
    tumour_wobble = 0.25 * wobble
    d_edema = _ellipsoid(grid, centre, (core_r * 2.0, core_r * 2.2, core_r * 1.9), tumour_wobble)
    d_core = _ellipsoid(grid, centre, (core_r,) * 3, tumour_wobble)
    edema = (d_edema < 1) & brain
    core = (d_core < 1) & brain
    necrosis = (d_core < 0.45) & brain
    enhancing = core & ~necrosis

    seg = np.zeros(shape, dtype=np.uint8)
    seg[edema] = 2
    seg[enhancing] = 4
    seg[necrosis] = 1
    csf = ventricles & brain & (seg == 0)
    wm = white & brain & ~csf & (seg == 0)
    gm = brain & ~white & ~csf & (seg == 0)
    maps = {"wm": wm, "gm": gm, "csf": csf, "edema": seg == 2, "enhancing": seg == 4, "necrosis": seg == 1}
    del x, y, z
    return maps, seg


def _render(maps, contrast, rng, bias, brain) -> np.ndarray:
    image = np.zeros(brain.shape, dtype=np.float32)
    for tissue in _TISSUES:
        image[maps[tissue]] = contrast[tissue]
    image = ndimage.gaussian_filter(image, 0.8)  # partial-volume edges
    image *= 1 + 0.08 * bias  # smooth coil inhomogeneity
    image += rng.normal(0, 18, image.shape).astype(np.float32)
    image[~brain] = 0  # skull-stripped: background exactly 0, as in BraTS
    return np.clip(image, 0, 32767).astype(np.int16)


def make_brats_phantom(
    shape: tuple[int, int, int] = (96, 112, 96),
    *,
    spacing: tuple[float, float, float] = (1.0, 1.0, 1.0),
    seed: int = 0,
    case_id: str = BRATS_PHANTOM_CASE,
) -> BratsPhantom:
    """A 4-modality brain volume with a tumour and its labels, in napari order (z, y, x).

    ``shape=BRATS_FULL_SHAPE`` gives a BraTS-sized 155x240x240 volume; the default is smaller so that
    tests and demos stay fast on a CPU.
    """
    shape = tuple(int(n) for n in shape)
    if len(shape) != 3 or min(shape) < 16:
        raise ValueError(f"phantom shape must be 3D with at least 16 voxels per side, got {shape}")
    rng = np.random.default_rng(seed)
    maps, seg = _tissue_maps(shape, rng)
    brain = seg.astype(bool) | maps["wm"] | maps["gm"] | maps["csf"]
    bias = _smooth_noise(rng, shape, min(shape) / 6)
    images = {m: _render(maps, _CONTRAST[m], rng, bias, brain) for m in MODALITIES}
    sz, sy, sx = (float(s) for s in spacing)
    # BraTS orientation: i runs right->left, j posterior->anterior flipped, k inferior->superior
    affine = np.array(
        [[-sx, 0, 0, 0], [0, -sy, 0, sy * (shape[1] - 1)], [0, 0, sz, 0], [0, 0, 0, 1]], dtype=float
    )
    return BratsPhantom(case_id, images, seg, (sz, sy, sx), affine)


_LGG_CONTRAST = {  # 8-bit levels measured on kaggle_3m (6 patients): head mean ~60, FLAIR lesion ~1.8x
    # channel: pre-contrast, FLAIR, post-contrast
    "scalp": (190, 150, 185),  # subcutaneous fat: bright on T1, less on FLAIR
    "skull": (12, 10, 12),  # cortical bone: no signal
    "csf": (28, 14, 30),  # sulcal CSF and ventricles: dark on T1 and (suppressed) FLAIR
    "gm": (58, 72, 55),
    "wm": (80, 60, 72),  # T1: white matter brighter than grey; FLAIR: the reverse
    "tumour": (50, 125, 52),  # lower-grade glioma: FLAIR-bright, faintly T1-dark, not enhancing
}


def _lgg_anatomy(n_slices: int, size: int, rng: np.random.Generator):
    """Label maps of an axial head stack: scalp, skull, CSF, grey and white matter, ventricles, tumour."""
    z = np.linspace(-0.75, 0.65, n_slices, dtype=np.float32)[:, None, None]  # skull base -> vertex
    y, x = np.meshgrid(*(np.linspace(-1, 1, size, dtype=np.float32),) * 2, indexing="ij")
    shape = (n_slices, size, size)
    wobble = ndimage.zoom(_smooth_noise(rng, (n_slices, 24, 24), 1.2), (1, size / 24, size / 24), order=1)
    fine = ndimage.zoom(_smooth_noise(rng, (n_slices, 64, 64), 0.8), (1, size / 64, size / 64), order=1)
    head_r = np.sqrt(np.clip(1 - (z / 0.95) ** 2, 0.05, 1))  # the head narrows towards both ends
    r = np.sqrt((y / (0.80 * head_r)) ** 2 + (x / (0.66 * head_r)) ** 2) * (1 + 0.01 * wobble)
    head, skull_in = r < 1.0, r < 0.93
    brain = r < 0.86 + 0.01 * wobble
    gyri = brain & (r < 0.80 + 0.05 * fine)  # grey matter ribbon with a folded outer edge
    white = brain & (r < 0.62 + 0.07 * wobble + 0.04 * fine)
    vent_r = 0.18 * np.clip(1 - ((z - 0.05) / 0.35) ** 2, 0, 1)
    ventricles = ((np.abs(x) - 0.08) ** 2 / 0.06 ** 2 + (y + 0.05) ** 2 / (0.35 * vent_r + 1e-3) ** 2 < 1) & (vent_r > 0)
    labels = np.zeros(shape, np.uint8)  # 1 scalp, 2 skull, 3 csf, 4 gm, 5 wm
    labels[head] = 1
    labels[skull_in] = 2
    labels[brain] = 3
    labels[gyri] = 4
    labels[white] = 5
    labels[ventricles & brain] = 3
    # an irregular lesion in one hemisphere's white matter, over about a third of the slices
    side = rng.choice([-1.0, 1.0])
    centre = (rng.uniform(-0.15, 0.25), rng.uniform(-0.35, 0.2), side * rng.uniform(0.22, 0.32))
    radii = (rng.uniform(0.22, 0.28), rng.uniform(0.16, 0.22), rng.uniform(0.14, 0.19))
    d = sum(((g - c) / rr) ** 2 for g, c, rr in zip((z, y, x), centre, radii)) * (1 + 0.35 * wobble)
    tumour = (d < 1) & brain & ~ventricles
    labels[tumour] = 6
    return labels, tumour, fine


def make_lgg_phantom(
    n_slices: int = 22, size: int = 256, *, seed: int = 0, patient_id: str = LGG_PHANTOM_PATIENT
) -> LggPhantom:
    """A kaggle_3m-like stack: (Z, size, size, 3) uint8 (pre-contrast, FLAIR, post-contrast) + 0/1 mask.

    An axial head with scalp fat, skull, CSF, folded grey matter over white matter, ventricles and a
    non-enhancing, FLAIR-bright lower-grade glioma; 8-bit levels as measured on kaggle_3m slices.
    """
    rng = np.random.default_rng(seed)
    labels, tumour, fine = _lgg_anatomy(n_slices, size, rng)
    bias = _smooth_noise(rng, labels.shape, size / 5)
    tissues = ("background", "scalp", "skull", "csf", "gm", "wm", "tumour")
    channels = []
    for c in range(3):
        table = np.array([0.0] + [_LGG_CONTRAST[t][c] for t in tissues[1:]], np.float32)
        image = table[labels]
        image *= 1 + 0.06 * fine  # tissue texture
        image = ndimage.gaussian_filter(image, (0, 1.0, 1.0))  # partial-volume edges
        image *= 1 + 0.07 * bias  # coil inhomogeneity
        image += rng.normal(0, 3.0, image.shape).astype(np.float32) * (labels > 0)
        channels.append(np.clip(image, 0, 255).astype(np.uint8))
    return LggPhantom(patient_id, np.stack(channels, axis=-1), tumour.astype(np.uint8), list(range(1, n_slices + 1)))


def nifti_header(spacing_zyx, dtype, shape_zyx) -> nib.Nifti1Header:
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_data_shape(tuple(reversed(shape_zyx)))
    header.set_zooms(tuple(reversed(spacing_zyx)))
    header.set_xyzt_units("mm")
    header["descrip"] = b"napari-brainseg synthetic phantom"
    return header


def write_brats_phantom(dest: str | Path, phantom: BratsPhantom | None = None, *, with_seg: bool = True) -> Path:
    """Write the phantom as a BraTS-2018-named case folder ``dest/<case>/<case>_{flair,...,seg}.nii.gz``."""
    phantom = phantom or make_brats_phantom()
    folder = Path(dest) / phantom.case_id
    folder.mkdir(parents=True, exist_ok=True)
    volumes = dict(phantom.images)
    if with_seg:
        volumes["seg"] = phantom.seg
    for suffix, data in volumes.items():
        image = nib.Nifti1Image(napari_to_nifti(data), phantom.affine, nifti_header(phantom.spacing, data.dtype, data.shape))
        image.set_qform(phantom.affine, code=1)
        image.set_sform(phantom.affine, code=1)
        nib.save(image, str(folder / f"{phantom.case_id}_{suffix}.nii.gz"))
    return folder


def write_lgg_phantom(dest: str | Path, phantom: LggPhantom | None = None, *, with_masks: bool = True) -> Path:
    """Write the stack as a kaggle_3m-style patient folder ``dest/<patient>/<patient>_<n>[_mask].tif``."""
    import tifffile

    phantom = phantom or make_lgg_phantom()
    folder = Path(dest) / phantom.patient_id
    folder.mkdir(parents=True, exist_ok=True)
    for index, number in enumerate(phantom.slice_numbers):
        stem = folder / f"{phantom.patient_id}_{number}"
        tifffile.imwrite(f"{stem}.tif", phantom.image[index], photometric="rgb")
        if with_masks:
            tifffile.imwrite(f"{stem}_mask.tif", phantom.mask[index] * np.uint8(255))
    return folder
