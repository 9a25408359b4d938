"""The command line's results table and summary: ``DIR/volumes.csv`` (the same rows as the dock's
results table, engine.volumes), the ground truth named by ``--truth``, and the last line saying what
was segmented, skipped and failed and where everything went."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import BrainsegInputError


def read_truth(path: Path | None, cases: list) -> np.ndarray | None:
    """The labels ``--truth`` names (NIfTI labels or an LGG mask folder), for exactly one case."""
    if path is None:
        return None
    if len(cases) != 1:
        raise BrainsegInputError(f"--truth names one ground truth; give exactly one case (found {len(cases)})")
    from .io.tables import read_reference_labels

    return read_reference_labels(path)


def check_truth_grid(case, truth: np.ndarray | None) -> None:
    """A --truth on another grid than the case is refused before the model runs."""
    grid = np.shape(case.overlay_image())  # the grid the labels are written on
    if truth is not None and np.shape(truth) != grid:
        raise BrainsegInputError(f"{case.name}: the --truth labels have shape {np.shape(truth)}, the case {grid}")


def add_volumes(output: Path, rows: list[dict]) -> str:
    """Merge one case's rows into ``output/volumes.csv`` (rows of other cases already there are kept)."""
    from .engine.volumes import COLUMNS
    from .io.tables import merge_csv

    return merge_csv(Path(output) / "volumes.csv", rows, COLUMNS)


def summary_line(output: Path, total: int, done: list, skipped: list, failed: list, volumes_csv: str | None) -> str:
    summary = f"summary: {len(done)} of {total} case(s) segmented into {output}"
    if skipped:
        summary += f"; {len(skipped)} skipped (outputs already there): {', '.join(skipped)}"
    if failed:
        summary += f"; {len(failed)} failed: {', '.join(failed)}"
    if volumes_csv:
        summary += f"; volumes (and Dice where a truth was given) in {volumes_csv}"
    return summary
