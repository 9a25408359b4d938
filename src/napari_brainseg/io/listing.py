"""Which entries of a folder are data: hidden ones never are.

macOS leaves an AppleDouble ``._<name>`` beside every file copied to a shared or USB drive, named like
the file it describes; our own temporaries and editors' swap files are dotfiles too. Read as data they
made a BraTS case fail ("two files for the flair modality") and an LGG folder fail ("slices of several
patients").
"""

from __future__ import annotations

from pathlib import Path


def is_hidden(path) -> bool:
    return Path(path).name.startswith(".")


def visible_files(folder) -> list[Path]:
    """The folder's files, hidden ones left out, sorted by name."""
    return sorted(p for p in Path(folder).iterdir() if not is_hidden(p) and p.is_file())
