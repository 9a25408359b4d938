"""RANO-style bidimensional measurement of a labels array, in mm from the voxel spacing.

Per lesion (a 3D connected component of the target class): the axial slice where its area is largest,
the longest in-plane diameter on that slice and the longest diameter perpendicular to it. Lengths are
the extent of the lesion's voxels (their outer edges, as calipers laid on the displayed pixels), so a
rasterised disc of diameter D measures D within one voxel, and a single voxel measures one voxel.

The target follows RANO: the enhancing tumour for BraTS conventions, the FLAIR abnormality for LGG
(RANO for low-grade glioma measures the T2/FLAIR abnormality). Axis 0 is taken as the axial axis
(napari (z, y, x) order of the plugin's readers).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage

MEASURABLE_MM = 10.0  # RANO: both perpendicular diameters at least 10 mm
MAX_TARGET_LESIONS = 5  # RANO (Wen et al. 2010): the sum of products of up to 5 target lesions
# Components smaller than this across are counted as fragments, not lesions: ground truths and predictions
# hold isolated voxels (50 enhancing components in Brats18_2013_20_1's truth, 49 of them under 4 mm).
MIN_LESION_MM = 5.0  # half of RANO's measurable size

# What "the tumour" is for the bidimensional product, per label convention.
_TARGET = {"brats2018": ("enhancing tumour", (4,)), "brats2023": ("enhancing tumour", (3,)), "lgg": ("FLAIR abnormality", (1,))}
_REGIONS = {  # optional other targets for BraTS conventions: the nested evaluation regions
    "enhancing": lambda et: (et,),
    "core": lambda et: (1, et),
    "whole": lambda et: (1, 2, et),
}


@dataclass(frozen=True)
class Segment:
    """A line segment on one axial slice, endpoints in voxel coordinates (z, y, x)."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    length_mm: float


@dataclass(frozen=True)
class Lesion:
    slice_index: int  # the axial slice where the lesion's area is largest
    longest: Segment
    perpendicular: Segment
    volume_ml: float

    @property
    def product_mm2(self) -> float:
        return self.longest.length_mm * self.perpendicular.length_mm

    @property
    def measurable(self) -> bool:
        return min(self.longest.length_mm, self.perpendicular.length_mm) >= MEASURABLE_MM


@dataclass
class Measurement:
    target: str  # what was measured, e.g. "enhancing tumour"
    lesions: list[Lesion]  # every connected component: lesions by product, then fragments
    spacing_mm: tuple[float, float, float]
    spacing_assumed: bool  # True when no spacing was known and 1 mm voxels were assumed
    notes: list[str] = field(default_factory=list)

    @property
    def n_lesions(self) -> int:
        """Separate lesions at least ``MIN_LESION_MM`` across (smaller components are ``n_fragments``)."""
        return sum(lesion.longest.length_mm >= MIN_LESION_MM for lesion in self.lesions)

    @property
    def n_fragments(self) -> int:
        return len(self.lesions) - self.n_lesions

    @property
    def target_lesions(self) -> list[Lesion]:
        return [lesion for lesion in self.lesions if lesion.measurable][:MAX_TARGET_LESIONS]

    @property
    def sum_of_products_mm2(self) -> float:
        """RANO's sum of the products of the measurable target lesions (0 when none is measurable)."""
        return float(sum(lesion.product_mm2 for lesion in self.target_lesions))

    @property
    def largest(self) -> Lesion | None:
        return self.lesions[0] if self.lesions else None

    def as_dict(self) -> dict:
        largest = self.largest
        return {
            "target": self.target,
            "n_lesions": self.n_lesions,
            "n_fragments": self.n_fragments,
            "n_measurable": sum(lesion.measurable for lesion in self.lesions),
            "sum_of_products_mm2": round(self.sum_of_products_mm2, 2),
            "largest": None if largest is None else {
                "slice": largest.slice_index,
                "longest_mm": round(largest.longest.length_mm, 2),
                "perpendicular_mm": round(largest.perpendicular.length_mm, 2),
                "product_mm2": round(largest.product_mm2, 2),
                "volume_ml": round(largest.volume_ml, 3),
            },
            "spacing_mm": list(self.spacing_mm),
            "spacing_assumed": self.spacing_assumed,
        }


def target_values(convention: str, region: str | None = None) -> tuple[str, tuple[int, ...]]:
    """(name, label values) of what is measured for ``convention``; ``region`` picks another BraTS region."""
    if convention not in _TARGET:
        raise ValueError(f"unknown label convention {convention!r}")
    if region is None or convention == "lgg":
        return _TARGET[convention]
    et = _TARGET[convention][1][0]
    return f"{region} tumour", _REGIONS[region](et)


