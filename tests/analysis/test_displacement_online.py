"""The displacement rule a frame at a time gives exactly the batch call's values.

As for the spike detector (test_online.py): the online form is fed one frame at
a time, and after every frame the rows it has given so far must equal
``displacement`` on the frames so far, NaN for NaN, including while fewer than
``rest_frames`` frames have come (each frame then revises the earlier ones).
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.displacement import (
    OnlineDisplacement,
    displacement,
    region_displacement,
)

# Rest positions 10, 20, ... 80 mm: region 0 holds three bands, region 1 one
# (no strain), region 2 none.
REGIONS = [(15.0, 42.0), (48.0, 52.0), (200.0, 210.0)]


def track(seed: int = 7, n_frames: int = 40) -> list[np.ndarray]:
    """Band positions per frame (mm): a contraction, lost bands, lost frames."""
    rng = np.random.default_rng(seed)
    rest = np.arange(10.0, 81.0, 10.0)  # 8 bands
    t = np.arange(n_frames)
    squeeze = 0.04 * np.exp(-(((t - 20) / 5.0) ** 2))  # a twitch toward the head
    pos = rest * (1 - squeeze[:, None]) + rng.normal(0, 0.02, (n_frames, rest.size))
    pos[0, 1] = np.nan  # a band lost during the rest frames...
    pos[1, 3] = np.nan
    pos[:3, 7] = np.nan  # ...and one never seen at rest: it counts nowhere
    lost = rng.random(pos.shape) < 0.1  # bands lost here and there
    lost[:5] = False  # (but the rest frames lose only the two above)
    pos[lost] = np.nan
    pos[12] = np.nan  # tracking lost for a whole frame
    rows = list(pos)
    rows[25] = rows[25][:5]  # a frame the tracker gave fewer bands
    rows[30] = np.r_[rows[30], 95.0]  # and one with a band more
    return rows


def padded(rows: list[np.ndarray]) -> np.ndarray:
    out = np.full((len(rows), max(r.size for r in rows)), np.nan)
    for i, r in enumerate(rows):
        out[i, : r.size] = r
    return out


@pytest.mark.parametrize("rest_frames", [1, 3, 5])
def test_frames_fed_one_at_a_time_equal_the_batch_call_after_every_frame(
    rest_frames,
):
    frames = track()
    online = OnlineDisplacement(REGIONS, rest_frames=rest_frames)
    region, strain, body = [], [], []
    for n, frame in enumerate(frames, start=1):
        rows = online.process(frame)
        assert rows.first_frame == (0 if n <= rest_frames else n - 1)
        del region[rows.first_frame :], strain[rows.first_frame :]
        del body[rows.first_frame :]
        region += list(rows.region_mm)
        strain += list(rows.strain)
        body += list(rows.body_mm)
        batch = displacement(padded(frames[:n]), REGIONS, rest_frames=rest_frames)
        np.testing.assert_array_equal(np.array(region), batch.region_mm)
        np.testing.assert_array_equal(np.array(strain), batch.strain)
        np.testing.assert_array_equal(np.array(body), batch.body_mm)
    # The track exercised what it was built for.
    assert np.isnan(batch.region_mm[12]).all() and np.isnan(batch.body_mm[12])
    assert np.isnan(batch.region_mm[:, 2]).all()  # no band rests in region 2
    assert np.isnan(batch.strain[:, 1]).all()  # one band: no length
    assert np.isfinite(batch.strain[:, 0]).mean() > 0.5
    assert batch.region_mm[20, 0] < -0.5  # the twitch is there


def test_rest_is_the_mean_of_the_first_frames_not_the_first_frame():
    # The rule live tracking used to have (rest = first frame) gives other values.
    frames = track()
    rows = OnlineDisplacement(REGIONS).process
    for frame in frames[:3]:
        rows(frame)
    later = rows(frames[3])
    first_frame_rest = frames[0]
    old = np.nanmean(frames[3][:7] - first_frame_rest[:7])
    assert abs(later.body_mm[0] - old) > 1e-3
    rest = np.nanmean(padded(frames[:3])[:, :7], axis=0)  # band 7: never at rest
    assert later.body_mm[0] == pytest.approx(np.nanmean(frames[3][:7] - rest))


def test_region_displacement_is_the_batch_rules_region_columns():
    pos = padded(track())
    d = displacement(pos, REGIONS)
    disp, strain = region_displacement(pos, REGIONS)
    np.testing.assert_array_equal(disp, d.region_mm)
    np.testing.assert_array_equal(strain, d.strain)


def test_no_frame_gives_no_warning_and_no_rows_before_the_first():
    frames = [np.full(4, np.nan), np.array([]), np.full(4, np.nan)]
    online = OnlineDisplacement(REGIONS)
    for frame in frames:  # filterwarnings = error: an all-NaN mean would raise
        rows = online.process(frame)
    assert rows.region_mm.shape == (3, 3) and np.isnan(rows.body_mm).all()
    with pytest.raises(ValueError, match="rest_frames"):
        OnlineDisplacement(REGIONS, rest_frames=0)
