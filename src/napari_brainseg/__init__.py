"""napari-brainseg: brain-tumour segmentation of BraTS and LGG MRI in napari."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-brainseg")  # from the git tag at install time (hatch-vcs)
except PackageNotFoundError:  # run from a source tree that is not installed
    __version__ = "0.0.0"

# The scripted API, imported on first use so that `import napari_brainseg` (which napari does to
# read the manifest) does not pull in torch and MONAI.
_API = {
    "segment": "engine.segment",
    "segment_case": "engine.segment",
    "SegmentationResult": "engine.segment",
    "read_case": "io.cases",
    "write_result": "io.cases",
    "write_case_report": "case_report",
    "labels_layer_kwargs": "plugin.layer_style",
    "MODELS": "engine.registry",
}
__all__ = ["__version__", *_API]


def __getattr__(name):
    if name in _API:
        import importlib

        module = importlib.import_module(f"{__name__}.{_API[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
