"""FrameClock: put every camera frame on the device clock.

With a hardware-triggered camera the board reports each trigger pulse
(CAMERA_TRIGGERED, with its sample number) and the camera delivers one frame per
pulse. Frames carry no sample number, only the host time they arrived. We match
frames to triggers in order, using host arrival times to notice a frame the camera
dropped (a trigger with no frame) or an extra frame (no trigger near it): a frame
arrives a roughly constant latency after its trigger, so after removing the median
latency each frame must fall within half a frame period of its trigger.

Without triggers (a free-running webcam), frames are stamped by a host-clock
regression: the sample number the stream had reached as a function of host time,
fitted on the arrival of data blocks. This is coarser (USB and OS latencies of a
few ms) and is marked as such (``source = "host-clock"``) in the recording.

A rig streams all day: ``forget_before`` drops old history (the session keeps
the last minute when not recording), cutting at a matched frame/trigger pair so
that later matching is unchanged. Frame indices stay absolute.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class FrameStamp:
    """Where one frame sits on the device clock."""

    frame_index: int
    sample: int | None
    source: str  # "trigger", "host-clock" or "unmatched"
    trigger_count: int | None = None


@dataclass(frozen=True, slots=True)
class FrameReport:
    """Counts from matching frames to triggers."""

    n_frames: int
    n_triggers: int
    n_matched: int
    dropped_triggers: tuple[int, ...]  # trigger counts that got no frame
    extra_frames: tuple[int, ...]  # frame indices with no trigger
    latency_s: float  # median host latency from trigger to frame arrival


class FrameClock:
    """Collects trigger events, frame arrivals and stream progress; stamps frames."""

    def __init__(self, sample_rate_hz: float) -> None:
        self.sample_rate_hz = sample_rate_hz
        self._lock = threading.Lock()
        self._triggers: list[tuple[int, int, float]] = []  # sample, count, host t
        self._frames: list[float] = []  # host arrival time per frame
        self._progress: list[tuple[float, int]] = []  # host t, stream end sample
        self._first_frame = 0  # absolute index of self._frames[0]
        self._last_prune_s = 0.0
        self._flashes: list[tuple[int, int, float]] = []  # onset, samples, host t

    def add_trigger(self, sample: int, trigger_count: int, host_time_s: float) -> None:
        """Record a CAMERA_TRIGGERED event (host time = when it arrived)."""
        with self._lock:
            self._triggers.append((sample, trigger_count, host_time_s))

    def add_led_flash(self, onset: int, n_samples: int, host_time_s: float) -> None:
        """Record an LED_FLASHED event: lit from ``onset`` for ``n_samples``."""
        with self._lock:
            self._flashes.append((onset, n_samples, host_time_s))

    def led_flashes(self) -> list[tuple[int, int, float]]:
        """Every LED flash held: (onset sample, duration in samples, host time)."""
        with self._lock:
            return list(self._flashes)

    def add_frame(self, host_time_s: float) -> int:
        """Record a frame's arrival; return its frame index."""
        with self._lock:
            self._frames.append(host_time_s)
            return self._first_frame + len(self._frames) - 1

    def frame_time(self, frame_index: int) -> float:
        """Host arrival time of frame ``frame_index`` (inf if forgotten or unknown)."""
        with self._lock:
            k = frame_index - self._first_frame
            return self._frames[k] if 0 <= k < len(self._frames) else float("inf")

    def add_progress(self, host_time_s: float, end_sample: int) -> None:
        """Record that samples up to ``end_sample`` had arrived at ``host_time_s``."""
        with self._lock:
            self._progress.append((host_time_s, end_sample))
            if len(self._progress) > 20000:
                del self._progress[:10000]

    def latest_trigger(self) -> tuple[int, int, float] | None:
        """The newest trigger (sample, trigger_count, host time), or None."""
        with self._lock:
            return self._triggers[-1] if self._triggers else None

    def triggers(self) -> list[tuple[int, int, float]]:
        """Every trigger so far: (sample, trigger_count, host arrival time)."""
        with self._lock:
            return list(self._triggers)

    def match(self) -> tuple[list[FrameStamp], FrameReport]:
        """Stamp every frame still held and report drops and extras.

        Stamps are in frame order; their ``frame_index`` is absolute (as
        ``add_frame`` returned it), also after ``forget_before``.
        """
        with self._lock:
            triggers = list(self._triggers)
            frames = list(self._frames)
            progress = list(self._progress)
            base = self._first_frame
        if not triggers:
            stamps, report = self._host_clock_stamps(frames, progress)
        else:
            stamps, report = match_frames_to_triggers(
                frames, triggers, self.sample_rate_hz
            )
        if base:
            stamps = [
                dataclasses.replace(s, frame_index=s.frame_index + base) for s in stamps
            ]
            report = dataclasses.replace(
                report, extra_frames=tuple(j + base for j in report.extra_frames)
            )
        return stamps, report

    def keep_recent(self, now_s: float, history_s: float) -> None:
        """Forget what is older than ``history_s`` (checked every sixth of it),
        so that memory stays flat all day while nothing is recorded."""
        if now_s - self._last_prune_s > history_s / 6:
            self._last_prune_s = now_s
            self.forget_before(now_s - history_s)

    def forget_before(self, host_time_s: float) -> None:
        """Drop frames, triggers and progress older than ``host_time_s``.

        With triggers, the cut is at the first frame after ``host_time_s`` that
        matched a trigger, and at that trigger: what remains starts with a
        matched pair, so matching it gives the same stamps as before the cut.
        """
        with self._lock:
            has_triggers = bool(self._triggers)
        stamps = self.match()[0] if has_triggers else []
        with self._lock:
            n_frames = bisect.bisect_left(self._frames, host_time_s)
            n_triggers = 0
            if has_triggers:
                cut = next(
                    (s for s in stamps[n_frames:] if s.trigger_count is not None), None
                )
                if cut is None:
                    return  # nothing matched after the cut: keep it all
                n_frames = cut.frame_index - self._first_frame
                counts = [c for _, c, _ in self._triggers]
                if cut.trigger_count not in counts:
                    return
                n_triggers = counts.index(cut.trigger_count)
            del self._frames[:n_frames]
            self._first_frame += n_frames
            del self._triggers[:n_triggers]
            times = [t for t, _ in self._progress]
            del self._progress[: bisect.bisect_left(times, host_time_s)]
            flash_times = [t for _, _, t in self._flashes]
            del self._flashes[: bisect.bisect_left(flash_times, host_time_s)]

    def held(self) -> tuple[int, int]:
        """How many frames and triggers are held (for tests and soak figures)."""
        with self._lock:
            return len(self._frames), len(self._triggers)

    def _host_clock_stamps(self, frames, progress):
        stamps = []
        if len(progress) >= 2:
            t = np.array([p[0] for p in progress])
            s = np.array([p[1] for p in progress], dtype=float)
            slope, intercept = np.polyfit(t, s, 1)
            # Data arrives late, never early: shift the line down to the lower
            # envelope so it tracks the earliest arrivals (least-delayed blocks).
            intercept += float(np.min(s - (slope * t + intercept)))
            for i, tf in enumerate(frames):
                stamps.append(
                    FrameStamp(i, round(slope * tf + intercept), "host-clock")
                )
        else:
            stamps = [FrameStamp(i, None, "unmatched") for i in range(len(frames))]
        report = FrameReport(len(frames), 0, 0, (), (), float("nan"))
        return stamps, report


