"""The dock's case and input pickers: which case is shown, and which layer fills each input.

A mixin of :class:`.widget.SegmentationWidget` (it uses its ``viewer``, ``case``, ``model`` and picker
widgets); the decisions themselves are the Qt-free functions of :mod:`.case_match`. The pickers follow the
case opened last or the case of the layer selected in the layer list; a layer added to the current
case fills the inputs still empty (files opened one by one).
"""

from __future__ import annotations

from ..engine.registry import BRATS_MODEL
from . import case_match as match
from .case_match import RGB, brats_channels, lgg_channels


class CasePickers:
    def _image_layers(self):
        from napari.layers import Image

        return [layer for layer in self.viewer.layers if isinstance(layer, Image) and not layer.multiscale]

    def _labels_layers(self):
        from napari.layers import Labels

        return [layer for layer in self.viewer.layers if isinstance(layer, Labels)]

    def _case_choices(self, _widget=None):
        return match.cases_of(self._image_layers())

    def _single_channel_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._image_layers() if match.is_single_channel(layer)]

    def _three_channel_choices(self, _widget=None):
        return [(layer.name, layer) for layer in self._image_layers() if layer.data.shape[-1] == 3]

    def _on_inserted(self, event):
        from napari.layers import Image

        self.reset_choices()
        layer = event.value
        if isinstance(layer, Image) and not match.is_prediction(layer):
            self._follow_case(match.layer_case(layer))  # the newest case
        else:
            self._fill_empty_pickers()

    def _on_removed(self, _event=None):
        self.reset_choices()
        if self.case.value not in self._case_choices():
            cases = self._case_choices()
            self._follow_case(cases[-1] if cases else None)
        self._update_run_label()

    def _on_active(self, event):
        layer = event.value
        if layer is None or self._closed:
            return
        record = layer.metadata.get("results") if match.is_prediction(layer) else None
        if record is not None:
            self._show_record(record)
        case = match.layer_case(layer)
        if case != self.case.value and case in self._case_choices():
            self._follow_case(case)  # the selected layer's case

    def _follow_case(self, case):
        if case is not None and case != self.case.value:
            with self.case.changed.blocked():
                self.case.value = case
        self._fill_pickers(self.case.value)

    def _on_case_changed(self, case=None):
        self._fill_pickers(case)

    def _fill_pickers(self, case):
        """Every picker to the case's layers (None where the case has none), and the model that fits."""
        images = self._image_layers()
        brats = match.pick_brats(images, case) if case is not None else dict.fromkeys(brats_channels())
        lgg = match.pick_lgg(images, case) if case is not None else {RGB: None, **dict.fromkeys(lgg_channels())}
        self._set_picks(brats, lgg)
        guess = match.fitting_model(brats, lgg)
        if guess is not None and match.fitting_model(*self._picks()) != self.model.value:
            self.model.value = guess
        self._show_pickers()

    def _fill_empty_pickers(self):
        """Layers added to the current case fill the pickers still empty (files opened one by one)."""
        case = self.case.value
        if case is None:
            return
        images = self._image_layers()
        brats, lgg = self._picks()
        brats = {m: brats[m] or match.pick_brats(images, case)[m] for m in brats}
        lgg = {c: lgg[c] or match.pick_lgg(images, case)[c] for c in lgg}
        self._set_picks(brats, lgg)

    def _picks(self):
        brats = {m: p.value for m, p in self.brats_pickers.items()}
        lgg = {RGB: self.lgg_rgb.value, **{c: p.value for c, p in self.lgg_pickers.items()}}
        return brats, lgg

    def _set_picks(self, brats: dict, lgg: dict):
        for picker, layer in [*zip(self.brats_pickers.values(), brats.values()), (self.lgg_rgb, lgg[RGB]),
                              *((self.lgg_pickers[c], lgg[c]) for c in lgg_channels())]:
            with picker.changed.blocked():
                picker.reset_choices()  # the case picker may refresh before the input pickers do
                picker.value = layer
        self._update_run_label()

    def _show_pickers(self, _value=None):
        brats = self.model.value == BRATS_MODEL
        for picker in self.brats_pickers.values():
            picker.visible = brats
        for picker in (self.lgg_rgb, *self.lgg_pickers.values()):
            picker.visible = not brats
        self._update_run_label()

    def _update_run_label(self, _value=None):
        if not self._closed:
            self.run_button.text = match.run_label(self.model.value, *self._picks())
