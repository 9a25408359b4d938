"""The one inference path: arrays (or a read case) in, a labels array on the input's grid out.

The widget, the Python API and the CLI all call :func:`segment`; it uses the same preprocessing
(``transforms``) and forward passes (``predict``) as training validation, so a model behaves here
exactly as it was measured. Post-processing is the model's sigmoid threshold and small-component
cleanup (``transforms.postprocess``), then for BraTS the nested regions (TC, WT, ET) become labels in the requested convention (2018: 1/2/4, 2023: 1/2/3).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import torch

from . import labels as label_conventions
from .device import resolve_device
from .errors import BrainsegInputError
from .io.brats import LABEL_CONVENTION
from .limits import check_size
from .models.registry import MODELS, ModelSpec, get_spec, load_model
from .predict import predict_slices, predict_volume
from .transforms import postprocess, preprocess_brats, preprocess_lgg, uncrop

BRATS_MODEL = "brats-unet3d"
LGG_MODEL = "lgg-unet2d"
# Sliding-window settings as in training validation (training/configs/brats-unet3d.json), Gaussian
# blending. benchmarks/overlap.py on the 6 validation cases: overlap 0.5 adds 0.001-0.002 Dice for 45 %
# more inference time, so 0.25 stays.
SW_OVERLAP = 0.25
SW_BATCH_SIZE = 2
SLICE_BATCH_SIZE = 16

ProgressFn = Callable[[int, int], None]

@dataclass
class SegmentationResult:
    labels: np.ndarray  # uint8, on the input's spatial grid
    model: str
    device: str  # the device that produced the labels (after any fallback)
    label_convention: str  # labels.CONVENTIONS key
    settings: dict  # everything needed to reproduce the run
    volumes_ml: dict[str, float]  # class name -> volume in mL (from ``spacing``)
    probabilities: np.ndarray | None = None  # (K, *grid) float32 sigmoid outputs when asked for
    messages: list[str] = field(default_factory=list)  # fallbacks and assumptions, one line each

    @property
    def class_names(self) -> dict[int, str]:
        return label_conventions.CONVENTIONS[self.label_convention].names()


# ------------------------------------------------------------------------------------ input checks


def _normalise_convention(convention: str | None, model: str) -> str:
    if get_spec(model).label_convention == "lgg":
        if convention not in (None, "lgg"):
            raise BrainsegInputError(f"model {model} produces LGG labels (0/1); convention {convention!r} does not apply")
        return "lgg"
    if convention is None:
        return get_spec(model).label_convention
    name = str(convention).lower()
    name = LABEL_CONVENTION.get(name, name)
    if name not in ("brats2018", "brats2023"):
        raise BrainsegInputError(f"unknown BraTS label convention {convention!r}; use '2018' (1/2/4) or '2023' (1/2/3)")
    return name


def _from_mapping(image: Mapping, model: str | None) -> tuple[np.ndarray, str]:
    """A dict of modality/channel arrays -> channel-first stack in the model's channel order."""
    keys = {str(k).lower(): k for k in image}
    if model is None:
        model = LGG_MODEL if {"pre-contrast", "post-contrast"} <= set(keys) else BRATS_MODEL
    spec = get_spec(model)
    wanted = [c.lower() for c in spec.in_channels]
    missing = [c for c in wanted if c not in keys]
    if missing:
        raise BrainsegInputError(
            f"model {model} needs the channels {', '.join(spec.in_channels)}; missing {', '.join(missing)}"
        )
    arrays = [np.asarray(image[keys[c]]) for c in wanted]
    _check_same_shapes(arrays, spec.in_channels)
    check_size(arrays[0].shape)
    return np.stack(arrays), model


def _check_same_shapes(arrays, names) -> None:
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        listing = ", ".join(f"{n} {a.shape}" for n, a in zip(names, arrays))
        raise BrainsegInputError(f"the input channels have different shapes ({listing})")


def _from_case(case) -> tuple[np.ndarray, str, dict]:
    """A BratsCase / LggCase -> (array, model, defaults from the case)."""
    from .io.brats import BratsCase
    from .io.lgg import LggCase

    if isinstance(case, BratsCase):
        return case.stacked(), BRATS_MODEL, {"convention": case.label_convention, "spacing": case.spacing}
    if isinstance(case, LggCase):
        return case.image, LGG_MODEL, {}
    raise TypeError(f"not a read case: {type(case).__name__}")


