#!/usr/bin/env bash
# The main job: segment cases and write labels + an overlay PNG into out/.
#   bash scripts/segment.sh                  # the built-in synthetic phantoms (no patient data needed)
#   bash scripts/segment.sh CASE [CASE ...]  # BraTS case folders or LGG patient folders (or folders of them)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p out
# out/ is this script's own output folder, so re-runs replace its earlier results
if (($# == 0)); then
  echo "segment: no case named; segmenting the built-in synthetic phantoms" >&2
  exec .venv/bin/napari-brainseg predict --sample --output out --overwrite
fi
exec .venv/bin/napari-brainseg predict "$@" --output out --overwrite
