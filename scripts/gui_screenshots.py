"""Render every tab of the lab app, connected to the simulated rig after a few
stimuli, into docs/images/gui-<tab>.png (the README's screenshots).

    python scripts/gui_screenshots.py [--size 1366x768] [--theme dark|light]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    """Connect, stimulate, and grab each tab."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1366x768")
    parser.add_argument("--theme", default="dark", choices=["dark", "light"])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    from pyqtgraph.Qt import QtCore, QtWidgets

    from rig.gui.app import default_session_factory
    from rig.gui.main_window import MainWindow

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    settings_file = Path(tempfile.mkdtemp()) / "settings.ini"
    settings = QtCore.QSettings(str(settings_file), QtCore.QSettings.IniFormat)
    settings.setValue("theme", args.theme)
    window = MainWindow(session_factory=default_session_factory, settings=settings)
    window.resize(width, height)
    window.show()

    def spin(seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents()
            time.sleep(0.01)

    window.connect_to("sim://?seed=1")
    deadline = time.monotonic() + 30
    while window.session is None and time.monotonic() < deadline:
        spin(0.05)
    if window.session is None:
        print("could not connect to the simulated rig", file=sys.stderr)
        return 1
    spin(1.5)
    window.stimulation.arm_button.click()
    spin(0.5)
    for amplitude, duration_ms in [(3.0, 3.0), (5.0, 3.0), (4.0, 2.0), (5.5, 2.0)]:
        window.stimulation.amplitude.setValue(amplitude)
        window.stimulation.duration_ms.setValue(duration_ms)
        window.stimulation.fire_button.click()
        spin(1.2)
    args.out.mkdir(parents=True, exist_ok=True)
    tabs = window.centralWidget()
    for index in range(tabs.count()):
        tabs.setCurrentIndex(index)
        spin(0.8)
        name = tabs.tabText(index).lower().replace(" ", "-")
        path = args.out / f"gui-{name}.png"
        window.grab().save(str(path))
        print(path.relative_to(ROOT))
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