def prepare_input(image, model: str | None = None) -> tuple[np.ndarray, str, bool]:
    """Check ``image`` against the model and bring it into the model's layout.

    Returns (array, model name, single_slice): BraTS -> (4, z, y, x); LGG -> (Z, H, W, 3), with
    ``single_slice`` True when a (H, W, 3) slice was given (the result is then 2D too).
    """
    if model is not None:
        get_spec(model)
    if isinstance(image, Mapping):
        array, model = _from_mapping(image, model)
        if model == LGG_MODEL:
            array = np.moveaxis(array, 0, -1)  # channels last, like a kaggle_3m slice
    elif isinstance(image, (list, tuple)):
        arrays = [np.asarray(a) for a in image]
        if model is None:
            model = {4: BRATS_MODEL, 3: LGG_MODEL}.get(len(arrays))
            if model is None:
                raise BrainsegInputError(
                    f"got {len(arrays)} channel arrays; give 4 (FLAIR, T1, T1ce, T2) or 3 (pre-contrast, FLAIR, post-contrast)"
                )
        spec = get_spec(model)
        if len(arrays) != len(spec.in_channels):
            raise BrainsegInputError(
                f"model {model} needs {len(spec.in_channels)} channels ({', '.join(spec.in_channels)}), got {len(arrays)}"
            )
        _check_same_shapes(arrays, spec.in_channels)
        check_size(arrays[0].shape)
        array = np.stack(arrays)
        if model == LGG_MODEL:
            array = np.moveaxis(array, 0, -1)
    else:
        array = np.asarray(image)
        if array.dtype == object or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
            raise BrainsegInputError(f"the image must be a numeric array, got dtype {array.dtype}")
        if model is None:
            model = _guess_model(array)
    return _check_layout(array, model)


def _guess_model(array: np.ndarray) -> str:
    # channels-last RGB-like slices first: a (4, H, W, 3) stack is four LGG slices, not four volumes
    if array.ndim in (3, 4) and array.shape[-1] == 3:
        return LGG_MODEL
    if array.ndim == 4 and array.shape[0] == 4:
        return BRATS_MODEL
    if array.ndim == 4 and array.shape[0] == 3:
        return LGG_MODEL
    raise BrainsegInputError(
        f"cannot tell which model fits an array of shape {array.shape}: give (4, z, y, x) FLAIR/T1/T1ce/T2 "
        "for brats-unet3d or (Z, H, W, 3) / (H, W, 3) slices for lgg-unet2d"
    )


def _check_layout(array: np.ndarray, model: str) -> tuple[np.ndarray, str, bool]:
    spec = get_spec(model)
    n = len(spec.in_channels)
    if array.size == 0:
        raise BrainsegInputError(f"the image is empty (shape {array.shape})")
    if model == BRATS_MODEL:
        if array.ndim == 3 and array.shape[0] == n:
            raise BrainsegInputError(f"model {model} needs 3D volumes; got 2D channels of shape {array.shape[1:]}")
        if array.ndim != 4:
            raise BrainsegInputError(
                f"model {model} needs a (4, z, y, x) stack (FLAIR, T1, T1ce, T2), got shape {array.shape}"
            )
        if array.shape[0] != n:
            raise BrainsegInputError(
                f"model {model} needs {n} channels ({', '.join(spec.in_channels)}), got {array.shape[0]}"
            )
        check_size(array.shape[1:])
        return array, model, False
    # LGG: channels last; also accept a channel-first (3, Z, H, W) triple
    if array.ndim == 4 and array.shape[0] == n and array.shape[-1] != n:
        array = np.moveaxis(array, 0, -1)
    if array.ndim not in (3, 4) or array.shape[-1] != n:
        channels = array.shape[-1] if array.ndim == 4 or (array.ndim == 3 and array.shape[-1] <= 4) else 1
        raise BrainsegInputError(
            f"model {model} needs {n}-channel slices ({', '.join(spec.in_channels)}) as (H, W, 3) or (Z, H, W, 3); "
            f"got shape {array.shape} ({channels} channel{'s' if channels != 1 else ''})"
        )
    check_size(array.shape[:-1])
    return array, model, array.ndim == 3


# ------------------------------------------------------------------------------------ running


def _forward(spec: ModelSpec, x: np.ndarray, device: torch.device, sw_batch: int, tta: bool, progress, should_stop):
    net = load_model(spec.name, device)
    if spec.spatial_dims == 3:
        return predict_volume(
            net, x, device, spec.patch_size, sw_batch_size=sw_batch, overlap=SW_OVERLAP, tta=tta, amp=True,
            progress=progress, should_stop=should_stop,
        )
    return predict_slices(
        net, x, device, batch_size=sw_batch, tta=tta, amp=True, progress=progress, should_stop=should_stop
    )


