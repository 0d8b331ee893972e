"""Volleys found jointly across pairs: arrivals that lie on one propagation line.

A giant-fibre spike starts near the stimulation site a little after the pulse
(utilisation time ``t0``) and reaches a pair at distance ``x`` at
``t0 + x / v``. A volley is therefore not "the first threshold crossing of each
channel" but a line through the pairs' arrivals:

1. each channel's *spike envelope*: |filtered signal| in noise SDs, widened by
   a running maximum over ±0.25 ms (and, for ranking lines, smoothed by a
   running mean so it peaks at a spike's centre): a bi- or triphasic spike is
   one blob whatever its polarity (a reversed channel looks the same);
2. every plausible line (velocity 3–60 m/s, ``t0`` from −0.5 to 5 ms after the
   pulse's start) is scored by the channels whose envelope clears the threshold
   where the line crosses them (Numba kernel ``line_support``); the line with
   the most such channels (then the largest capped sum) is a candidate, its
   channels are cleared ±1 ms (every phase of a multiphasic spike is one
   arrival) and the search repeats. A candidate within ``distinct_ratio`` of
   the velocity of one already found is a later phase of the same spike, never
   a second fibre;
3. where two candidates cross a channel within ``OVERLAP_S``, their spikes
   merge there and that channel times neither;
4. each arrival is timed by the energy centroid of its spike, refined by
   cross-correlation with the strongest clean channel's spike (searched with
   the sign the centroids imply, so a side lobe cannot win); pairs off a
   Theil–Sen line are dropped and the velocity fitted by least squares on the
   clean arrivals (``_time_arrivals`` says which are clean) — on all of them,
   and the volley marked not clean, when fewer than ``min_pairs`` are.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import maximum_filter1d, uniform_filter1d

from analysis._artifact_kernels import run_around, theil_sen_inliers
from analysis._volley_kernels import (
    align_to_reference,
    candidate_lines,
    fit_arrivals,
    search_envelope,
    time_arrivals,
)

ENVELOPE_HALF_WIDTH_S = 0.25e-3
T0_STEP_S = 0.05e-3
CLEAR_HALF_WIDTH_S = 1.0e-3
OVERLAP_S = 1.2e-3  # two fibres' spikes closer than this merge on a channel
RESIDUAL_MAX_S = 0.05e-3  # (+ half a sample) beyond this a line is not clean
LOCAL_SNR_MIN = 5.0  # a spike this far above its surroundings times well
ARTIFACT_RATIO = 4.0  # subtracted artifact / spike beyond which timing is suspect
EDGE_MARGIN_S = 0.3e-3  # a spike this close to a pulse edge sits on it
CENTROID_HALF_WIDTH_S = 0.6e-3
PHASE_GAP_S = 0.15e-3  # phases of one spike closer than this are one spike
TEMPLATE_HALF_WIDTH_S = 0.6e-3
ALIGN_SEARCH_S = 0.2e-3


@dataclass(frozen=True, slots=True)
class Line:
    """One volley: per-channel arrival (s after the pulse's start, NaN if absent)."""

    latency_s: np.ndarray
    amplitude_uv: np.ndarray  # peak-to-peak of the filtered spike, per channel
    snr: np.ndarray  # peak |filtered| / noise SD, per channel
    polarity: np.ndarray  # +1/−1 against the strongest channel, 0 where absent
    velocity_m_per_s: float
    velocity_se_m_per_s: float
    t0_s: float
    residual_s: float  # SD of the arrivals about the fitted line (n − 2 dof)
    clean: bool = True  # at least min_pairs of its arrivals were clean
    fitted: np.ndarray | None = None  # the pairs the velocity was fitted on

    @property
    def n_pairs(self) -> int:
        """Pairs the velocity was fitted on."""
        if self.fitted is None:
            return int(np.isfinite(self.latency_s).sum())
        return int(self.fitted.sum())


def spike_envelope(
    filtered: np.ndarray, noise: np.ndarray, blanked: np.ndarray, fs_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """|filtered| / noise, widened by a running maximum (for the threshold)
    and smoothed by a running mean (peaked at a spike's centre, for ranking
    lines); both 0 where blanked."""
    env = np.abs(filtered) / np.maximum(noise, 1e-12)[None, :]
    env[blanked] = 0.0
    size = 2 * max(1, round(ENVELOPE_HALF_WIDTH_S * fs_hz)) + 1
    widened = maximum_filter1d(env, size=size, axis=0, mode="constant")
    smooth = uniform_filter1d(env, size=size, axis=0, mode="constant")
    return widened, smooth


def fit_velocity(
    positions_m: np.ndarray, latencies_s: np.ndarray
) -> tuple[float, float, float]:
    """Least-squares ``latency = t0 + x / v``: (velocity, SE, t0); NaN if < 2 points.

    Positions are distances from the stimulation site (m); a non-positive slope
    has no velocity (NaN).

    >>> x = np.array([37.5, 57.5, 77.5, 97.5]) * 1e-3  # the standard pairs, m
    >>> v, se, t0 = fit_velocity(x, 0.5e-3 + x / 30.0)  # an MGF spike at 30 m/s
    >>> round(v, 6), round(t0 * 1e3, 6)
    (30.0, 0.5)
    """
    x = np.asarray(positions_m, dtype=float)
    y = np.asarray(latencies_s, dtype=float)
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 2 or np.ptp(x) == 0:
        return np.nan, np.nan, np.nan
    xm, ym = x.mean(), y.mean()
    sxx = float(np.sum((x - xm) ** 2))
    slope = float(np.sum((x - xm) * (y - ym)) / sxx)
    t0 = ym - slope * xm
    if slope <= 0:
        return np.nan, np.nan, float(t0)
    if x.size > 2:
        resid = y - (t0 + slope * x)
        se_slope = np.sqrt(resid @ resid / (x.size - 2) / sxx)
    else:
        se_slope = np.nan
    return 1.0 / slope, float(se_slope / slope**2), float(t0)


def _theil_sen_inliers(x: np.ndarray, y: np.ndarray, tolerance_s: float) -> np.ndarray:
    """Points within ``tolerance_s`` of the Theil–Sen line (median of slopes,
    then median intercept); NaN points are out. One Numba kernel."""
    out = np.empty(y.shape, dtype=bool)
    theil_sen_inliers(
        np.ascontiguousarray(x, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        float(tolerance_s),
        out,
    )
    return out


def _parabolic(y: np.ndarray, i: int) -> float:
    """Sub-sample position of the extremum at ``i`` (parabola through 3 points)."""
    if i <= 0 or i >= y.size - 1:
        return float(i)
    y0, y1, y2 = y[i - 1], y[i], y[i + 1]
    denom = y0 - 2 * y1 + y2
    return float(i) if denom == 0 else i + 0.5 * (y0 - y2) / denom


def _run_around(above: np.ndarray, k: int, bridge: int) -> tuple[int, int]:
    """First and last index of the run of ``above`` around ``k``, gaps shorter
    than ``bridge`` samples bridged: the run stops where ``bridge`` samples in a
    row are not above (Numba kernel ``run_around``)."""
    left, right = run_around(above, k, bridge)
    return int(left), int(right)


def _time_arrivals(
    filtered: np.ndarray,
    rows: np.ndarray,
    support: np.ndarray,
    noise: np.ndarray,
    blanked: np.ndarray,
    fs_hz: float,
    artifact: np.ndarray | None = None,
    edge_rows: tuple[float, ...] = (),
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sub-sample arrival rows, peak-to-peak µV, SNR, polarity per channel, and
    whether each arrival is clean.

    An arrival is not clean when the spike is less than ``LOCAL_SNR_MIN``
    times the SD of its surroundings (1.5 ms either side, the spike and 0.5 ms
    around it left out) — what is left of an
    artifact — or when a blanked (clipped) sample lies within 0.5 ms of the
    spike, or when the artifact that was subtracted there (``artifact``,
    band-passed like the signal) is more than ``ARTIFACT_RATIO`` times the
    spike: a few percent of misfit would then be a large part of the spike.
    Such an arrival's timing may be pulled; it is used only if too few clean
    arrivals remain.

    The arrival is the centroid of the spike's energy (the samples beyond 3
    noise SDs that form one run around the largest phase, within
    ±``CENTROID_HALF_WIDTH_S`` of the line): it needs
    neither the spike's polarity nor its number of phases, and a spike that
    widens symmetrically along the body keeps its centre. Polarity is the sign
    of the largest lobe's correlation with the strongest channel's spike.
    """
    n_ch = filtered.shape[1]
    times, amps, snr, polarity = (np.empty(n_ch) for _ in range(4))
    clean = np.empty(n_ch, dtype=bool)
    # One Numba kernel (spike_windows for all but the centroid and the
    # alignment; see there for the columns).
    time_arrivals(
        filtered,
        np.asarray(noise, dtype=np.float64),
        blanked,
        np.zeros((0, n_ch)) if artifact is None else artifact,
        artifact is not None,
        np.ascontiguousarray(rows, dtype=np.int64),
        np.flatnonzero(support),
        max(3, round(CENTROID_HALF_WIDTH_S * fs_hz)),
        max(1, round(PHASE_GAP_S * fs_hz)),
        round(0.5e-3 * fs_hz),
        round(1.5e-3 * fs_hz),
        round(EDGE_MARGIN_S * fs_hz),
        np.array(edge_rows, dtype=np.float64),
        max(3, round(TEMPLATE_HALF_WIDTH_S * fs_hz)),
        max(1, round(ALIGN_SEARCH_S * fs_hz)),
        times,
        amps,
        snr,
        polarity,
        clean,
    )
    return times, amps, snr, polarity, clean


def _align_to_reference(
    filtered: np.ndarray,
    centroids: np.ndarray,
    chans: np.ndarray,
    ref: int,
    fs_hz: float,
) -> np.ndarray:
    """Arrival times refined by cross-correlation with the strongest channel.

    The energy centroid is robust but moves with a spike's asymmetry; the
    waveform's correlation with the strongest channel's spike, searched only
    within ±``ALIGN_SEARCH_S`` of the centroids' lag (so a side lobe cannot
    win) and polarity-free (largest |correlation|), times each channel as the
    reference's shifted copy. Where the window runs off the epoch the centroid
    stands. Numba kernel ``align_to_reference`` (``time_arrivals`` calls it).
    """
    out = np.empty(centroids.shape)
    align_to_reference(
        filtered, np.asarray(centroids, dtype=np.float64),
        np.asarray(chans, dtype=np.int64), int(ref),
        max(3, round(TEMPLATE_HALF_WIDTH_S * fs_hz)),
        max(1, round(ALIGN_SEARCH_S * fs_hz)), out,
    )  # fmt: skip
    return out


def find_volleys(
    filtered: np.ndarray,
    *,
    noise: np.ndarray,
    blanked: np.ndarray,
    fs_hz: float,
    zero_row: float,
    positions_m: np.ndarray,
    search_rows: tuple[int, int],
    velocity_range_m_per_s: tuple[float, float] = (3.0, 60.0),
    t0_range_s: tuple[float, float] = (-0.5e-3, 5e-3),
    threshold_sd: float = 4.0,
    min_pairs: int = 3,
    max_volleys: int = 2,
    distinct_ratio: float = 1.3,
    cap_sd: float = 30.0,
    artifact: np.ndarray | None = None,
    edge_rows: tuple[float, ...] = (),
) -> list[Line]:
    """The volleys in one filtered, artifact-free epoch, strongest first.

    ``zero_row`` is the (fractional) row of the pulse's start; latencies are
    measured from it. Arrivals are searched in ``search_rows`` only.
    ``artifact``: the subtracted artifact, band-passed, and ``edge_rows`` the
    pulse's start and end (mark arrivals that sit on a large artifact, or on
    an edge of one, as not clean).
    """
    n, n_ch = filtered.shape
    x = np.abs(np.asarray(positions_m, dtype=float))
    lo, hi = max(0, search_rows[0]), max(0, search_rows[1])
    margin = round(ENVELOPE_HALF_WIDTH_S * fs_hz) + 1
    a, b = max(0, lo - margin), min(n, hi + margin)
    # spike_envelope of rows a..b, kept in lo..hi (0 elsewhere), exactly:
    # one kernel (envelope_into's sums, a faster running maximum)
    env = np.empty((n, n_ch))
    peaked = np.empty((n, n_ch))
    half = max(1, round(ENVELOPE_HALF_WIDTH_S * fs_hz))
    noise = np.asarray(noise, dtype=np.float64)
    search_envelope(filtered, noise, blanked, a, b, lo, hi, half, env, peaked)
    v_lo, v_hi = velocity_range_m_per_s
    # Slowness steps such that the line moves at most half the widened
    # envelope's width at the farthest pair, start steps of 50 µs: every
    # line through a spike's envelope is seen (the timing comes later).
    step = max(1e-4, ENVELOPE_HALF_WIDTH_S / max(float(x.max()), 1e-3))
    slowness = np.arange(1.0 / v_hi, 1.0 / v_lo + step, step)
    t0_step = max(1, round(T0_STEP_S * fs_hz))
    t0_rows = zero_row + np.arange(
        round(t0_range_s[0] * fs_hz), round(t0_range_s[1] * fs_hz) + 1, t0_step
    ).astype(np.float64)
    scaled = x * fs_hz  # rows per unit of slowness (s/m)
    need = min(min_pairs, n_ch)
    clear = max(1, round(CLEAR_HALF_WIDTH_S * fs_hz))
    # 1. Candidate lines, strongest first; each clears its channels' spikes
    #    from the envelope before the next search (one Numba kernel: the
    #    line_support sums and the choice, up to max_volleys + 2 times).
    tries = max_volleys + 2
    found_rows = np.empty((max(tries, 0), n_ch), dtype=np.int64)
    found_on = np.empty((max(tries, 0), n_ch), dtype=bool)
    found_v = np.empty(max(tries, 0))
    kept = candidate_lines(
        env, peaked, scaled, slowness, t0_rows, float(threshold_sd),
        float(cap_sd), need, clear, float(distinct_ratio), tries, found_rows,
        found_on, found_v,
    )  # fmt: skip
    candidates = [(float(found_v[k]), found_rows[k], found_on[k]) for k in range(kept)]
    # 2. Where two lines cross a channel within OVERLAP_S of each other, their
    #    spikes merge there: that channel times neither (if enough remain).
    overlap = round(OVERLAP_S * fs_hz)
    volleys: list[Line] = []
    tolerance_s = 0.15e-3 + 1.0 / fs_hz
    for k, (_, rows, on) in enumerate(candidates):
        crossed = np.zeros(n_ch, dtype=bool)
        for m, (_, other, _) in enumerate(candidates):
            if m != k:
                crossed |= np.abs(rows - other) < overlap
        use = on & ~crossed if (on & ~crossed).sum() >= need else on
        line = _fit_line(
            filtered, rows, use, noise, blanked, fs_hz, zero_row, x, need,
            tolerance_s, (v_lo, v_hi), artifact, edge_rows,
        )  # fmt: skip
        if line is not None:
            volleys.append(line)
        if len(volleys) == max_volleys:
            break
    return volleys


def _fit_line(
    filtered: np.ndarray,
    rows: np.ndarray,
    use: np.ndarray,
    noise: np.ndarray,
    blanked: np.ndarray,
    fs_hz: float,
    zero_row: float,
    x: np.ndarray,
    need: int,
    tolerance_s: float,
    velocity_range: tuple[float, float],
    artifact: np.ndarray | None,
    edge_rows: tuple[float, ...],
) -> Line | None:
    """Time a candidate line's arrivals and fit its velocity; None if it fails."""
    n_ch = filtered.shape[1]
    # (the kernel clips the rows to the epoch)
    times, amps, snr, polarity, clean = _time_arrivals(
        filtered, rows, use, noise, blanked, fs_hz, artifact, edge_rows
    )
    # The Theil-Sen inliers, the least-squares line through the clean ones
    # (fit_velocity) and its residual SD, in one kernel with numpy's sums:
    # arrivals in an artifact's remains are reported, but fitted only when
    # too few clean ones remain.
    latency = np.empty(n_ch)
    keep = np.empty(n_ch, dtype=bool)
    fit = np.zeros(n_ch, dtype=bool)
    scalars = np.empty(5)
    if not fit_arrivals(
        times, clean, np.ascontiguousarray(x, dtype=np.float64), float(zero_row),
        float(fs_hz), float(tolerance_s), need, latency, keep, fit, scalars,
        amps, snr, polarity,
    ):  # fmt: skip
        return None
    slope, t0, se_slope, residual_s, enough_clean = scalars.tolist()
    velocity = 1.0 / slope
    if (
        not np.isfinite(velocity)
        or not velocity_range[0] <= velocity <= velocity_range[1]
    ):
        return None
    se = float(se_slope / slope**2)  # as fit_velocity
    # Arrivals of one volley lie on a line to a few µs; a pair timed on an
    # artifact's remains or another spike's edge leaves a residual of tenths
    # of a millisecond that three points cannot outvote. (The residual SD
    # has the line's two parameters taken out: a 3-pair line has one degree
    # of freedom left, and its plain RMS hides an error.)
    straight = residual_s <= RESIDUAL_MAX_S + 0.5 / fs_hz
    return Line(
        latency_s=latency,
        amplitude_uv=amps,  # NaN (polarity 0) off the line: fit_arrivals
        snr=snr,
        polarity=polarity,
        velocity_m_per_s=velocity,
        velocity_se_m_per_s=se,
        t0_s=t0,
        residual_s=residual_s,
        clean=bool(enough_clean and straight),
        fitted=fit,
    )