def _count_and_verify(frame_t: np.ndarray, trig_t: np.ndarray, period_s: float):
    """Median latency if frame k ↔ trigger k fits the arrival times, else None.

    The camera delivers one frame per trigger, in order; counting is exact
    unless a frame was dropped. Verify: with one-to-one pairing, the latency of
    the later half of the frames (past any start-up transient) stays within
    half a frame period of its median, judged on a running median of 15
    frames so that one frame delayed by the host (scheduling) does not count.
    A dropped frame shifts every later pairing by a whole period, so it cannot
    pass this check (unless it is among the last few frames).
    """
    n_f, n_t = len(frame_t), len(trig_t)
    if n_f > n_t:
        return None
    latency = frame_t - trig_t[:n_f]
    median = float(np.median(latency[n_f // 2 :]))
    window = min(15, max(1, n_f // 4))
    start = n_f // 4
    if n_f - start >= window:
        windows = np.lib.stride_tricks.sliding_window_view(latency[start:], window)
        if (np.abs(np.median(windows, axis=1) - median) > period_s / 2).any():
            return None
    # Triggers after the last frame must be few enough to be still in flight.
    in_flight = np.sum(trig_t[n_f:] > frame_t[-1] - median - period_s)
    if n_t - n_f - in_flight > 0:
        return None
    return median


def _align_with_drops(
    frame_t: np.ndarray, trig_t: np.ndarray, period_s: float, max_drops: int = 256
) -> tuple[np.ndarray, float] | None:
    """Best pairing frame j ↔ trigger j + k_j with k non-decreasing (drops only).

    Dynamic programming over the number of triggers skipped so far: each skip
    costs as much as a latency off by 1.2 periods, and a pairing costs its
    latency error in periods, squared and capped (one frame delayed by the host
    must not buy a false drop). The reference latency's fraction of a period
    comes from every frame's phase against the trigger grid (drops do not change
    it); its whole periods from the frames paired one to one, taking the
    smallest: a dropped frame or a host delay only ever makes a pairing later.
    Returns the trigger index of every frame and the latency, or None when
    there are more frames than triggers or too many drops to search.
    """
    n_f, n_t = len(frame_t), len(trig_t)
    k_max = min(n_t - n_f, max_drops)
    if n_f == 0 or n_t < n_f or n_t - n_f > max_drops + 8:
        return None
    t0 = trig_t[0]
    angle = 2 * np.pi * ((frame_t - t0) / period_s % 1.0)
    frac = (np.arctan2(np.sin(angle).mean(), np.cos(angle).mean()) / (2 * np.pi)) % 1.0
    whole = np.round((frame_t - trig_t[:n_f]) / period_s - frac)
    latency = float((whole.min() + frac) * period_s)
    drop_cost = 1.2**2
    ks = np.arange(k_max + 1)
    cost = np.full(k_max + 1, np.inf)
    cost[0] = 0.0
    choice = np.zeros((n_f, k_max + 1), dtype=np.int32)
    for j in range(n_f):
        # Reach offset k from any k' <= k, paying drop_cost per skipped trigger.
        shifted = cost - drop_cost * ks
        best_prev = np.minimum.accumulate(shifted)
        choice[j] = _running_argmin(shifted)
        idx = j + ks
        valid = idx < n_t
        err = np.full(k_max + 1, np.inf)
        err[valid] = np.minimum(
            ((frame_t[j] - trig_t[idx[valid]] - latency) / period_s) ** 2, 4.0
        )
        cost = best_prev + drop_cost * ks + err
    k = int(np.argmin(cost))
    path = np.empty(n_f, dtype=np.int64)
    for j in range(n_f - 1, -1, -1):
        path[j] = j + k
        k = int(choice[j, k])
    return path, latency


def _running_argmin(values: np.ndarray) -> np.ndarray:
    """Index of the minimum of ``values[:k + 1]`` for every k."""
    out = np.empty(len(values), dtype=np.int32)
    best = 0
    for k in range(len(values)):
        if values[k] < values[best]:
            best = k
        out[k] = best
    return out


def match_frames_to_triggers(
    frame_times_s: list[float],
    triggers: list[tuple[int, int, float]],
    sample_rate_hz: float,
) -> tuple[list[FrameStamp], FrameReport]:
    """Match frames (host arrival times) to triggers ``(sample, count, host_t)``."""
    n_f, n_t = len(frame_times_s), len(triggers)
    if n_f == 0:
        missed = tuple(c for _, c, _ in triggers)
        return [], FrameReport(0, n_t, 0, missed, (), float("nan"))
    trig_t = np.array([t for _, _, t in triggers])
    frame_t = np.asarray(frame_times_s)
    samples = np.array([s for s, _, _ in triggers])
    period_s = float(np.median(np.diff(samples))) / sample_rate_hz if n_t > 1 else 1.0
    counted = _count_and_verify(frame_t, trig_t, period_s)
    if counted is not None:
        stamps = [
            FrameStamp(j, int(triggers[j][0]), "trigger", triggers[j][1])
            for j in range(n_f)
        ]
        return stamps, FrameReport(n_f, n_t, n_f, (), (), counted)
    aligned = _align_with_drops(frame_t, trig_t, period_s)
    if aligned is not None:
        trigger_index, latency = aligned
        used = set(trigger_index.tolist())
        last = int(trigger_index[-1])
        stamps = [
            FrameStamp(j, int(triggers[i][0]), "trigger", triggers[i][1])
            for j, i in enumerate(trigger_index.tolist())
        ]
        skipped = tuple(triggers[i][1] for i in range(last) if i not in used)
        return stamps, FrameReport(n_f, n_t, n_f, skipped, (), latency)
    # Latency: median over frames of the delay since the latest trigger before it.
    idx = np.searchsorted(trig_t, frame_t, side="right") - 1
    valid = idx >= 0
    latency = (
        float(np.median(frame_t[valid] - trig_t[idx[valid]])) if valid.any() else 0.0
    )
    stamps = []
    dropped: list[int] = []
    extra: list[int] = []
    i = 0
    for j, tf in enumerate(frame_t):
        expected = tf - latency
        while i < n_t and expected > trig_t[i] + period_s / 2:
            dropped.append(triggers[i][1])
            i += 1
        if i < n_t and abs(expected - trig_t[i]) <= period_s / 2:
            stamps.append(FrameStamp(j, int(triggers[i][0]), "trigger", triggers[i][1]))
            i += 1
        else:
            extra.append(j)
            stamps.append(FrameStamp(j, None, "unmatched"))
    report = FrameReport(
        n_frames=n_f,
        n_triggers=n_t,
        n_matched=n_f - len(extra),
        dropped_triggers=tuple(dropped),
        extra_frames=tuple(extra),
        latency_s=latency,
    )
    return stamps, report
