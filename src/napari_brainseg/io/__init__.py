"""Reading and writing cases: arrays plus the geometry needed to write results back. No model logic."""
