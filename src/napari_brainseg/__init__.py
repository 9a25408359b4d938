"""napari-brainseg: brain-tumour segmentation of BraTS and LGG MRI in napari."""

__version__ = "0.1.0"
