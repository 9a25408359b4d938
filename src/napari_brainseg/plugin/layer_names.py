"""Recognise which MR sequence an image layer holds from its name, whichever reader opened it.

Our reader names layers ``<case> flair`` / ``<case> t1ce (t1c)`` / ``<patient> FLAIR``; napari's
builtin reader and napari-nifti use the file stem (``Brats18_X_t1ce``, ``BraTS-GLI-...-t2f``); the
Medical Segmentation Decathlon uses FLAIR / T1w / T1gd / T2w. Names are split into words so that
``t1`` never matches inside ``t1ce`` and ``t2`` never matches ``t2f``.
"""

from __future__ import annotations

import re

# checked in this order: the first rule a name matches wins (FLAIR before T2, T1ce before T1)
_BRATS_RULES = (
    ("flair", {"flair", "t2f", "t2flair"}),
    ("t1ce", {"t1ce", "t1c", "t1gd", "t1post", "t1gad", "t1ec"}),
    ("t1", {"t1", "t1n", "t1w", "t1native", "t1pre"}),
    ("t2", {"t2", "t2w"}),
)
_BRATS_2023_WORDS = {"t2f", "t1n", "t1c", "t2w"}
_LGG_RULES = (
    ("post-contrast", {"post", "postcontrast"}),
    ("pre-contrast", {"pre", "precontrast"}),
    ("FLAIR", {"flair"}),
)


def words(name: str) -> set[str]:
    """Lower-case words of a layer name; joins 't2 flair' style pairs into one word as well."""
    parts = [p for p in re.split(r"[^a-z0-9]+", name.lower()) if p]
    return set(parts) | {a + b for a, b in zip(parts, parts[1:])}


def _first_rule(name: str, rules) -> str | None:
    """The answer of the first (answer, keywords) rule sharing a word with the name, else None."""
    found = words(name)
    return next((answer for answer, keys in rules if found & keys), None)


def brats_modality(name: str) -> str | None:
    """'flair', 't1', 't1ce', 't2' or None for a layer name."""
    return _first_rule(name, _BRATS_RULES)


def looks_like_brats_2023(name: str) -> bool:
    """True for BraTS 2023+ sequence names (t2f, t1n, t1c, t2w), whose labels use 1/2/3."""
    return bool(words(name) & _BRATS_2023_WORDS)


def lgg_channel(name: str) -> str | None:
    """'pre-contrast', 'FLAIR', 'post-contrast' or None for a layer name."""
    return _first_rule(name, _LGG_RULES)


# words that name a sequence or a layer's role rather than the case (longest first, so that
# "pre-contrast" goes before "pre" and "t1ce" before "t1")
_ROLE_WORDS = sorted(
    {w for _, keys in (*_BRATS_RULES, *_LGG_RULES) for w in keys}
    | {"pre-contrast", "post-contrast", "t2-flair", "seg", "mask", "label", "labels"},
    key=len,
    reverse=True,
)
_ROLE = re.compile(r"(?i)(^|[\s_.\-]+)(" + "|".join(map(re.escape, _ROLE_WORDS)) + r")(?=$|[\s_.\-]+)")


def case_from_name(name: str) -> str:
    """The case part of a layer name: ``Brats18_X_t1ce.nii`` -> ``Brats18_X``, ``P FLAIR`` -> ``P``,
    ``BraTS-GLI-1-000 t1ce (t1c)`` -> ``BraTS-GLI-1-000``; '' when the name is only a sequence word."""
    name = re.sub(r"\s*\([^)]*\)", "", name)  # "(t1c)", "(synthetic)" style notes
    name = re.sub(r"(?i)\.nii(\.gz)?$", "", name.strip())
    previous = None
    while previous != name:
        previous, name = name, _ROLE.sub("", name, count=1)
    return name.strip(" _.-")
