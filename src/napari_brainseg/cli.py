"""``napari-brainseg``: segment BraTS cases and LGG patients in batch, outside napari.

    napari-brainseg predict INPUT [INPUT ...] --output DIR [--model NAME] [--device auto|cpu|cuda]
                            [--fast] [--tta | --no-tta] [--overwrite | --skip-existing] [--no-overlay]
                            [--uncertainty] [--report]
    napari-brainseg predict --sample --output DIR     # the built-in synthetic phantoms
    napari-brainseg sample --output DIR               # write the phantoms as case folders
    napari-brainseg compare BASELINE FOLLOW_UP        # change between two segmentations (cli_measure)

Each INPUT is a BraTS case folder, an LGG patient folder, a DICOM exam folder, a Decathlon Task01 4D
NIfTI file (the four modalities in one file), or a folder holding several (searched a few levels deep).
Per case it writes ``DIR/<case>.nii.gz`` (BraTS, uint8 labels in the case's own convention, the case's
affine/header; a DICOM exam: on its reference series' grid, ``--dicom-seg`` adds ``DIR/<exam>_seg.dcm``)
or ``DIR/<patient>/<patient>_<n>_mask.tif`` (LGG,
uint8 0/255 per slice), plus ``DIR/<case>_overlay.png``. A failing case prints one ``error:`` line
and the others still run; the exit status is 1 when any case failed. ``DIR/volumes.csv`` gets one row
per class and case (mL; truth mL and Dice against the case's own segmentation or ``--truth``),
keeping the rows of other cases already there. What is done for one case is in ``cli_case.py``; finding the
cases in the inputs in ``cli_inputs.py``, the volume table in ``cli_volumes.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from .cli_case import predict_one
from .cli_inputs import find_cases
from .engine.startup import import_engine_in_background
from .errors import BrainsegInputError, first_line
from .io.signals import exit_status, raise_if_pending, signals_as_interrupts
from .io.stdout_lines import StdoutLines
from .io.tempfiles import remove_stale


def _series_override(text: str) -> tuple[str, str]:
    modality, sep, key = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODALITY=SERIES, e.g. flair=SE002")
    return modality.strip().lower(), key.strip()


def run_predict(args) -> int:
    from .cli_volumes import add_volumes, read_truth, summary_line

    if not args.inputs and not args.sample:
        print("error: give at least one INPUT folder, or --sample for the synthetic phantoms", file=sys.stderr)
        return 2
    try:
        args.output.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: {args.output}: cannot create the output folder ({exc.strerror or exc})", file=sys.stderr)
        return 2
    if args.device == "cuda":  # once, before any case is read
        from .engine.device import resolve_device

        resolve_device(args.device)
    remove_stale(args.output)  # temporaries of an earlier run that was killed
    stdout = StdoutLines()
    import_engine_in_background(lean=getattr(args, "own_process", False))
    with tempfile.TemporaryDirectory(prefix="brainseg-sample-") as tmp:
        inputs = list(args.inputs)
        if args.sample:
            inputs += write_samples(Path(tmp))
        cases = find_cases(inputs, exclude=[args.output])
        failed, done, skipped, volumes_csv = [], [], [], None
        args.truth_labels = read_truth(args.truth, cases)
        for case_input in cases:
            raise_if_pending()  # a Ctrl-C swallowed inside a finalizer during the last case
            try:
                if case_input.error:
                    raise BrainsegInputError(case_input.error)
                rows: list[dict] = []
                written = predict_one(case_input, args, rows)
                if written is None:
                    skipped.append(case_input.name)
                    continue
                volumes_csv = add_volumes(args.output, rows)  # after each case: Ctrl-C keeps the rows so far
                # one stdout line per output: the NIfTI file or the LGG mask folder, and the overlay
                for path in dict.fromkeys(str(Path(p).parent) if p.endswith("_mask.tif") else p for p in written):
                    stdout.print(path)
                done.append(case_input.name)
            except Exception as exc:  # one bad case must not stop the cohort
                failed.append(case_input.name)
                reason = first_line(exc, limit=None)
                print(f"error: {case_input.name}: {reason}", file=sys.stderr)
    print(summary_line(args.output, len(cases), done, skipped, failed, volumes_csv), file=sys.stderr)
    return 1 if failed or not cases else 0


def write_samples(dest: Path) -> list[Path]:
    """The synthetic BraTS phantom and LGG stack as case folders under ``dest``."""
    from .phantoms import write_brats_phantom, write_lgg_phantom

    dest.mkdir(parents=True, exist_ok=True)
    return [write_brats_phantom(dest), write_lgg_phantom(dest)]


def run_sample(args) -> int:
    for folder in write_samples(args.output):
        print(folder)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .cli_measure import add_compare_parser
    from .engine.device import DEVICES
    from .engine.registry import MODELS

    parser = argparse.ArgumentParser(prog="napari-brainseg", description="Brain-tumour segmentation of BraTS and LGG MRI.")
    commands = parser.add_subparsers(dest="command", required=True)

    predict = commands.add_parser("predict", help="segment case folders and write labels + overlay PNGs")
    predict.add_argument("inputs", nargs="*", type=Path, metavar="INPUT",
                         help="BraTS case folder, LGG patient folder, or a folder holding several")
    predict.add_argument("--output", "--out", "-o", type=Path, required=True, metavar="DIR")
    predict.add_argument("--model", choices=sorted(MODELS), help="default: the model matching each input")
    predict.add_argument("--device", choices=DEVICES, default="auto")
    predict.add_argument("--fast", action="store_true",
                         help="one network of the model's fold ensemble and no TTA: several times faster, a little less accurate")
    predict.add_argument("--tta", action=argparse.BooleanOptionalAction, default=None,
                         help="flip test-time augmentation (default: where the model's cross-validation chose it)")
    existing = predict.add_mutually_exclusive_group()
    existing.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    existing.add_argument("--skip-existing", action="store_true",
                         help="skip cases whose outputs all exist (e.g. to finish an interrupted run)")
    predict.add_argument("--overlay", action=argparse.BooleanOptionalAction, default=True,
                         help="also write <case>_overlay.png (default: yes)")
    predict.add_argument("--sample", action="store_true", help="also segment the built-in synthetic phantoms")
    predict.add_argument("--keep-small-lesions", action="store_true",
                         help="keep lesions smaller than the model's cleanup fraction of the largest (multifocal disease)")
    predict.add_argument("--uncertainty", action="store_true",
                         help="keep every network under every flip apart: a per-case confidence score (as slow as --tta)")
    predict.add_argument("--report", action="store_true",
                         help="also write <case>_report.html (self-contained; implies --uncertainty)")
    scans = predict.add_argument_group("scans that are not BraTS files (see docs/real-scans.md)")
    scans.add_argument("--reference", choices=("flair", "t1", "t1ce", "t2"), default="flair",
                       help="the series whose grid the others are resampled onto and the labels are written on")
    scans.add_argument("--register", action="store_true",
                       help="rigidly co-register the other series to the reference (SimpleITK); recorded in the notes")
    scans.add_argument("--series", action="append", type=_series_override, default=[], metavar="MODALITY=SERIES",
                       help="DICOM: which series is which, by folder, number or description (e.g. flair=SE002)")
    scans.add_argument("--skull-strip", choices=("auto", "on", "off"), default="auto",
                       help="3D model: extract the brain of a whole-head scan (auto: when it looks unstripped; "
                            "needs the [preprocess] extra)")
    scans.add_argument("--dicom-seg", action="store_true",
                       help="DICOM exams: also write <exam>_seg.dcm, a DICOM SEG on the reference series")
    predict.add_argument("--truth", type=Path, metavar="LABELS",
                         help="ground truth for the one INPUT (NIfTI labels or LGG mask folder): Dice per class in "
                              "volumes.csv and the --report")
    predict.set_defaults(run=run_predict)

    add_compare_parser(commands)

    sample = commands.add_parser("sample", help="write the synthetic phantoms as a BraTS case and an LGG patient folder")
    sample.add_argument("--output", "--out", "-o", type=Path, required=True, metavar="DIR")
    sample.set_defaults(run=run_sample)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.own_process = argv is None  # the console script, not a call from Python (tests, notebooks)
    if hasattr(args, "series"):
        args.series = dict(args.series)
    try:
        with signals_as_interrupts():  # SIGTERM/SIGHUP end the run like Ctrl-C
            return args.run(args)
    except KeyboardInterrupt as exc:  # outputs are written atomically: nothing half-written is left behind
        how = f" by {exc}" if str(exc) else ""
        print(
            f"\nerror: interrupted{how}; outputs written so far are complete, the case in progress was not written "
            "(rerun with --skip-existing to finish)",
            file=sys.stderr,
        )
        return exit_status(exc)
    except (BrainsegInputError, OSError) as exc:
        print(f"error: {first_line(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
