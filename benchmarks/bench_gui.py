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
- the same three with ``_with_subscriber``: a second run with the remote API
  on (rig.remote, docs/remote.md) and a client in another process subscribed
  to every event; ``remote_events_received`` is how many it received.
- the same three with ``_sim_in_process``: a third run with the simulated
  board and camera in the GUI's own process, sharing its GIL (the worst case:
  a real board, and ``neurorig gui --sim``, run apart from the GUI).

The first two runs open the rig as ``neurorig gui --sim`` does: the simulated
board and camera in a process of their own, as hardware is. Full run 60 s per
variant; quick 10 s.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROBE_MS = 5
# What `neurorig gui --sim` opens (the simulated board and camera in a process
# of their own, as hardware is), and the simulator in the GUI's own process.
OWN_PROCESS = "sim://?seed=1&process=own"
IN_PROCESS = "sim://?seed=1"
# A client in another process that counts every event until its stdin closes.
SUBSCRIBER = """
import sys, threading
from rig.remote import connect
received = []
with connect(sys.argv[1], token_file=sys.argv[2]) as rig:
    rig.subscribe(callback=received.append)
    print("subscribed", flush=True)
    sys.stdin.read()
print(len(received), flush=True)
"""


def run(quick: bool = False) -> dict[str, float]:
    seconds = 10.0 if quick else 60.0
    # A first session pays for compiling the Numba kernels and loading the
    # caches: warm up once so that neither variant carries it.
    _measure(3.0, subscriber=False, url=OWN_PROCESS)
    plain = _measure(seconds, subscriber=False, url=OWN_PROCESS)
    remote = _measure(seconds, subscriber=True, url=OWN_PROCESS)
    shared = _measure(seconds, subscriber=False, url=IN_PROCESS)
    received = remote.pop("remote_events_received")
    figures = {
        **plain,
        **{f"{k}_with_subscriber": v for k, v in remote.items()},
        **{f"{k}_sim_in_process": v for k, v in shared.items()},
    }
    figures["remote_events_received"] = received
    return figures


def _measure(seconds: float, *, subscriber: bool, url: str) -> dict[str, float]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from pyqtgraph.Qt import QtCore, QtWidgets

    from rig.gui.app import default_session_factory
    from rig.gui.main_window import MainWindow
    from rig.protocols import load_protocol

    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    scratch = Path(tempfile.mkdtemp(prefix="neurorig-gui-bench-"))
    os.environ["XDG_RUNTIME_DIR"] = str(scratch)  # the remote token file's home
    settings = QtCore.QSettings(str(scratch / "s.ini"), QtCore.QSettings.IniFormat)
    window = MainWindow(
        session_factory=default_session_factory,
        settings=settings,
        remote_bind="127.0.0.1:0",
        remote=subscriber,
    )
    window.show()
    window.connect_to(url)
    deadline = time.monotonic() + 30
    while window.session is None and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.01)
    if window.session is None:
        raise RuntimeError(f"no session: {window.error_label.text()}")
    client = None
    if subscriber:
        server = window.remote.server
        client = subprocess.Popen(
            [sys.executable, "-c", SUBSCRIBER, server.address, str(server.token_file)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        if client.stdout.readline().strip() != "subscribed":
            raise RuntimeError("the subscriber did not connect")

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
    received = 0
    if client is not None:
        out, _ = client.communicate("", timeout=30)  # stdin closed: it reports
        received = int(out.split()[-1])
    window.close()
    app.processEvents()
    shutil.rmtree(recordings, ignore_errors=True)  # a minute of video: hundreds of MB
    shutil.rmtree(scratch, ignore_errors=True)
    stalls = np.asarray(lateness_ms[10:])
    print(
        f"  {'with' if subscriber else 'without'} a remote subscriber: {paints} paints "
        f"in {elapsed:.1f} s, {trials} stimuli, {lost} samples lost, "
        f"{stalls.size} probes" + (f", {received} events received" if client else "")
    )
    figures = {
        "gui_fps_4ch": paints / elapsed,
        "gui_stall_p99_ms": float(np.percentile(stalls, 99)),
        "gui_stall_max_ms": float(stalls.max()),
        "gui_samples_lost": float(lost),
    }
    if subscriber:
        figures["remote_events_received"] = float(received)
    return figures
