"""SIGTERM and SIGHUP end a run the way Ctrl-C does: as a KeyboardInterrupt at the next Python step.

Batch schedulers, ``timeout`` and closing a terminal send SIGTERM/SIGHUP, whose default action kills the
process at once, leaving any temporary file being written behind. Raised as an exception, the signal
unwinds through the writers, which remove their temporaries, and the CLI prints one line. Further
signals are ignored while that happens, so a second Ctrl-C cannot cut the clean-up short (SIGKILL
still can; the next run removes what it leaves, see ``io.tempfiles.remove_stale``).
"""

from __future__ import annotations

import contextlib
import signal
import threading

HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# signals received in the current block: Python discards an exception raised while a finalizer (__del__)
# runs, e.g. nibabel's during a write, so the block checks this again at safe points (raise_if_pending)
_pending: list[int] = []


class Interrupted(KeyboardInterrupt):
    """A signal turned into an exception; ``signum`` is the signal's number."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def exit_status(exc: KeyboardInterrupt) -> int:
    """The shell's convention: 128 + the signal number (130 for Ctrl-C)."""
    return 128 + getattr(exc, "signum", signal.SIGINT)


def _raise_once(signum, _frame):
    for sig in HANDLED:
        signal.signal(sig, signal.SIG_IGN)
    _pending.append(signum)
    raise Interrupted(signum)


def raise_if_pending() -> None:
    """Raise the interrupt of a signal already received whose exception was swallowed on the way."""
    if _pending:
        raise Interrupted(_pending[-1])


@contextlib.contextmanager
def signals_as_interrupts():
    """Within the block, SIGINT/SIGTERM/SIGHUP raise :class:`Interrupted`; handlers restored after."""
    if threading.current_thread() is not threading.main_thread():  # only the main thread may set handlers
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in HANDLED}
    for sig in HANDLED:
        if previous[sig] is not signal.SIG_IGN:  # e.g. nohup: a signal the user chose to ignore stays ignored
            signal.signal(sig, _raise_once)
    _pending.clear()
    try:
        yield
        raise_if_pending()  # a signal whose exception a finalizer swallowed still ends the run
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
