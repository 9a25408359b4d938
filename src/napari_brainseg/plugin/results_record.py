"""What a result layer keeps in ``metadata["results"]`` (its table and how it was made), and that record
as CSV rows, a one-line caption and the headline Dice. Qt-free: built in the worker, shown by
:mod:`.results_panel`.
"""

from __future__ import annotations

import numpy as np

from ..conventions import CONVENTIONS, Convention, brats_regions_to_labels
from ..engine.check_flag import CheckFlag


def results_record(job, result, rows: list[dict], run_time_s: float) -> dict:
    """The rows (engine.volumes.volume_rows) and the run's facts: case, model, device, time, truth layer."""
    return {
        "case": job.case or job.source.name,
        "model": result.model,
        "method": result.method,
        "device": result.device,
        "run_time_s": round(run_time_s, 2),
        "truth": job.truth_name,
        "volumes_assume_1mm": not job.spacing_known,
        "confidence": result.confidence,  # None unless the run kept its members apart (engine.uncertainty)
        "check": None if result.check is None else result.check.as_record(),  # engine.check_flag, with the confidence
        "rows": rows,
    }


def csv_rows(record: dict) -> list[dict]:
    """The record as flat CSV rows (one per class, the run's facts repeated on each)."""
    facts = {k: record[k] for k in ("model", "method", "device", "run_time_s") if k in record}
    if record.get("confidence") is not None:
        facts["confidence"] = record["confidence"]
    check = CheckFlag.from_record(record.get("check"))
    if check is not None:
        facts.update(check.columns())
    return [{"case": record["case"], **row, **facts} for row in record["rows"]]


def caption(record: dict) -> str:
    truth = f"; truth: {record['truth']}" if record.get("truth") else "; no truth layer"
    unit = " (volumes assume 1 mm voxels)" if record.get("volumes_assume_1mm") else ""
    confidence = f"; confidence {record['confidence']:.3f}" if record.get("confidence") is not None else ""
    check = CheckFlag.from_record(record.get("check"))
    confidence += f"; {check.summary()}" if check is not None else ""
    method = f" ({record['method']})" if record.get("method") else ""
    return (f"{record['case']}: {record['model']}{method} on {record['device']}, {record['run_time_s']:.1f} s"
            f"{confidence}{truth}{unit}")


def dice_summary(rows: list[dict], convention: str) -> dict:
    """The headline Dice of a record's rows: BraTS regions WT, TC, ET; LGG the tumour."""
    by_class = {row["class"]: row["dice"] for row in rows}
    if convention == Convention.LGG:
        return {"tumour": next(iter(by_class.values()))}
    et_value = brats_regions_to_labels(np.ones((3, 1), bool), convention)[0]  # the ET region is one class
    enhancing = CONVENTIONS[convention].names()[int(et_value)]
    return {"WT": by_class["WT (whole tumour)"], "TC": by_class["TC (tumour core)"], "ET": by_class[enhancing]}
