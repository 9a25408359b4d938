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
    assert reference_table(text)["FLAIR abnormality (tumour)"][2] == pytest.approx(dice, abs=6e-4)  # the patient's own masks
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


def class_dice(pred, truth, value) -> float:
    p, t = pred == value, truth == value
    total = p.sum() + t.sum()
    return 1.0 if total == 0 else 2.0 * (p & t).sum() / total


@pytest.fixture(scope="module")
def brats_phantom_result():
    from napari_brainseg import segment_case
    from napari_brainseg.phantoms import make_brats_phantom

    return segment_case(make_brats_phantom((64, 72, 64), seed=3), device="cpu")


def test_api_report_gives_dice_per_class_against_a_named_reference(brats_phantom_result, tmp_path):
    """``write_case_report(..., reference=FILE)``: Dice per class and per region against that file, not
    against the case's own segmentation; the reference here has labels 1 and 4 swapped, so the core
    classes score differently against it."""
    import nibabel as nib
    import numpy as np

    from napari_brainseg import write_case_report

    result, case = brats_phantom_result
    swapped = case.seg.copy()
    swapped[case.seg == 1], swapped[case.seg == 4] = 4, 1
    reference = tmp_path / "expert_seg.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(swapped.transpose(2, 1, 0)), case.affine), reference)
    own = write_case_report(tmp_path / "own.html", result, case)
    named = write_case_report(tmp_path / "named.html", result, case, reference=reference)
    own_text, text = (open(p).read() for p in (own, named))
    assert f"Against the reference ({reference})" in text and "Against the reference (" in own_text
    table, own_table = reference_table(text), reference_table(own_text)
    labels = result.labels
    for name, value in (("necrotic / non-enhancing tumour core", 1), ("peritumoural edema", 2), ("enhancing tumour", 4)):
        expected = ((labels == value).sum() / 1000, (swapped == value).sum() / 1000, class_dice(labels, swapped, value))
        assert table[name] == pytest.approx(expected, abs=0.006), name  # mL to 2 decimals, Dice to 3
        assert own_table[name][2] == pytest.approx(class_dice(labels, case.seg, value), abs=6e-4), name
    # the swap shows in the reference volumes, whatever the model predicts (the phantom's ET is twice its NCR)
    assert table["enhancing tumour"][1] == pytest.approx(own_table["necrotic / non-enhancing tumour core"][1], abs=0.006)
    assert table["enhancing tumour"][1] != pytest.approx(own_table["enhancing tumour"][1], abs=0.1)
    assert table["WT (whole tumour)"][1] == pytest.approx((swapped > 0).sum() / 1000, abs=0.006)


def reference_table(text: str) -> dict[str, tuple[float, ...]]:
    """The report's 'Against the reference' table: class -> (volume mL, reference mL, Dice)."""
    section = text[text.index("Against the reference"):]
    section = section[: section.index("</table>")]
    rows = re.findall(r"<tr><td>([^<]+)</td><td>([\d.]+)</td><td>([\d.]+)</td><td>([\d.]+)</td></tr>", section)
    return {name: tuple(float(v) for v in values) for name, *values in rows}


def test_api_report_refuses_a_reference_of_another_grid(brats_phantom_result, tmp_path):
    import numpy as np

    from napari_brainseg import write_case_report
    from napari_brainseg.errors import BrainsegInputError

    result, case = brats_phantom_result
    with pytest.raises(BrainsegInputError, match="reference labels have shape"):
        write_case_report(tmp_path / "r.html", result, case, reference=np.zeros((4, 4, 4), np.uint8))
    assert not (tmp_path / "r.html").exists()


def test_cli_report_and_volumes_use_truth_and_carry_the_confidence(lgg_patient, tmp_path, capsys):
    """``predict --report --truth MASKS``: the report's Dice is against the named masks (here the
    patient's own with the largest-tumour slice blanked, so it differs from the own-mask Dice), and
    ``volumes.csv`` carries the per-case confidence and the "check" flag's columns the summary prints."""
    import csv

    import numpy as np
    import tifffile

    from napari_brainseg.engine.segment import segment_case

    truth_dir = tmp_path / "expert"
    truth_dir.mkdir()
    masks = sorted(lgg_patient.glob("*_mask.tif"))
    areas = [np.count_nonzero(tifffile.imread(p)) for p in masks]
    for path, area in zip(masks, areas):
        mask = tifffile.imread(path)
        tifffile.imwrite(truth_dir / path.name, np.zeros_like(mask) if area == max(areas) else mask)
    out = tmp_path / "out"
    assert main(["predict", str(lgg_patient), "--output", str(out), "--report", "--truth", str(truth_dir),
                 "--device", "cpu"]) == 0

    result, case = segment_case(lgg_patient, device="cpu", uncertainty=True)
    truth = np.stack([tifffile.imread(truth_dir / p.name) > 0 for p in masks])
    order = np.argsort([int(p.name.split("_")[-2]) for p in masks])  # slices in number order, as read
    truth = truth[order]
    pred = result.labels > 0
    dice = 2 * (pred & truth).sum() / (pred.sum() + truth.sum())
    own = 2 * (pred & (case.mask > 0)).sum() / (pred.sum() + (case.mask > 0).sum())
    assert abs(dice - own) > 0.01  # the blanked slice shows

    text = (out / f"{lgg_patient.name}_report.html").read_text()
    table = reference_table(text)
    assert f"Against the reference ({truth_dir})" in text
    assert table["FLAIR abnormality (tumour)"] == pytest.approx((pred.sum() / 1000, truth.sum() / 1000, dice), abs=0.006)
    [row] = list(csv.DictReader((out / "volumes.csv").open()))
    assert float(row["dice"]) == pytest.approx(dice, abs=1e-4)
    assert float(row["confidence"]) == pytest.approx(result.confidence, abs=1e-4)
    # the check flag (LGG: the tumour's own expected Dice) after the confidence, in the CSV, summary and report
    check = result.check
    assert check.region == "tumour" and check.expected_dice == pytest.approx(result.expected_dice["tumour"])
    assert list(row)[-4:] == ["confidence", "check_region", "check_expected_dice", "check_flag"]
    assert (row["check_region"], float(row["check_expected_dice"]), row["check_flag"]) == pytest.approx(
        ("tumour", check.expected_dice, "yes" if check.raised else "no"), abs=1e-4)
    summary = capsys.readouterr().err
    assert f"; confidence {result.confidence:.3f}; {check.summary()}" in summary
    assert check.line().replace("'", "&#x27;") in text
