"""What the command line segments: every case named by or found under its INPUT paths (BraTS case
folders, LGG patient folders, DICOM exams, Decathlon 4D files), in a stable order, with one line of
error for a path that is none of these."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .errors import BrainsegInputError

MAX_DEPTH = 3  # how deep a cohort folder is searched for case folders (e.g. data/lgg/kaggle_3m/TCGA_*)


@dataclass
class CaseInput:
    path: Path
    name: str
    error: str | None = None  # set when the folder could not even be recognised


def find_cases(inputs: list[Path], exclude=()) -> list[CaseInput]:
    """Every case named by or found under ``inputs``, in a stable order.

    Folders in ``exclude`` (the output folder) are never searched below an input, so an output
    folder inside an input folder is not read back as input on a rerun.
    """
    cases: list[CaseInput] = []
    skip = {resolved(p) for p in exclude}
    for path in inputs:
        if not path.exists():
            cases.append(CaseInput(path, path.name or str(path), f"{path}: no such file or folder"))
            continue
        found = _search(path, MAX_DEPTH, skip)
        if not found:
            what = "a 4D NIfTI file with the four BraTS modalities" if path.is_file() else "a case folder, and holds none"
            found = [CaseInput(path, path.name, f"{path}: not a BraTS case folder, an LGG patient folder or {what}")]
        cases.extend(found)
    return cases


def resolved(path: Path) -> Path:
    try:
        return Path(path).resolve()
    except OSError:
        return Path(path).absolute()


def _search(path: Path, depth: int, skip=frozenset()) -> list[CaseInput]:
    from .io.cases import case_kind

    try:
        if case_kind(path) is not None:
            return [CaseInput(path, path.name)]
    except BrainsegInputError as exc:  # recognised as ours but unusable (e.g. two FLAIR files)
        return [CaseInput(path, path.name, str(exc))]
    except OSError as exc:
        return [CaseInput(path, path.name, f"{path}: cannot read ({exc.strerror})")]
    if not path.is_dir() or depth == 0:
        return []
    found = []
    for child in sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if skip and resolved(child) in skip:
            continue  # the output folder, inside an input folder
        found.extend(_search(child, depth - 1, skip))
    return found
