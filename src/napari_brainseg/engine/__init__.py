"""The engine: models and the one inference path. torch and MONAI live here, Qt and napari never.

registry (models and weights), inputs (torch-free input checks), preprocess, window (forward passes),
segment (the one ``segment()``), metrics, device. Modules import torch where they need it, so
``engine.inputs`` and ``engine.registry`` stay light enough for napari's main thread.
"""
