"""LGG Segmentation Dataset (Kaggle ``kaggle_3m``) patient folders and slices.

A patient folder ``TCGA_<inst>_<id>_<date>/`` holds ``<patient>_<n>.tif`` (256x256x3 uint8: the
channels are three MR sequences - pre-contrast, FLAIR, post-contrast - not colours) and
``<patient>_<n>_mask.tif`` (0/255). Slice numbers are 1-based and sorted as integers, so slice 10
comes after 9, not after 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
import tifffile

from ..conventions import Convention
from ..errors import BrainsegInputError, first_line
from .cases import CaseKind
from .listing import visible_files

CHANNELS = ("pre-contrast", "FLAIR", "post-contrast")
_SLICE = re.compile(r"^(?P<patient>.+)_(?P<n>\d+)(?P<mask>_mask)?\.tiff?$", re.IGNORECASE)
# one slice bigger than 4096 x 4096 x 4 values is a corrupt header, not an MRI slice: refused before reading
MAX_SLICE_VALUES = 4096 * 4096 * 4
PATIENT_FOLDER = re.compile(r"^TCGA_[A-Za-z0-9]+_[A-Za-z0-9]+_\d+$")


def parse_slice_name(path: str | Path) -> tuple[str, int, bool] | None:
    """``TCGA_CS_4941_19960909_12_mask.tif`` -> (patient, 12, True); None for other names."""
    match = _SLICE.match(Path(path).name)
    if not match:
        return None
    return match["patient"], int(match["n"]), match["mask"] is not None


@dataclass
class LggSliceFiles:
    number: int
    image: Path
    mask: Path | None


def _slice_files(folder: Path):
    """(path, patient, slice number, is_mask) for each LGG slice file in ``folder``."""
    for path in visible_files(folder):
        parsed = parse_slice_name(path)
        if parsed is not None:
            yield (path, *parsed)


def find_patient_slices(folder: str | Path) -> list[LggSliceFiles] | None:
    """Slices of a patient folder in integer order; None when the folder holds no LGG slice."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    images: dict[int, Path] = {}
    masks: dict[int, Path] = {}
    patients = set()
    for path, patient, number, is_mask in _slice_files(folder):
        patients.add(patient)
        (masks if is_mask else images)[number] = path
    if not images:
        return None
    if len(patients) > 1:
        raise BrainsegInputError(f"{folder}: slices of several patients in one folder ({', '.join(sorted(patients))})")
    return [LggSliceFiles(n, images[n], masks.get(n)) for n in sorted(images)]