def measure_labels(labels, convention: str, spacing=None, *, region: str | None = None) -> Measurement:
    """Measure the target class of ``labels`` ((z, y, x) or one (y, x) slice) in ``convention``.

    ``spacing``: mm per axis in the labels' order; None assumes 1 mm and says so in the result.
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[None]
    if labels.ndim != 3:
        raise ValueError(f"labels must be 2D or 3D, got shape {labels.shape}")
    assumed = spacing is None
    spacing = (1.0, 1.0, 1.0) if assumed else tuple(float(s) for s in spacing)
    if len(spacing) == 2:
        spacing = (1.0, *spacing)
    spacing = spacing[-3:]
    name, values = target_values(convention, region)
    mask = np.isin(labels, values)
    # 26-connectivity: voxels touching at an edge or corner are one lesion, not two
    components, n = ndimage.label(mask, structure=np.ones((3, 3, 3), dtype=bool))
    voxel_ml = float(np.prod(spacing)) / 1000.0
    lesions = []
    for index, box in enumerate(ndimage.find_objects(components), start=1):
        lesion = components[box] == index
        lesions.append(_measure_lesion(lesion, box, spacing, voxel_ml))
    # lesions before fragments, each by product then volume
    lesions.sort(key=lambda lesion: (lesion.longest.length_mm < MIN_LESION_MM, -lesion.product_mm2, -lesion.volume_ml))
    notes = ["voxel spacing unknown: diameters assume 1 mm voxels"] if assumed else []
    return Measurement(name, lesions, spacing, assumed, notes)


def _measure_lesion(lesion: np.ndarray, box, spacing, voxel_ml: float) -> Lesion:
    areas = lesion.reshape(lesion.shape[0], -1).sum(1)
    z_local = int(areas.argmax())
    z = box[0].start + z_local
    offset = np.array([box[1].start, box[2].start], dtype=float)
    longest, perpendicular = bidimensional(lesion[z_local], spacing[1:])
    to_zyx = lambda p: (float(z), *(float(v) for v in np.asarray(p) + offset))  # noqa: E731
    segments = [Segment(to_zyx(a), to_zyx(b), length) for a, b, length in (longest, perpendicular)]
    return Lesion(z, segments[0], segments[1], float(lesion.sum()) * voxel_ml)


def bidimensional(mask2d: np.ndarray, spacing_yx=(1.0, 1.0)):
    """The longest diameter of a 2D mask and the longest one perpendicular to it.

    Returns two ``(start, end, length_mm)`` tuples with (y, x) voxel-coordinate endpoints. The longest
    diameter joins the two boundary voxels farthest apart; the perpendicular one is the largest extent
    of the mask across it, over strips one voxel wide. Each is extended by half a voxel at both ends
    (the voxels' outer edges along that direction).
    """
    spacing = np.asarray(spacing_yx, dtype=float)
    points = np.argwhere(mask2d).astype(float) * spacing
    if len(points) == 0:
        raise ValueError("empty mask")
    edge = np.argwhere(mask2d & ~ndimage.binary_erosion(mask2d, border_value=0)).astype(float) * spacing
    edge = _hull_points(edge)
    i, j = _farthest_pair(edge)
    start, end = edge[i], edge[j]
    u = end - start
    u = u / np.linalg.norm(u) if np.linalg.norm(u) > 0 else np.array([0.0, 1.0])
    v = np.array([-u[1], u[0]])
    along, across = points @ u, points @ v
    strip = np.round(along / spacing.min()).astype(int)  # one-voxel strips across the longest diameter
    order = np.argsort(strip, kind="stable")
    strip, across = strip[order], across[order]
    firsts = np.r_[0, np.flatnonzero(np.diff(strip)) + 1]
    lows, highs = np.minimum.reduceat(across, firsts), np.maximum.reduceat(across, firsts)
    best = int(np.argmax(highs - lows))
    a = strip[firsts[best]] * spacing.min()
    return _edge_to_edge(start, end, u, spacing), _edge_to_edge(a * u + lows[best] * v, a * u + highs[best] * v, v, spacing)


def _edge_to_edge(start, end, direction, spacing):
    """Centre-to-centre segment -> outer-edge segment: half a voxel's width along ``direction`` added at each end."""
    half = 0.5 * float(np.abs(direction) @ spacing)
    start, end = start - half * direction, end + half * direction
    return tuple(start / spacing), tuple(end / spacing), float(np.linalg.norm(end - start))


def _hull_points(points: np.ndarray) -> np.ndarray:
    """The convex hull's vertices (the farthest pair is among them); all points when they are collinear."""
    from scipy.spatial import ConvexHull, QhullError

    if len(points) < 4:
        return points
    try:
        return points[ConvexHull(points).vertices]
    except QhullError:  # a straight line of voxels
        return points


def _farthest_pair(points: np.ndarray, chunk: int = 512) -> tuple[int, int]:
    """Indices of the two points farthest apart (exact; chunked so memory stays small)."""
    best, pair = -1.0, (0, 0)
    for s in range(0, len(points), chunk):
        d = ((points[s : s + chunk, None, :] - points[None, :, :]) ** 2).sum(-1)
        k = int(d.argmax())
        if d.flat[k] > best:
            best, pair = float(d.flat[k]), (s + k // len(points), k % len(points))
    return pair
