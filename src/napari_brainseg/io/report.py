"""A self-contained HTML report of one segmented case: inputs and model, the tumour's largest-area
slice in three planes with the labels (and the RANO diameters on the axial one), volumes, diameters,
confidence with the "check this core" flag and, with a reference segmentation, Dice. Images are
embedded as base64 PNG and there is no script, stylesheet or font from elsewhere, so it opens offline
in any browser.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import conventions as label_conventions
from .overlay import _label_rgba

DISCLAIMER = ("Research use only. Not a medical device; not for diagnosis or treatment decisions. "
              "Measurements are computed from a segmentation and are not a clinical assessment.")
PLANES = (("axial", 0), ("coronal", 1), ("sagittal", 2))


@dataclass
class ReportContent:
    case: str
    image: np.ndarray  # (z, y, x) the sequence the tumour is shown on
    image_name: str
    labels: np.ndarray  # (z, y, x) uint8
    convention: str
    spacing: tuple[float, float, float]
    measurement: object  # measure.rano.Measurement
    volumes_ml: dict[str, float]
    inputs: dict[str, str]  # what was read: label -> text
    model: dict[str, str]  # what ran: label -> text
    confidence: float | None = None
    check: object | None = None  # engine.check_flag.CheckFlag: the "check this core" flag, with the confidence
    uncertainty: np.ndarray | None = None  # (z, y, x) disagreement map
    dice: dict[str, float] | None = None  # region/class -> Dice against the reference
    # rows of engine.volumes against the reference: class, volume_ml, truth_ml, dice (shown instead of ``dice``)
    reference_rows: list[dict] | None = None
    reference: str | None = None  # where the reference came from
    notes: list[str] = field(default_factory=list)


def largest_area_slices(labels: np.ndarray) -> dict[str, int]:
    """Per plane, the slice index with the most tumour voxels (the middle slice when there is none)."""
    tumour = labels > 0
    out = {}
    for plane, axis in PLANES:
        other = tuple(a for a in range(3) if a != axis)
        counts = tumour.sum(axis=other)
        out[plane] = int(counts.argmax()) if counts.any() else labels.shape[axis] // 2
    return out


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _planes_figure(content: ReportContent, slices: dict[str, int], overlay: str) -> str:
    """Three panels (axial, coronal, sagittal) of the image with labels or the uncertainty on top."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    image = np.asarray(content.image, dtype=np.float32)
    nonzero = image[image != 0]
    lo, hi = np.percentile(nonzero, [0.5, 99.5]) if nonzero.size else (0.0, 1.0)
    sz, sy, sx = content.spacing
    if getattr(content.measurement, "spacing_assumed", False):  # e.g. LGG: few slices of unknown thickness
        sz = max(sz, 0.4 * image.shape[1] * sy / image.shape[0])  # stretched for display only, said in the title
    fig = Figure(figsize=(12, 4.4), dpi=90)
    FigureCanvasAgg(fig)
    aspects = {"axial": sy / sx, "coronal": sz / sx, "sagittal": sz / sy}
    for k, (plane, axis) in enumerate(PLANES):
        ax = fig.add_subplot(1, 3, k + 1)
        index = slices[plane]
        take = lambda a, index=index, axis=axis: np.take(a, index, axis=axis)  # noqa: E731
        ax.imshow(take(image), cmap="gray", vmin=lo, vmax=hi, aspect=aspects[plane],
                  origin="lower" if axis else "upper")
        if overlay == "labels":
            ax.imshow(_label_rgba(take(content.labels), content.convention), aspect=aspects[plane],
                      origin="lower" if axis else "upper")
        else:
            ax.imshow(np.ma.masked_less(take(content.uncertainty), 0.02), cmap="inferno", vmin=0, vmax=0.5,
                      aspect=aspects[plane], origin="lower" if axis else "upper")
        if axis == 0 and overlay == "labels":
            _draw_diameters(ax, content.measurement, index)
        stretched = axis and sz != content.spacing[0]
        ax.set_title(f"{plane} slice {index}" + (" (z stretched for display)" if stretched else ""), fontsize=10)
        ax.axis("off")
    return _png(fig)


def _draw_diameters(ax, measurement, index: int) -> None:
    for lesion in measurement.lesions[: min(measurement.n_lesions, 5)]:
        if lesion.slice_index != index:
            continue
        for segment, color in ((lesion.longest, "#00e5ff"), (lesion.perpendicular, "#ff40ff")):
            (_, y0, x0), (_, y1, x1) = segment.start, segment.end
            ax.plot([x0, x1], [y0, y1], color=color, linewidth=1.5)