def _run_with_fallbacks(spec, x, device, tta, progress, should_stop, messages) -> tuple[np.ndarray, torch.device]:
    """Run on ``device``; on CUDA out-of-memory retry with batch 1, then on the CPU - never half a result."""
    batch = SW_BATCH_SIZE if spec.spatial_dims == 3 else SLICE_BATCH_SIZE
    attempts = [(device, batch)]
    if device.type == "cuda":
        attempts += [(device, 1), (torch.device("cpu"), batch)]
    for index, (dev, size) in enumerate(attempts):
        try:
            return _forward(spec, x, dev, size, tta, progress, should_stop), dev
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if index + 1 == len(attempts):
                raise
            nxt_dev, nxt_size = attempts[index + 1]
            where = "on the CPU" if nxt_dev.type == "cpu" else f"with batch size {nxt_size}"
            messages.append(f"CUDA ran out of memory with batch size {size}; retried {where}")
    raise AssertionError("unreachable")


def voxel_volume_ml(spacing, ndim: int) -> tuple[float, bool]:
    """Volume of one voxel in mL and whether the spacing was assumed (1 mm) rather than known."""
    if spacing is None:
        return 1e-3, True
    spacing = tuple(float(s) for s in spacing)[-ndim:]
    return float(np.prod(spacing)) / 1000.0, False  # a 2D pixel counts as 1 mm thick


def class_volumes_ml(labels: np.ndarray, convention: str, voxel_ml: float) -> dict[str, float]:
    counts = np.bincount(labels.ravel(), minlength=256)
    table = label_conventions.CONVENTIONS[convention]
    return {c.name: float(counts[c.value]) * voxel_ml for c in table.classes}


def segment(
    image,
    model: str | None = None,
    *,
    device: str = "auto",
    tta: bool = False,
    convention: str | None = None,
    spacing=None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    return_probabilities: bool = False,
) -> SegmentationResult:
    """Segment one image with a bundled model.

    ``image``: for ``brats-unet3d`` a (4, z, y, x) stack FLAIR, T1, T1ce, T2 (napari order), a
    dict of those modality arrays, or a read BraTS case; for ``lgg-unet2d`` a (Z, H, W, 3) or
    (H, W, 3) kaggle_3m-style image (channels pre-contrast, FLAIR, post-contrast), three channel
    arrays, or a read LGG case. ``model`` defaults to the one matching the input. ``convention``
    picks the BraTS label values ('2018': 1/2/4, default; '2023': 1/2/3). ``spacing`` (mm, per
    spatial axis) gives the volumes in mL; without it 1 mm voxels are assumed and said so.
    ``progress(done, total)`` is called after each network step; ``should_stop()`` returning True
    aborts with :class:`InterruptedError`.
    """
    defaults = {}
    if hasattr(image, "stacked") or hasattr(image, "slice_numbers"):
        image, case_model, defaults = _from_case(image)
        model = model or case_model
    array, model, single_slice = prepare_input(image, model)
    spec = get_spec(model)
    convention = _normalise_convention(convention or defaults.get("convention"), model)
    spacing = spacing if spacing is not None else defaults.get("spacing")
    dev = resolve_device(device)
    messages: list[str] = []

    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        messages.append("the image holds NaN/Inf voxels; they were treated as background")
    elif array.min() == array.max():
        messages.append("the image is constant (no contrast), so there is nothing to segment; the labels are empty")
    if spec.spatial_dims == 3:
        x, box = preprocess_brats(array)
        prob_crop, used = _run_with_fallbacks(spec, x, dev, tta, progress, should_stop, messages)
        # post-process the crop only: outside it the probabilities are 0, so no mask voxel is lost
        regions = uncrop(postprocess(prob_crop, spec), box, array.shape[1:])
        labels = label_conventions.brats_regions_to_labels(regions, convention)
        prob = uncrop(prob_crop, box, array.shape[1:]) if return_probabilities else None
    else:
        x = preprocess_lgg(array)  # NaN/Inf become background in the shared normalisation
        prob_slices, used = _run_with_fallbacks(spec, x, dev, tta, progress, should_stop, messages)
        prob = np.moveaxis(prob_slices, 1, 0)  # (K, Z, H, W)
        labels = postprocess(prob, spec)[0].astype(np.uint8)  # components across the whole stack
        if single_slice:
            prob, labels = prob[:, 0], labels[0]

    voxel_ml, assumed = voxel_volume_ml(spacing, labels.ndim)
    if assumed:
        messages.append("voxel spacing unknown: volumes assume 1 mm voxels")
    settings = {
        "model": model,
        "device": str(used),
        "device_requested": str(device),
        "tta": bool(tta),
        "threshold": spec.threshold,
        "min_component_fraction": spec.min_component_fraction,
        "label_convention": convention,
        "spacing_mm": None if spacing is None else [float(s) for s in spacing],
    }
    if spec.spatial_dims == 3:
        settings.update(roi_size=list(spec.patch_size), sw_overlap=SW_OVERLAP, blending="gaussian")
    return SegmentationResult(
        labels=labels,
        model=model,
        device=str(used),
        label_convention=convention,
        settings=settings,
        volumes_ml=class_volumes_ml(labels, convention, voxel_ml),
        probabilities=prob.astype(np.float32, copy=False) if return_probabilities else None,
        messages=messages,
    )


