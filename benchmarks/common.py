"""Shared helpers of the benchmark scripts: machine description, data discovery, quick phantoms, JSON.

Not part of the installed package. ``benchmarks`` is a package run from the repository root
(``python -m benchmarks.<name>``), so ``training`` and ``tests`` import from there too.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"

SPLIT_FILE = REPO / "training" / "split.json"
DEFAULT_DATA = Path(os.environ.get("BRAINSEG_DATA") or REPO.parent / "shared" / "data")
# more folders of unpacked BraTS cases (e.g. the BioExp ones), searched after --brats-root; a path
# list like PATH, so no machine's layout is written into the code
EXTRA_BRATS_ROOTS = [Path(p) for p in os.environ.get("BRAINSEG_BRATS_ROOTS", "").split(os.pathsep) if p]


def module_command(name: str) -> list[str]:
    """The command that runs benchmark ``name`` in a fresh interpreter (run it with ``cwd=REPO``)."""
    return [sys.executable, "-m", f"benchmarks.{name}"]


def command_line(name: str, argv: list[str] | None) -> str:
    """How a results file says it was made: the command a reader can paste to rerun it."""
    return " ".join(["python -m", f"benchmarks.{name}", *(sys.argv[1:] if argv is None else argv)])


# ------------------------------------------------------------------------------------ machine


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_bf16_flags() -> list[str]:
    """Which native bf16 paths the CPU reports (amx_bf16, avx512_bf16): "bf16" alone does not say AMX."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return []
    return sorted(f for f in flags.split(":", 1)[1].split() if f in ("amx_bf16", "amx_tile", "avx512_bf16"))


def total_ram_gb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except Exception:
        return None


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except Exception:
        return None


def machine_description() -> dict:
    import monai
    import numpy
    import torch

    from napari_brainseg.engine.device import cpu_supports_bf16

    gpu = None
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu = {"name": props.name, "memory_gb": round(props.total_memory / 2**30, 1), "count": torch.cuda.device_count()}
    try:
        import napari

        napari_version = napari.__version__
    except Exception:
        napari_version = None
    return {
        "cpu": cpu_model(),
        "cpu_cores_logical": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "torch_threads": torch.get_num_threads(),
        "ram_gb": total_ram_gb(),
        "cpu_bf16": cpu_supports_bf16(),
        "cpu_bf16_flags": cpu_bf16_flags(),
        "gpu": gpu,
        "os": platform.platform(),
        "python": platform.python_version(),
        "versions": {"torch": torch.__version__, "monai": monai.__version__, "numpy": numpy.__version__,
                     "napari": napari_version},
        "git_commit": git_commit(),
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def model_cards() -> dict:
    """name -> {sha256, exported epoch, validation mean} from the bundled model cards."""
    from napari_brainseg.engine.registry import MODELS

    out = {}
    for name, spec in MODELS.items():
        try:
            card = spec.card()
        except Exception as exc:  # weights not bundled yet
            out[name] = {"error": str(exc)}
            continue
        out[name] = {
            "sha256": card.get("sha256"),
            # the epoch whose weights ship (older cards called it epochs_trained)
            "exported_epoch": card.get("training", {}).get("exported_epoch", card.get("training", {}).get("epochs_trained")),
            "card_validation_mean": card.get("validation", {}).get("mean"),
        }
    return out


def write_json(path: Path, payload: dict) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(payload, indent=1, default=_json_default) + "\n")
    tmp.replace(path)
    return path


def _json_default(value):
    import numpy as np

    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


# ------------------------------------------------------------------------------------ data


def load_split() -> dict:
    return json.loads(SPLIT_FILE.read_text())


def lgg_val_folders(data: Path, limit: int | None = None) -> list[Path]:
    names = load_split()["lgg"]["val"]
    folders = [data / "lgg" / "kaggle_3m" / n for n in names]
    missing = [f for f in folders if not f.is_dir()]
    if missing:
        raise SystemExit(f"LGG validation patients missing: {', '.join(str(m) for m in missing[:3])} ...")
    return folders[:limit] if limit else folders


def find_brats_case(name: str, roots: list[Path], data: Path, unpack_dir: Path | None) -> Path | None:
    """A BraTS case folder ``name`` under one of ``roots`` (one or two levels deep), else unpacked from data."""
    for root in list(roots) + EXTRA_BRATS_ROOTS:
        for candidate in (root / name, root / "BraTS2018" / name):
            if candidate.is_dir():
                return candidate
    archive = data / "brats" / "BraTS2018" / f"{name}.tar.xz"
    if archive.is_file():
        dest = unpack_dir or Path(tempfile.mkdtemp(prefix="brainseg-bench-"))
        subprocess.run(["bash", str(data / "brats" / "unpack.sh"), str(dest), name], check=True)
        return dest / "BraTS2018" / name
    return None


def brats_val_folders(data: Path, roots: list[Path], unpack_dir: Path | None = None, limit: int | None = None):
    names = load_split()["brats"]["val"]
    names = names[:limit] if limit else names
    found, missing = [], []
    for name in names:
        folder = find_brats_case(name, roots, data, unpack_dir)
        (found if folder else missing).append(folder or name)
    return found, missing


# ------------------------------------------------------------------------------------ quick mode


def quick_cases(dest: Path, *, brats_shape=(40, 48, 40), lgg_slices=4, lgg_size=64) -> dict[str, Path]:
    """Small synthetic phantoms written as real case folders (for --quick: checks that a script starts)."""
    from napari_brainseg.phantoms import (
        make_brats_phantom,
        make_lgg_phantom,
        write_brats_phantom,
        write_lgg_phantom,
    )

    dest = Path(dest)
    brats = write_brats_phantom(dest / "brats", make_brats_phantom(brats_shape, case_id="Quick_phantom_1"))
    lgg = write_lgg_phantom(dest / "lgg", make_lgg_phantom(lgg_slices, lgg_size, patient_id="QUICK_LGG_0001"))
    return {"brats": brats, "lgg": lgg}


def add_common_args(parser, *, brats: bool = True) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="shared data folder (default $BRAINSEG_DATA or <repo>/../shared/data)")
    if brats:
        parser.add_argument("--brats-root", type=Path, action="append", default=[],
                            help="folder holding BraTS case folders (repeatable; searched before unpacking "
                                 "the archives in --data)")
    parser.add_argument("--out", type=Path, default=None, help="result JSON path (default benchmarks/results/...)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny synthetic phantoms, one repetition: only checks that the script runs")


def python_executable() -> str:
    return sys.executable
