"""Tumour label conventions: values, names and fixed colours for each dataset's segmentation files.

One table per convention so that readers, the writer, the models and the widget all name and colour
classes the same way, and a result can be written in the convention of the case it came from.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
    "brats2018",
    (
        LabelClass(1, "necrotic / non-enhancing tumour core", "#e8453c"),
        LabelClass(2, "peritumoural edema", "#3cb44b"),
        LabelClass(4, "enhancing tumour", "#ffd700"),
    ),
)
# BraTS 2023+: 1 non-enhancing tumour core (NETC), 2 surrounding FLAIR hyperintensity (SNFH), 3 ET.
BRATS_2023 = LabelConvention(
    "brats2023",
    (
        LabelClass(1, "NETC (non-enhancing tumour core)", "#e8453c"),
        LabelClass(2, "SNFH (edema)", "#3cb44b"),
        LabelClass(3, "ET (enhancing tumour)", "#ffd700"),
    ),
)
# LGG (Buda et al.): a single FLAIR-abnormality class.
LGG = LabelConvention("lgg", (LabelClass(1, "FLAIR abnormality (tumour)", "#e8453c"),))

CONVENTIONS = {c.name: c for c in (BRATS_2018, BRATS_2023, LGG)}

# BraTS evaluation regions, in the channel order the 3D model predicts.
BRATS_REGIONS = ("TC", "WT", "ET")
_ET_VALUE = {"brats2018": 4, "brats2023": 3}


def brats_labels_to_regions(labels: np.ndarray, convention: str) -> np.ndarray:
    """Labels (any shape) -> bool regions (3, ...) in the order TC, WT, ET."""
    et = _ET_VALUE[convention]
    tc = (labels == 1) | (labels == et)
    wt = tc | (labels == 2)
    return np.stack([tc, wt, labels == et])


def brats_regions_to_labels(regions: np.ndarray, convention: str) -> np.ndarray:
    """Bool regions (3, ...) TC, WT, ET -> uint8 labels; nested so that ET wins over TC over WT."""
    tc, wt, et = (np.asarray(r, dtype=bool) for r in regions)
    labels = np.zeros(tc.shape, dtype=np.uint8)
    labels[wt] = 2
    labels[tc] = 1
    labels[et] = _ET_VALUE[convention]
    return labels


def convert_brats_labels(labels: np.ndarray, source: str, target: str) -> np.ndarray:
    """Relabel between the 2018 (ET = 4) and 2023 (ET = 3) conventions."""
    if source == target:
        return labels
    out = labels.copy()
    out[labels == _ET_VALUE[source]] = _ET_VALUE[target]
    return out


def guess_brats_convention(labels: np.ndarray) -> str | None:
    """'brats2018' for values within {1, 2, 4} including 4, 'brats2023' for {1, 2, 3} including 3, else None."""
    values = set(np.unique(labels).tolist()) - {0}
    if values and values <= {1, 2, 4} and 4 in values:
        return "brats2018"
    if values and values <= {1, 2, 3} and 3 in values:
        return "brats2023"
    return None
