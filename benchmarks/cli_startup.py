"""The command line's whole process for one case, before and after a change: CPU, wall, peak memory, labels.

    python -m benchmarks.cli_startup --before COMMIT [--after COMMIT] [--case DIR] [--lgg DIR] [--repeats 5]

Each tree (``git archive`` of the commit's ``src/``; the working tree's ``src/`` when ``--after`` is not
given) runs ``python -m napari_brainseg.cli predict CASE --output TMP --overwrite --device cpu`` as a
fresh process, alternating before/after after one warm-up each, so a change in the machine's load hits
both alike. Times are the operating system's accounting of each finished child (user + system CPU,
peak RSS) and its wall time; medians are reported with the load average seen before each run (on a
shared core the wall time is mostly waiting, the CPU time much less so). The labels each tree wrote
for the case (and for ``--lgg``, an LGG patient) are compared voxel for voxel. It also times
``import monai`` alone in fresh interpreters, whole and through ``engine.startup``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

import numpy as np

from . import common

DEFAULT_CASE = Path("/work/data/brats/BraTS2018/Brats18_2013_20_1")
MONAI_IMPORT = {
    "whole": "import torch, time; t = time.process_time(); import monai; print(time.process_time() - t)",
    "lean": ("import torch, time; t = time.process_time(); from napari_brainseg.engine.startup import import_monai_lean; "
             "import_monai_lean(); print(time.process_time() - t)"),
}


def checkout_src(commit: str, dest: Path) -> Path:
    """``src/`` of ``commit`` under ``dest`` (the model weights are tracked, so they come along)."""
    archive = subprocess.run(["git", "-C", str(common.REPO), "archive", commit, "src"], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(dest, filter="data")
    return dest / "src"


def run_cli(src: Path, case: Path, out: Path) -> dict:
    """One whole ``predict`` process, timed by the operating system's accounting of that child alone."""
    env = dict(os.environ, PYTHONPATH=str(src))
    load = os.getloadavg()[0]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        child = subprocess.Popen([sys.executable, "-m", "napari_brainseg.cli", "predict", str(case), "--output", str(out),
                                  "--overwrite", "--device", "cpu"], env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            err.seek(0)
            raise SystemExit(f"error: {src}: predict failed: {err.read().decode(errors='replace').strip()[-300:]}")
    return {"wall_s": round(wall, 2), "user_s": round(usage.ru_utime, 2), "sys_s": round(usage.ru_stime, 2),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 2), "peak_mib": round(usage.ru_maxrss / 1024),
            "load_1min": round(load, 2)}


def labels_of(folder: Path) -> dict[str, np.ndarray]:
    """Every labels output in ``folder``: NIfTI volumes and LGG mask slices, by relative path."""
    import nibabel as nib
    import tifffile

    found = {}
    for path in sorted(folder.rglob("*")):
        if path.name.endswith(".nii.gz"):
            found[str(path.relative_to(folder))] = np.asarray(nib.load(path).dataobj)
        elif path.name.endswith("_mask.tif"):
            found[str(path.relative_to(folder))] = tifffile.imread(path)
    return found


def same_labels(a: Path, b: Path) -> bool:
    la, lb = labels_of(a), labels_of(b)
    return bool(la) and la.keys() == lb.keys() and all(np.array_equal(la[k], lb[k]) for k in la)


def monai_import_cpu(src: Path, repeats: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    out = {}
    for name, code in MONAI_IMPORT.items():
        runs = [float(subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                     check=True).stdout.split()[-1]) for _ in range(repeats)]
        out[name] = {"median_s": round(statistics.median(runs), 2), "runs_s": [round(r, 2) for r in runs]}
    return out


def median_of(rows: list[dict]) -> dict:
    return {key: round(statistics.median(r[key] for r in rows), 2) for key in ("cpu_s", "user_s", "sys_s", "wall_s", "peak_mib")}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", required=True, metavar="COMMIT")
    parser.add_argument("--after", metavar="COMMIT", help="default: the working tree's src/")
    parser.add_argument("--case", type=Path, default=DEFAULT_CASE, help="a BraTS case folder")
    parser.add_argument("--lgg", type=Path, help="an LGG patient folder whose labels are compared too")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=common.RESULTS / "cli_startup.json")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="brainseg-startup-") as tmp:
        tmp = Path(tmp)
        trees = {"before": checkout_src(args.before, tmp / "before"),
                 "after": checkout_src(args.after, tmp / "after") if args.after else common.REPO / "src"}
        rows = {name: [] for name in trees}
        for round_ in range(args.repeats + 1):  # round 0 warms the file cache and is not counted
            for name, src in trees.items():
                row = run_cli(src, args.case, tmp / f"out-{name}-{round_}")
                print(f"{name} {row}", file=sys.stderr, flush=True)
                if round_:
                    rows[name].append(row)
        identical = {"brats": same_labels(tmp / "out-before-0", tmp / "out-after-0")}
        if args.lgg:
            for name, src in trees.items():
                run_cli(src, args.lgg, tmp / f"lgg-{name}")
            identical["lgg"] = same_labels(tmp / "lgg-before", tmp / "lgg-after")
        payload = {
            "benchmark": "cli_startup",
            "command": common.command_line("cli_startup", argv),
            "what": f"whole process of `napari-brainseg predict {args.case.name} --output DIR --overwrite --device cpu`: "
                    "interpreter start, imports, read, segment, write .nii.gz and overlay PNG.",
            "how": f"{args.repeats} counted runs per tree after one warm-up, before and after alternating; medians.",
            "machine": common.machine_description(),
            "before": {"tree": args.before, **median_of(rows["before"]), "runs": rows["before"]},
            "after": {"tree": args.after or f"{common.git_commit()} (working tree)", **median_of(rows["after"]), "runs": rows["after"]},
            "load_1min": [r["load_1min"] for name in rows for r in rows[name]],
            "labels_identical": identical,
            "monai_import_cpu_s": monai_import_cpu(trees["after"], args.repeats),
        }
    common.write_json(args.out, payload)
    print(f"before {payload['before']['cpu_s']} s CPU / {payload['before']['wall_s']} s wall; "
          f"after {payload['after']['cpu_s']} s CPU / {payload['after']['wall_s']} s wall; labels identical: {identical}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
