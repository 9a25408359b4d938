"""npe2 sample-data contributions (File > Open Sample > napari-brainseg): the synthetic phantoms as layers."""

from __future__ import annotations

import numpy as np

from ..phantoms import make_brats_phantom, make_lgg_phantom, nifti_header
from .layer_tuples import brats_layers, lgg_layers

# napari sample-data contributions (File > Open Sample > napari-brainseg)


def brats_phantom_layers():
    phantom = make_brats_phantom()
    header = nifti_header(phantom.spacing, np.int16, phantom.shape)
    return brats_layers(
        phantom.case_id + " (synthetic)",
        phantom.images,
        phantom.seg,
        label_convention=phantom.label_convention,
        spacing=phantom.spacing,
        affine=phantom.affine,
        header=header,
        source=None,
    )


def lgg_phantom_layers():
    phantom = make_lgg_phantom()
    return lgg_layers(phantom.patient_id + " (synthetic)", phantom.image, phantom.mask, phantom.slice_numbers, None)
