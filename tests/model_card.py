"""What a bundled model's card says it scores on one validation case, and the check a test run must pass.

The accuracy tests compare every class/region they can measure with the card's per-case value rather
than with a floor: CPU inference is deterministic, so the shipped path on the same case reproduces the
card to well within ``CARD_TOLERANCE`` (the same weights on the Intel machine that wrote the cards and on
an AMD one agree to 1e-4 per case, benchmarks/results/postprocess.json), while a swapped label or a
reordered channel moves at least one value by more (ET Dice 0.86 -> 0.07; LGG 0.889 -> 0.854). The expected
values are read from the card, so these tests stay right when new weights ship with a new card; the
card must then hold the shipped model's per-case values (``validation.per_case``, or ``reference_outputs`` for
a fold ensemble) for the test cases.
"""

from __future__ import annotations

import numpy as np

from napari_brainseg.conventions import Convention
from napari_brainseg.engine.metrics import region_dice
from napari_brainseg.engine.registry import get_spec

CARD_TOLERANCE = 0.01

# the cases the accuracy tests segment: validation cases of the round-1 single models (never trained on);
# a fold ensemble trained on them, and its card holds reference outputs for them (training/ensemble.py)
LGG_VAL_PATIENT = "TCGA_CS_6290_20000917"  # 20 slices, tumour on five
BRATS_VAL_CASE = "Brats18_2013_20_1"  # the 2018 case tests/conftest.py unpacks


def card_values(model: str, case: str) -> dict:
    """The card's row of ``case``: ``reference_outputs`` of a fold ensemble (training/ensemble.py), else
    ``validation.per_case`` of a single model."""
    card = get_spec(model).card()
    table = card["reference_outputs"] if "reference_outputs" in card else card["validation"]
    rows = {row["case"]: row for row in table["per_case"]}
    assert case in rows, f"the {model} card has no validation value for {case}; the accuracy tests need one"
    return rows[case]


def brats_dice(pred: np.ndarray, truth: np.ndarray, convention: str = "brats2018", truth_convention: str | None = None) -> dict:
    """Dice per region (engine.metrics.region_dice), keyed as on the card (``dice_TC``, ``dice_WT``, ``dice_ET``)."""
    return {f"dice_{name}": value for name, value in region_dice(pred, convention, truth, truth_convention or convention).items()}


def lgg_dice(pred: np.ndarray, truth: np.ndarray) -> dict:
    return {"dice": region_dice(np.asarray(pred), Convention.LGG, np.asarray(truth))["tumour"]}


def assert_matches_card(model: str, case: str, measured: dict) -> None:
    """Every measured value within CARD_TOLERANCE of the card's value for ``case``."""
    expected = card_values(model, case)
    off = {k: (round(v, 4), round(expected[k], 4)) for k, v in measured.items() if abs(v - expected[k]) > CARD_TOLERANCE}
    print(f"{model} {case}: " + ", ".join(f"{k} {v:.4f} (card {expected[k]:.4f})" for k, v in measured.items()))
    assert not off, f"{model} on {case} differs from its card by more than {CARD_TOLERANCE} (measured, card): {off}"
