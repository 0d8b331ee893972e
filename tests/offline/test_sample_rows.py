"""The rows' sample numbers found from the runs (rig.offline.load._SampleRows)
equal those of the array ``Recording.sample_numbers()`` builds, over runs with
gaps, runs of no rows, and samples before, inside, between and after them."""

from __future__ import annotations

import numpy as np
import pytest

from rig.offline.load import _SampleRows


def _numbers(runs: np.ndarray, n_rows: int) -> np.ndarray:
    """``Recording.sample_numbers()``'s rule: each run's rows count up from
    its first sample, up to the next run's row."""
    out = np.empty(n_rows, dtype=np.int64)
    bounds = [*runs[:, 0].tolist(), n_rows]
    for (row, first), stop in zip(runs, bounds[1:], strict=True):
        out[row:stop] = first + np.arange(stop - row)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_rows_from_the_runs_equal_the_array_of_every_row(seed):
    rng = np.random.default_rng(seed)
    met_empty_run = False
    for _ in range(100):
        n_rows = int(rng.integers(0, 50))
        k = int(rng.integers(1, 6))
        rows = np.sort(rng.integers(0, max(n_rows, 1), k))
        rows[0] = 0
        firsts = [int(rng.integers(0, 20))]
        for j in range(1, k):  # the reader's rule: numbers increase with rows
            firsts.append(
                firsts[-1] + int(rows[j] - rows[j - 1]) + int(rng.integers(0, 4))
            )
        met_empty_run |= bool((np.diff(rows) == 0).any())
        runs = np.column_stack([rows, firsts]).astype(np.int64)
        numbers = _numbers(runs, n_rows)
        found = _SampleRows(runs, n_rows)
        top = int(numbers.max()) if n_rows else 5
        for sample in range(-3, top + 4):
            assert found.first_at_or_after(sample) == int(
                np.searchsorted(numbers, sample)
            )
        for row in range(n_rows):
            assert found.number(row) == numbers[row]
    assert met_empty_run
