"""Temporary files and folders that outputs are written into before they get their final name.

- Names are short and fixed-length (``.brainseg-<pid>-<8 hex>.tmp``): they never end in an output's
  extension, so no reader or ``--skip-existing`` run mistakes a half-written one for a result, and
  they fit the file system's name limit whatever the length of the case id.
- They are created with the mode an ordinary new file gets under the user's umask (``0666 & ~umask``,
  folders ``0777 & ~umask``), unlike ``tempfile.mkstemp``/``mkdtemp`` (0600/0700), because the
  finished output keeps the temporary's mode when it is renamed or linked into place.
- The process id in the name lets a later run remove the leftovers of a killed one (SIGKILL, power
  loss) without touching those of a run that is still writing.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from pathlib import Path

_PATTERN = re.compile(r"^\.brainseg-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def _new_name(folder: Path) -> Path:
    return Path(folder) / f".brainseg-{os.getpid()}-{secrets.token_hex(4)}.tmp"


def is_temporary(path) -> bool:
    return _PATTERN.match(Path(path).name) is not None


def new_temp_file(folder) -> Path:
    """An empty new file in ``folder`` (exclusive create, ordinary mode); the caller fills and renames it."""
    while True:
        path = _new_name(folder)
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:  # 32 random bits: practically never
            continue


def new_temp_folder(folder) -> Path:
    """An empty new folder in ``folder`` (ordinary mode)."""
    while True:
        path = _new_name(folder)
        try:
            os.mkdir(path, 0o777)
            return path
        except FileExistsError:
            continue


def remove(path) -> None:
    """Remove a temporary file or folder; quietly, it may already be gone."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_stale(folder) -> list[Path]:
    """Remove the temporaries in ``folder`` whose writing process is gone; returns what was removed.

    A process id reused by an unrelated live process keeps its temporary until a later run: harmless.
    """
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return []
    removed = []
    for path in entries:
        match = _PATTERN.match(path.name)
        if match and not _alive(int(match["pid"])):
            remove(path)
            removed.append(path)
    return removed
