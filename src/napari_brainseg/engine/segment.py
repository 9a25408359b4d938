"""The one inference path: arrays (or a read case) in, a labels array on the input's grid out.

The widget, the Python API and the CLI all call :func:`segment`; it uses the same preprocessing
(``preprocess``) and forward passes (``window``) as training validation, so a model behaves here
exactly as it was measured. Post-processing is the model's sigmoid threshold and small-component
cleanup (``preprocess.postprocess``), then for BraTS the nested regions (TC, WT, ET) become labels in the requested convention (2018: 1/2/4, 2023: 1/2/3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from .. import conventions as label_conventions
from ..errors import BrainsegInputError
from ..io.cases import Case, read_case
from .check_flag import check_flag
from .device import resolve_device
from .foreground import zero_background
from .input_checks import brain_warnings, channel_warnings, spacing_warnings
from .inputs import from_case, normalise_convention, prepare_input
from .model_grid import to_model_grid, to_model_plane, voxel_spacing
from .preprocess import postprocess, preprocess_brats, preprocess_lgg, stack_neighbours, uncrop
from .registry import BRATS_MODEL, MODELS, ModelSpec, get_spec, load_model, model_for
from .result import SegmentationResult
from .skull_strip import strip_skull
from .window import predict_slices, predict_volume

ProgressFn = Callable[[int, int], None]


def _forward(spec: ModelSpec, x: np.ndarray, device: torch.device, sw_batch: int, tta: bool, progress, should_stop,
             members: int, member: int | None = None, amp: bool = True):
    net = load_model(spec.name, device, members)
    if member is not None and members > 1:
        net = net.member(member)  # one network of the ensemble, reading its own input channels
    if spec.spatial_dims == 3:
        return predict_volume(
            net, x, device, spec.patch_size, sw_batch_size=sw_batch, overlap=spec.sw_overlap, tta=tta, amp=amp,
            progress=progress, should_stop=should_stop,
        )
    return predict_slices(
        net, x, device, batch_size=sw_batch, tta=tta, amp=amp, progress=progress, should_stop=should_stop
    )


def _run_with_fallbacks(spec, x, device, tta, progress, should_stop, messages, members,
                        member=None) -> tuple[np.ndarray, torch.device]:
    """Run on ``device``; on CUDA out-of-memory retry with batch 1, then on the CPU - never half a result.
    Probabilities that are not finite (reduced precision overflowed) are recomputed in fp32 rather
    than thresholded into empty labels."""
    batch = spec.batch_size
    attempts = [(device, batch)]
    if device.type == "cuda":
        attempts += [(device, 1), (torch.device("cpu"), batch)]
    for index, (dev, size) in enumerate(attempts):
        try:
            prob = _forward(spec, x, dev, size, tta, progress, should_stop, members, member)
            if not np.isfinite(prob).all():
                messages.append(f"reduced precision on {dev.type} gave non-finite probabilities; recomputed in fp32")
                prob = _forward(spec, x, dev, size, tta, progress, should_stop, members, member, amp=False)
            return prob, dev
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            if index + 1 == len(attempts):
                raise
            nxt_dev, nxt_size = attempts[index + 1]
            where = "on the CPU" if nxt_dev.type == "cpu" else f"with batch size {nxt_size}"
            messages.append(f"CUDA ran out of memory with batch size {size}; retried {where}")
    raise AssertionError("unreachable")


def _members_with_fallbacks(spec, x, device, progress, should_stop, messages, members):
    """Every network of the ensemble under every flip, kept apart (``engine.uncertainty``); their mean
    is the ensemble's TTA probability."""
    from .uncertainty import flip_member_stats

    axes = (1, 2, 3) if spec.spatial_dims == 3 else (2, 3)  # (C, z, y, x) volume or (Z, C, H, W) slices
    networks = list(range(members)) if members > 1 else [None]
    n_members, used = len(networks) * (len(axes) + 1), [device]
    step = [0]

    def predict_with(member):
        def predict(xi):
            index = step[0]
            step[0] += 1
            relay = None if progress is None else (lambda d, t: progress(index * t + d, n_members * t))
            prob, used[0] = _run_with_fallbacks(spec, xi, device, False, relay, should_stop, messages, members, member)
            return prob
        return predict

    # 2D: members come as (Z, K, H, W) slice stacks, channels on axis 1
    stats = flip_member_stats([predict_with(m) for m in networks], x, axes, axes, spec.threshold,
                              channel_axis=0 if spec.spatial_dims == 3 else 1)
    return stats, used[0]


def _probabilities(spec, x, device, tta, uncertainty, progress, should_stop, messages, networks):
    """Probabilities in the forward pass's layout, the device used, and the members when asked for."""
    if not uncertainty:
        return (*_run_with_fallbacks(spec, x, device, tta, progress, should_stop, messages, networks), None)
    members, used = _members_with_fallbacks(spec, x, device, progress, should_stop, messages, networks)
    return members.mean, used, members