def _table(rows: list[tuple], header: tuple | None = None) -> str:
    head = "<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def render(content: ReportContent) -> str:
    m = content.measurement
    slices = largest_area_slices(content.labels)
    if m.n_lesions:  # the axial panel shows the slice the diameters were measured on
        slices["axial"] = m.lesions[0].slice_index
    planes = _planes_figure(content, slices, "labels")
    table = label_conventions.CONVENTIONS[content.convention]
    legend = " ".join(f'<span class="sw" style="background:{c.color}"></span>{html.escape(c.name)}' for c in table.classes)
    lesions = [(i, les.slice_index, f"{les.longest.length_mm:.1f}", f"{les.perpendicular.length_mm:.1f}",
                f"{les.product_mm2:.0f}", "yes" if les.measurable else "no", f"{les.volume_ml:.2f}")
               for i, les in enumerate(m.lesions[: m.n_lesions][:10], start=1)]
    parts = [
        f"<h1>{html.escape(content.case)}</h1>",
        f'<p class="warn">{html.escape(DISCLAIMER)}</p>',
        "<h2>Inputs and model</h2>",
        _table([*content.inputs.items(), *content.model.items()]),
        f"<h2>Key slices in three planes ({html.escape(content.image_name)})</h2>",
        f'<img alt="labels over {html.escape(content.image_name)}" src="data:image/png;base64,{planes}">',
        "<p>" + ", ".join(f"{plane} slice {index}" for plane, index in slices.items()) + " (0-based array indices); "
        "coronal and sagittal: the largest tumour area, axial: the largest lesion's measured slice.</p>",
        f"<p>{legend} &nbsp; <span class=\"sw\" style=\"background:#00e5ff\"></span>longest diameter "
        f"<span class=\"sw\" style=\"background:#ff40ff\"></span>perpendicular diameter</p>",
        "<h2>Volumes</h2>",
        _table([(k, f"{v:.2f}") for k, v in content.volumes_ml.items()], ("class", "volume (mL)")),
        f"<h2>RANO-style measurement of the {html.escape(m.target)}</h2>",
        f"<p>{m.n_lesions} separate lesion(s) at least 5 mm across"
        + (f" (and {m.n_fragments} smaller fragment(s), in the volume but not listed)" if m.n_fragments else "")
        + "; sum of products of the measurable ones (both diameters &ge; 10 mm, "
        f"up to 5): <b>{m.sum_of_products_mm2:.0f} mm&sup2;</b>. Each lesion is measured on the axial slice where "
        "its area is largest; lengths run edge to edge of the voxels.</p>",
        _table(lesions, ("lesion", "axial slice", "longest (mm)", "perpendicular (mm)", "product (mm²)", "measurable",
                         "volume (mL)")) if lesions else "<p>Nothing to measure.</p>",
    ]
    if content.confidence is not None:
        parts += ["<h2>Confidence</h2>",
                  f"<p>Confidence <b>{content.confidence:.3f}</b> (mean pairwise Dice of the members - each network "
                  "under each flip - 1 = they all agree). A low value flags a case to check; it does not prove a good one right "
                  "(docs/measurements.md: how it ranked out-of-fold cases by their Dice).</p>"]
        if content.check is not None:  # raised: in the warning style, so it is not missed
            style = ' class="warn"' if content.check.raised else ""
            parts.append(f"<p{style}>{html.escape(content.check.line())}</p>")
        if content.uncertainty is not None:
            heat = _planes_figure(content, slices, "uncertainty")
            parts.append(f'<img alt="member disagreement" src="data:image/png;base64,{heat}">'
                         "<p>Member disagreement (standard deviation of their probabilities, 0 to 0.5), same slices.</p>")
    if content.reference_rows:
        parts += [f"<h2>Against the reference ({html.escape(content.reference or 'given')})</h2>",
                  _table([(r["class"], f"{r['volume_ml']:.2f}", f"{r['truth_ml']:.2f}", f"{r['dice']:.3f}")
                          for r in content.reference_rows], ("class", "volume (mL)", "reference volume (mL)", "Dice"))]
    elif content.dice is not None:
        parts += [f"<h2>Against the reference ({html.escape(content.reference or 'given')})</h2>",
                  _table([(k, f"{v:.3f}") for k, v in content.dice.items()], ("region", "Dice"))]
    if content.notes or m.notes:
        parts += ["<h2>Notes</h2>", "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in [*content.notes, *m.notes]) + "</ul>"]
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f'<p class="foot">napari-brainseg report, {stamp}. {html.escape(DISCLAIMER)}</p>')
    return (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(content.case)}: napari-brainseg report</title><style>{_CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>\n"
    )


def write_report(path, content: ReportContent, *, overwrite: bool = False) -> str:
    """Write the report to ``path`` atomically; refuses to replace a file unless ``overwrite``."""
    from .writer import _check_target, atomic_write

    path = Path(path)
    _check_target(path, overwrite)
    text = render(content)
    atomic_write(path, lambda fh: fh.write(text.encode("utf-8")), overwrite=overwrite)
    return str(path)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:1.5em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em} h2{margin-top:1.4em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
img{max-width:100%} .warn{background:#fff3cd;border:1px solid #e0c060;padding:.5em .8em}
.sw{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;vertical-align:middle;border:1px solid #888}
.foot{color:#666;font-size:.85em;margin-top:2em}
"""
