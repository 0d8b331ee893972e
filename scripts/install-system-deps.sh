#!/usr/bin/env bash
# Installs the Debian packages Qt needs to run offscreen and under Xvfb (with xdotool
# to press its keys), and GNU Octave (the tests read `neurorig analyze --mat` files
# with it: a MATLAB-file reader that shares no code with scipy's writer), and Chromium
# with its WebDriver (the report is opened in a real headless browser), if missing.
# Idempotent: checks each package with dpkg first and does nothing when all are present.
set -euo pipefail
pkgs=(libgl1 libglx0 libegl1 libglib2.0-0 libfontconfig1 libfreetype6 libx11-6 libxext6
      libxcb1 libxkbcommon0 libxkbcommon-x11-0 libdbus-1-3 libxcb-icccm4 libxcb-keysyms1
      libxcb-xinerama0 libxcb-image0 libxcb-render-util0 libxcb-randr0 libxcb-shape0
      libxcb-xfixes0 libxcb-xkb1
      xvfb xdotool  # a real X server and real key presses for the real-window test
      octave
      chromium chromium-driver)  # the report opened in a real browser
missing=()
for p in "${pkgs[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages: all ${#pkgs[@]} present (Qt runtime libraries, Xvfb, xdotool, octave, chromium)"
    exit 0
fi
echo "system packages: installing missing ones: ${missing[*]}"
if [ "$(id -u)" -ne 0 ]; then
    echo "not root: run  sudo apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
