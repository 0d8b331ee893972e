"""Do the electrode positions agree with the data? The check for positions
given in the wrong channel order.

The analysis fits arrival = t0 + distance / velocity with a positive velocity:
the action potential runs away from the stimulated head, reaching the pairs in
the order of their positions, whatever order the channels are in (a rig wired
tail-first is described by its positions, and is analysed right). Positions
listed in the reverse order of the channels contradict the data: the AP then
seems to reach the far pairs first, no line fits, and every stimulus would read
"no propagating AP", a confident wrong result. So when most analysed stimuli
show no AP, a few stimuli spread over the recording are analysed again with
the positions in the reverse order of distance; if clearly more of them show
an AP that way than as given (at least two, and over three times as many), the
positions are refused with a message naming where they came from.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from analysis.pipeline import analyse_stimuli
from analysis.propagation import StimulusResponse
from rig.offline.load import Source

# Stimuli analysed again (evenly spread over those without an AP): enough to
# outvote a chance line in noise, few enough to cost a second or two.
N_TRIED = 8


class PositionsContradicted(ValueError):
    """The electrode positions run against the arrival order in the data."""


def reversed_order(positions_m: np.ndarray) -> np.ndarray:
    """The positions in the reverse order of distance: the nearest pair's
    channel gets the farthest position, and so on (a list written in the
    reverse order of the channels, put back)."""
    positions = np.asarray(positions_m, dtype=float)
    ranks = np.argsort(np.argsort(positions))
    return np.sort(positions)[positions.size - 1 - ranks]


def check_direction(
    source: Source, responses: Sequence[StimulusResponse | None]
) -> None:
    """Raise PositionsContradicted if the stimuli of ``source`` show an AP with
    the positions reversed but not with the positions given."""
    analysed = [
        (stim, r)
        for stim, r in zip(source.stimuli, responses, strict=True)
        if r is not None
    ]
    silent = [stim for stim, r in analysed if not r.responded]
    if source.positions_m.size < 2 or not silent or 2 * len(silent) <= len(analysed):
        return  # most stimuli show an AP: the positions fit the data
    # The same stimuli both ways: spread over all of them, responders with the
    # given positions included, so a worm near threshold (many stimuli rightly
    # silent, a chance line in the reversed order now and then) is not refused.
    picks = np.unique(np.linspace(0, len(analysed) - 1, min(N_TRIED, len(analysed))))
    tried = [analysed[int(i)] for i in picks]
    as_given = sum(r.responded for _, r in tried)
    flipped = reversed_order(source.positions_m)
    again = analyse_stimuli(
        source.read_uv,
        [stim for stim, _ in tried],
        fs_hz=source.fs_hz,
        positions_m=flipped,
        clip_uv=source.clip_uv,
        mains_hz=source.mains_hz,
        onset_search_s=source.onset_search_s,
    )
    found = [r for r in again if r is not None and r.responded]
    if len(found) < max(2, 3 * as_given + 1):
        return  # not clearly better reversed: the worm did not respond, or noise
    latency = np.asarray(found[0].latency_s, dtype=float)
    first = ""
    if np.isfinite(latency).any():
        c = int(np.nanargmin(latency))
        first = (
            f" (the AP reaches channel {c} first, given as "
            f"{source.positions_m[c] * 1000:g} mm from the head)"
        )
    given_mm = ", ".join(f"{p * 1000:g}" for p in source.positions_m)
    raise PositionsContradicted(
        f"{source.positions_from} = [{given_mm}] mm contradicts the data: "
        f"{len(silent)} of {len(analysed)} stimuli show no propagating AP with "
        f"these positions; of {len(tried)} tried, {as_given} do with them but "
        f"{len(found)} with the positions in the reverse order{first}; give the "
        "positions in channel "
        "order (--electrode-positions-mm)"
    )
