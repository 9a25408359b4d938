"""A result as a DICOM Segmentation (highdicom) that references the exam's reference series, so
3D Slicer, OHIF and other DICOM viewers overlay it on those images with the class names.

One segment per tumour class of the result's convention (e.g. BraTS 2018: 1 necrotic core,
2 edema, 4 enhancing tumour -> segments 1, 2, 3), labelled with SNOMED CT codes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import __version__
from .. import conventions as label_conventions
from ..errors import BrainsegInputError


def _property_type(name: str):
    from pydicom.sr.codedict import codes

    lower = name.lower()
    if "edema" in lower or "snfh" in lower:
        return codes.SCT.Edema
    if "necro" in lower or "non-enhancing" in lower or "netc" in lower:
        return codes.SCT.Necrosis
    return codes.SCT.Neoplasm


def write_dicom_seg(path, labels: np.ndarray, convention: str, series, *, model: str, overwrite: bool = False) -> str:
    """``labels`` (z, y, x) on the grid of ``series`` (an ``io.dicom.DicomSeries``, slices in the
    order SimpleITK read them) -> ``path``, a DICOM SEG; atomic like every other output."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from .writer import _check_target, atomic_write

    path = Path(path)
    _check_target(path, overwrite)
    sources = [pydicom.dcmread(f) for f in series.files]
    if labels.shape != (len(sources), int(sources[0].Rows), int(sources[0].Columns)):
        raise BrainsegInputError(f"{path}: labels shape {labels.shape} is not the grid of series {series.label}")
    table = label_conventions.CONVENTIONS[convention]
    descriptions, segment_map = [], np.zeros(labels.shape, dtype=np.uint8)
    algorithm = hd.AlgorithmIdentificationSequence(
        name=f"napari-brainseg {model}", version=__version__, family=codes.cid7162.ArtificialIntelligence
    )
    for number, cls in enumerate(table.classes, start=1):
        segment_map[labels == cls.value] = number
        descriptions.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=cls.name,
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=_property_type(cls.name),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                algorithm_identification=algorithm,
            )
        )
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=segment_map,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=int(series.number or 0) + 1000,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="napari-brainseg",
        manufacturer_model_name=model,
        software_versions=__version__,
        device_serial_number="none",
        series_description=f"tumour segmentation ({model})",
        omit_empty_frames=False,
    )
    atomic_write(path, seg.save_as, overwrite=overwrite)
    return str(path)
