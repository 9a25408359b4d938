"""Measurements on any labels array (a prediction, a corrected or a ground-truth layer): numpy and scipy
only, no napari, no torch."""
