"""The installed environment: cv2 must not break PyQt5, the console script exists."""

from __future__ import annotations

import subprocess
import sys


def test_cv2_imported_before_qapplication_does_not_break_qt():
    # The plain opencv-python wheel ships Qt plugins that clash with PyQt5's Qt when
    # cv2 is imported first; the headless wheel must not. Run in a fresh interpreter
    # so the import order is exactly the dangerous one.
    code = (
        "import cv2\n"
        "from PyQt5 import QtWidgets\n"
        "app = QtWidgets.QApplication(['t'])\n"
        "w = QtWidgets.QLabel('ok'); w.show(); app.processEvents()\n"
        "print(cv2.__version__, w.text())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_opencv_is_the_headless_build():
    import cv2

    info = cv2.getBuildInformation()
    gui_line = next(line for line in info.splitlines() if "GUI:" in line)
    assert "QT" not in gui_line.upper().split("GUI:")[1]


def test_console_script_prints_help():
    out = subprocess.run(
        [sys.executable, "-m", "rig.cli", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert "neurorig" in out.stdout