def find_mask_slices(folder: str | Path) -> tuple[str, list[tuple[int, Path]]] | None:
    """(patient, [(n, mask path), ...]) of a folder that holds LGG mask slices and no images (what
    the plugin's mask-slices writer saves); None otherwise."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    masks: dict[int, Path] = {}
    patients = set()
    for path, patient, number, is_mask in _slice_files(folder):
        if not is_mask:
            return None  # an image slice: a patient folder, not a masks folder
        patients.add(patient)
        masks[number] = path
    if not masks:
        return None
    if len(patients) > 1:
        raise BrainsegInputError(f"{folder}: masks of several patients in one folder ({', '.join(sorted(patients))})")
    return patients.pop(), sorted(masks.items())


def read_mask_slices(folder: str | Path) -> tuple[str, list[int], np.ndarray]:
    """A masks-only folder as (patient, slice numbers, (Z, H, W) uint8 0/1 stack)."""
    found = find_mask_slices(folder)
    if found is None:
        raise BrainsegInputError(f"{folder}: no LGG mask slices (<patient>_<n>_mask.tif) in this folder")
    patient, slices = found
    masks = [read_lgg_mask(path) for _, path in slices]
    if len({m.shape for m in masks}) > 1:
        raise BrainsegInputError(f"{folder}: mask slices of different sizes {sorted({m.shape for m in masks})}")
    return patient, [n for n, _ in slices], np.stack(masks)


def read_tif(path: Path) -> np.ndarray:
    """Read one TIFF page; one-line error for anything that is not a readable image."""
    if path.stat().st_size == 0:
        raise BrainsegInputError(f"{path}: the file is empty")
    try:
        with tifffile.TiffFile(str(path)) as tif:
            if not tif.pages:
                raise BrainsegInputError(f"{path}: the TIFF holds no image")
            if len(tif.pages) > 1:
                raise BrainsegInputError(f"{path}: the TIFF holds {len(tif.pages)} pages; kaggle_3m stores one slice per file")
            page = tif.pages.first
            shape, dtype = tuple(page.shape), page.dtype
            values = int(np.prod(shape, dtype=object))
            if values > MAX_SLICE_VALUES or dtype is None:
                raise BrainsegInputError(
                    f"{path}: a {shape} {dtype} TIFF image is not an MRI slice (too large or corrupt header)"
                )
            return page.asarray()
    except BrainsegInputError:
        raise
    except Exception as exc:  # tifffile/imagecodecs raise many types for corrupt files
        raise BrainsegInputError(f"{path}: not a readable TIFF image ({type(exc).__name__}: {first_line(exc)})") from None


def read_lgg_image(path: str | Path) -> np.ndarray:
    """A slice as (H, W, 3) uint8; grey or RGBA slices and other bit depths are refused clearly."""
    path = Path(path)
    image = read_tif(path)
    if image.ndim == 3 and image.shape[0] == 3 and image.shape[-1] != 3:
        image = np.moveaxis(image, 0, -1)  # planar (3, H, W) storage
    if image.ndim != 3 or image.shape[-1] != 3:
        raise BrainsegInputError(
            f"{path}: expected a 3-channel slice (pre-contrast, FLAIR, post-contrast), found shape {image.shape}"
        )
    if image.dtype != np.uint8:
        raise BrainsegInputError(f"{path}: expected 8-bit channels as in kaggle_3m, found {image.dtype}")
    return image


def read_lgg_mask(path: str | Path) -> np.ndarray:
    """A mask as (H, W) uint8 0/1 (the files store 0/255)."""
    path = Path(path)
    mask = read_tif(path)
    if mask.ndim == 3 and mask.shape[-1] in (3, 4):
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise BrainsegInputError(f"{path}: expected a 2D mask, found shape {mask.shape}")
    return (mask > 0).astype(np.uint8)


class LggSlices:
    """The :class:`~napari_brainseg.io.cases.Case` protocol for a kaggle_3m-style stack of 3-channel slices.

    Subclasses give ``patient_id``, ``image`` (Z, H, W, 3) and ``slice_numbers``; an LGG patient and the
    LGG phantom do.
    """

    kind = CaseKind.LGG
    label_convention = Convention.LGG
    spacing = None  # kaggle_3m TIFFs carry no voxel size
    affine = None  # nor an orientation
    warnings: tuple[str, ...] = ()
    transforms = MappingProxyType({})  # slices are never co-registered

    @property
    def name(self) -> str:
        return self.patient_id

    def model_input(self) -> np.ndarray:
        """(Z, H, W, 3) in the channel order of :data:`CHANNELS`."""
        return self.image

    def overlay_image(self) -> np.ndarray:
        return self.image[..., CHANNELS.index("FLAIR")]

    def output_paths(self, output_dir) -> list[Path]:
        folder = Path(output_dir) / self.patient_id
        return [folder / f"{self.patient_id}_{n}_mask.tif" for n in self.slice_numbers]

    def write_labels(self, labels: np.ndarray, output_dir, *, overwrite: bool = False) -> list[str]:
        """``output_dir/<patient>/<patient>_<n>_mask.tif`` (uint8 0/255) for every slice n."""
        from .writer import write_labels_lgg

        meta = {"brainseg": {"patient_id": self.patient_id, "slice_numbers": list(self.slice_numbers)}}
        return write_labels_lgg(Path(output_dir) / self.patient_id, labels, meta, overwrite=overwrite)


@dataclass
class LggCase(LggSlices):
    patient_id: str
    folder: Path
    slice_numbers: list[int]
    image: np.ndarray  # (Z, H, W, 3) uint8
    mask: np.ndarray | None  # (Z, H, W) uint8 0/1, None when no slice has a mask file
    slices: list[LggSliceFiles]

    def channel(self, index: int) -> np.ndarray:
        return self.image[..., index]


def read_lgg_patient(folder: str | Path) -> LggCase:
    folder = Path(folder)
    slices = find_patient_slices(folder)
    if slices is None:
        raise BrainsegInputError(f"{folder}: no LGG slices (<patient>_<n>.tif) in this folder")
    images = [read_lgg_image(s.image) for s in slices]
    shapes = {im.shape for im in images}
    if len(shapes) > 1:
        raise BrainsegInputError(f"{folder}: slices of different sizes {sorted(shapes)}")
    has_masks = any(s.mask is not None for s in slices)
    mask = None
    if has_masks:
        h, w = images[0].shape[:2]
        mask = np.zeros((len(slices), h, w), dtype=np.uint8)
        for i, s in enumerate(slices):
            if s.mask is None:
                continue
            m = read_lgg_mask(s.mask)
            if m.shape != (h, w):
                raise BrainsegInputError(f"{s.mask}: mask shape {m.shape} differs from the slice's {(h, w)}")
            mask[i] = m
    patient = parse_slice_name(slices[0].image)[0]
    return LggCase(patient, folder, [s.number for s in slices], np.stack(images), mask, slices)