def voxel_volume_ml(spacing, ndim: int) -> tuple[float, bool]:
    """Volume of one voxel in mL and whether the spacing was assumed (1 mm) rather than known."""
    if spacing is None:
        return 1e-3, True
    spacing = tuple(float(s) for s in spacing)[-ndim:]
    return float(np.prod(spacing)) / 1000.0, False  # a 2D pixel counts as 1 mm thick


def class_volumes_ml(labels: np.ndarray, convention: str, voxel_ml: float) -> dict[str, float]:
    table = label_conventions.CONVENTIONS[convention]
    # one comparison per class: a bincount would first widen every uint8 voxel to int64
    return {c.name: float(np.count_nonzero(labels == c.value)) * voxel_ml for c in table.classes}


def segment(
    image,
    model: str | None = None,
    *,
    device: str = "auto",
    tta: bool | None = None,
    convention: str | None = None,
    spacing=None,
    affine=None,
    progress: ProgressFn | None = None,
    should_stop: Callable[[], bool] | None = None,
    return_probabilities: bool = False,
    uncertainty: bool = False,
    fast: bool = False,
    skull_strip: str = "auto",
    keep_small_lesions: bool = False,
) -> SegmentationResult:
    """Segment one image with a bundled model.

    ``image``: for ``brats-unet3d`` a (4, z, y, x) stack FLAIR, T1, T1ce, T2 (napari order), a
    dict of those modality arrays, or a read BraTS case; for ``lgg-unet2d`` a (Z, H, W, 3) or
    (H, W, 3) kaggle_3m-style image (channels pre-contrast, FLAIR, post-contrast), three channel
    arrays, or a read LGG case. ``model`` defaults to the one matching the input. ``convention``
    picks the BraTS label values ('2018': 1/2/4, default; '2023': 1/2/3). ``spacing`` (mm, per
    spatial axis) gives the volumes in mL; without it 1 mm voxels are assumed and said so.
    ``affine`` (3D: the NIfTI affine of the volume's i, j, k axes, as in a read case or a layer's
    ``metadata["nifti_affine"]``) gives its orientation and spacing. A 3D input is brought to the
    model's orientation and spacing (``registry``), LGG slices to its plane size, and the result
    back to the input's own grid; without an affine the array is taken to be in the model's
    orientation, at ``spacing``.
    ``progress(done, total)`` is called after each network step; ``should_stop()`` returning True
    aborts with :class:`InterruptedError`. ``uncertainty`` keeps every network under every flip apart
    (so it implies ``tta``) and adds their per-voxel disagreement map and a per-case confidence score.
    ``tta`` (flip test-time augmentation) defaults to the model's cross-validated choice
    (``registry``: ``tta``); ``fast`` runs one network of a fold ensemble instead of all of them
    (``members``) and no TTA unless ``tta=True`` is given.
    ``skull_strip`` (3D models): 'auto' extracts the brain of an input that looks like a whole head
    when the ``[preprocess]`` extra is installed (``skull_strip``), 'on' always, 'off' never.
    ``keep_small_lesions`` skips the model's small-component cleanup (``registry``:
    ``min_component_fraction``), which cross-validation chose on mostly single-lesion cohorts and
    which also removes true satellite lesions of multifocal disease.
    """
    defaults = {}
    if isinstance(image, Case):
        image, case_model, defaults = from_case(image)
        model = model or case_model
    array, model, single_slice = prepare_input(image, model)
    spec = get_spec(model)
    post = replace(spec, min_component_fraction=None) if keep_small_lesions else spec  # what postprocess applies
    convention = normalise_convention(convention or defaults.get("convention"), model)
    spacing = spacing if spacing is not None else defaults.get("spacing")
    affine = affine if affine is not None else defaults.get("affine")
    if affine is not None and spacing is None:
        spacing = voxel_spacing(affine)
    dev = resolve_device(device)
    networks = 1 if fast else spec.members
    if tta is None:
        tta = spec.tta and not fast
    messages: list[str] = list(defaults.get("messages", ()))  # what reading the case changed

    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        messages.append("the image holds NaN/Inf voxels; they were treated as background")
    elif array.min() == array.max():
        messages.append("the image is constant (no contrast), so there is nothing to segment; the labels are empty")
    if spec.spatial_dims == 3:
        on_grid, grid = to_model_grid(array, spec, affine=affine, spacing=spacing)
        messages += grid.describe(spacing) + spacing_warnings(spacing)
        cleaned, foreground = zero_background(on_grid)
        messages += foreground.describe()
        stripped = strip_skull(on_grid, cleaned, foreground.mask, spec, skull_strip, dev.type)
        messages += stripped.lines
        messages += channel_warnings(stripped.stack, stripped.mask, spec.in_channels)
        if stripped.mask is not None:
            messages += brain_warnings(stripped.mask, spec.spacing_mm, spec.in_channels)
        x, box = preprocess_brats(stripped.stack)
        prob_crop, used, members = _probabilities(
            spec, x, dev, tta, uncertainty, progress, should_stop, messages, networks
        )
        if grid.identity:
            # post-process the crop only: outside it the probabilities are 0, so no mask voxel is lost
            regions = uncrop(postprocess(prob_crop, post), box, array.shape[1:])
            prob = uncrop(prob_crop, box, array.shape[1:]) if return_probabilities else None
        else:  # probabilities back on the input's grid, then thresholded there: labels are never interpolated
            prob = grid.back(uncrop(prob_crop, box, grid.model_shape))
            regions = postprocess(prob, post)
        labels = label_conventions.brats_regions_to_labels(regions, convention)
    else:
        on_plane, plane = to_model_plane(array if array.ndim == 4 else array[None], spec)
        messages += plane.describe()
        if skull_strip == "on":
            messages.append(f"skull-stripping is for 3D models only: {model} was trained on unstripped slices")
        # NaN/Inf become background in the shared normalisation; 2.5D members see neighbouring slices
        x = stack_neighbours(preprocess_lgg(on_plane), spec.context)
        prob_slices, used, members = _probabilities(
            spec, x, dev, tta, uncertainty, progress, should_stop, messages, networks
        )
        prob = plane.back(np.moveaxis(prob_slices, 1, 0))  # (K, Z, H, W) on the input's slices
        labels = postprocess(prob, post)[0].astype(np.uint8)  # components across the whole stack
        if single_slice:
            prob, labels = prob[:, 0], labels[0]

    disagreement = None
    if members is not None:
        disagreement = members.disagreement()
        if spec.spatial_dims == 3:
            if grid.identity:
                disagreement = uncrop(disagreement[None], box, array.shape[1:])[0]
            else:
                disagreement = grid.back(uncrop(disagreement[None], box, grid.model_shape))[0]
        else:
            disagreement = plane.back(disagreement[None])[0]
        if spec.spatial_dims == 2 and single_slice:
            disagreement = disagreement[0]

    expected = None if members is None else dict(zip(spec.out_channels, members.expected_dice_per_channel()))
    voxel_ml, assumed = voxel_volume_ml(spacing, labels.ndim)
    if assumed:
        messages.append("voxel spacing unknown: volumes assume 1 mm voxels")
    settings = {
        "model": model,
        "device": str(used),
        "device_requested": str(device),
        "tta": bool(tta or uncertainty),
        "uncertainty": bool(uncertainty),
        "networks": networks,  # of the model's ensemble members; 1 of several is the fast setting
        "threshold": dict(zip(spec.out_channels, spec.thresholds)),  # the sigmoid threshold of each channel
        "min_component_fraction": post.min_component_fraction,
        "keep_small_lesions": bool(keep_small_lesions),
        "label_convention": convention,
        "spacing_mm": None if spacing is None else [float(s) for s in spacing],
    }
    if spec.spatial_dims == 3 and stripped.settings:
        settings["skull_strip"] = stripped.settings
    if defaults.get("transforms"):
        settings["registration"] = defaults["transforms"]
    if spec.spatial_dims == 3 and not grid.identity:
        settings.update(input_orientation=grid.input_axcodes, model_orientation=spec.orientation,
                        model_spacing_mm=list(spec.spacing_mm), model_grid_shape=list(grid.model_shape))
    if spec.spatial_dims == 3:
        settings.update(roi_size=list(spec.patch_size), sw_overlap=spec.sw_overlap, blending="gaussian",
                        core_hole_fill=None if post.core_hole_fill is None else str(post.core_hole_fill))
    return SegmentationResult(
        labels=labels,
        model=model,
        device=str(used),
        label_convention=convention,
        settings=settings,
        volumes_ml=class_volumes_ml(labels, convention, voxel_ml),
        probabilities=prob.astype(np.float32, copy=False) if return_probabilities else None,
        messages=messages,
        uncertainty=disagreement,
        confidence=None if members is None else members.confidence(),
        expected_dice=expected,
        check=check_flag(expected, bool(labels.any())),
    )


def segment_case(path_or_case, model: str | None = None, **kwargs):
    """Read a case folder (or take a read case) and segment it; returns ``(result, case)``.

    BraTS labels come back in the case's own convention unless ``convention`` is given.
    """
    case = path_or_case if isinstance(path_or_case, Case) else read_case(path_or_case)
    expected = model_for(case.kind)
    if model is not None and model != expected:
        kind = "BraTS case" if expected == BRATS_MODEL else "LGG patient"
        raise BrainsegInputError(f"{case.name}: model {model} does not fit a {kind} (use {expected})")
    return segment(case, expected, **kwargs), case


__all__ = ["MODELS", "SegmentationResult", "segment", "segment_case"]
