"""The "check this core" flag (issue 13): a per-case one-liner raised when the model's own expected Dice
(``engine.uncertainty.MemberStats.expected_dice_per_channel``) of the region it most often gets wrong,
the tumour core (LGG: the tumour), falls below a threshold.

The confidence (the members' agreement) ranks cases better overall, but when every member puts the
core in the same wrong place it stays high; the expected Dice is low wherever much of the mask is only
just over the threshold, which catches more of the worst cases and the misplaced cores with fewer
false alarms (docs/measurements.md). A measurement for research use, not a verdict on the case.
"""

from __future__ import annotations

from dataclasses import dataclass

# Output channel watched -> flag when its expected Dice is below this. Chosen on out-of-fold predictions
# of cross-validation folds 0 and 2 only and checked on the other folds (python -m benchmarks.core_flag,
# benchmarks/results/core_flag.json, docs/measurements.md). Measured per case on the networks that never
# saw it under identity + one flip per axis: BraTS one fold network (the members of fast=True), LGG the
# fold network of each of the shipped ensemble's two recipes; not on a whole ensemble's members. BraTS
# re-chosen (0.75 -> 0.77) with the shipped post-processing of session 9 (threshold 0.6, core holes filled).
CHECK_THRESHOLDS = {"TC": 0.77, "tumour": 0.75}
_WORDS = {"TC": ("the tumour core", "expected core Dice"), "tumour": ("the tumour outline", "expected Dice")}


@dataclass(frozen=True)
class CheckFlag:
    region: str  # the output channel watched: "TC" (BraTS) or "tumour" (LGG)
    expected_dice: float
    threshold: float

    @property
    def raised(self) -> bool:
        return self.expected_dice < self.threshold

    def summary(self) -> str:
        """A few words for a summary line: 'expected core Dice 0.880', or when raised 'check the tumour
        core (expected core Dice 0.42, below 0.75)'."""
        what, score = _WORDS[self.region]
        if self.raised:
            return f"check {what} ({score} {self.expected_dice:.2f}, below {self.threshold:.2f})"
        return f"{score} {self.expected_dice:.3f}"

    def line(self) -> str:
        """One line for people: the check when raised, else the value and what would raise it."""
        what, score = _WORDS[self.region]
        if self.raised:
            return (f"Check {what}: the model's own {score} is {self.expected_dice:.2f} (below {self.threshold:.2f}; "
                    "a measurement for research use)")
        return f"No check flag: the model's own {score} is {self.expected_dice:.2f} (flagged below {self.threshold:.2f})"

    def columns(self) -> dict:
        """The flag as table columns (volumes.csv, the widget's CSV)."""
        return {"check_region": self.region, "check_expected_dice": self.expected_dice,
                "check_flag": "yes" if self.raised else "no"}

    def as_record(self) -> dict:
        """Plain values for a layer's metadata; :meth:`from_record` reads them back."""
        return {"region": self.region, "expected_dice": self.expected_dice, "threshold": self.threshold}

    @classmethod
    def from_record(cls, record: dict | None) -> CheckFlag | None:
        return None if not record else cls(str(record["region"]), float(record["expected_dice"]),
                                           float(record["threshold"]))


def check_flag(expected_dice: dict[str, float] | None, tumour_found: bool) -> CheckFlag | None:
    """The flag of a run's per-channel expected Dice (None without members, without a watched channel,
    or when no tumour was found: the expected Dice of an empty mask is 0 for any speck of probability)."""
    if not expected_dice or not tumour_found:
        return None
    for region, threshold in CHECK_THRESHOLDS.items():
        if region in expected_dice:
            return CheckFlag(region, float(expected_dice[region]), threshold)
    return None
