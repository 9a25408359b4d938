"""``python -m tests.cli_child predict ...``: the CLI in a child process, for tests that send it real signals
or run two at once.

With ``BRAINSEG_TEST_SLOW_DIR`` and ``BRAINSEG_TEST_SLOW_S`` set, every file written under that folder
(a rename or link that gives an output its name, and every TIFF mask) waits that long first, so a test can see a
temporary appear and signal the process while it is mid-write. Only timing changes: the writes, renames
and signals are real. It patches the standard library and tifffile, not the package, so it runs the same
way on the code before and after a fix.
"""

from __future__ import annotations

import os
import sys
import time


def _slow_down(folder: str, seconds: float) -> None:
    import tifffile

    def slowed(real, path_arg=None):
        def wrapper(*args, **kwargs):
            if path_arg is None or str(args[path_arg]).startswith(folder):
                time.sleep(seconds)
            return real(*args, **kwargs)

        return wrapper

    os.replace = slowed(os.replace, 1)
    os.rename = slowed(os.rename, 1)
    os.link = slowed(os.link, 1)
    tifffile.imwrite = slowed(tifffile.imwrite)  # the child writes no other TIFF than masks


if __name__ == "__main__":
    if os.environ.get("BRAINSEG_TEST_SLOW_DIR"):
        _slow_down(os.environ["BRAINSEG_TEST_SLOW_DIR"], float(os.environ.get("BRAINSEG_TEST_SLOW_S", "0.5")))
    from napari_brainseg.cli import main

    sys.exit(main(sys.argv[1:]))
