"""Stimulus artifact: found in the data, fitted robustly, subtracted; clipping blanked.

What is assumed is only what every sinusoidal-pulse artifact has: during the
pulse, a periodic waveform whose period is the pulse's length (fundamental and
second harmonic, any phase, any scale per channel); after it, a step and a sum
of decaying exponentials (the electrodes' and amplifier's recovery), and
possibly a damped oscillation (an amplifier's filters ringing). What is *learnt*
from each epoch, not taken from the stimulus's nominal parameters:

- the pulse's true start (a marker may be rounded to a millisecond's fraction):
  the kink where the signal leaves its baseline;
- the pulse's true length (a pulse given as 3 ms may be 2 ms, or 2.1): the
  length whose model explains the most of the epoch, searched around the given
  length or over 1.5–8 ms when none is given;
- ringing: a damped sinusoid after the pulse, shared by all channels in
  proportion to their pulse artifact (one system response), kept only when it
  explains much of what is left after the pulse;
- where the ADC clipped: samples at the channel's rail are blanked (weight 0
  in every fit; never searched for spikes) and reported.

Every fit is robust (iteratively reweighted least squares, Tukey's bisquare):
an action potential riding on the artifact is narrow, so it is an outlier to
these smooth functions and barely moves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from analysis._artifact_kernels import (
    add_ridge,
    basis_energy,
    fit_floor,
    median_abs_step,
    pulse_energy,
    refill_edge,
    tukey_reweigh,
    weigh_rows,
)

TAIL_TAUS_S = (0.5e-3, 1.5e-3, 4e-3, 12e-3)
DURATION_RANGE_S = (1.5e-3, 8.0e-3)  # searched when no duration is given
# How far the pulse may start from the onset given: a board's own sample
# number is exact to the analog chain's delay; a Spike Recorder marker rounded
# to 3 decimals is up to 0.5 ms off.
ONSET_SEARCH_S = 0.1e-3
MARKER_ONSET_SEARCH_S = 0.7e-3
TUKEY_C = 4.685
TAIL_STRIDE = 4  # rows of the smooth late tail used in the fit


@dataclass(frozen=True, slots=True)
class ArtifactFit:
    """What the artifact model found in one epoch (times from the given onset)."""

    onset_shift_s: float  # true pulse start − given onset
    pulse_duration_s: float  # as found in the data
    ringing_hz: float  # NaN when no ringing was found
    amplitude_uv: np.ndarray  # (n_channels,) pulse artifact amplitude
    blanked: np.ndarray  # (n_samples, n_channels) bool: clipped, never searched
    learnt: bool = False  # the length came from earlier trials (PulseMemory)

    @property
    def end_s(self) -> float:
        """End of the pulse, seconds after the given onset."""
        return self.onset_shift_s + self.pulse_duration_s

    def blanked_s(self, fs_hz: float) -> np.ndarray:
        """Blanked time per channel, seconds."""
        return self.blanked.sum(axis=0) / fs_hz


def clipped_mask(
    x: np.ndarray, *, clip_uv: float | np.ndarray | None = None, margin: int = 2
) -> np.ndarray:
    """Samples at the ADC's rail, widened by ``margin`` samples each side.

    With ``clip_uv`` (the rail, µV, per channel or one for all) a sample at or
    beyond 99.9 % of it is clipped. Without it, a run of three or more equal
    samples at the channel's own maximum or minimum is (an ADC stuck at its
    rail repeats its code; noise does not).
    """
    x = np.asarray(x, dtype=np.float64)
    if clip_uv is not None:
        rail = 0.999 * np.abs(np.asarray(clip_uv, dtype=np.float64))
        hit = np.abs(x) >= rail
    else:
        hit = np.zeros(x.shape, dtype=bool)
        # (reductions along the rows of a narrow C-ordered array are 10× slower
        # in numpy than along a transposed copy)
        xt = np.ascontiguousarray(x.T)
        for extreme in (xt.max(axis=1), xt.min(axis=1)):
            at = x == extreme
            if at.sum(axis=0).max() < 3:  # usual: each extreme is reached once
                continue
            run = at[2:] & at[1:-1] & at[:-2]
            hit[2:] |= run
            hit[1:-1] |= run
            hit[:-2] |= run
    if margin and hit.any():
        grown = hit.copy()
        for k in range(1, margin + 1):
            grown[k:] |= hit[:-k]
            grown[:-k] |= hit[k:]
        hit = grown
    return hit


# ------------------------------------------------------------------ bases


def _pulse_columns(u: np.ndarray, duration_s: float) -> list[np.ndarray]:
    during = (u >= 0) & (u < duration_s)
    phase = 2 * np.pi * u / duration_s
    return [
        np.where(during, np.sin(phase), 0.0),
        np.where(during, np.cos(phase), 0.0),
        np.where(during, np.sin(2 * phase), 0.0),
        np.where(during, np.cos(2 * phase), 0.0),
    ]


def _tail_columns(u: np.ndarray, duration_s: float) -> list[np.ndarray]:
    after = u - duration_s
    on = after >= 0
    cols = [on.astype(np.float64)]
    for tau in TAIL_TAUS_S:
        cols.append(np.where(on, np.exp(-np.maximum(after, 0) / tau), 0.0))
    return cols


def _poly_columns(t: np.ndarray, degree: int) -> list[np.ndarray]:
    span = max(float(t[-1] - t[0]), 1e-9)
    z = 2 * (t - t[0]) / span - 1
    return [z**k for k in range(degree + 1)]


def _channel_energy(basis: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted LS residual energy per basis (m, n, k) and channel of ``y`` (n, c).

    ``w``: a weight per row (n,), or per row and channel (n, c). A tiny ridge
    (1e-9 of the trace) keeps a column solvable where its rows have no weight.
    One Numba kernel (``_artifact_kernels.basis_energy``) for all candidates
    and channels.
    """
    out = np.empty((basis.shape[0], y.shape[1]))
    basis_energy(
        np.ascontiguousarray(basis, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(w.reshape(w.shape[0], -1), dtype=np.float64),
        out,
    )
    return out


def _residual_energy(basis: np.ndarray, y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Residual energy summed over channels, for each basis (m, n, k)."""
    return _channel_energy(basis, y, w).sum(axis=1)


# ------------------------------------------------------------------ timing


def find_pulse_onset(
    y: np.ndarray, w: np.ndarray, *, fs_hz: float, onset: int, search_s: float
) -> float:
    """Start of the pulse (seconds from row ``onset``): the kink that fits best.

    Locally the artifact is a baseline line, then at the start a step and a
    smooth rise (cubic): the start is the candidate whose piecewise model
    leaves the least residual summed over channels.
    """
    half = round(search_s * fs_hz)
    lo = max(0, onset - half - round(0.5e-3 * fs_hz))
    hi = min(y.shape[0], onset + half + round(0.8e-3 * fs_hz))
    shifts, basis = _onset_basis(lo - onset, hi - onset, half, float(fs_hz))
    energy = _residual_energy(basis, y[lo:hi], w[lo:hi])
    return float(shifts[int(np.argmin(energy))])


@lru_cache(maxsize=16)
def _onset_basis(
    lo: int, hi: int, half: int, fs_hz: float
) -> tuple[np.ndarray, np.ndarray]:
    """``find_pulse_onset``'s candidate starts and their bases (m, n, k) for
    rows ``lo``..``hi`` relative to the onset: the same for every stimulus of
    a recording, so built once (read-only)."""
    t = np.arange(lo, hi) / fs_hz
    shifts = np.arange(-half, half + 1) / fs_hz
    base = np.column_stack(_poly_columns(t, 1))
    u = t[None, :] - shifts[:, None]
    on = (u >= 0).astype(np.float64)
    scale = 1e-3
    ramp = np.maximum(u, 0) / scale
    basis = np.ascontiguousarray(
        np.concatenate(
            [
                np.broadcast_to(base, (shifts.size, *base.shape)),
                np.stack([on, ramp, ramp**2, ramp**3], axis=2),
            ],
            axis=2,
        )
    )
    shifts.flags.writeable = False
    basis.flags.writeable = False
    return shifts, basis


def _median_abs_step(x: np.ndarray) -> np.ndarray:
    """Each column's median |sample-to-sample step| (exactly ``np.median``)."""
    out = np.empty(x.shape[1])
    median_abs_step(x, out)
    return out


def _pulse_energy(
    t: np.ndarray,
    shifts: np.ndarray,
    durations: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
) -> np.ndarray:
    """``_residual_energy(_pulse_basis(t, shifts, durations), y, w)``, each
    candidate's basis built inside one Numba kernel (``pulse_energy``)."""
    out = np.empty((shifts.size, y.shape[1]))
    pulse_energy(
        np.ascontiguousarray(t, dtype=np.float64),
        np.ascontiguousarray(shifts, dtype=np.float64),
        np.ascontiguousarray(durations, dtype=np.float64),
        np.array(TAIL_TAUS_S),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(w.reshape(w.shape[0], -1), dtype=np.float64),
        out,
    )
    return out.sum(axis=1)


def _pulse_basis(
    t: np.ndarray, shifts: np.ndarray, durations: np.ndarray
) -> np.ndarray:
    """Bases for every (shift, duration) pair at once: (m, n, k).

    The same columns as ``_poly_columns(t, 1)``, ``_pulse_columns`` and
    ``_tail_columns``, built by broadcasting (one Python call per column, not
    per candidate: this search runs for every stimulus).
    """
    m = shifts.size
    u = t[None, :] - shifts[:, None]
    d = durations[:, None]
    during = (u >= 0) & (u < d)
    phase = 2 * np.pi * u / d
    after = u - d
    on = after >= 0
    clipped = np.maximum(after, 0)
    cols = [np.broadcast_to(c, (m, t.size)) for c in _poly_columns(t, 1)]
    cols += [
        np.where(during, np.sin(phase), 0.0),
        np.where(during, np.cos(phase), 0.0),
        np.where(during, np.sin(2 * phase), 0.0),
        np.where(during, np.cos(2 * phase), 0.0),
        on.astype(np.float64),
    ]
    cols += [np.where(on, np.exp(-clipped / tau), 0.0) for tau in TAIL_TAUS_S]
    cols += _edge_columns(t, shifts, shifts + durations)
    return np.stack(cols, axis=2)


def _edge_rows(t: np.ndarray, edge_s: np.ndarray) -> np.ndarray:
    """First row at or after each edge time."""
    return np.searchsorted(t, edge_s)


def _edge_columns(t: np.ndarray, *edges_s: np.ndarray) -> list[np.ndarray]:
    """Indicators of the two samples around each edge of the pulse.

    A pulse's start and end are jumps; which sample the jump lands on depends
    on where between two samples the edge fell, so those two samples get a
    free value each (they are fitted exactly, and refilled afterwards by
    ``_refill_edges``). Everything else then pins the sub-sample timing.
    """
    rows = np.arange(t.size)[None, :]
    cols = []
    for edge in edges_s:
        i = _edge_rows(t, np.atleast_1d(edge))[:, None]
        cols += [(rows == i - 1).astype(np.float64), (rows == i).astype(np.float64)]
    return cols


def _duration_window(
    n: int, fs_hz: float, onset: int, shift_s: float, d_hi: float
) -> tuple[int, int]:
    lo = max(0, onset + round((shift_s - 0.5e-3) * fs_hz))
    hi = min(n, onset + round((shift_s + d_hi + 1.5e-3) * fs_hz))
    return lo, hi


def duration_range_s(duration_s: float | None) -> tuple[float, float]:
    """Pulse lengths searched: 0.6–1.5 × the given one, else 1.5–8 ms."""
    if duration_s is None or not np.isfinite(duration_s) or duration_s <= 0:
        return DURATION_RANGE_S
    return 0.6 * duration_s, min(1.5 * duration_s, 2 * DURATION_RANGE_S[1])


def find_pulse_duration(
    y: np.ndarray,
    w: np.ndarray,
    *,
    fs_hz: float,
    onset: int,
    shift_s: float,
    duration_s: float | None,
) -> float:
    """The pulse's length (s) whose model fits best, to 0.1 ms.

    Durations in ``duration_range_s(duration_s)`` are tried with the pulse
    starting ``shift_s`` after row ``onset``; ``refine_pulse`` does the rest.
    """
    d_lo, d_hi = duration_range_s(duration_s)
    lo, hi = _duration_window(y.shape[0], fs_hz, onset, shift_s, d_hi)
    t = (np.arange(lo, hi) - onset) / fs_hz
    durations = np.arange(d_lo, d_hi + 1e-12, 0.1e-3)
    energy = _pulse_energy(
        t, np.full(durations.size, shift_s), durations, y[lo:hi], w[lo:hi]
    )
    return float(durations[int(np.argmin(energy))])


def refine_pulse(
    y: np.ndarray,
    w: np.ndarray,
    *,
    fs_hz: float,
    onset: int,
    shift_s: float,
    pulse_s: float,
    window: tuple[int, int],
    fixed_length: bool = False,
) -> tuple[float, float, float]:
    """(start, length, residual energy) refined together over rows ``window``.

    Steps of a quarter then an eighth of a sample (start) and 30 then 10 µs
    (length), so that a 2.1 ms pulse given as 2 ms is fitted as 2.1 (the sine's
    period must be right to a fraction of a percent; the edges only to a
    sample, which ``_edge_columns`` absorb). ``fixed_length`` refines the start
    only. ``w`` may weight each channel's rows."""
    lo, hi = window
    t = (np.arange(lo, hi) - onset) / fs_hz
    yy, ww = y[lo:hi], w[lo:hi]
    best_s, best_d, best_e = shift_s, pulse_s, np.inf
    ds = np.arange(-2, 3)
    for step_s, step_d in ((0.25 / fs_hz, 0.03e-3), (0.125 / fs_hz, 0.01e-3)):
        if fixed_length:
            shifts, durs = best_s + step_s * ds, np.full(ds.size, best_d)
        else:
            shifts = best_s + step_s * np.repeat(ds, ds.size)
            durs = best_d + step_d * np.tile(ds, ds.size)
        energy = _pulse_energy(t, shifts, durs, yy, ww)
        k = int(np.argmin(energy))
        best_s, best_d, best_e = float(shifts[k]), float(durs[k]), float(energy[k])
    return best_s, best_d, best_e


def settle_pulse(
    y: np.ndarray,
    w: np.ndarray,
    *,
    fs_hz: float,
    onset: int,
    shift_s: float,
    duration_s: float | None,
    noise_sd: np.ndarray | None = None,
) -> tuple[float, float]:
    """The pulse's (start, length): the stimulator's word unless the data refute it.

    The length that fits best is found (``find_pulse_duration``, refined); a
    given length is kept (its start refined) unless the data refute it:

    - while spikes may be in the fit (no ``noise_sd``), unless the best length
      leaves less than half the given one's residual energy: a spike riding on
      the pulse can pull the best length by a few percent, but cannot halve
      the misfit of a pulse that is really 2 ms when 3 were given;
    - with the spikes left out (``w`` masks them) and the channels' noise SD
      known, as soon as the best length explains more than 25 noise variances
      (a 5-SD improvement): a 2.65 ms pulse given as 2.6 leaves a misfit that
      is small next to a large artifact, and large next to a spike.
    """
    found = find_pulse_duration(
        y, w, fs_hz=fs_hz, onset=onset, shift_s=shift_s, duration_s=duration_s
    )
    given = duration_s if duration_s and np.isfinite(duration_s) else None
    longest = max(found, given or 0.0) + 0.2e-3
    window = _duration_window(y.shape[0], fs_hz, onset, shift_s, longest)
    s_f, d_f, e_f = refine_pulse(
        y, w, fs_hz=fs_hz, onset=onset, shift_s=shift_s, pulse_s=found, window=window
    )
    if given is None:
        return s_f, d_f
    s_g, d_g, e_g = refine_pulse(
        y, w, fs_hz=fs_hz, onset=onset, shift_s=shift_s, pulse_s=given,
        window=window, fixed_length=True,
    )  # fmt: skip
    if noise_sd is None:
        refuted = e_f < 0.5 * e_g
    else:
        refuted = e_g - e_f > 25.0 * float(np.sum(np.square(noise_sd)))
    return (s_f, d_f) if refuted else (s_g, d_g)


# ------------------------------------------------------------------ fitting


def _robust_fit(
    basis: np.ndarray, y: np.ndarray, w0: np.ndarray, iterations: int = 2
) -> np.ndarray:
    """Per-channel IRLS (Tukey bisquare): the coefficients (k, c). ``w0``
    (n, c): each channel's prior weights (0 where clipped or known to hold a
    spike).

    The Gram matrices (one batched matmul), the solve and the fitted values
    are numpy's BLAS/LAPACK calls; the steps between them are Numba kernels
    (``_artifact_kernels``) that compute numpy's values bit for bit (the
    einsum's and the trace's order of adding, the median as ``np.partition``),
    without numpy's many calls on small arrays (tests/analysis/_reference.py
    ``robust_fit_reference`` is the all-numpy original)."""
    y = np.ascontiguousarray(y, dtype=np.float64)
    w0 = np.ascontiguousarray(w0, dtype=np.float64)
    n, k = basis.shape
    n_ch = y.shape[1]
    weights = w0.copy()
    # A floor on the scale: on clean data the misfit of a smooth model is
    # tiny, and calling every sample beyond it an outlier leaves nothing.
    floor = np.empty(n_ch)
    counts = np.empty(n_ch, dtype=np.int64)  # rows each channel uses
    fit_floor(y, w0, floor, counts)
    bw = np.empty((n_ch, n, k))  # each channel's weighted basis
    gram = np.empty((n_ch, k, k))
    rhs = np.empty((n_ch, k))
    for it in range(iterations + 1):
        weigh_rows(basis, weights, y, bw, rhs)
        np.matmul(bw.transpose(0, 2, 1), basis, out=gram)
        add_ridge(gram)
        coef = np.linalg.solve(gram, rhs[:, :, None])[:, :, 0].T  # (k, c)
        if it == iterations or not counts.all():
            break
        tukey_reweigh(y, basis @ coef, w0, floor, counts, TUKEY_C, weights)
    return coef


def _ringing(
    resid: np.ndarray,
    w: np.ndarray,
    u: np.ndarray,
    duration_s: float,
    pulse_amp: np.ndarray,
    noise: np.ndarray | None,
) -> tuple[float, np.ndarray | None]:
    """A damped oscillation after the pulse shared by the channels, if any.

    Each channel's ringing is assumed proportional to its pulse artifact
    (``pulse_amp``, signed): one system response. Frequencies 0.5–5 kHz and
    decay times 0.1–1.6 ms are tried; kept when the shared model explains at
    least half of what is left in the 4 ms after the pulse. Not searched when
    what is left there is no more than noise (``noise``: SD per channel).
    """
    after = u - duration_s
    sel = (after >= 0) & (after < 4e-3) & (w > 0)
    if sel.sum() < 8 or not np.any(pulse_amp):
        return float("nan"), None
    a = after[sel]
    # Channels weighted by their artifact: the rank-1 model pools them.
    gain = pulse_amp / np.max(np.abs(pulse_amp))
    target = resid[sel] @ gain / float(gain @ gain)  # (n_sel,)
    total = float(np.sum(target * target))
    if noise is not None:
        var = float(np.sum(gain**2 * noise**2)) / float(gain @ gain) ** 2
        if total < 4.0 * var * target.size:
            return float("nan"), None
    if total <= 0:
        return float("nan"), None
    freqs = np.arange(500.0, 5001.0, 100.0)
    taus = np.array([0.1e-3, 0.2e-3, 0.4e-3, 0.8e-3, 1.6e-3])
    best = (0.0, 0.0, 0.0, 0.0, 0.0)
    # the oscillations are the same for every decay time: computed once
    arg = 2 * np.pi * freqs[:, None] * a[None, :]
    sin_fa, cos_fa = np.sin(arg), np.cos(arg)
    for tau in taus:
        env = np.exp(-a / tau)
        s = env[None, :] * sin_fa
        c = env[None, :] * cos_fa
        ss, cc, sc = (s * s).sum(1), (c * c).sum(1), (s * c).sum(1)
        ys, yc = s @ target, c @ target
        det = ss * cc - sc * sc + 1e-30
        p = (cc * ys - sc * yc) / det
        q = (ss * yc - sc * ys) / det
        explained = p * ys + q * yc
        k = int(np.argmax(explained))
        if explained[k] > best[0]:
            best = (float(explained[k]), float(freqs[k]), float(tau), p[k], q[k])
    explained, f, tau, p, q = best
    if explained < 0.5 * total:
        return float("nan"), None
    on = after >= 0
    arg = 2 * np.pi * f * np.maximum(after, 0)
    column = np.where(
        on, np.exp(-np.maximum(after, 0) / tau) * (p * np.sin(arg) + q * np.cos(arg)), 0
    )
    return f, column


class PulseMemory:
    """The true pulse length of each kind of stimulus, learnt from its trials.

    Every stimulus of one kind (one given length) comes from the same
    stimulator, so its true length is one number. Until ``agree`` trials have
    found lengths within ``spread_s`` of each other, each trial searches for
    it (``settle_pulse``: the slow part of the artifact fit); from then on the
    median is used and each trial only finds its own start (a marker's
    rounding differs per trial). Trials are remembered in the order they are
    analysed, so the online analysis and the offline pipeline, which both go
    through a recording in order, give identical results.
    """

    def __init__(self, agree: int = 3, spread_s: float = 0.02e-3) -> None:
        self.agree = agree
        self.spread_s = spread_s
        self._found: dict[float | None, list[float]] = {}

    @staticmethod
    def _key(duration_s: float | None) -> float | None:
        if duration_s is None or not np.isfinite(duration_s):
            return None
        return round(float(duration_s), 7)

    def known(self, duration_s: float | None) -> float | None:
        """The learnt length for stimuli given as ``duration_s``, if settled."""
        found = self._found.get(self._key(duration_s), [])
        if len(found) < self.agree:
            return None
        # plain Python on a handful of floats (exactly np.ptp and np.median:
        # the middle value, or the mean of the two middle ones)
        recent = sorted(found[-self.agree :])
        if recent[-1] - recent[0] > self.spread_s:
            return None
        h = len(recent) // 2
        return recent[h] if len(recent) % 2 else (recent[h - 1] + recent[h]) / 2

    def add(self, duration_s: float | None, found_s: float) -> None:
        """A trial given as ``duration_s`` found the pulse to be ``found_s``."""
        self._found.setdefault(self._key(duration_s), []).append(float(found_s))
        del self._found[self._key(duration_s)][: -self.agree]


def subtract_artifact(
    epoch_uv: np.ndarray,
    *,
    fs_hz: float,
    onset: int,
    duration_s: float | None,
    clip_uv: float | np.ndarray | None = None,
    spikes: np.ndarray | None = None,
    memory: PulseMemory | None = None,
    onset_search_s: float = ONSET_SEARCH_S,
    fit_from: int | None = None,
) -> tuple[np.ndarray, ArtifactFit]:
    """``epoch_uv`` minus its artifact, and what was found.

    ``onset`` is the row where the stimulus was said to start; ``duration_s``
    the pulse's given length (None: unknown). ``spikes`` (bool, like the
    epoch) marks samples known to hold spikes (from a first pass): they are
    left out of every fit, so a spike riding on the pulse cannot pull its
    length. ``memory``: pulse lengths learnt from earlier trials (used when
    settled, fed otherwise). ``onset_search_s``: how far from ``onset`` the
    pulse's start is looked for. Rows before ``fit_from`` (default 1 ms before the
    onset) are returned unchanged: they hold no artifact. Clipped samples come back as 0
    and are marked in ``ArtifactFit.blanked``.
    """
    x = np.asarray(epoch_uv, dtype=np.float64)
    n = x.shape[0]
    blanked = clipped_mask(x, clip_uv=clip_uv)
    excluded = blanked if spikes is None else blanked | spikes
    # rows every channel sees (column by column: reductions along the rows
    # of a narrow array are slow in numpy)
    w_all = (~_any_column(blanked)).astype(np.float64)
    w_fit = w_all if spikes is None else (~excluded).astype(np.float64)
    quiet = x[: max(0, onset - round(1e-3 * fs_hz))]
    noise = (  # each channel's broadband noise SD, from sample-to-sample steps
        1.4826 * _median_abs_step(quiet) / np.sqrt(2) if quiet.shape[0] > 50 else None
    )
    shift = find_pulse_onset(
        x, w_all, fs_hz=fs_hz, onset=onset, search_s=onset_search_s
    )
    learnt = None if memory is None else memory.known(duration_s)
    if learnt is not None:
        # The sine's phase within the pulse is free in the fit (sine and
        # cosine), and the samples either side of each edge are left out: the
        # start found to a sample is enough once the length is known.
        pulse = learnt
    else:
        shift, pulse = settle_pulse(
            x, w_fit, fs_hz=fs_hz, onset=onset, shift_s=shift, duration_s=duration_s,
            noise_sd=None if spikes is None else noise,
        )  # fmt: skip
    start = max(0, onset - round(1e-3 * fs_hz)) if fit_from is None else fit_from
    t, basis, edge_rows, rows, basis_rows = _model(
        start - onset, n - onset, float(fs_hz), float(shift), float(pulse)
    )
    y = x[start:]
    w_ch = (~excluded[start:]).astype(np.float64)
    u = t - shift
    # The samples either side of each edge are left out (the jump may land on
    # either; they are refilled below).
    for i in edge_rows:
        w_ch[max(0, i - 1) : i + 1] = 0.0
    fitted, coef = _fit_rows(basis, y, w_ch, rows, basis_rows)
    pulse_amp = np.hypot(coef[3], coef[4]) * np.sign(coef[3] + 1e-300)
    ringing_hz, ring = _ringing(
        y - fitted, _min_column(w_ch), u, pulse, pulse_amp, noise
    )
    if ring is not None:
        basis = np.column_stack([basis, ring])
        fitted, coef = _fit_rows(basis, y, w_ch, rows)
    clean = x.copy()
    resid = y - fitted
    _refill_edges(resid, t, (shift, shift + pulse))
    clean[start:] = resid
    clean[blanked] = 0.0
    return clean, ArtifactFit(
        onset_shift_s=shift,
        pulse_duration_s=pulse,
        learnt=learnt is not None,
        ringing_hz=ringing_hz,
        amplitude_uv=np.abs(pulse_amp),
        blanked=blanked,
    )


@lru_cache(maxsize=64)
def _model(
    first: int, stop: int, fs_hz: float, shift_s: float, pulse_s: float
) -> tuple[np.ndarray, np.ndarray, tuple[int, int], np.ndarray, np.ndarray]:
    """The artifact model over rows ``first``..``stop`` relative to the onset,
    for a pulse starting ``shift_s`` after it and lasting ``pulse_s``: times,
    the basis (``_full_basis``), the rows of its two edges, the rows fitted and
    the basis on them. The same for every stimulus whose pulse length is
    learnt and whose start falls on the same sample step, so built once
    (read-only).

    After the pulse's first 3 ms of tail the artifact is smooth: every 4th
    sample fits it as well, and after 10 ms every 8th (its fastest tail has
    decayed 20-fold): 3× faster.
    """
    t = np.arange(first, stop) / fs_hz
    basis = _full_basis(t, shift_s, pulse_s)
    edge_rows = (
        int(_edge_rows(t, np.array([shift_s]))[0]),
        int(_edge_rows(t, np.array([shift_s + pulse_s]))[0]),
    )
    dense = int(_edge_rows(t, np.array([shift_s + pulse_s + 3e-3]))[0])
    late = int(_edge_rows(t, np.array([shift_s + pulse_s + 10e-3]))[0])
    rows = np.concatenate(
        [
            np.arange(dense),
            np.arange(dense, late, TAIL_STRIDE),
            np.arange(late, t.size, 2 * TAIL_STRIDE),
        ]
    )
    basis_rows = basis[rows]
    for a in (t, basis, rows, basis_rows):
        a.flags.writeable = False
    return t, basis, edge_rows, rows, basis_rows


def _any_column(a: np.ndarray) -> np.ndarray:
    """``a.any(axis=1)`` of a narrow bool array, a column at a time."""
    out = a[:, 0].copy()
    for c in range(1, a.shape[1]):
        out |= a[:, c]
    return out


def _min_column(a: np.ndarray) -> np.ndarray:
    """``a.min(axis=1)`` of a narrow array, a column at a time."""
    out = a[:, 0].copy()
    for c in range(1, a.shape[1]):
        np.minimum(out, a[:, c], out=out)
    return out


def _full_basis(t: np.ndarray, shift_s: float, pulse_s: float) -> np.ndarray:
    """The whole artifact model: quadratic baseline, pulse, step and tails."""
    u = t - shift_s
    return np.column_stack(
        [*_poly_columns(t, 2), *_pulse_columns(u, pulse_s), *_tail_columns(u, pulse_s)]
    )


def _fit_rows(
    basis: np.ndarray,
    y: np.ndarray,
    w_ch: np.ndarray,
    rows: np.ndarray,
    basis_rows: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust fit on ``rows`` only (``basis_rows``: ``basis[rows]`` if at
    hand); the fitted model everywhere, and its coefficients."""
    if basis_rows is None:
        basis_rows = basis[rows]
    coef = _robust_fit(basis_rows, y[rows], w_ch[rows])
    return basis @ coef, coef


def _refill_edges(resid: np.ndarray, t: np.ndarray, edges_s: tuple[float, ...]) -> None:
    """Replace the residual at the edge samples (fitted exactly, so 0) by a
    straight line between their neighbours, in place: a spike there keeps its
    shape, and no step is left for the band-pass to ring on."""
    for edge in edges_s:
        # (one Numba kernel: numpy's row arithmetic costs ~15 µs an edge)
        refill_edge(resid, int(np.searchsorted(t, edge)))
