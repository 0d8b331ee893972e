"""GUI redraw rate and event-loop stalls while acquiring, recording and stimulating.

The real MainWindow (offscreen Qt platform) connected to the simulated rig over
its pseudo-terminal: 4 ch × 30 kS/s, 60 fps video with live tracking, recording
on, the mapping protocol running at 1 pulse/s (sweeps and parameter map filling
in). Figures:

- ``gui_fps_4ch``: paints of the live-traces plot per second (real paint
  events on its viewport, not timer ticks); target ≥ 30.
- ``gui_stall_p99_ms``: a 5 ms probe timer measures how late the event loop
  serves it; the 99th percentile of that lateness; target ≤ 50.
- ``gui_stall_max_ms``: the worst lateness.

The simulated board and camera run in this process and share its GIL, which a
real board does not: the figures are conservative. Full run 60 s; quick 10 s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

PROBE_MS = 5


def run(quick: bool = False) -> dict[str, float]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from pyqtgraph.Qt import QtCore, QtWidgets

    from rig.gui.app import default_session_factory
    from rig.gui.main_window import MainWindow
    from rig.protocols import load_protocol

    seconds = 10.0 if quick else 60.0
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    settings = QtCore.QSettings(
        str(Path(tempfile.mkdtemp()) / "s.ini"), QtCore.QSettings.IniFormat
    )
    window = MainWindow(session_factory=default_session_factory, settings=settings)
    window.show()
    window.connect_to("sim://?seed=1")
    deadline = time.monotonic() + 30
    while window.session is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    if window.session is None:
        raise RuntimeError(f"no session: {window.error_label.text()}")

    class PaintCounter(QtCore.QObject):
        count = 0

        def eventFilter(self, obj, event):  # noqa: N802 - Qt override
            if event.type() == QtCore.QEvent.Paint:
                PaintCounter.count += 1
            return False

    counter = PaintCounter()
    window.traces.plot.viewport().installEventFilter(counter)
    recordings = tempfile.mkdtemp(prefix="neurorig-gui-bench-")
    window.recording.folder.setText(recordings)
    window.recording.start()
    plan = load_protocol("protocols/mapping.toml").expand()
    window.session.run_protocol(plan.trials, n_trials=plan.n_trials)

    lateness_ms: list[float] = []
    last = [time.perf_counter()]

    def probe() -> None:
        now = time.perf_counter()
        lateness_ms.append(max(0.0, (now - last[0]) * 1000 - PROBE_MS))
        last[0] = now

    timer = QtCore.QTimer()
    timer.setTimerType(QtCore.Qt.PreciseTimer)
    timer.timeout.connect(probe)
    timer.start(PROBE_MS)
    time.sleep(0.5)
    start_paints, start = PaintCounter.count, time.perf_counter()
    loop = QtCore.QEventLoop()
    QtCore.QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec_()
    elapsed = time.perf_counter() - start
    paints = PaintCounter.count - start_paints
    timer.stop()
    lost = window.session.acquisition.counters.samples_lost
    trials = window.session.runner.status.trial
    window.close()
    app.processEvents()
    shutil.rmtree(recordings, ignore_errors=True)  # a minute of video: hundreds of MB
    stalls = np.asarray(lateness_ms[10:])
    print(
        f"  {paints} paints in {elapsed:.1f} s, {trials} stimuli, {lost} samples lost, "
        f"{stalls.size} probes"
    )
    return {
        "gui_fps_4ch": paints / elapsed,
        "gui_stall_p99_ms": float(np.percentile(stalls, 99)),
        "gui_stall_max_ms": float(stalls.max()),
        "gui_samples_lost": float(lost),
    }
