"""Interpreter settings that keep the serial reader thread on time.

Two CPython behaviours starve an I/O thread that shares the process with
CPU-bound threads (the GUI, video encoding, tracking, and in tests and
benchmarks the simulated rig itself):

- After every read the reader must take the GIL back. A busy thread gives it up
  only after the switch interval (5 ms by default), so a reader doing a tty's
  4 KB reads manages ~200 reads/s, about 0.8 MB/s: less than 32 channels at
  30 kS/s (~2 MB/s). The board's buffer then fills and samples are lost. A
  0.5 ms interval lifts that ceiling tenfold for a negligible cost.
- A full (generation-2) garbage collection walks every object in the process;
  with numpy, scipy, scikit-learn, OpenCV and Qt loaded that is a 50–80 ms stop
  of every thread. ``gc.freeze()`` after start-up moves the objects alive then
  (modules, the session's long-lived structures) out of the collector's sight.

Measured with 32 channels, video and recorder on, simulator in-process, 90 s
(``benchmarks/bench_stream.py``): largest backlog in the simulated board's
buffer 707 KB → 141 KB, relay queue high-water 398 → 8.
"""

from __future__ import annotations

import gc
import sys

SWITCH_INTERVAL_S = 0.0005


def tune_for_streaming() -> None:
    """Shorten the GIL switch interval; collect, then freeze what is alive."""
    if sys.getswitchinterval() > SWITCH_INTERVAL_S:
        sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.collect()  # garbage now would otherwise be frozen forever
    gc.freeze()
