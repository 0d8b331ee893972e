import numpy as np

from rig.gui.traces import minmax_decimate


def test_every_bins_extremes_survive_at_their_bins_centre_time():
    fs = 30_000.0
    rng = np.random.default_rng(4)
    data = rng.normal(0, 5, (60_007, 3)).astype(np.float32)
    data[31_234, 1] = 400.0  # a one-sample spike a stride would skip
    t, shown = minmax_decimate(data, fs, n_bins=500)
    assert shown.shape == (1000, 3) and t.shape == (1000,)
    per_bin, used = 120, 60_000
    binned = data[-used:].reshape(500, per_bin, 3)
    assert np.array_equal(shown[0::2], binned.min(axis=1))
    assert np.array_equal(shown[1::2], binned.max(axis=1))
    assert shown[:, 1].max() == 400.0
    # The times the whole window had: sample i of n at (i - n) / fs.
    times = (np.arange(60_007) - 60_007) / fs
    centres = times[-used:].reshape(500, per_bin)[:, [0, -1]].mean(axis=1)
    assert np.allclose(t[0::2], centres) and np.allclose(t[1::2], centres)


def test_short_windows_are_drawn_sample_by_sample():
    data = np.arange(10, dtype=np.float32)[:, None]
    t, shown = minmax_decimate(data, 1000.0, n_bins=8)
    assert shown is data and np.allclose(t, (np.arange(10) - 10) / 1000.0)
