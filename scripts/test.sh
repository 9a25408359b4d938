#!/usr/bin/env bash
# The README's test command: set up (idempotent), lint (ruff, config in pyproject.toml), and run the
# whole test suite under Xvfb. Extra arguments go to pytest, e.g. `bash scripts/test.sh -x -q tests/test_readers.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check --quiet .
exec .venv/bin/python -m pytest "$@"
