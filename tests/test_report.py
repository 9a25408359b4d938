"""``predict --report``: a self-contained HTML report per case, checked for content and for offline use."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from napari_brainseg.cli import main
from napari_brainseg.io.report import DISCLAIMER


@pytest.fixture(scope="module")
def lgg_report(lgg_patient, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert main(["predict", str(lgg_patient), "--output", str(out), "--report", "--device", "cpu"]) == 0
    return out / f"{lgg_patient.name}_report.html"


def test_report_content(lgg_report, lgg_patient):
    from napari_brainseg.engine.metrics import overlap_metrics
    from napari_brainseg.engine.segment import segment_case

    text = lgg_report.read_text()
    result, case = segment_case(lgg_patient, device="cpu", uncertainty=True)
    assert DISCLAIMER in text and "lgg-unet2d" in text
    assert f"Confidence <b>{result.confidence:.3f}</b>" in text
    dice = overlap_metrics(result.labels > 0, case.mask > 0)["dice"]
    assert f"<td>FLAIR abnormality</td><td>{dice:.3f}</td>" in text
    for plane in ("axial", "coronal", "sagittal"):
        assert f"{plane} slice" in text
    assert "longest (mm)" in text and "sum of products" in text


def test_report_needs_no_network(lgg_report):
    text = lgg_report.read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text)  # nothing fetched from elsewhere
    assert "<script" not in text and "@import" not in text and "url(" not in text
    images = re.findall(r'<img [^>]*src="([^"]+)"', text)
    assert len(images) == 2 and all(src.startswith("data:image/png;base64,") for src in images)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="chromium not installed")
def test_report_renders_in_headless_chromium(lgg_report, tmp_path):
    shot = tmp_path / "report.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--window-size=1200,1600", f"--screenshot={shot}", lgg_report.as_uri()],
                   check=True, capture_output=True, timeout=120)
    import numpy as np
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"))
    assert pixels.shape == (1600, 1200) and pixels.std() > 10  # a page, not a blank window


def test_report_refuses_to_overwrite(lgg_report, lgg_patient, capsys):
    before = lgg_report.read_bytes()
    assert main(["predict", str(lgg_patient), "--output", str(lgg_report.parent), "--report"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert lgg_report.read_bytes() == before
