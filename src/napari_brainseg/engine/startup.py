"""How a process loads the engine: torch and MONAI, in a background thread, optionally lean.

Lean: MONAI without the optional packages it loads eagerly and this package never uses.

``import monai`` (and so any ``monai.x`` import: Python runs the package's ``__init__`` first)
imports every MONAI submodule, and with them scipy.stats, scipy.signal, matplotlib.pyplot,
scikit-image and pandas when they are installed - about half of MONAI's 2.4 s import on this
project's CPU (benchmarks/results/cli_startup.json). MONAI imports them through its own
``optional_import``, which turns a missing package into a placeholder that raises only when used.
For the duration of the import those packages are made to look missing; MONAI's features that need
them (histogram and skimage transforms, CSV datasets, plotting, signal transforms, the ultrasound
confidence map) then raise ``OptionalImportError`` in this process. The inference path (UNet,
sliding window, NormalizeIntensity, bounding box) and engine.metrics need none of them.

Only the command line asks for lean, and only as a console script, when it owns its process. The
napari plugin shares its process with other plugins that may use those MONAI features, and Python
callers of ``cli.main(argv)`` (tests, notebooks) may too, so they import MONAI normally.
"""

from __future__ import annotations

import sys
import threading

# what MONAI imports eagerly that none of our code paths through MONAI touch
UNUSED_BY_US = ("scipy.stats", "scipy.signal", "matplotlib.pyplot", "skimage", "pandas")


def import_monai_lean() -> None:
    """Import ``monai`` with :data:`UNUSED_BY_US` hidden; a no-op when MONAI is already imported.

    Packages that are already imported are left alone, and after the import the hidden ones are
    importable again as usual (only MONAI keeps its placeholders).
    """
    if "monai" in sys.modules:
        return
    hidden = [name for name in UNUSED_BY_US if name not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # ``import name`` now raises ImportError, which optional_import records
    try:
        import monai  # noqa: F401
    except ImportError:  # a MONAI version that needs one of them outright: forget the half import
        for name in [m for m in sys.modules if m == "monai" or m.startswith("monai.")]:
            del sys.modules[name]
    finally:
        for name in hidden:
            if sys.modules.get(name, 0) is None:
                del sys.modules[name]
    import monai  # noqa: F401, F811 - the normal import when the lean one failed; else already there


_ENGINE_IMPORT = threading.Lock()  # one thread at a time in MONAI's import: it is not safe to enter twice


def import_engine(lean: bool = False) -> None:
    """Import ``engine.segment`` (torch, MONAI); ``lean``: MONAI through :func:`import_monai_lean`."""
    with _ENGINE_IMPORT:
        if lean:
            import_monai_lean()
        from . import segment  # noqa: F401


def import_engine_in_background(lean: bool = False) -> None:
    """:func:`import_engine` in a thread (about 4 s, most of a one-case run's start-up) while the caller
    finds and reads the first case; its own ``import_engine`` then waits only for what is left."""

    def work():
        try:
            import_engine(lean)
        except Exception:  # noqa: BLE001 - a broken install is reported by the case that needs the engine
            pass

    threading.Thread(target=work, name="brainseg-engine-import", daemon=True).start()
