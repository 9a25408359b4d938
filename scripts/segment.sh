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
if ((${#cases[@]} == 0)); then
  # the phantom is written as a BraTS-2018-named case folder, exactly what a real case looks like
  cases=("$("$python" -c 'import sys; from napari_brainseg.sample_data import write_brats_phantom; print(write_brats_phantom(sys.argv[1]))' out/sample)")
  echo "segment: no case named; using the synthetic phantom ${cases[0]}" >&2
fi

if "$python" -c 'import napari_brainseg.cli' 2>/dev/null; then
  exec "$python" -m napari_brainseg.cli predict "${cases[@]}" --out out
else
  # until the segmentation CLI lands: read each case and write its labels back, with an overlay
  exec "$python" scripts/readback.py "${cases[@]}" --out out
fi
