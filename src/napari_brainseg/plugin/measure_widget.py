"""The "Measure tumour" dock widget: RANO-style diameters of any labels layer (a prediction, a corrected
or a ground-truth one), the change between two labels layers of one patient, and an HTML report.

numpy/scipy and matplotlib only (no torch on napari's main thread); measuring takes well under a
second, so it runs on the main thread, as does the report (about a second of matplotlib drawing).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, TextEdit

from ..errors import first_line
from ..measure.change import compare
from ..measure.rano import MIN_LESION_MM
from .measure_layers import add_diameter_layer, layer_convention, measure_layer

if TYPE_CHECKING:
    import napari


class MeasureWidget(Container):
    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.labels = ComboBox(label="Labels", choices=self._labels_choices, nullable=True)
        self.measure_button = PushButton(text="Measure (RANO diameters)")
        self.follow_up = ComboBox(label="Follow-up labels", choices=self._labels_choices, nullable=True)
        self.compare_button = PushButton(text="Compare with follow-up")
        self.report_path = FileEdit(label="Report file", mode="w", filter="*.html")
        self.report_button = PushButton(text="Write HTML report")
        self.output = TextEdit(label="Result", value="")
        self.output.read_only = True
        self.note = Label(value="Research use only; measurements are not a clinical assessment.")
        self.extend([self.labels, self.measure_button, self.follow_up, self.compare_button, self.report_path,
                     self.report_button, self.output, self.note])
        self.measure_button.changed.connect(self.measure)
        self.compare_button.changed.connect(self.compare)
        self.report_button.changed.connect(self.write_report)
        for event in (napari_viewer.layers.events.inserted, napari_viewer.layers.events.removed):
            event.connect(self._refresh)
        self._refresh()

    def _labels_choices(self, _widget=None):
        from napari.layers import Labels

        return [(layer.name, layer) for layer in self.viewer.layers if isinstance(layer, Labels)]

    def _refresh(self, _event=None):
        for box in (self.labels, self.follow_up):
            box.reset_choices()
        if self.labels.value is None and self.labels.choices:
            self.labels.value = self.labels.choices[-1]  # the newest labels layer (usually a fresh result)

    def _fail(self, exc: Exception) -> None:
        from napari.utils.notifications import show_error

        show_error(first_line(exc))

    def measure(self, _value=None):
        layer = self.labels.value
        if layer is None:
            return self._fail(ValueError("choose a labels layer to measure"))
        try:
            shapes, m = add_diameter_layer(self.viewer, layer)
        except Exception as exc:  # a layer the measurement cannot read: one line, no traceback
            return self._fail(exc)
        self.output.value = "\n".join(measurement_lines(m)) if shapes is not None else f"{layer.name}: no {m.target} to measure"

    def compare(self, _value=None):
        base, follow = self.labels.value, self.follow_up.value
        if base is None or follow is None or base is follow:
            return self._fail(ValueError("choose two different labels layers: baseline (Labels) and follow-up"))
        try:
            a, b = layer_convention(base), layer_convention(follow)
            if a != b and {a, b} != {"brats2018", "brats2023"}:
                raise ValueError(f"{base.name} holds {a} labels but {follow.name} holds {b}; compare like with like")
            change = compare(measure_layer(base), measure_layer(follow))
        except Exception as exc:
            return self._fail(exc)
        self.output.value = "\n".join([f"{base.name} -> {follow.name}", *change.lines()])

    def write_report(self, _value=None):
        from napari.utils.notifications import show_info

        from ..io.report import write_report
        from .report_content import report_from_layers

        layer, path = self.labels.value, Path(str(self.report_path.value))
        if layer is None or not str(self.report_path.value).strip() or path.is_dir():
            return self._fail(ValueError("choose a labels layer and a report file (.html)"))
        if path.suffix.lower() not in (".html", ".htm"):
            path = path.with_name(path.name + ".html")
        try:
            written = write_report(path, report_from_layers(self.viewer, layer), overwrite=True)
        except Exception as exc:
            return self._fail(exc)
        self.output.value = f"report written: {written}"
        show_info(f"report written: {written}")


def measurement_lines(m) -> list[str]:
    fragments = f" (+{m.n_fragments} fragment(s) under {MIN_LESION_MM:g} mm)" if m.n_fragments else ""
    lines = [f"{m.target}: {m.n_lesions} lesion(s){fragments}; sum of products {m.sum_of_products_mm2:.0f} mm²"]
    for index, lesion in enumerate(m.lesions[: min(m.n_lesions, 5)], start=1):
        lines.append(f"  {index}: slice {lesion.slice_index}, {lesion.longest.length_mm:.1f} x "
                     f"{lesion.perpendicular.length_mm:.1f} mm ({'measurable' if lesion.measurable else 'not measurable'}), "
                     f"{lesion.volume_ml:.2f} mL")
    return lines + list(m.notes)


__all__ = ["MeasureWidget", "measurement_lines"]
