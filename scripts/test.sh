#!/usr/bin/env bash
# The README's test command: set up (idempotent), lint (ruff, config in pyproject.toml), and run the
# whole test suite under Xvfb. Extra arguments go to pytest, e.g. `bash scripts/test.sh -x -q tests/test_readers.py`.
# The suite runs on one pytest-xdist worker per CPU (`-n auto`, counted in tests/conftest.py; each worker has its
# own Xvfb display and temporary folders), tests sharing a module-scoped fixture kept on one worker (loadgroup).
# A run naming test files or node ids, or selecting with -k, stays in one process; `-n 0` forces that, `-n N` N workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest -n auto --dist loadgroup "$@"
