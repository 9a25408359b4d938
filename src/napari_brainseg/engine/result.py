"""What one segmentation run returns: the labels on the input's grid and how they were made."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import conventions as label_conventions
from .check_flag import CheckFlag
from .registry import get_spec


@dataclass
class SegmentationResult:
    labels: np.ndarray  # uint8, on the input's spatial grid
    model: str
    device: str  # the device that produced the labels (after any fallback)
    label_convention: str  # conventions.CONVENTIONS key
    settings: dict  # everything needed to reproduce the run
    volumes_ml: dict[str, float]  # class name -> volume in mL (from ``spacing``)
    probabilities: np.ndarray | None = None  # (K, *grid) float32 sigmoid outputs when asked for
    uncertainty: np.ndarray | None = None  # (*grid) float32 member disagreement (engine.uncertainty), when asked for
    confidence: float | None = None  # per-case confidence in [0, 1] (engine.uncertainty), when asked for
    messages: list[str] = field(default_factory=list)  # fallbacks and assumptions, one line each
    # per output channel, the members' mean probability's expected Dice of its own mask (engine.uncertainty)
    expected_dice: dict[str, float] | None = None
    check: CheckFlag | None = None  # "check this core" flag (engine.check_flag), with the confidence

    @property
    def method(self) -> str:
        """How the labels were made, in words: e.g. '5-network ensemble + flip TTA' or '1 network (fast)'."""
        networks, total = self.settings.get("networks", 1), get_spec(self.model).members
        text = f"{networks}-network ensemble" if networks > 1 else ("1 network (fast)" if total > 1 else "1 network")
        text += " + flip TTA" if self.settings.get("tta") else ""
        return text + (", small lesions kept" if self.settings.get("keep_small_lesions") else "")

    @property
    def class_names(self) -> dict[int, str]:
        return label_conventions.CONVENTIONS[self.label_convention].names()