# ------------------------------------------------------------------------------------ cases on disk


def case_kind(path) -> str | None:
    """'brats' for a BraTS case folder, 'lgg' for an LGG patient folder, else None."""
    from .io.brats import find_case_files
    from .io.lgg import find_patient_slices

    path = Path(path)
    if not path.is_dir():
        return None
    if find_case_files(path) is not None:
        return "brats"
    if find_patient_slices(path) is not None:
        return "lgg"
    return None


def read_case(path):
    """A BraTS case folder -> ``BratsCase``; an LGG patient folder -> ``LggCase``."""
    from .io.brats import read_brats_case
    from .io.lgg import read_lgg_patient

    kind = case_kind(path)
    if kind is not None:
        _check_case_size(Path(path), kind)
    if kind == "brats":
        return read_brats_case(path, require_all=True)
    if kind == "lgg":
        return read_lgg_patient(path)
    raise BrainsegInputError(f"{path}: not a BraTS case folder or an LGG patient folder")


def _check_case_size(path: Path, kind: str) -> None:
    """The size guard from the files' headers alone, so an over-large case is refused before it is read."""
    if kind == "brats":
        import nibabel as nib

        from .io.brats import find_case_files

        first = next(iter(find_case_files(path).images.values()), None)
        if first is None:
            return
        try:
            shape = nib.load(str(first)).shape  # header only: the data stays on disk
        except Exception:
            return  # unreadable: read_brats_case reports it with the file name
        check_size(shape[:3], f"{first.name}")
        return
    import tifffile

    from .io.lgg import find_patient_slices

    slices = find_patient_slices(path)
    try:
        with tifffile.TiffFile(str(slices[0].image)) as tif:
            plane = tif.pages.first.shape[:2]
    except Exception:
        return
    check_size((len(slices), *plane), f"{path.name} ({len(slices)} slices)")


def case_name(case) -> str:
    return getattr(case, "case_id", None) or case.patient_id


def segment_case(path_or_case, model: str | None = None, **kwargs):
    """Read a case folder (or take a read case) and segment it; returns ``(result, case)``.

    BraTS labels come back in the case's own convention unless ``convention`` is given.
    """
    case = path_or_case if hasattr(path_or_case, "images") or hasattr(path_or_case, "image") else read_case(path_or_case)
    expected = BRATS_MODEL if hasattr(case, "stacked") else LGG_MODEL
    if model is not None and model != expected:
        kind = "BraTS case" if expected == BRATS_MODEL else "LGG patient"
        raise BrainsegInputError(f"{case_name(case)}: model {model} does not fit a {kind} (use {expected})")
    return segment(case, expected, **kwargs), case


def output_paths(case, output_dir) -> list[Path]:
    """The files :func:`write_result` writes for ``case`` (for overwrite checks before running)."""
    output_dir = Path(output_dir)
    if hasattr(case, "stacked"):
        return [output_dir / f"{case.case_id}.nii.gz"]
    folder = output_dir / case.patient_id
    return [folder / f"{case.patient_id}_{n}_mask.tif" for n in case.slice_numbers]


def write_result(result: SegmentationResult, case, output_dir, *, overwrite: bool = False) -> list[str]:
    """Write labels like the case's own files into ``output_dir`` (created if missing); atomic (temp
    name + rename); refuses to overwrite.

    BraTS case C -> ``output_dir/C.nii.gz`` (uint8, the case's affine and header); LGG patient P ->
    ``output_dir/P/P_<n>_mask.tif`` (uint8 0/255) for every slice n.
    """
    from .io.writer import write_labels_lgg, write_labels_nifti

    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise BrainsegInputError(f"{output_dir}: the output path is a file, not a folder")
    output_dir.mkdir(parents=True, exist_ok=True)  # as the CLI's --output
    if hasattr(case, "stacked"):
        if result.labels.shape != case.reference.data.shape:
            raise BrainsegInputError(f"{case.case_id}: labels shape {result.labels.shape} differs from the case grid")
        meta = {"nifti_affine": case.affine, "nifti_header": bytes(case.reference.header.binaryblock)}
        return [write_labels_nifti(output_dir / f"{case.case_id}.nii.gz", result.labels, meta, overwrite=overwrite)]
    meta = {"brainseg": {"patient_id": case.patient_id, "slice_numbers": list(case.slice_numbers)}}
    return write_labels_lgg(output_dir / case.patient_id, result.labels, meta, overwrite=overwrite)


__all__ = [
    "MODELS",
    "SegmentationResult",
    "segment",
    "segment_case",
    "read_case",
    "write_result",
    "output_paths",
    "case_kind",
]
