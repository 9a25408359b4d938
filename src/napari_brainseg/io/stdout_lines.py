"""Result lines on stdout that survive a reader that stops early (``predict ... | head -1``).

When the reading end of the pipe closes, the rest of the run still writes its files; only the listing
stops. Without this the next ``print`` raises BrokenPipeError, which the CLI reported as an error for
a case that had been written.
"""

from __future__ import annotations

import os
import sys


class StdoutLines:
    def __init__(self):
        self.closed = False

    def print(self, line: str) -> None:
        if self.closed:
            return
        try:
            print(line, file=sys.stdout, flush=True)
        except BrokenPipeError:
            self.closed = True
            self._silence()

    @staticmethod
    def _silence() -> None:
        # Python's documented recipe: point stdout at devnull so the interpreter's flush at exit is quiet too
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):  # stdout is not a real file (e.g. captured in tests)
            pass
