"""Results tables as CSV text and files (the widget's Export CSV and the CLI's ``volumes.csv``)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..errors import BrainsegInputError
from .writer import _check_target, atomic_write


def csv_text(rows: list[dict], columns=None, delimiter: str = ",") -> str:
    """``rows`` as CSV (columns: ``columns`` or every key in first-seen order); floats to 4 decimals."""
    columns = list(columns or dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, columns, delimiter=delimiter, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in row.items()})
    return out.getvalue()


def write_csv(path, rows: list[dict], columns=None, *, overwrite: bool = False) -> str:
    """Write ``rows`` to ``path`` atomically; refuses to overwrite unless asked."""
    path = Path(path)
    _check_target(path, overwrite)
    text = csv_text(rows, columns)
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), overwrite=overwrite)
    return str(path)


def merge_csv(path, rows: list[dict], columns, key: str = "case") -> str:
    """Write ``rows`` into the CSV at ``path``, keeping its rows of other ``key`` values (a rerun on
    other cases into the same folder adds to the table instead of replacing it)."""
    path = Path(path)
    kept = []
    if path.is_file():
        with path.open(newline="", encoding="utf-8") as handle:
            fresh = {row[key] for row in rows}
            kept = [row for row in csv.DictReader(handle) if row.get(key) not in fresh]
    return write_csv(path, kept + rows, columns, overwrite=True)


def read_reference_labels(path):
    """A ground truth named on the command line: a NIfTI labels file or a folder of LGG mask slices."""
    from .brats import read_seg
    from .lgg import read_mask_slices
    from .nifti import is_nifti_path

    path = Path(path)
    if path.is_dir():
        return read_mask_slices(path)[2]
    if is_nifti_path(path):
        return read_seg(path)
    raise BrainsegInputError(f"{path}: --truth must be a NIfTI labels file or a folder of LGG mask slices")
