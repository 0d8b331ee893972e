"""Online (chunked) analysis that gives exactly the offline results.

``OnlineSpikeDetector`` filters causally and detects peaks chunk by chunk,
carrying the filter state and a margin of samples so a peak near a chunk edge is
found once, as in one pass over the whole recording (``detect_offline``).
``OnlineStimulusAnalyzer`` keeps the recent samples and runs
``analyse_stimulus`` on each stimulus as soon as its window is complete — the
same function on the same samples as the offline pipeline. A stimulus given its
site (the cathode's position, m from the head end) away from the head end is
analysed about it (``bidirectional.analyse_bidirectional``, as the offline
pipeline's per-site analysis): pairs on either side timed by their distance
from the site, each volley's V fitted with the site given.
"""

from __future__ import annotations

import copy
from collections import deque
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike

from analysis.ap_detect import Spikes, detect_spikes
from analysis.artifact import PulseMemory
from analysis.bidirectional import (
    BidirectionalResponse,
    analyse_bidirectional,
    at_head_end,
)
from analysis.filters import CausalFilter
from analysis.propagation import (
    PRE_MIN_S,
    PRE_S,
    StimulusResponse,
    analyse_stimulus,
    search_window_s,
)


class OnlineSpikeDetector:
    """Causal band-pass + threshold detection over a stream of chunks."""

    def __init__(
        self,
        sos: np.ndarray,
        n_channels: int,
        *,
        fs_hz: float,
        noise: np.ndarray,
        threshold_sd: float = 5.0,
        refractory_ms: float = 1.0,
        sign: int = -1,
    ) -> None:
        self.filter = CausalFilter(sos, n_channels)
        self.fs_hz = fs_hz
        self.noise = np.asarray(noise, dtype=float)
        self.threshold_sd = threshold_sd
        self.refractory_ms = refractory_ms
        self.sign = sign
        self._tail = np.zeros((0, n_channels))
        self._tail_start = 0  # sample index of _tail[0]
        self._next = 0  # first sample not yet searched
        self._last_peak = np.full(n_channels, -(10**12), dtype=np.int64)

    def get_margin(self) -> int:
        """Samples kept from the previous chunk: a peak needs its neighbours."""
        return max(2, round(self.refractory_ms * 1e-3 * self.fs_hz)) + 1

    def process(self, chunk: np.ndarray) -> Spikes:
        """Filter and search a new chunk; return peaks with absolute sample indices."""
        filtered = self.filter.process(chunk)
        data = np.concatenate([self._tail, filtered])
        base = self._tail_start
        stop = base + data.shape[0] - 1  # the last sample needs its right neighbour
        last = self._last_peak - base  # previous peaks, in this chunk's coordinates
        found = detect_spikes(
            data,
            fs_hz=self.fs_hz,
            noise=self.noise,
            threshold_sd=self.threshold_sd,
            refractory_ms=self.refractory_ms,
            sign=self.sign,
            start=self._next - base,
            stop=stop - base,
            last_peak=last,
        )
        self._last_peak = last + base
        self._next = stop
        margin = self.get_margin()
        self._tail = data[-margin:]
        self._tail_start = base + data.shape[0] - self._tail.shape[0]
        return Spikes(found.samples + base, found.channels, found.amplitudes)


def detect_offline(
    traces: np.ndarray, sos: np.ndarray, *, fs_hz: float, noise: np.ndarray, **kwargs
) -> Spikes:
    """One causal pass over the whole recording: what the online detector equals."""
    filtered = CausalFilter(sos, traces.shape[1]).process(traces)
    return detect_spikes(
        filtered, fs_hz=fs_hz, noise=noise, stop=filtered.shape[0] - 1, **kwargs
    )


@dataclass(frozen=True, slots=True)
class PendingStimulus:
    """A stimulus waiting for its analysis window to fill."""

    onset_sample: int
    duration_s: float
    key: object  # the caller's handle (trial index, parameters)
    site_m: float | None = None  # None: analysed from the head end, one way
    post: int = 0  # rows after the onset its analysis needs


