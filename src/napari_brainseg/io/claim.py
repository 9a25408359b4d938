"""Give a complete temporary file or folder its final name, so that an output is complete or absent.

Without ``overwrite`` the final name is claimed atomically: a file by ``os.link`` (fails if the name
exists), a folder by ``os.rename`` (fails if the name is a non-empty folder). Of two runs writing the
same output, exactly one wins; the other gets :class:`OutputTaken`. A check-then-rename would let both
report success, one result silently replacing the other.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from ..errors import BrainsegInputError
from . import tempfiles

# file systems without hard links (FAT/exFAT drives, some network shares) answer os.link with these
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


class OutputTaken(BrainsegInputError):
    """The final name appeared while the output was being written (another run, another program)."""

    def __init__(self, target: Path):
        super().__init__(f"{target}: already exists (written by another run meanwhile?); not overwriting")


def check_fits(path) -> None:
    """Refuse a name longer than its file system allows, before any work is done for it."""
    path = Path(path)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    length = len(os.fsencode(path.name))
    if length > limit:
        raise BrainsegInputError(
            f"{path.name[:40]}...: the output name is {length} bytes, more than the {limit} the file system allows; "
            "rename the case"
        )


def publish_file(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move the complete file ``tmp`` to ``target`` (replacing it only with ``overwrite``)."""
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise OutputTaken(target) from None
    except OSError as exc:
        if exc.errno not in _NO_LINKS:
            raise
        if target.exists():  # no atomic claim possible here: check, then rename
            raise OutputTaken(target) from None
        os.replace(tmp, target)
        return
    os.unlink(tmp)


def publish_folder(tmp: Path, target: Path, *, overwrite: bool) -> None:
    """Move the complete folder ``tmp`` to ``target``.

    A missing or empty ``target`` is replaced in one rename. An existing ``target`` that holds only files
    ``tmp`` also holds (an earlier result) is swapped with ``overwrite``. Into a folder that holds other
    files as well, the files are moved one by one, each claimed like a single file.
    """
    try:
        os.rename(tmp, target)
        return
    except OSError as exc:
        if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
    if not target.is_dir():
        raise OutputTaken(target)
    new_names = {p.name for p in tmp.iterdir()}
    old_names = {p.name for p in target.iterdir()}
    if not overwrite and old_names & new_names:
        raise OutputTaken(target / min(old_names & new_names))
    if overwrite and old_names <= new_names:
        old = tempfiles.new_temp_folder(target.parent)
        os.rename(target, old / target.name)  # killed here: both halves are temporaries, removed by the next run
        os.rename(tmp, target)
        tempfiles.remove(old)
        return
    for name in sorted(new_names):
        publish_file(tmp / name, target / name, overwrite=overwrite)
    tempfiles.remove(tmp)
