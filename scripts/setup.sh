#!/usr/bin/env bash
# One-time (and idempotent) set-up on a fresh Debian machine: the system libraries napari's Qt needs
# under a virtual display, a .venv, and the project installed editable with its test extras.
# Safe to re-run: apt runs only when a package is missing, the venv is reused when present.
set -euo pipefail
cd "$(dirname "$0")/.."

# Xvfb for headless Qt, and the xcb/GL/font libraries Qt 6's xcb platform plugin loads at start-up
# (`ldd` of PyQt6's libqxcb.so and libQt6XcbQpa.so; libxcb-cursor0 is the one Qt >= 6.5 adds).
apt_packages=(
  xvfb libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 libxcb-randr0
  libxcb-render-util0 libxcb-shape0 libxcb-xfixes0 libxcb-cursor0 libxkbcommon-x11-0
  libxcb-util1 libxcb-sync1 libxcb-xkb1 libx11-xcb1
  libgl1 libegl1 libdbus-1-3 libfontconfig1 libglib2.0-0
)
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then apt_packages+=(python3-venv); fi
missing=()
for package in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  echo "setup: installing ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-upgrade "${missing[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
# constraints.txt pins the CPU torch build; without it pip may pull GBs of CUDA wheels.
export PIP_CONSTRAINT="$PWD/constraints.txt"
.venv/bin/python -m pip install -q -e ".[testing,preprocess]"
