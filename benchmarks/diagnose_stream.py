"""Where a streaming soak loses samples: a diagnostic, not a benchmark figure.

    python benchmarks/diagnose_stream.py [SECONDS] [CHANNELS]

Streams and records as ``bench_stream.soak`` does (``recording_session``:
simulated rig in-process, 60 fps video, recorder on) while a monitor thread
samples, every 10 ms, the simulated board's TX backlog (bytes the host has not
read yet; 1 MB overflows). Prints the backlog episodes over 150 KB, the longest
gaps of the monitor thread itself (a long gap means the whole process stalled:
GIL or VM, not just the reader), full garbage collections over 20 ms, and CPU
per thread.
"""

from __future__ import annotations

import gc
import sys
import threading
import time

from bench_stream import recording_session, thread_cpu_s


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
    samples: list[tuple[float, int]] = []  # (s since start, TX backlog bytes)
    stop = threading.Event()
    with recording_session(channels) as (session, _):
        rig = session.device.sim_rig
        t0 = time.monotonic()

        def monitor() -> None:
            while not stop.is_set():
                samples.append((time.monotonic() - t0, len(rig._pending)))
                time.sleep(0.01)

        threading.Thread(target=monitor, daemon=True).start()
        cpu0 = thread_cpu_s()
        time.sleep(seconds)
        cpu1, elapsed = thread_cpu_s(), time.monotonic() - t0
        stop.set()
        counters = session.acquisition.counters
    print(f"{channels} ch, {seconds:g} s: {counters.samples_lost} samples lost, "
          f"relay high-water {counters.relay_queue_high_water}, "
          f"largest TX backlog {max(b for _, b in samples)} bytes")  # fmt: skip
    above = False
    for t, backlog in samples:
        if (backlog > 150_000) != above:
            above = not above
            print(f"  backlog {'above' if above else 'below'} 150 KB at {t:.2f} s")
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
