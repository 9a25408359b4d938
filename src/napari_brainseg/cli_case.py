"""One case of ``napari-brainseg predict``: its output paths checked before the model runs (the case
folder, existing files, names too long), the engine run with a text progress bar, and its files written
(labels, DICOM SEG, overlay PNG, HTML report) with its volume rows. The cohort loop, arguments and exit
status are in ``cli.py``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .cli_inputs import CaseInput, resolved
from .engine.startup import import_engine
from .errors import BrainsegInputError
from .io.claim import check_fits


class ProgressBar:
    """A one-line text bar on stderr, redrawn in place; ends with a newline."""

    WIDTH = 30

    def __init__(self, label: str, stream=None):
        self.label, self.stream, self._last = label, stream or sys.stderr, -1

    def __call__(self, done: int, total: int) -> None:
        filled = int(self.WIDTH * done / max(total, 1))
        if filled == self._last and done != total:
            return
        self._last = filled
        bar = "#" * filled + "." * (self.WIDTH - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}")
        self.stream.flush()

    def close(self) -> None:
        if self._last >= 0:
            self.stream.write("\n")
            self.stream.flush()


def predict_one(case_input: CaseInput, args, table: list | None = None) -> list[str] | None:
    """Segment one case and write its outputs; None when --skip-existing skipped it. Its volume rows
    (with Dice against its own segmentation or --truth) are appended to ``table``."""
    from .cli_volumes import check_truth_grid
    from .io.cases import CaseKind, read_case, write_result
    from .io.overlay import write_overlay_png

    case = read_case(case_input.path, series=args.series, reference=args.reference, register=args.register)
    name = case_input.name = case.name
    check_truth_grid(case, args.truth_labels)  # before the model runs
    targets = case.output_paths(args.output)
    seg_target = dicom_seg_target(case, args)
    if seg_target is not None:
        targets.append(seg_target)
    case_folder = resolved(case_input.path)
    if any(resolved(t.parent) == case_folder for t in targets):
        raise BrainsegInputError(
            f"{args.output}: would write the results into the case folder {case_input.path} itself; choose another --output"
        )
    overlay = args.output / f"{name}_overlay.png"
    if args.overlay:
        targets.append(overlay)
    report = args.output / f"{name}_report.html"
    if args.report:
        targets.append(report)
    for target in targets:  # a name too long for the file system fails now, not after the model ran
        check_fits(target)
    shown = list(getattr(case, "warnings", ()))
    for warning in shown:  # they name the case folder already
        print(f"note: {warning}", file=sys.stderr)
    existing = [t for t in targets if t.exists()]
    overwrite = args.overwrite
    if existing and getattr(args, "skip_existing", False):
        if len(existing) == len(targets):
            print(f"skipped: {name}: its outputs already exist", file=sys.stderr)
            return None
        # a case cut short by an interrupted run: its few finished files are redone with the rest
        print(f"note: {name}: redoing {len(existing)} output(s) of an unfinished earlier run", file=sys.stderr)
        overwrite = True
    elif existing and not overwrite:
        raise BrainsegInputError(f"{existing[0]} already exists; pass --overwrite to replace it (or --skip-existing)")
    import_engine(lean=getattr(args, "own_process", False))
    from .engine.segment import segment_case

    bar = ProgressBar(f"{name}")
    started = time.perf_counter()
    try:
        result, case = segment_case(case, args.model, device=args.device, tta=args.tta, fast=args.fast, progress=bar,
                                    uncertainty=args.uncertainty or args.report,
                                    skull_strip=getattr(args, "skull_strip", "auto"),
                                    keep_small_lesions=getattr(args, "keep_small_lesions", False))
    finally:
        bar.close()
    written = write_result(result, case, args.output, overwrite=overwrite)
    if seg_target is not None:
        from .io.dicom_seg import write_dicom_seg

        source = case.series[args.reference]
        written.append(write_dicom_seg(seg_target, result.labels, result.label_convention, source,
                                       model=result.model, overwrite=overwrite))
    if args.overlay:
        title = f"{name}: {result.model} ({result.label_convention} labels)"
        numbers = case.slice_numbers if case.kind == CaseKind.LGG else None  # LGG: the kaggle_3m file numbers
        written.append(write_overlay_png(overlay, case.overlay_image(), result.labels, result.label_convention, title,
                                         overwrite=overwrite, slice_numbers=numbers))
    if args.report:
        from .case_report import case_report
        from .io.report import write_report

        content = case_report(result, case, case_input.path, args.truth_labels,
                              None if args.truth is None else str(args.truth))
        written.append(write_report(report, content, overwrite=overwrite))
    if table is not None:
        from .engine.volumes import case_rows  # imports MONAI: only once segment() has loaded it (engine.startup)

        table.extend(case_rows(result, case, args.truth_labels))
    volumes = ", ".join(f"{k} {v:.1f} mL" for k, v in result.volumes_ml.items())
    if result.confidence is not None:
        volumes += f"; confidence {result.confidence:.3f}"
    if result.check is not None:  # the "check this core" flag: its line when raised, else the value
        volumes += f"; {result.check.summary()}"
    print(f"{name}: {result.model} ({result.method}) on {result.device} in {time.perf_counter() - started:.1f} s; "
          f"{volumes}", file=sys.stderr)
    for message in result.messages:
        if message not in shown:  # segment() repeats the case's warnings for API users; printed above
            print(f"note: {name}: {message}", file=sys.stderr)
    return written


def dicom_seg_target(case, args) -> Path | None:
    """``DIR/<exam>_seg.dcm`` when ``--dicom-seg`` was asked for a DICOM exam; a note otherwise."""
    if not getattr(args, "dicom_seg", False):
        return None
    if not getattr(case, "series", None):
        print(f"note: {case.name}: --dicom-seg applies to DICOM exams only; none written", file=sys.stderr)
        return None
    return args.output / f"{case.case_id}_seg.dcm"
