#!/usr/bin/env bash
# The README's test command: set up (idempotent) and run the whole test suite under Xvfb.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -x -q tests/test_readers.py`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest "$@"
