"""The HTML report of one segmented case, from the Python API and ``predict --report``.

    from napari_brainseg import segment_case, write_case_report
    result, case = segment_case("BraTS2021_00000/", uncertainty=True)
    write_case_report("out/BraTS2021_00000_report.html", result, case, reference="expert_seg.nii.gz")

Dice per class (and, for BraTS, per region WT/TC) against a reference segmentation: the one named
(``reference``: a labels array on the case's grid, a NIfTI labels file or a folder of LGG mask slices;
CLI ``--truth``), else the case's own segmentation when it has one. The rows are those of
``volumes.csv`` and the dock's results table (``engine.volumes``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _reference_labels(reference, name: str | None) -> tuple[np.ndarray | None, str | None]:
    """A reference given as an array or a path, read, with the name the report gives it."""
    if reference is None:
        return None, None
    if isinstance(reference, (str, Path)):
        from .io.tables import read_reference_labels

        return np.asarray(read_reference_labels(reference)), name or str(reference)
    return np.asarray(reference), name or "the reference given"


def reference_rows(result, case, reference=None, name: str | None = None) -> tuple[list[dict], str | None]:
    """Volume rows with the reference's volume and Dice, and the reference's name; rows without them
    (and None) when there is no reference."""
    from .engine.volumes import case_rows
    from .io.cases import CaseKind

    truth, name = _reference_labels(reference, name)
    rows = case_rows(result, case, truth)
    if name is None and rows and "dice" in rows[0]:  # the case's own segmentation
        seg = getattr(getattr(case, "files", None), "seg", None)
        name = seg.name if seg is not None else ("the patient's mask slices" if case.kind == CaseKind.LGG else "its own segmentation")
    return rows, name


def case_report(result, case, source, reference=None, reference_name: str | None = None):
    """The report content of one segmented case (measurements, inputs, model, confidence, Dice)."""
    from .engine.registry import get_spec
    from .io.report import ReportContent
    from .measure.rano import measure_labels

    spec = get_spec(result.model)
    spacing = result.settings.get("spacing_mm")
    measurement = measure_labels(result.labels, result.label_convention, spacing)
    rows, reference_name = reference_rows(result, case, reference, reference_name)
    against = [row for row in rows if "dice" in row]
    inputs = {"case": str(source), "grid (z, y, x)": " x ".join(map(str, result.labels.shape)),
              "voxel spacing (mm)": "unknown (1 mm assumed)" if spacing is None else " x ".join(f"{s:g}" for s in spacing),
              "channels": ", ".join(spec.in_channels)}
    card = spec.card()
    model = {"model": f"{spec.name}: {spec.title}", "weights sha256": str(card.get("sha256", ""))[:16] + "...",
             "device": result.device, "test-time augmentation": "flips" if result.settings.get("tta") else "off",
             "label convention": result.label_convention}
    return ReportContent(
        case=case.name, image=np.asarray(case.overlay_image()), image_name="FLAIR", labels=result.labels,
        convention=result.label_convention, spacing=tuple(spacing) if spacing else (1.0, 1.0, 1.0),
        measurement=measurement, volumes_ml=result.volumes_ml, inputs=inputs, model=model,
        confidence=result.confidence, check=result.check, uncertainty=result.uncertainty,
        dice={row["class"]: row["dice"] for row in against} or None, reference_rows=against or None,
        reference=reference_name, notes=list(result.messages),
    )


def write_case_report(path, result, case, *, reference=None, source=None, overwrite: bool = False) -> str:
    """Write the self-contained HTML report of ``result`` (from ``segment_case``) to ``path``;
    refuses to replace a file unless ``overwrite``. Returns the path written."""
    from .io.report import write_report

    return write_report(path, case_report(result, case, source or case.name, reference), overwrite=overwrite)
