"""npe2 finds napari.yaml both in a wheel install and in the editable install, and validates it.

The manifest is a real file in the package (src/napari_brainseg/napari.yaml, what npe2 reads) with a copy
at the top level of the repository; the two must be equal.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import REPO


def test_top_level_manifest_equals_the_packaged_one():
    packaged = REPO / "src" / "napari_brainseg" / "napari.yaml"
    assert not packaged.is_symlink() and not (REPO / "napari.yaml").is_symlink()
    assert (REPO / "napari.yaml").read_bytes() == packaged.read_bytes(), (
        "napari.yaml differs from src/napari_brainseg/napari.yaml: edit one, copy it over the other"
    )


def test_editable_install_finds_the_manifest():
    import npe2

    import napari_brainseg

    manifest = npe2.PluginManifest.from_distribution("napari-brainseg")
    assert manifest.name == "napari-brainseg"
    assert manifest.contributions.widgets[0].command == "napari-brainseg.segmentation_widget"
    assert (Path(napari_brainseg.__file__).parent / "napari.yaml").is_file()
    result = subprocess.run(
        [sys.executable, "-m", "npe2", "validate", "napari-brainseg", "--imports"], capture_output=True, text=True
    )
    assert result.returncode == 0 and "valid" in result.stdout, result.stdout + result.stderr


_CHECK_WHEEL = """
import sys
from importlib.metadata import distribution
from pathlib import Path
import npe2
target = Path(sys.argv[1]).resolve()
# the wheel's dist-info comes first on the path, as in a normal install
assert Path(distribution("napari-brainseg")._path).resolve().parent == target
manifest = npe2.PluginManifest.from_distribution("napari-brainseg")
import napari_brainseg
package = Path(napari_brainseg.__file__).resolve().parent
assert package.parent == target, package
yaml = package / "napari.yaml"
assert yaml.is_file() and not yaml.is_symlink(), yaml
manifest.validate_imports()
print("wheel manifest ok:", manifest.name, len(manifest.contributions.readers), "reader")
"""


def test_wheel_install_ships_and_finds_the_manifest(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(REPO)],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    [wheel] = (tmp_path / "dist").glob("napari_brainseg-*.whl")
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stderr[-2000:]
    # the installed copy first on the path; everything else (napari, npe2, ...) from this environment
    env = {"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    check = subprocess.run(
        [sys.executable, "-c", _CHECK_WHEEL, str(target)], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert check.returncode == 0, check.stdout + check.stderr[-3000:]
    assert "wheel manifest ok" in check.stdout
