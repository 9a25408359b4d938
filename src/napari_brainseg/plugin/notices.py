"""Our messages in napari's notifications: a short headline that napari shows whole, the full sentence
in the log (logger ``napari_brainseg``) and, for the dock, under its Status where it wraps and copies.

napari's toast is a 400-px box that shows one line and elides the rest: about 45 characters of our
text fit (measured with napari 0.9's NapariQtNotification; tests/test_notices.py shows each headline
in it and checks nothing is cut). Our sentences name layers, cases and files and run far longer.
"""

from __future__ import annotations

import logging

from ..errors import BrainsegInputError, first_line

LOG = logging.getLogger("napari_brainseg")
TOAST_CHARS = 40  # a headline longer than this may be elided by napari's toast

CANNOT_RUN = "Cannot run on these layers; see Status"
RUN_FAILED = "Segmentation failed; see Status"
CANCELLED = "Segmentation cancelled"


def headline(exc: BaseException, fallback: str, message: str | None = None) -> str:
    """The few words a notification shows for ``exc``: its own headline, else the ``message`` told to the
    user (by default the exception's) when it is short, else ``fallback``."""
    own = getattr(exc, "headline", None)
    if own:
        return own
    message = first_line(exc, limit=None) if message is None else message
    return message if len(message) <= TOAST_CHARS else fallback


def error(short: str, detail: str | None = None) -> None:
    from napari.utils.notifications import show_error

    LOG.error(detail or short)
    show_error(short)


def warning(short: str, detail: str | None = None) -> None:
    from napari.utils.notifications import show_warning

    LOG.warning(detail or short)
    show_warning(short)


def info(short: str, detail: str | None = None) -> None:
    from napari.utils.notifications import show_info

    LOG.info(detail or short)
    show_info(short)


def refusal(message: str, short: str) -> BrainsegInputError:
    """A BrainsegInputError whose notification says ``short`` (the message says the rest)."""
    exc = BrainsegInputError(message)
    exc.headline = short
    return exc
