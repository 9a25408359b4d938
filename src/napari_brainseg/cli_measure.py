"""The command line's measurement side: ``compare A B`` (the per-case report is ``case_report``).

    napari-brainseg compare BASELINE FOLLOW_UP [--convention C] [--region enhancing|core|whole] [--json FILE]

BASELINE and FOLLOW_UP are two segmentations of one patient (labels NIfTI files, BraTS case folders
with a seg file, LGG patient or mask folders). Prints the change in volume, bidimensional product and
lesion count, and the RANO threshold band each falls into - measurement only, not a clinical assessment.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


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