class OnlineStimulusAnalyzer:
    """Runs ``analyse_stimulus`` on each stimulus once its epoch is complete;
    about its site (``analyse_bidirectional``) when given one away from the
    head end (``bidirectional.at_head_end``)."""

    def __init__(
        self,
        *,
        fs_hz: float,
        n_channels: int,
        positions_m: np.ndarray,
        pre_ms: float = PRE_S * 1e3,
        post_ms: float | None = None,
        sites_m: ArrayLike | None = None,
        **analysis_kwargs,
    ) -> None:
        """``sites_m``: every site a stimulus may come from (the stimulation
        electrodes' positions), when known: a stimulus analysed about its
        site then takes the epoch the offline per-site analysis of a
        recording over them all takes, to the last possible arrival at the
        pair farthest from any of them (``rig.offline.sites``); else the one
        its own site needs."""
        self.fs_hz = fs_hz
        self.positions_m = np.asarray(positions_m, dtype=float)
        post_ms_given = post_ms is not None
        if post_ms is None:
            post_ms = search_window_s(self.positions_m) * 1e3
        self.pre = round(pre_ms * 1e-3 * fs_hz)
        self.pre_min = round(PRE_MIN_S * fs_hz)
        self.post = round(post_ms * 1e-3 * fs_hz)
        self._post_given = post_ms_given
        self._sites_m = None if sites_m is None else np.asarray(sites_m, dtype=float)
        self._max_post = self.post
        self.kwargs = analysis_kwargs
        self.pulse_memory = PulseMemory()  # as the offline pipeline learns it
        self._buffer = np.zeros((0, n_channels))
        self._buffer_start = 0
        self._pending: deque[PendingStimulus] = deque()

    def add_stimulus(
        self,
        onset_sample: int,
        duration_s: float,
        key: object = None,
        site_m: float | None = None,
    ) -> None:
        """A stimulus was delivered at ``onset_sample`` from ``site_m`` (its
        cathode's position, m from the head end; None: not known)."""
        if at_head_end(site_m, self.positions_m):
            site_m = None  # the first wave's analysis, exactly
        post = self.post_rows(site_m)
        self._max_post = max(self._max_post, post)
        self._pending.append(
            PendingStimulus(int(onset_sample), float(duration_s), key, site_m, post)
        )

    def post_rows(self, site_m: float | None) -> int:
        """Rows after the onset a stimulus from ``site_m`` is analysed on (None:
        from the head end, the first wave's epoch)."""
        if site_m is None or self._post_given:
            return self.post
        sites = np.atleast_1d(site_m if self._sites_m is None else self._sites_m)
        far = np.abs(self.positions_m[None, :] - sites[:, None]).max()
        return round(search_window_s(np.array([far])) * self.fs_hz)

    def warm_up(self) -> list[tuple[object, StimulusResponse | BidirectionalResponse]]:
        """Analyse synthetic stimuli as ``process`` would (one from the head
        end, one about a site along the body if any is known) on a copy of
        this analyser, so that Numba compiles every kernel now, or loads it
        from its cache, and not at the first real stimulus. The first run
        after an install compiles for ~10 s holding the GIL: with the board
        armed, a host that stops reading the board for 1 s withholds its
        heartbeat and the board latches HOST_LOSS. Returns what ``process``
        returned for them (this analyser's state is untouched)."""
        twin = copy.copy(self)  # its own memory, buffer and queue below
        n_ch = self._buffer.shape[1]
        twin.pulse_memory = PulseMemory()
        twin._buffer, twin._buffer_start = np.zeros((0, n_ch)), 0
        twin._pending = deque()
        along = [] if self._sites_m is None else [
            s for s in self._sites_m if not at_head_end(s, self.positions_m)
        ]  # fmt: skip
        sites: list[float | None] = [None, *along[:1]]
        span = self.pre + max(self.post_rows(s) for s in sites) + self.pre
        x = np.random.default_rng(0).normal(0.0, 5.0, (span * len(sites), n_ch))
        n_pulse = round(2e-3 * self.fs_hz)
        artifact = 800.0 * np.sin(2 * np.pi * np.arange(n_pulse) / n_pulse)
        spike = 80.0 * np.sin(np.linspace(0.0, 2 * np.pi, 15))
        for k, site in enumerate(sites):
            onset = k * span + self.pre
            twin.add_stimulus(onset, 2e-3, None, site_m=site)
            x[onset : onset + n_pulse] += artifact[:, None]
            # a volley at 25 m/s from the site (the head end: 0)
            for c, p in enumerate(self.positions_m):
                r = onset + round((2.5e-3 + abs(p - (site or 0.0)) / 25.0) * self.fs_hz)
                x[r : r + 15, c] += spike[: x[r : r + 15].shape[0]]
        return twin.process(0, x)

    def process(
        self, first_sample: int, chunk_uv: np.ndarray
    ) -> list[tuple[object, StimulusResponse | BidirectionalResponse]]:
        """Add contiguous samples; return (key, response) for completed stimuli:
        a ``StimulusResponse``, or a ``BidirectionalResponse`` for a stimulus
        analysed about its site."""
        if self._buffer.shape[0] == 0:
            self._buffer_start = first_sample
        elif first_sample != self._buffer_start + self._buffer.shape[0]:
            # A gap: epochs spanning it cannot be analysed; restart the buffer.
            self._buffer = np.zeros((0, chunk_uv.shape[1]))
            self._buffer_start = first_sample
        self._buffer = np.concatenate([self._buffer, np.asarray(chunk_uv, float)])
        end = self._buffer_start + self._buffer.shape[0]
        done: list[tuple[object, StimulusResponse | BidirectionalResponse]] = []
        while (
            self._pending
            and self._pending[0].onset_sample + self._pending[0].post <= end
        ):
            stim = self._pending.popleft()
            pre = self.pre
            a = stim.onset_sample - pre - self._buffer_start
            if a < 0:  # the stream began just before it: less quiet signal
                pre = self.pre_min
                a = stim.onset_sample - pre - self._buffer_start
            if a < 0:
                continue  # its samples were lost or came before we started
            epoch = self._buffer[a : a + pre + stim.post]
            if stim.site_m is not None:
                about = analyse_bidirectional(
                    epoch,
                    fs_hz=self.fs_hz,
                    onset=pre,
                    duration_s=stim.duration_s,
                    pair_positions_m=self.positions_m,
                    site_m=stim.site_m,
                    fit=False,  # the caller's site_record fits each volley
                    pulse_memory=self.pulse_memory,
                    **self.kwargs,
                )
                response = _with_onset(about.response, stim.onset_sample)
                done.append((stim.key, replace(about, response=response)))
                continue
            response = analyse_stimulus(
                epoch,
                fs_hz=self.fs_hz,
                onset=pre,
                duration_s=stim.duration_s,
                positions_m=self.positions_m,
                pulse_memory=self.pulse_memory,
                **self.kwargs,
            )
            done.append((stim.key, _with_onset(response, stim.onset_sample)))
        # Keep only what a pending (or the next) stimulus can still need: its
        # window, and a second more for a STIM_DELIVERED that reaches us after
        # the samples that follow it (a starved relay thread takes big bites).
        keep_from = end - self.pre - self._max_post - round(self.fs_hz)
        if self._pending:
            keep_from = min(keep_from, self._pending[0].onset_sample - self.pre)
        cut = max(0, keep_from - self._buffer_start)
        if cut:
            self._buffer = self._buffer[cut:]
            self._buffer_start += cut
        return done


def _with_onset(response: StimulusResponse, onset_sample: int) -> StimulusResponse:
    return replace(response, onset_sample=onset_sample)
