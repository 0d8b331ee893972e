"""Stimulus-locked epochs."""

from __future__ import annotations

import numpy as np


def extract_epochs(
    traces: np.ndarray, onsets: np.ndarray, *, pre: int, post: int
) -> tuple[np.ndarray, np.ndarray]:
    """Epochs ``(n_onsets, pre + post, n_channels)`` and a mask of complete ones.

    Epochs that run off either end of ``traces`` are NaN and masked False.
    """
    x = np.asarray(traces)
    onsets = np.asarray(onsets, dtype=np.int64)
    out = np.full((onsets.size, pre + post, x.shape[1]), np.nan)
    ok = (onsets - pre >= 0) & (onsets + post <= x.shape[0])
    for k in np.flatnonzero(ok):
        out[k] = x[onsets[k] - pre : onsets[k] + post]
    return out, ok
