"""Tumour label conventions: values, names and fixed colours for each dataset's segmentation files.

One table per convention so that readers, the writer, the models and the widget all name and colour
classes the same way, and a result can be written in the convention of the case it came from.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np


class Convention(str, Enum):
    """The label conventions, as a string enum (like MONAI's ``StrEnum``): members compare equal to, hash
    like and serialise as their plain values, so layer metadata and JSON keep the strings."""

    BRATS2018 = "brats2018"  # BraTS 2018-2021: ET = 4
    BRATS2023 = "brats2023"  # BraTS 2023+: ET = 3
    MSD = "msd"  # Medical Segmentation Decathlon Task01: 1 edema, 2 core, 3 ET
    LGG = "lgg"  # one tumour class

    def __str__(self) -> str:
        return self.value




@dataclass(frozen=True)
class LabelClass:
    value: int
    name: str
    color: str  # hex, fixed so that a class looks the same in every layer and screenshot


@dataclass(frozen=True)
class LabelConvention:
    name: str
    classes: tuple[LabelClass, ...]

    def names(self) -> dict[int, str]:
        return {c.value: c.name for c in self.classes}

    def colors(self) -> dict[int | None, str]:
        """A napari ``DirectLabelColormap`` dict (background transparent)."""
        colors: dict[int | None, str] = {0: "transparent", None: "transparent"}
        colors.update({c.value: c.color for c in self.classes})
        return colors

    @property
    def values(self) -> tuple[int, ...]:
        return tuple(c.value for c in self.classes)


# BraTS 2018-2021: 1 necrotic / non-enhancing core, 2 peritumoural edema, 4 enhancing tumour.
BRATS_2018 = LabelConvention(
    Convention.BRATS2018,
    (
        LabelClass(1, "necrotic / non-enhancing tumour core", "#e8453c"),
        LabelClass(2, "peritumoural edema", "#3cb44b"),
        LabelClass(4, "enhancing tumour", "#ffd700"),
    ),
)
# BraTS 2023+: 1 non-enhancing tumour core (NETC), 2 surrounding FLAIR hyperintensity (SNFH), 3 ET.
BRATS_2023 = LabelConvention(
    Convention.BRATS2023,
    (
        LabelClass(1, "NETC (non-enhancing tumour core)", "#e8453c"),
        LabelClass(2, "SNFH (edema)", "#3cb44b"),
        LabelClass(3, "ET (enhancing tumour)", "#ffd700"),
    ),
)
# Medical Segmentation Decathlon Task01_BrainTumour (its dataset.json): 1 edema, 2 non-enhancing
# tumour, 3 enhancing tumour - classes 1 and 2 the other way round from BraTS.
MSD = LabelConvention(
    Convention.MSD,
    (
        LabelClass(1, "edema", "#3cb44b"),
        LabelClass(2, "non-enhancing tumour", "#e8453c"),
        LabelClass(3, "enhancing tumour", "#ffd700"),
    ),
)
# LGG (Buda et al.): a single FLAIR-abnormality class.
LGG = LabelConvention(Convention.LGG, (LabelClass(1, "FLAIR abnormality (tumour)", "#e8453c"),))

CONVENTIONS = {c.name: c for c in (BRATS_2018, BRATS_2023, MSD, LGG)}

# BraTS evaluation regions, in the channel order the 3D model predicts.
BRATS_REGIONS = ("TC", "WT", "ET")
# label values of (non-enhancing core, edema, enhancing tumour) in each glioma convention
_VALUES = {Convention.BRATS2018: (1, 2, 4), Convention.BRATS2023: (1, 2, 3), Convention.MSD: (2, 1, 3)}
GLIOMA_CONVENTIONS = tuple(_VALUES)  # the conventions with TC / WT / ET regions


def brats_labels_to_regions(labels: np.ndarray, convention: str) -> np.ndarray:
    """Labels (any shape) -> bool regions (3, ...) in the order TC, WT, ET."""
    core, edema, et = _VALUES[convention]
    tc = (labels == core) | (labels == et)
    wt = tc | (labels == edema)
    return np.stack([tc, wt, labels == et])


def brats_regions_to_labels(regions: np.ndarray, convention: str) -> np.ndarray:
    """Bool regions (3, ...) TC, WT, ET -> uint8 labels; nested so that ET wins over TC over WT."""
    core, edema, et_value = _VALUES[convention]
    tc, wt, et = (np.asarray(r, dtype=bool) for r in regions)
    labels = np.zeros(tc.shape, dtype=np.uint8)
    labels[wt] = edema
    labels[tc] = core
    labels[et] = et_value
    return labels


def convert_brats_labels(labels: np.ndarray, source: str, target: str) -> np.ndarray:
    """Relabel between the glioma conventions (2018: ET = 4; 2023: ET = 3; MSD: 1 and 2 swapped)."""
    if source == target:
        return labels
    out = labels.copy()
    for old, new in zip(_VALUES[source], _VALUES[target]):
        out[labels == old] = new
    return out


def guess_brats_convention(labels: np.ndarray) -> str | None:
    """'brats2018' for values within {1, 2, 4} including 4, 'brats2023' for {1, 2, 3} including 3, else None."""
    values = set(np.unique(labels).tolist()) - {0}
    if values and values <= {1, 2, 4} and 4 in values:
        return Convention.BRATS2018
    if values and values <= {1, 2, 3} and 3 in values:
        return Convention.BRATS2023
    return None
