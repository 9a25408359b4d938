#!/usr/bin/env bash
# The main job: segment cases and write labels + an overlay PNG into out/.
#   bash scripts/segment.sh                  # the built-in synthetic phantom (no patient data needed)
#   bash scripts/segment.sh CASE [CASE ...]  # BraTS case folders, NIfTI files or LGG patient folders
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python=.venv/bin/python
mkdir -p out

cases=("$@")
if "$python" -c 'import napari_brainseg.cli' 2>/dev/null; then
  # out/ is this script's own output folder, so re-runs replace earlier results
  if ((${#cases[@]} == 0)); then
    echo "segment: no case named; segmenting the built-in synthetic phantoms" >&2
    exec "$python" -m napari_brainseg.cli predict --sample --output out --overwrite
  fi
  exec "$python" -m napari_brainseg.cli predict "${cases[@]}" --output out --overwrite
fi

# Fallback while the segmentation CLI is not installed: read each case and write its labels back.
if ((${#cases[@]} == 0)); then
  # the phantom is written as a BraTS-2018-named case folder, exactly what a real case looks like
  cases=("$("$python" -c 'import sys; from napari_brainseg.sample_data import write_brats_phantom; print(write_brats_phantom(sys.argv[1]))' out/sample)")
  echo "segment: no case named; using the synthetic phantom ${cases[0]}" >&2
fi
exec "$python" scripts/readback.py "${cases[@]}" --out out
