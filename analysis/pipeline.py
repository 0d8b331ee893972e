"""Offline ephys pipeline over a whole recording (chunked: bounded memory)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from analysis.artifact import PulseMemory
from analysis.online import _with_onset
from analysis.propagation import (
    PRE_MIN_S,
    PRE_S,
    StimulusResponse,
    analyse_stimulus,
    search_window_s,
)


@dataclass(frozen=True, slots=True)
class Stimulus:
    """A delivered stimulus: onset (sample number) and parameters in SI."""

    onset_sample: int
    amplitude_vpp: float
    duration_s: float
    # The electrode configuration: "C0-A1" (cathode 0, anode 1), "C3-R" (cathode
    # 3 against the common return); the site is the cathode's position.
    configuration: str = "C0-A1"
    polarity: int = 0
    delivered_vpp: float = float("nan")  # as the board's stimulus monitor measured
    pulse_index: int = 0  # within its train: 0 for the first (or only) pulse


def analyse_stimuli(
    read_uv: Callable[[int, int], np.ndarray | None],
    stimuli: Sequence[Stimulus],
    *,
    fs_hz: float,
    positions_m: np.ndarray,
    pre_ms: float = PRE_S * 1e3,
    post_ms: float | None = None,
    progress: Callable[[int], None] | None = None,
    pulse_memory: PulseMemory | None = None,
    **analysis_kwargs,
) -> list[StimulusResponse | None]:
    """Analyse each stimulus's epoch, read with ``read_uv(first_sample, n)``.

    ``read_uv`` returns µV ``(n, n_channels)`` or None when samples are missing
    (a gap in the recording); such stimuli give None. Pure given ``read_uv``.
    The epoch runs from ``pre_ms`` before each onset (hum and noise are fitted
    there; 2 ms when the recording starts later than that) to ``post_ms``
    after it (default: the last possible arrival at the farthest pair,
    ``propagation.search_window_s``). ``pulse_memory``: the pulse lengths
    learnt so far, when one recording is analysed in several calls (default:
    learnt afresh, in the order of ``stimuli``).
    """
    if post_ms is None:
        post_ms = search_window_s(positions_m) * 1e3
    pre = round(pre_ms * 1e-3 * fs_hz)
    post = round(post_ms * 1e-3 * fs_hz)
    # learnt in trial order, as the online analysis does
    memory = PulseMemory() if pulse_memory is None else pulse_memory
    results: list[StimulusResponse | None] = []
    pre_min = round(PRE_MIN_S * fs_hz)
    for i, stim in enumerate(stimuli):
        pre_here = pre
        epoch = read_uv(stim.onset_sample - pre, pre + post)
        if epoch is None:  # the recording began just before it (or has a gap)
            pre_here = pre_min
            epoch = read_uv(stim.onset_sample - pre_min, pre_min + post)
        if epoch is None:
            results.append(None)
        else:
            response = analyse_stimulus(
                epoch,
                fs_hz=fs_hz,
                onset=pre_here,
                duration_s=stim.duration_s,
                positions_m=positions_m,
                pulse_memory=memory,
                **analysis_kwargs,
            )
            results.append(_with_onset(response, stim.onset_sample))
        if progress is not None:
            progress(i + 1)
    return results
