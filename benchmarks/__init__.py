"""Benchmarks: one module per measurement, each writing a JSON file to ``benchmarks/results/``.

Run from the repository root as ``python -m benchmarks.<name>`` (``--help`` on each);
``python -m benchmarks.report`` renders every results file. See benchmarks/README.md.
"""
