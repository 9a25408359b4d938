"""napari-free reading and writing: arrays plus the geometry needed to write results back (nifti, brats, lgg, cases, writer, overlay). No model logic, no napari."""
