"""The simulated camera's worm that bends and crawls: its ground truth and its
drawing agree, checked on the pixels (no tracking involved)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from firmware_bridge.sim import (
    CameraOptics,
    SimulatedRig,
    WormModel,
    WormParams,
    render_worm_frame,
)
from firmware_bridge.sim.posture import Posture, body_positions_m, boundaries_xy_m

BENDING = WormParams(bend_amplitude_rad=0.6, crawl_speed_m_per_s=0.004)


def test_the_default_worm_is_straight_and_drawn_as_before():
    model = WormModel(seed=1)
    assert Posture(model).still
    bounds = model.segment_boundaries_m(0)
    xy = boundaries_xy_m(model, 0)
    np.testing.assert_allclose(xy[:, 0], bounds, atol=1e-9)
    np.testing.assert_allclose(xy[:, 1], 0.0, atol=1e-12)


def test_a_bent_body_keeps_its_length_along_the_centre_line():
    model = WormModel(BENDING, seed=1)
    model.stimulate(3000, 5.0, 3e-3)
    for sample in (0, 9000, 45_000):
        along = body_positions_m(model, sample)
        xy = boundaries_xy_m(model, sample)
        chords = np.hypot(*np.diff(xy, axis=0).T)
        # Chords of ~1 mm on a bend of radius ≥ 21 mm: within 1e-4 of the arcs.
        np.testing.assert_allclose(chords, np.diff(along), rtol=2e-4)
        assert np.ptp(xy[:, 1]) > 0.01  # it does bend across the raceway (m)
        assert xy[-1, 0] - xy[0, 0] < 0.97 * (along[-1] - along[0])


def test_the_head_crawls_forward_then_back_within_its_range():
    model = WormModel(BENDING, seed=1)
    posture = Posture(model)
    t = np.arange(0.0, 12.0, 0.25)
    head = np.array([posture.head_x_m(s) for s in t])
    rest, reach = model.geometry.head_on_raceway_m, BENDING.crawl_range_m
    assert head.min() == pytest.approx(rest - reach)
    assert head.max() == pytest.approx(rest)
    speed = np.abs(np.diff(head)) / 0.25
    assert speed.max() == pytest.approx(BENDING.crawl_speed_m_per_s, rel=1e-6)
    np.testing.assert_allclose(boundaries_xy_m(model, 30_000)[0], [head[4], 0.0])


def test_the_drawing_puts_body_and_bands_where_the_truth_says():
    optics = CameraOptics()
    model = WormModel(BENDING, seed=1)
    sample = 21_000
    posture = Posture(model)
    frame = render_worm_frame(
        model.segment_boundaries_m(sample), optics, posture=posture,
        time_s=sample / model.fs_hz,
    ).astype(float)  # fmt: skip
    along = body_positions_m(model, sample)
    xy = boundaries_xy_m(model, sample)
    mid = 0.5 * (along[1:] + along[:-1])  # the middle of each segment
    scale = optics.px_per_mm * 1000

    def at(s_m, across_px=0.0):
        p = posture.points_xy_m(s_m, sample / model.fs_hz)
        step = np.gradient(p, axis=0)
        normal = np.column_stack([-step[:, 1], step[:, 0]])
        normal /= np.hypot(*normal.T)[:, None]
        uv = optics.raceway_to_undistorted_px(p[:, 0], p[:, 1]) + across_px * normal
        return frame[np.rint(uv[:, 1]).astype(int), np.rint(uv[:, 0]).astype(int)]

    inner = slice(20, -20)  # away from the tapered ends
    assert np.median(at(mid)[inner]) > 140  # the body lies on the centre-line
    assert np.median(at(mid, 0.5 * 8e-3 * scale + 3)[inner]) < 100  # edge: outside
    # Each boundary (a pixel at it) is darker than the segment after it.
    uv = optics.raceway_to_undistorted_px(*xy[20:-21].T)
    on_band = frame[np.rint(uv[:, 1]).astype(int), np.rint(uv[:, 0]).astype(int)]
    assert np.mean(on_band < at(mid)[inner]) > 0.9


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bend_amplitude_rad", 1.5),
        ("bend_amplitude_rad", -0.1),
        ("bend_wavelength_m", 0.0),
        ("bend_period_s", -1.0),
        ("crawl_speed_m_per_s", -0.001),
        ("crawl_speed_m_per_s", 0.5),
        ("crawl_range_m", 0.0),
    ],
)
def test_a_posture_out_of_range_is_refused_in_one_line(field, value):
    with pytest.raises(ValueError, match=field) as info:
        WormParams(**{field: value})
    assert "\n" not in str(info.value)


def test_the_rigs_camera_films_the_bending_worm():
    with SimulatedRig(seed=4, params=BENDING) as rig:
        camera = rig.camera()
        assert camera.posture is not None
        got = []
        camera.start(lambda frame, t: got.append(frame))
        rig.board.camera_period = 3000
        rig.board.camera_next = rig.board.sample + 1
        deadline = time.monotonic() + 10
        while len(got) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        camera.stop()
    assert len(got) >= 3
    # The body's middle row differs from column to column: it is not straight.
    frame = got[0].astype(float)
    cols = np.arange(150, 450, 50)
    centre_rows = [
        np.argmax(np.convolve(frame[:, c], np.ones(9), "same")) for c in cols
    ]
    assert np.ptp(centre_rows) > 10
