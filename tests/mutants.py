"""Deliberate bugs for the mutation check (``python -m benchmarks.mutations``); never active in a normal run.

A pytest plugin: ``pytest -p tests.mutants --mutant NAME ...`` breaks one thing in the package before the
tests are collected, so the tests that still pass are the ones blind to that bug. Each mutant is a bug an
audit of the suite found undetected (issue 14) or one that is easy to make in a refactor.
"""

from __future__ import annotations

import numpy as np


def _replace(module, name: str, new) -> None:
    """Set ``module.name``; a name that no longer exists (code moved) fails loudly instead of mutating nothing."""
    if not hasattr(module, name):
        raise RuntimeError(f"mutant target {module.__name__}.{name} is gone; update tests/mutants.py")
    setattr(module, name, new)


def _label_swap():
    """BraTS labels 1 (necrotic core) and 4/3 (enhancing tumour) swapped in segment()'s output."""
    from napari_brainseg import conventions

    real = conventions.brats_regions_to_labels

    def swapped(regions, convention):
        labels = real(regions, convention)
        enhancing = 3 if "2023" in str(convention) else 4
        out = labels.copy()
        out[labels == 1], out[labels == enhancing] = enhancing, 1
        return out

    _replace(conventions, "brats_regions_to_labels", swapped)


def _lgg_channels_reversed():
    """LGG slices fed to the network in reverse channel order (BGR instead of RGB)."""
    from napari_brainseg.engine import segment

    real = segment.preprocess_lgg
    _replace(segment, "preprocess_lgg", lambda image: real(np.asarray(image)[..., ::-1]))


def _tta_noop():
    """Test-time augmentation runs the network once per flip but never flips."""
    from napari_brainseg.engine import window

    _replace(window, "_flip_axes", lambda spatial_dims: [()] * (spatial_dims + 1))


def _nan_cleanup_off():
    """NaN/Inf voxels reach the normalisation (one bad voxel poisons its channel's mean)."""
    from napari_brainseg.engine import preprocess, segment

    def normalize_channels(image):
        return np.asarray(preprocess._normalize(np.array(image, dtype=np.float32, copy=True)), dtype=np.float32)

    def preprocess_brats(stack):
        stack = np.asarray(stack, dtype=np.float32)
        box = preprocess.brain_bounding_box(stack)
        return normalize_channels(preprocess.crop(stack, box)), box

    _replace(preprocess, "normalize_channels", normalize_channels)  # preprocess_lgg looks it up here
    _replace(segment, "preprocess_brats", preprocess_brats)


def _empty_model():
    """The network answers "no tumour" everywhere (e.g. wrong weights loaded)."""
    import torch

    from napari_brainseg.engine import segment

    real = segment.load_model

    class Empty(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.out_channels = int(getattr(net, "out_channels", 1))

        def forward(self, x):
            return torch.full((x.shape[0], self.out_channels, *x.shape[2:]), -20.0, device=x.device)

    _replace(segment, "load_model", lambda name, device, members=None: Empty(real(name, device, members)))


def _generic_reader_error():
    """Every reader error replaced by "<path>: could not open": the user no longer learns why."""
    from napari_brainseg.engine import segment
    from napari_brainseg.errors import BrainsegInputError
    from napari_brainseg.io import cases
    from napari_brainseg.plugin import readers

    def generic(read):
        def wrapper(path, *args, **kwargs):
            try:
                return read(path, *args, **kwargs)
            except BrainsegInputError:
                raise BrainsegInputError(f"{path}: could not open") from None

        return wrapper

    real_get_reader = readers.get_reader

    def get_reader(path):
        reader = real_get_reader(path)
        return None if reader is None else generic(reader)

    _replace(readers, "get_reader", get_reader)
    generic_read_case = generic(cases.read_case)
    _replace(cases, "read_case", generic_read_case)
    _replace(segment, "read_case", generic_read_case)


MUTANTS = {
    "label-swap": _label_swap,
    "lgg-channels-reversed": _lgg_channels_reversed,
    "tta-noop": _tta_noop,
    "nan-cleanup-off": _nan_cleanup_off,
    "empty-model": _empty_model,
    "generic-reader-error": _generic_reader_error,
}


def pytest_addoption(parser):
    parser.addoption("--mutant", choices=sorted(MUTANTS), help="break one thing on purpose (tests/mutants.py)")


def pytest_configure(config):
    # before collection, so test modules that import names from the package get the broken ones
    name = config.getoption("--mutant")
    if name:
        MUTANTS[name]()


def pytest_report_header(config):
    name = config.getoption("--mutant")
    return f"MUTANT ACTIVE: {name}" if name else None
