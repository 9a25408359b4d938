"""Input checks: what each model accepts, brought into the model's layout. Torch-free, so the widget
can run the same checks on napari's main thread.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..conventions import GLIOMA_CONVENTIONS, Convention
from ..errors import BrainsegInputError
from ..io.brats import LABEL_CONVENTION
from ..io.cases import Case
from ..limits import check_size
from .registry import BRATS_MODEL, LGG_MODEL, get_spec, model_for


def normalise_convention(convention: str | None, model: str) -> str:
    if get_spec(model).label_convention == Convention.LGG:
        if convention not in (None, Convention.LGG):
            raise BrainsegInputError(f"model {model} produces LGG labels (0/1); convention {convention!r} does not apply")
        return Convention.LGG
    if convention is None:
        return get_spec(model).label_convention
    name = str(convention).lower()
    name = LABEL_CONVENTION.get(name, name)
    if name not in GLIOMA_CONVENTIONS:
        raise BrainsegInputError(
            f"unknown BraTS label convention {convention!r}; use '2018' (1/2/4), '2023' (1/2/3) or 'msd' (1 edema, 2 core, 3 ET)"
        )
    return name


def _from_mapping(image: Mapping, model: str | None) -> tuple[np.ndarray, str]:
    """A dict of modality/channel arrays -> channel-first stack in the model's channel order."""
    keys = {str(k).lower(): k for k in image}
    if model is None:
        lgg_only = {c.lower() for c in get_spec(LGG_MODEL).in_channels} - {c.lower() for c in get_spec(BRATS_MODEL).in_channels}
        model = LGG_MODEL if lgg_only <= set(keys) else BRATS_MODEL
    spec = get_spec(model)
    wanted = [c.lower() for c in spec.in_channels]
    missing = [c for c in wanted if c not in keys]
    if missing:
        raise BrainsegInputError(
            f"model {model} needs the channels {', '.join(spec.in_channels)}; missing {', '.join(missing)}"
        )
    arrays = [np.asarray(image[keys[c]]) for c in wanted]
    check_same_shapes(list(zip(spec.in_channels, (a.shape for a in arrays))))
    check_size(arrays[0].shape)
    return np.stack(arrays), model


def check_same_shapes(named_shapes, what: str = "channels") -> None:
    """``named_shapes``: (name, shape) per input channel (or layer); they must share one grid."""
    if len({tuple(shape) for _, shape in named_shapes}) > 1:
        listing = ", ".join(f"{name} {tuple(shape)}" for name, shape in named_shapes)
        raise BrainsegInputError(f"the input {what} have different shapes ({listing}); they must share one grid")


def check_channel_dims(model: str, named_shapes) -> None:
    """Each separate channel (or layer) fits ``model``: a 3D volume for a 3D model, 2D slices or a stack of
    them for a 2D model. ``named_shapes``: (name, shape) pairs."""
    spec = get_spec(model)
    for name, shape in named_shapes:
        if spec.spatial_dims == 3 and len(shape) == 2:
            raise BrainsegInputError(f"{model} needs 3D volumes, but {name} is a 2D image")
        if spec.spatial_dims == 3 and len(shape) != 3:
            raise BrainsegInputError(f"{model} needs single-channel 3D volumes; {name} has shape {tuple(shape)}")
        if spec.spatial_dims == 2 and len(shape) not in (2, 3):
            raise BrainsegInputError(f"{model} needs 2D slices or a 3D stack; {name} has shape {tuple(shape)}")


def from_case(case: Case) -> tuple[np.ndarray, str, dict]:
    """A read case (or a phantom) -> (array, model, defaults from the case)."""
    defaults = {"convention": case.label_convention, "spacing": case.spacing, "affine": case.affine,
                "messages": list(case.warnings), "transforms": dict(case.transforms)}
    return case.model_input(), model_for(case.kind), defaults


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
        named = list(zip(spec.in_channels, (a.shape for a in arrays)))
        check_channel_dims(model, named)
        check_same_shapes(named)
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
