"""Where a streaming soak loses samples: a diagnostic, not a benchmark figure.

    python benchmarks/diagnose_stream.py [SECONDS] [CHANNELS]

Streams and records as ``bench_stream.soak`` does (``recording_session``:
simulated rig in its own process, 60 fps video, recorder on) while a monitor
thread samples, every 10 ms, how far the host's reader lags the board: samples
the board has made by now (wall time × rate) minus samples received or lost. The
simulated board holds 1 MB before it drops frames: ~0.5 s at 32 channels.
Prints the lag episodes over 0.1 s, the longest gaps of the monitor thread
itself (a long gap means the whole process stalled: GIL or VM, not just the
reader), full garbage collections over 20 ms, and CPU per thread.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from pathlib import Path

from bench_stream import recording_session

FS_HZ = 30_000.0


def thread_cpu_s() -> dict[str, float]:
    """CPU seconds (user + system) of every thread of this process, by name."""
    ticks = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / ticks
        name = names.get(int(tid), f"native-{tid}")
        out[name] = out.get(name, 0.0) + cpu
    return out


def main(seconds: float, channels: int) -> None:
    gc_pauses: list[tuple[float, int, float]] = []  # pause s, generation, when
    started: dict[str, float] = {}

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started["t"] = time.perf_counter()
        else:
            pause = time.perf_counter() - started["t"]
            gc_pauses.append((pause, info["generation"], time.monotonic()))

    gc.callbacks.append(on_gc)
    samples: list[tuple[float, float]] = []  # (s since start, reader lag s)
    stop = threading.Event()
    with recording_session(channels) as (session, _):
        acquisition = session.acquisition
        time.sleep(1.0)  # past the start-up
        first = acquisition.counters
        t0, made0 = time.monotonic(), first.samples_received + first.samples_lost

        def monitor() -> None:
            while not stop.is_set():
                t = time.monotonic() - t0
                now = acquisition.counters  # samples lost are made, not lagging
                made = now.samples_received + now.samples_lost - made0
                lag_s = t - made / FS_HZ
                samples.append((t, lag_s))
                time.sleep(0.01)

        threading.Thread(target=monitor, daemon=True).start()
        cpu0 = thread_cpu_s()
        time.sleep(seconds)
        cpu1, elapsed = thread_cpu_s(), time.monotonic() - t0
        stop.set()
        counters = session.acquisition.counters
    print(f"{channels} ch, {seconds:g} s: {counters.samples_lost} samples lost, "
          f"relay high-water {counters.relay_queue_high_water}, "
          f"largest reader lag {max(lag for _, lag in samples):.3f} s")  # fmt: skip
    above = False
    for t, lag_s in samples:
        if (lag_s > 0.1) != above:
            above = not above
            print(f"  reader lag {'above' if above else 'below'} 0.1 s at {t:.2f} s")
    gaps = sorted(
        (samples[i][0] - samples[i - 1][0], samples[i][0])
        for i in range(1, len(samples))
    )[-5:]
    print(
        "longest monitor gaps (s, at s):", [(round(g, 3), round(t, 1)) for g, t in gaps]
    )
    print("GC pauses > 20 ms (ms, generation, at s):",
          [(round(p * 1e3), g, round(w - t0, 1)) for p, g, w in gc_pauses if p > 0.02])  # fmt: skip
    for name, cpu in sorted(cpu1.items(), key=lambda kv: cpu0.get(kv[0], 0) - kv[1]):
        share = 100 * (cpu - cpu0.get(name, 0.0)) / elapsed
        if share >= 0.5:
            print(f"  {name:24s} {share:6.1f} % of a core")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 90.0,
         int(sys.argv[2]) if len(sys.argv) > 2 else 32)  # fmt: skip
