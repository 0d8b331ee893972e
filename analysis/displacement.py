"""Displacement and strain per body region, and per-stimulus motion measures.

One rule for the rest position, batch and online: a band's rest position is
the mean of its tracked positions in the first ``rest_frames`` frames
(``REST_FRAMES``); displacement is position minus rest. ``displacement`` applies
it to a whole track (the offline analysis); ``OnlineDisplacement`` applies it a
frame at a time (the live tracking) and gives, after every frame, exactly what
``displacement`` gives on the frames so far.

Successive twitches at 1 pulse/s overlap (relaxation ~1.8 s), so a response is
never measured from an absolute baseline: each stimulus's response is the
deviation from the trajectory the region was already on, a straight line fitted
to the ``baseline_s`` before the stimulus and extrapolated through the response
window (the tail of the previous twitch is smooth and, over ~1 s, close to
linear). Contraction onset is the first time the deviation exceeds
``onset_threshold_mm``; the peak is the largest deviation before the next
stimulus (or ``window_s``).

Pulses closer than a twitch's rise (``PULSE_GAP_S``: a train's, at 10 Hz) sum
into one twitch: a pulse among them has no measure of its own (its window
would end before its twitch peaks, and its trend would be the previous
pulse's rising twitch), and the train is measured as a unit
(``train_motion``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from analysis._kernels import displacement_means, measure_motion

# Each electrode pair's body region: its centre ± this, along the body axis.
REGION_HALF_WIDTH_MM = 10.0
# A band's rest position: the mean of its positions in this many first frames.
REST_FRAMES = 3
# Online, each twitch is read this long after its stimulus: past the peak
# (~0.255 s, docs/simulated-rig.md) and short enough for a 1 pulse/s loop to
# wait for it.
ONLINE_TWITCH_WINDOW_S = 0.4
# The trend a twitch is measured against: fitted over this long before it.
TWITCH_BASELINE_S = 0.15
# A pulse is measured on its own only when the next comes at least this long
# after it (its twitch peaks ~0.29 s after the pulse: 30 ms delay + 255 ms
# rise, docs/simulated-rig.md) and the one before at least PREVIOUS_GAP_S
# before it (that twitch has peaked and is falling through most of the trend's
# 0.15 s); closer pulses sum into one twitch (a train's).
PULSE_GAP_S = 0.3
PREVIOUS_GAP_S = 0.4
# A response is measured only where its window is filmed without a longer
# hole than this between tracked frames (a live tracker under load skips
# frames; a band can be lost for a while): a hole over the peak of a twitch
# peaking ~0.255 s after its onset (docs/simulated-rig.md) reads it low, and
# late, with nothing to say so: 1.2 % low across a 0.1 s hole, 5.6 % across
# 0.3 s (tests/analysis/test_motion_holes.py). At 60 fps 0.1 s is five frames
# in a row missed; a 10 fps camera's every frame passes.
MAX_TRACKING_HOLE_S = 0.1


def electrode_regions_mm(
    centres_mm, half_width_mm: float = REGION_HALF_WIDTH_MM
) -> list[tuple[float, float]]:
    """The body region around each recording pair, as (start, end) in mm."""
    return [(float(c) - half_width_mm, float(c) + half_width_mm) for c in centres_mm]


@dataclass(frozen=True, slots=True)
class Displacement:
    """Per frame: each region's displacement and strain, and the whole body's.

    Rows are frames ``first_frame, first_frame + 1, ...`` of the frames given
    (0 for a batch call; online, the frames whose values a new frame changed).
    """

    region_mm: np.ndarray  # (n, n_regions): mean band displacement in the region
    strain: np.ndarray  # (n, n_regions): length change / rest length (< 0: shorter)
    body_mm: np.ndarray  # (n,): mean displacement of every tracked band
    first_frame: int = 0


def _finite_mean(x: np.ndarray, axis: int) -> np.ndarray:
    """Mean of the finite values along ``axis``; NaN (no warning) where none.

    Summed by a running sum: it adds in one order whatever the array's shape
    (``np.sum``'s pairwise order depends on it), so a frame's values are the
    same bits alone (online) as among all the frames (batch).
    """
    finite = np.isfinite(x)
    count = finite.sum(axis=axis)
    if x.shape[axis] == 0:
        total = np.zeros(count.shape)
    else:
        running = np.cumsum(np.where(finite, x, 0.0), axis=axis)
        total = np.take(running, -1, axis=axis)
    return np.divide(total, count, out=np.full(total.shape, np.nan), where=count > 0)


def _as_track(positions_mm: np.ndarray) -> np.ndarray:
    pos = np.asarray(positions_mm, dtype=float)
    if pos.ndim != 2:
        raise ValueError(f"positions_mm must be (n_frames, n_bands), got {pos.shape}")
    return pos


class _Rule:
    """The rest positions and which bands each region and the body average."""

    def __init__(self, first_frames: np.ndarray, regions_mm) -> None:
        self.rest = _finite_mean(first_frames, axis=0)
        # Bands never seen while resting have no rest position: they count nowhere.
        self.tracked = np.flatnonzero(np.isfinite(self.rest))
        self.members = [
            np.flatnonzero((self.rest >= lo) & (self.rest <= hi))
            for lo, hi in regions_mm
        ]

    def apply(self, pos: np.ndarray, first_frame: int = 0) -> Displacement:
        """The displacement rows of ``pos`` (n, ≥ bands at rest)."""
        pos = pos[:, : self.rest.size]
        n = pos.shape[0]
        region = np.full((n, len(self.members)), np.nan)
        strain = np.full((n, len(self.members)), np.nan)
        for k, inside in enumerate(self.members):
            if inside.size == 0:
                continue
            region[:, k] = _mean_displacement(pos, self.rest, inside)
            if inside.size >= 2:
                a, b = inside[0], inside[-1]
                strain[:, k] = (pos[:, b] - pos[:, a]) / (
                    self.rest[b] - self.rest[a]
                ) - 1.0
        body = _mean_displacement(pos, self.rest, self.tracked)
        return Displacement(region, strain, body, first_frame)


def _mean_displacement(
    pos: np.ndarray, rest: np.ndarray, columns: np.ndarray
) -> np.ndarray:
    """``_finite_mean(pos[:, columns] - rest[columns], axis=1)`` in one Numba
    pass (``displacement_means``): no (frames × bands) copies, 10× faster."""
    out = np.empty(pos.shape[0])
    displacement_means(
        np.asarray(pos, dtype=np.float64),
        np.asarray(rest, dtype=np.float64),
        np.asarray(columns, dtype=np.int64),
        out,
    )
    return out


def displacement(
    positions_mm: np.ndarray,
    regions_mm: list[tuple[float, float]],
    *,
    rest_frames: int = REST_FRAMES,
) -> Displacement:
    """Displacement (mm) and strain of each region, and of the body, over time.

    ``positions_mm``: tracked band positions (n_frames, n_bands), NaN where a
    band was lost. A band's rest position is the mean of its finite positions
    in the first ``rest_frames`` frames (all of them if fewer). A region is an
    interval of rest positions (mm). Region displacement: the mean displacement
    of its bands found in that frame; strain: the change of the region's length
    (its first to last band) over its rest length; body: the mean displacement
    of every band found. NaN where nothing was found.
    """
    pos = _as_track(positions_mm)
    return _Rule(pos[:rest_frames], regions_mm).apply(pos)


def region_displacement(
    positions_mm: np.ndarray,
    regions_mm: list[tuple[float, float]],
    *,
    rest_frames: int = REST_FRAMES,
) -> tuple[np.ndarray, np.ndarray]:
    """``(displacement, strain)`` per region, each (n_frames, n_regions).

    See ``displacement``, whose region columns these are.
    """
    d = displacement(positions_mm, regions_mm, rest_frames=rest_frames)
    return d.region_mm, d.strain


class OnlineDisplacement:
    """``displacement`` a frame at a time: after every frame, the same values.

    Until ``rest_frames`` frames have come, the rest positions are the mean of
    the frames so far, so each new frame changes every earlier frame's values:
    ``process`` then returns all the rows (``first_frame`` 0). From then on the
    rest positions are fixed and it returns one row, the new frame's.
    """

    def __init__(
        self, regions_mm: list[tuple[float, float]], *, rest_frames: int = REST_FRAMES
    ) -> None:
        if rest_frames < 1:
            raise ValueError(f"rest_frames must be ≥ 1, got {rest_frames}")
        self.regions_mm = list(regions_mm)
        self.rest_frames = rest_frames
        self.n_frames = 0
        self._first: list[np.ndarray] = []  # the frames the rest comes from
        self._rule: _Rule | None = None

    @property
    def rest_mm(self) -> np.ndarray | None:
        """Each band's rest position, once fixed (None before)."""
        return None if self._rule is None else self._rule.rest

    def process(self, positions_mm: np.ndarray) -> Displacement:
        """Add one frame's band positions (mm, NaN = lost); return changed rows."""
        row = np.asarray(positions_mm, dtype=float).ravel()
        self.n_frames += 1
        if self._rule is not None:
            width = self._rule.rest.size
            pos = np.full((1, width), np.nan)
            pos[0, : min(width, row.size)] = row[:width]
            return self._rule.apply(pos, self.n_frames - 1)
        self._first.append(row)
        track = _pad(self._first)
        rule = _Rule(track, self.regions_mm)
        if self.n_frames == self.rest_frames:
            self._rule, self._first = rule, []
        return rule.apply(track)


def _pad(rows: list[np.ndarray]) -> np.ndarray:
    """Rows of band positions as one (n, widest) array, NaN-padded."""
    track = np.full((len(rows), max(r.size for r in rows)), np.nan)
    for i, r in enumerate(rows):
        track[i, : r.size] = r
    return track


@dataclass(frozen=True, slots=True)
class MotionResponse:
    """Motion evoked by one stimulus (or one train) in one series (region or
    whole body)."""

    onset_latency_s: float  # NaN when no contraction was seen
    peak_displacement_mm: float  # largest deviation from the extrapolated trend (≥ 0)
    time_to_peak_s: float
    note: str | None = None  # why there is no measure, when there is none


def _nothing(note: str | None = None) -> MotionResponse:
    return MotionResponse(np.nan, np.nan, np.nan, note)


def _measure_all(
    y: np.ndarray,
    t: np.ndarray,
    onsets: np.ndarray,
    ends: np.ndarray,
    baseline_s: float,
    onset_threshold_mm: float,
    max_hole_s: float | None,
) -> list[MotionResponse]:
    """Per window ``[onsets[k], ends[k])``: the deviation from the line through
    the ``baseline_s`` before it (Numba kernel ``measure_motion``, one call for
    every window): onset latency, peak, time to peak; not determined where the
    tracked frames leave a hole over ``max_hole_s`` (None: not checked)."""
    k = onsets.size
    filmed = np.zeros(k, dtype=np.bool_)
    latency, peak, time_to_peak = np.empty(k), np.empty(k), np.empty(k)
    measure_motion(
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(t, dtype=np.float64),
        np.ascontiguousarray(onsets, dtype=np.float64),
        np.ascontiguousarray(ends, dtype=np.float64),
        float(baseline_s), float(onset_threshold_mm),
        filmed, latency, peak, time_to_peak,
    )  # fmt: skip
    holes = np.zeros(k) if max_hole_s is None else _largest_holes_s(y, t, onsets, ends)
    # (+1e-9: a 10 fps camera's frames, 0.1 s apart up to rounding, pass 0.1 s)
    most_s = np.inf if max_hole_s is None else max_hole_s + 1e-9
    return [
        _nothing("not filmed: too few tracked frames before or after it")
        if not filmed[i]
        else _nothing(
            f"not determined: no tracked frame for {holes[i] * 1e3:.0f} ms of its "
            f"window (at most {(max_hole_s or 0) * 1e3:.0f} ms): the peak could "
            "lie there"
        )
        if holes[i] > most_s
        else MotionResponse(float(latency[i]), float(peak[i]), float(time_to_peak[i]))
        for i in range(k)
    ]


def _largest_holes_s(
    y: np.ndarray, t: np.ndarray, onsets: np.ndarray, ends: np.ndarray
) -> np.ndarray:
    """Per window ``[onsets[k], ends[k])``: the longest time in it without a
    tracked frame (finite ``y``): from its start to the first, between two,
    and from the last to its end when frames follow it (a recording that
    stops inside the window is measured as far as it goes)."""
    times = np.sort(t[np.isfinite(y)])
    first = np.searchsorted(times, onsets, side="left")
    stop = np.searchsorted(times, ends, side="left")
    filmed = stop > first  # else not filmed: said by the kernel
    if not filmed.any():
        return np.zeros(onsets.size)
    # Window k's frames are times[first:stop]: the time to its first frame,
    # from its last frame to its end (when frames follow), and between frames
    # the largest step in steps[first:stop-1], all windows in one reduceat
    # (pairs of indices; a pair with nothing between gives steps[first]).
    head = np.where(filmed, times[np.where(filmed, first, 0)] - onsets, 0.0)
    last = times[np.where(filmed, stop - 1, 0)]
    tail = np.where(filmed & (stop < times.size), ends - last, 0.0)
    steps = np.append(np.diff(times), 0.0)  # one longer: every index valid
    pairs = np.column_stack([first, stop - 1]).ravel()
    pairs = np.where(np.repeat(filmed, 2), pairs, 0)
    between = np.maximum.reduceat(steps, pairs)[::2]
    between = np.where(stop - first >= 2, between, 0.0)
    return np.maximum(np.maximum(head, tail), between)


def stimulus_motion(
    series_mm: np.ndarray,
    frame_times_s: np.ndarray,
    onsets_s: np.ndarray,
    *,
    baseline_s: float = TWITCH_BASELINE_S,
    window_s: float = 0.9,
    onset_threshold_mm: float = 0.05,
    previous_onset_s: float = -np.inf,
    min_gap_s: float = PULSE_GAP_S,
    min_previous_gap_s: float = PREVIOUS_GAP_S,
    max_hole_s: float | None = MAX_TRACKING_HOLE_S,
) -> list[MotionResponse]:
    """Per stimulus: contraction onset latency, peak displacement, time to peak.

    A stimulus is measured only when the pulses around it leave time for a
    measure: the next at least ``min_gap_s`` later (the twitch has peaked),
    the one before (``previous_onset_s`` for the first) at least
    ``min_previous_gap_s`` earlier (its twitch is falling when the trend is
    fitted). Otherwise NaN with a ``note``: a train's pulses at 10 Hz sum
    into one twitch, measured as a unit by ``train_motion``. A window with a
    longer hole than ``max_hole_s`` between tracked frames is not measured
    either (None: not checked, for frame times that are not exact).
    """
    y = np.asarray(series_mm, dtype=float)
    t = np.asarray(frame_times_s, dtype=float)
    onsets = np.asarray(onsets_s, dtype=float)
    out: list[MotionResponse | None] = []
    measured: list[int] = []
    ends: list[float] = []
    times = onsets.tolist()  # Python floats: the same sums, no numpy scalars
    for k, onset in enumerate(times):
        nxt = times[k + 1] if k + 1 < len(times) else np.inf
        prev = times[k - 1] if k else previous_onset_s
        if nxt - onset < min_gap_s:
            out.append(
                _nothing(
                    f"the next pulse {nxt - onset:.3g} s later leaves no time for a "
                    f"measure (at least {min_gap_s:g} s): its train is measured whole"
                )
            )
        elif onset - prev < min_previous_gap_s:
            out.append(
                _nothing(
                    f"the pulse {onset - prev:.3g} s before is still contracting the "
                    f"body (at least {min_previous_gap_s:g} s are needed): its "
                    "train is measured whole"
                )
            )
        else:
            measured.append(k)
            ends.append(min(onset + window_s, nxt))
            out.append(None)
    found = _measure_all(
        y, t, onsets[measured], np.array(ends, dtype=float), baseline_s,
        onset_threshold_mm, max_hole_s,
    )  # fmt: skip
    for k, response in zip(measured, found, strict=True):
        out[k] = response
    return cast(list[MotionResponse], out)


def train_motion(
    series_mm: np.ndarray,
    frame_times_s: np.ndarray,
    first_onsets_s: np.ndarray,
    last_onsets_s: np.ndarray,
    *,
    baseline_s: float = TWITCH_BASELINE_S,
    window_s: float = 0.9,
    onset_threshold_mm: float = 0.05,
) -> list[MotionResponse]:
    """Per train, the summed twitch measured as one response: the deviation
    from the trend of the ``baseline_s`` before its first pulse, from the first
    pulse to ``window_s`` after its last (or the next train's first pulse, if
    sooner). Latencies and times to peak are from the first pulse."""
    y = np.asarray(series_mm, dtype=float)
    t = np.asarray(frame_times_s, dtype=float)
    first = np.asarray(first_onsets_s, dtype=float)
    last = np.asarray(last_onsets_s, dtype=float)
    if first.shape != last.shape or np.any(last < first):
        raise ValueError(
            "first_onsets_s and last_onsets_s must be alike, each last ≥ its first"
        )
    nxt = np.append(first[1:], np.inf)
    ends = np.minimum(last + window_s, nxt)
    return _measure_all(
        y, t, first, ends, baseline_s, onset_threshold_mm, MAX_TRACKING_HOLE_S
    )


def trains(pulse_index) -> list[tuple[int, int]]:
    """The stimuli grouped into trains: ``(first, stop)`` row ranges, a new
    train at every pulse index 0 (a single pulse is a train of one).

    >>> trains([0, 1, 2, 0, 0, 1])
    [(0, 3), (3, 4), (4, 6)]
    """
    groups: list[tuple[int, int]] = []
    for row, k in enumerate(np.asarray(pulse_index, dtype=int).ravel()):
        if k == 0 or not groups:
            groups.append((row, row + 1))
        else:
            groups[-1] = (groups[-1][0], row + 1)
    return groups
