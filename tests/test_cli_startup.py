"""What the command line imports: help and argument errors without torch, MONAI without the optional
packages it would load for nothing (engine.startup), and the same labels either way.

Each check runs in a fresh interpreter: what a process has imported is the thing under test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .helpers import nibabel_zyx

HEAVY = ("torch", "monai")


def _child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["predict", "--help"], ["predict"], ["predict", "x", "--device", "tpu"],
                                  ["compare", "--help"], ["nonsense"]])
def test_help_and_argument_errors_import_no_torch(argv):
    seen = _child(
        "import json, sys\n"
        "from napari_brainseg.cli import main\n"
        "try:\n"
        f"    status = main({argv!r})\n"
        "except SystemExit as exc:\n"
        "    status = exc.code\n"
        f"print(json.dumps({{'status': status, 'loaded': [m for m in {HEAVY!r} if m in sys.modules]}}))\n"
    )
    assert seen["loaded"] == [], f"napari-brainseg {' '.join(argv)} imported {seen['loaded']}"
    assert seen["status"] in (0, 2)


def test_lean_monai_import_leaves_the_hidden_packages_importable():
    from napari_brainseg.engine.startup import UNUSED_BY_US

    seen = _child(
        "import importlib, json, sys\n"
        "from napari_brainseg.engine.startup import UNUSED_BY_US, import_monai_lean\n"
        "import_monai_lean()\n"
        "after = [m for m in UNUSED_BY_US if m in sys.modules]\n"
        "from monai.inferers import sliding_window_inference\n"
        "from monai.networks.nets import UNet\n"
        "import torch\n"
        "net = UNet(spatial_dims=3, in_channels=1, out_channels=1, channels=(4, 8), strides=(2,)).eval()\n"
        "with torch.no_grad():\n"
        "    y = sliding_window_inference(torch.ones(1, 1, 20, 20, 20), (16, 16, 16), 1, net, mode='gaussian')\n"
        "ok = []\n"
        "for name in UNUSED_BY_US:\n"
        "    try:\n"
        "        importlib.import_module(name); ok.append(name)\n"
        "    except ImportError:\n"
        "        pass\n"
        "print(json.dumps({'monai': 'monai' in sys.modules, 'after': after, 'shape': list(y.shape), 'ok': ok}))\n"
    )
    assert seen["monai"] and seen["after"] == [] and seen["shape"] == [1, 1, 20, 20, 20]
    installed = [name for name in UNUSED_BY_US if _installed(name)]
    assert seen["ok"] == installed  # hidden during MONAI's import only


def _installed(name: str) -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def test_console_script_gives_the_labels_of_segment(tmp_path):
    """The console script (lean MONAI, engine imported in a background thread) against segment_case in
    this process (MONAI imported whole): the same labels for the synthetic BraTS case and LGG patient.
    (benchmarks/results/cli_startup.json records the same check on a real BraTS case and LGG patient.)"""
    import shutil

    import numpy as np
    import tifffile

    from napari_brainseg.engine.segment import segment_case
    from napari_brainseg.phantoms import write_brats_phantom, write_lgg_phantom

    brats, lgg = write_brats_phantom(tmp_path / "in"), write_lgg_phantom(tmp_path / "in")
    script = shutil.which("napari-brainseg", path=str(Path(sys.executable).parent))
    done = subprocess.run([script, "predict", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--device", "cpu",
                           "--no-overlay", "--fast"], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    brats_result, _ = segment_case(brats, device="cpu", fast=True)  # as --fast
    assert np.array_equal(nibabel_zyx(tmp_path / "out" / f"{brats.name}.nii.gz"), brats_result.labels)
    lgg_result, case = segment_case(lgg, device="cpu", fast=True)
    masks = np.stack([tifffile.imread(tmp_path / "out" / case.name / f"{case.name}_{n}_mask.tif") for n in case.slice_numbers])
    assert np.array_equal(masks > 0, lgg_result.labels > 0)
