"""Change between two time points of one patient, from two segmentations: volume, bidimensional
product and lesion count, and the RANO threshold each change falls into.

Measurement only, not a clinical assessment: RANO's response also weighs new lesions, the
non-enhancing disease, steroid dose, clinical status and a confirmation scan, none of which a
segmentation holds.
"""

from __future__ import annotations

from dataclasses import dataclass

from .rano import Measurement

DISCLAIMER = ("Measurement only, not a clinical assessment: RANO response also needs new lesions, non-enhancing "
              "disease, steroid dose, clinical status and a confirmation scan. Research use only.")
# RANO (Wen et al., J Clin Oncol 2010): change of the sum of products of perpendicular diameters
PRODUCT_PROGRESSION = 0.25  # >= 25 % increase
PRODUCT_PARTIAL_RESPONSE = -0.50  # >= 50 % decrease
# the volumetric equivalents (mRANO / RANO 2.0, Ellingson et al. 2017; Wen et al. 2023)
VOLUME_PROGRESSION = 0.40
VOLUME_PARTIAL_RESPONSE = -0.65


@dataclass
class Change:
    baseline: Measurement
    follow_up: Measurement
    baseline_ml: float  # volume of the measured target (all its lesions)
    follow_up_ml: float

    @staticmethod
    def _relative(before: float, after: float) -> float | None:
        return None if before <= 0 else (after - before) / before

    @property
    def product_change(self) -> float | None:
        return self._relative(self.baseline.sum_of_products_mm2, self.follow_up.sum_of_products_mm2)

    @property
    def volume_change(self) -> float | None:
        return self._relative(self.baseline_ml, self.follow_up_ml)

    @property
    def product_category(self) -> str:
        return category(self.baseline.sum_of_products_mm2, self.follow_up.sum_of_products_mm2,
                        PRODUCT_PROGRESSION, PRODUCT_PARTIAL_RESPONSE, "measurable disease")

    @property
    def volume_category(self) -> str:
        return category(self.baseline_ml, self.follow_up_ml, VOLUME_PROGRESSION, VOLUME_PARTIAL_RESPONSE, "tumour volume")

    def as_dict(self) -> dict:
        def pct(v):
            return None if v is None else round(100 * v, 1)

        return {
            "target": self.baseline.target,
            "baseline": {**self.baseline.as_dict(), "volume_ml": round(self.baseline_ml, 3)},
            "follow_up": {**self.follow_up.as_dict(), "volume_ml": round(self.follow_up_ml, 3)},
            "product_change_pct": pct(self.product_change),
            "volume_change_pct": pct(self.volume_change),
            "lesion_count_change": self.follow_up.n_lesions - self.baseline.n_lesions,
            "product_category": self.product_category,
            "volume_category": self.volume_category,
            "thresholds": {"product": "+25 % progression, -50 % partial response (RANO 2010)",
                           "volume": "+40 % progression, -65 % partial response (mRANO / RANO 2.0)"},
            "disclaimer": DISCLAIMER,
        }

    def lines(self) -> list[str]:
        """A short plain-text account (CLI output, widget text)."""
        d = self.as_dict()

        def fmt(v, unit):
            return "n/a" if v is None else f"{v:+.1f} {unit}"

        return [
            f"target: {d['target']}",
            f"sum of products: {self.baseline.sum_of_products_mm2:.0f} -> {self.follow_up.sum_of_products_mm2:.0f} mm² "
            f"({fmt(d['product_change_pct'], '%')}): {d['product_category']}",
            f"volume: {self.baseline_ml:.2f} -> {self.follow_up_ml:.2f} mL ({fmt(d['volume_change_pct'], '%')}): "
            f"{d['volume_category']}",
            f"lesions: {self.baseline.n_lesions} -> {self.follow_up.n_lesions}",
            DISCLAIMER,
        ]


def category(before: float, after: float, progression: float, response: float, what: str) -> str:
    """The RANO-threshold band of a change from ``before`` to ``after``."""
    if before <= 0:
        return f"not evaluable (no {what} at baseline)" if after <= 0 else f"new {what} (none at baseline)"
    if after <= 0:
        return "complete disappearance (complete-response range)"
    change = (after - before) / before
    if change >= progression:
        return f"increase >= {progression:.0%} (progression range)"
    if change <= response:
        return f"decrease >= {-response:.0%} (partial-response range)"
    return "within the stable range"


def compare(baseline: Measurement, follow_up: Measurement) -> Change:
    if baseline.target != follow_up.target:
        raise ValueError(f"cannot compare {baseline.target} with {follow_up.target}")
    return Change(baseline, follow_up, _target_ml(baseline), _target_ml(follow_up))


def _target_ml(m: Measurement) -> float:
    return float(sum(lesion.volume_ml for lesion in m.lesions))
