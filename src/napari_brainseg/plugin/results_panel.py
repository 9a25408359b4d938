"""The dock's results: a table per result layer (class, volume, truth volume, Dice) with the run's
model, device and time, copyable as text and exportable as CSV, and a row of actions on the result.

The table shows the results kept in the selected result layer's ``metadata["results"]`` (else the
latest run's), so each result keeps its own numbers and a later failed or cancelled run never
replaces them. Other actions on a result (e.g. a report) go into :attr:`ResultsPanel.actions`.
"""

from __future__ import annotations

from magicgui.widgets import Container, Label, PushButton, Table

from ..io.tables import csv_text, write_csv
from .results_record import caption, csv_rows

_HEADERS = {"class": "class", "volume_ml": "mL", "truth_ml": "truth mL", "dice": "Dice"}


class ResultsPanel(Container):
    def __init__(self):
        super().__init__(labels=False)
        self.record: dict | None = None
        self.caption = Label(value="No result yet.")
        self.table = Table(value={"data": [], "index": [], "columns": list(_HEADERS.values())})
        self.table.native.setMinimumHeight(170)  # five BraTS rows without scrolling
        self.copy_button = PushButton(text="Copy", tooltip="Copy the table (tab-separated) to the clipboard")
        self.export_button = PushButton(text="Export CSV...", tooltip="Save the table as a CSV file")
        self.actions = Container(layout="horizontal", labels=False, widgets=[self.copy_button, self.export_button])
        self.extend([self.caption, self.table, self.actions])
        self.copy_button.changed.connect(self.copy)
        self.export_button.changed.connect(self.export)
        _make_read_only(self.table)
        wrap_and_select(self.caption)
        self._enable(False)

    def show_record(self, record: dict | None) -> None:
        self.record = record
        self._enable(record is not None)
        if record is None:
            self.caption.value = "No result yet."
            self.table.value = {"data": [], "index": [], "columns": list(_HEADERS.values())}
            return
        self.caption.value = caption(record)
        columns = [c for c in _HEADERS if any(c in row for row in record["rows"])]
        data = [[_cell(c, row.get(c)) for c in columns] for row in record["rows"]]
        self.table.value = {"data": data, "index": list(range(1, len(data) + 1)), "columns": [_HEADERS[c] for c in columns]}
        from qtpy.QtWidgets import QHeaderView

        self.table.native.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)

    def text(self) -> str:
        """The shown result as tab-separated text (pastes into a spreadsheet as a table)."""
        if self.record is None:
            return ""
        return caption(self.record) + "\n" + csv_text(csv_rows(self.record), delimiter="\t")

    def copy(self, _value=None) -> None:
        from qtpy.QtWidgets import QApplication

        QApplication.clipboard().setText(self.text())

    def export(self, _value=None, path: str | None = None) -> str | None:
        """Ask where (unless ``path`` is given) and write the shown result as CSV; returns the file."""
        from ..errors import BrainsegInputError
        from . import notices

        if self.record is None:
            return None
        if path is None:
            from qtpy.QtWidgets import QFileDialog

            suggested = f"{self.record['case']} volumes.csv"
            path, _ = QFileDialog.getSaveFileName(self.native, "Export results as CSV", suggested, "CSV (*.csv)")
            if not path:
                return None
        if not path.lower().endswith(".csv"):
            path += ".csv"
        try:
            written = write_csv(path, csv_rows(self.record), overwrite=True)  # the dialog asked before replacing
        except BrainsegInputError as exc:
            notices.error("Results not saved; see the log", str(exc))
            return None
        notices.info("Results saved as CSV", f"Results saved to {written}")
        return written

    def _enable(self, enabled: bool) -> None:
        self.copy_button.enabled = self.export_button.enabled = enabled


def _cell(column: str, value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}" if column == "dice" else f"{value:.2f}"
    return str(value)


def _make_read_only(table: Table) -> None:
    from qtpy.QtWidgets import QAbstractItemView, QHeaderView, QStyledItemDelegate

    # magicgui's delegate redraws every number with 4 decimals (0.889 -> 0.8890, 0.05 mL -> 5.000e-02);
    # a plain one shows the cells as _cell wrote them
    table.native.setItemDelegate(QStyledItemDelegate(table.native))

    table.native.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.native.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
    table.native.verticalHeader().setVisible(False)
    header = table.native.horizontalHeader()  # numbers sized to fit; the class name takes what is left
    header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
    header.setMinimumSectionSize(40)


def wrap_and_select(label: Label) -> None:
    """A label that wraps instead of widening the dock, and whose text can be selected and copied."""
    from qtpy.QtCore import Qt
    from qtpy.QtWidgets import QSizePolicy

    label.native.setWordWrap(True)
    label.native.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
