"""Everything that imports napari or Qt: the npe2 reader, writer and sample-data hooks, labels-layer
styles, layer-name matching and the dock widget. The manifest (napari.yaml) points here.
"""
