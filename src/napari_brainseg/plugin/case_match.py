"""Which layers form one case and go into a run, decided without Qt: picker filling per case, the model
a case's layers fit, and the one-sentence refusals at Run (mixed cases, one layer in two inputs).

Every layer our readers (and sample data) make carries its case in ``metadata["brainseg"]["case"]``;
other layers (napari's builtin reader, napari-nifti, arrays added from Python) get one from their name
(:func:`.layer_names.case_from_name`). Everything here works on plain layer objects, so it is tested
without a viewer (tests/test_job.py).
"""

from __future__ import annotations

from ..engine.inputs import check_channel_dims, check_same_shapes
from ..engine.registry import BRATS_MODEL, LGG_MODEL, get_spec
from ..errors import BrainsegInputError
from .layer_names import brats_modality, case_from_name, lgg_channel
from .layer_style import case_name_of
from .notices import refusal
from .series_inputs import capture

MODALITY_TITLES = {"flair": "FLAIR", "t1": "T1", "t1ce": "T1ce", "t2": "T2"}
RGB = "3-channel"  # the LGG picker that takes one (..., 3) layer


def brats_channels() -> tuple[str, ...]:
    return tuple(get_spec(BRATS_MODEL).in_channels)


def lgg_channels() -> tuple[str, ...]:
    return tuple(get_spec(LGG_MODEL).in_channels)


def layer_case(layer) -> str:
    """The case a layer belongs to: the reader's record, else the case part of its name ('' if none)."""
    info = layer.metadata.get("brainseg", {}) if isinstance(layer.metadata, dict) else {}
    return case_name_of(info) or case_from_name(layer.name)


def is_prediction(layer) -> bool:
    return layer.metadata.get("brainseg", {}).get("kind") == "prediction"


def is_single_channel(layer) -> bool:
    return not getattr(layer, "rgb", False)


def cases_of(images) -> list[str]:
    """Case names of the input image layers, in the order they were opened."""
    return list(dict.fromkeys(layer_case(layer) for layer in images if not is_prediction(layer)))


def pick_brats(images, case: str) -> dict:
    """modality -> the case's image layer for it (None when the case has none)."""
    own = [layer for layer in images if is_single_channel(layer) and layer_case(layer) == case]
    return {m: next((layer for layer in own if brats_modality(layer.name) == m), None) for m in brats_channels()}


def pick_lgg(images, case: str) -> dict:
    """RGB -> the case's 3-channel layer, and channel -> its single-channel layer (None when absent)."""
    own = [layer for layer in images if layer_case(layer) == case]
    rgb = next((layer for layer in own if getattr(layer, "rgb", False) and layer.data.shape[-1] == 3), None)
    singles = [layer for layer in own if is_single_channel(layer)]
    return {RGB: rgb, **{c: next((layer for layer in singles if lgg_channel(layer.name) == c), None) for c in lgg_channels()}}


def fitting_model(brats: dict, lgg: dict) -> str | None:
    """The model a case's picked layers are complete for (BraTS first), else None."""
    if brats and all(brats.values()):
        return BRATS_MODEL
    if lgg.get(RGB) is not None or (lgg and all(lgg.get(c) for c in lgg_channels())):
        return LGG_MODEL
    return None


def _inputs_by_role(model: str, brats: dict, lgg: dict) -> dict:
    """Input role (FLAIR, T1, ... or 3-channel) -> the chosen layer (None for an empty picker)."""
    if model == BRATS_MODEL:
        return {MODALITY_TITLES[m]: brats.get(m) for m in brats_channels()}
    if lgg.get(RGB) is not None:
        return {RGB: lgg[RGB]}
    return {c: lgg.get(c) for c in lgg_channels()}


def run_label(model: str, brats: dict, lgg: dict) -> str:
    """The Run button's text: which case it is about to segment, or why it will not."""
    chosen = [layer for layer in _inputs_by_role(model, brats, lgg).values() if layer is not None]
    cases = cases_of(chosen)
    if len(cases) > 1:
        return f"Run (inputs from {len(cases)} cases)"
    return f"Run on {cases[0]}" if cases and cases[0] else "Run"


def check_inputs(model: str, brats: dict, lgg: dict) -> list:
    """The input layers for ``model`` in its channel order, or one sentence saying what is wrong
    (BrainsegInputError)."""
    by_role = _inputs_by_role(model, brats, lgg)
    missing = [role for role, layer in by_role.items() if layer is None]
    if missing and model == BRATS_MODEL:
        raise refusal(f"{model} needs a FLAIR, T1, T1ce and T2 image layer; choose the {', '.join(missing)} layer(s).",
                      f"Choose the {', '.join(missing)} layer" if len(missing) == 1 else "Choose the input layers")
    if missing:
        raise refusal(f"{model} needs one 3-channel layer or three single-channel layers ({', '.join(lgg_channels())}).",
                      "Choose the input layers")
    _check_no_duplicates(by_role)
    _check_one_case(by_role)
    layers = list(by_role.values())
    named = [(f"layer '{layer.name}'", tuple(layer.data.shape)) for layer in layers]
    if RGB in by_role:
        (rgb,) = layers
        if rgb.data.ndim not in (3, 4) or rgb.data.shape[-1] != len(lgg_channels()):
            raise BrainsegInputError(
                f"{model} needs 3 channels ({', '.join(lgg_channels())}); layer '{rgb.name}' has shape {rgb.data.shape}."
            )
    else:
        check_channel_dims(model, named)
        if model == BRATS_MODEL:  # series on other grids are resampled onto FLAIR when placed (series_inputs)
            capture(brats_channels(), layers)
        else:
            check_same_shapes(named, "layers")
    return layers


def _check_no_duplicates(by_role: dict) -> None:
    seen: dict[int, str] = {}
    for role, layer in by_role.items():
        if id(layer) in seen:
            raise refusal(
                f"Layer '{layer.name}' is chosen as both {seen[id(layer)]} and {role}; choose a different layer for each input.",
                "One layer is chosen for two inputs",
            )
        seen[id(layer)] = role


def _check_one_case(by_role: dict) -> None:
    by_case: dict[str, list[str]] = {}
    for role, layer in by_role.items():
        by_case.setdefault(layer_case(layer), []).append(role)
    known = {case: roles for case, roles in by_case.items() if case}
    if len(known) > 1:
        listing = "; ".join(f"{', '.join(roles)} from {case}" for case, roles in known.items())
        raise refusal(
            f"The inputs come from different cases ({listing}); choose one case in 'Case' or set every input to the same case.",
            f"Inputs from {len(known)} cases; choose one",
        )
