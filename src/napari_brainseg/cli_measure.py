"""The command line's measurement side: ``compare A B`` and the per-case HTML report of ``predict --report``.

    napari-brainseg compare BASELINE FOLLOW_UP [--convention C] [--region enhancing|core|whole] [--json FILE]

BASELINE and FOLLOW_UP are two segmentations of one patient (labels NIfTI files, BraTS case folders
with a seg file, LGG patient or mask folders). Prints the change in volume, bidimensional product and
lesion count, and the RANO threshold band each falls into - measurement only, not a clinical assessment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def add_compare_parser(commands) -> None:
    from .conventions import CONVENTIONS

    compare = commands.add_parser("compare", help="change between two segmentations of one patient (RANO-style)")
    compare.add_argument("baseline", type=Path, metavar="BASELINE")
    compare.add_argument("follow_up", type=Path, metavar="FOLLOW_UP")
    compare.add_argument("--convention", choices=sorted(CONVENTIONS), help="label convention when the values do not tell")
    compare.add_argument("--region", choices=("enhancing", "core", "whole"),
                         help="BraTS: measure this region instead of the enhancing tumour (RANO's target)")
    compare.add_argument("--json", type=Path, metavar="FILE", help="also write the comparison as JSON")
    compare.set_defaults(run=run_compare)


def run_compare(args) -> int:
    from .io.labels_source import read_labels_source
    from .measure.change import compare
    from .measure.rano import measure_labels

    a, b = (read_labels_source(p, args.convention) for p in (args.baseline, args.follow_up))
    if {a.convention, b.convention} == {"brats2018", "brats2023"}:
        pass  # both BraTS: the measured region is the same whichever value ET has
    elif a.convention != b.convention:
        print(f"error: {a.name} is {a.convention} labels but {b.name} is {b.convention}; compare like with like",
              file=sys.stderr)
        return 2
    measures = [measure_labels(s.labels, s.convention, s.spacing, region=args.region) for s in (a, b)]
    change = compare(*measures)
    print(f"{a.name} -> {b.name}")
    for line in change.lines():
        print(line)
    for source, m in zip((a, b), measures):
        if m.spacing_assumed:
            print(f"note: {source.name}: voxel spacing unknown, 1 mm assumed", file=sys.stderr)
    if args.json:
        from .io.writer import atomic_write

        payload = {"baseline_path": str(args.baseline), "follow_up_path": str(args.follow_up), **change.as_dict()}
        atomic_write(args.json, lambda fh: fh.write((json.dumps(payload, indent=1) + "\n").encode()))
        print(args.json)
    return 0


def reference_dice(result, case) -> tuple[dict[str, float] | None, str | None]:
    """Dice of the result against the case's own segmentation, when it has one."""
    from .engine.metrics import region_dice
    from .io.cases import CaseKind

    truth = case.seg if case.kind == CaseKind.BRATS else case.mask
    if truth is None:
        return None, None
    scores = region_dice(result.labels, result.label_convention, truth, case.label_convention)
    if case.kind == CaseKind.BRATS:
        return scores, case.files.seg.name
    return {"FLAIR abnormality": scores["tumour"]}, "the patient's mask slices"


def case_report(result, case, source: Path):
    """The report content of one segmented case (measurements, inputs, model, Dice if it has a truth)."""
    from .engine.registry import get_spec
    from .io.report import ReportContent
    from .measure.rano import measure_labels

    spec = get_spec(result.model)
    spacing = result.settings.get("spacing_mm")
    image = case.overlay_image()
    measurement = measure_labels(result.labels, result.label_convention, spacing)
    dice, reference = reference_dice(result, case)
    inputs = {"case": str(source), "grid (z, y, x)": " x ".join(map(str, result.labels.shape)),
              "voxel spacing (mm)": "unknown (1 mm assumed)" if spacing is None else " x ".join(f"{s:g}" for s in spacing),
              "channels": ", ".join(spec.in_channels)}
    card = spec.card()
    model = {"model": f"{spec.name}: {spec.title}", "weights sha256": str(card.get("sha256", ""))[:16] + "...",
             "device": result.device, "test-time augmentation": "flips" if result.settings.get("tta") else "off",
             "label convention": result.label_convention}
    return ReportContent(
        case=case.name, image=np.asarray(image), image_name="FLAIR", labels=result.labels,
        convention=result.label_convention, spacing=tuple(spacing) if spacing else (1.0, 1.0, 1.0),
        measurement=measurement, volumes_ml=result.volumes_ml, inputs=inputs, model=model,
        confidence=result.confidence, uncertainty=result.uncertainty, dice=dice, reference=reference,
        notes=list(result.messages),
    )
