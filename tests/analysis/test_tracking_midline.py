"""Tracking along the midline: a worm that bends, crawls and twitches.

Two independent sources of frames with known band positions: the simulator's
camera (firmware_bridge.sim: its own drawing of a bent body, from the model's
segment positions and posture), and frames drawn here with OpenCV's polygon and
line drawing (a curved body with bands at known arc lengths), which share
nothing with either the simulator or the tracker.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from analysis.displacement import displacement, electrode_regions_mm, stimulus_motion
from analysis.midline import MidlineTracker, track_midline
from firmware_bridge.sim import CameraOptics, WormModel, WormParams, render_worm_frame
from firmware_bridge.sim.posture import Posture, body_positions_m, boundaries_xy_m

FS = 30_000
FPS = 60


def filmed(params: WormParams, *, seconds=1.5, k1=-0.06, n_stim=2, seed=3):
    """Rendered frames of a stimulated worm, and the truth at each frame."""
    optics = CameraOptics(k1=k1)
    model = WormModel(params, seed=seed, fs_hz=FS)
    for k in range(n_stim):
        model.stimulate(3000 + k * FS // 2, 5.0, 3e-3)  # twitches overlap
    samples = np.arange(0, int(seconds * FS), FS // FPS)
    posture = Posture(model)
    bounds = model.segment_boundaries_m(samples)
    frames = [
        render_worm_frame(
            bounds[i], optics, frame_index=i, time_s=samples[i] / FS,
            posture=None if posture.still else posture,
        )
        for i in range(samples.size)
    ]  # fmt: skip
    along_mm = body_positions_m(model, samples) * 1000
    xy_mm = boundaries_xy_m(model, samples) * 1000
    return optics, model, frames, along_mm, xy_mm


def kwargs(optics):
    return dict(
        px_per_mm=optics.px_per_mm, origin_px=optics.origin_px,
        camera_matrix=optics.camera_matrix(), dist_coeffs=optics.dist_coeffs(),
    )  # fmt: skip


def which_boundary(track, along_mm):
    """Each tracked band's boundary index: the nearest in the first frame."""
    first = track.positions_mm[0]
    return np.array([np.argmin(np.abs(along_mm[0] - x)) for x in first])


BENDING = WormParams(
    habituation_per_stimulus=0.0, bend_amplitude_rad=0.5, crawl_speed_m_per_s=0.003
)


@pytest.fixture(scope="module")
def bending():
    return filmed(BENDING)


def test_bending_crawling_worm_is_tracked_within_0_05_mm(bending):
    optics, model, frames, along, xy = bending
    head_x = xy[:, 0, 0]
    assert head_x[-1] < head_x[0] - 3.0  # it crawled (mm)
    assert np.ptp(xy[0, :, 1]) > 10.0  # and bends across the raceway (mm)
    track = track_midline(frames, **kwargs(optics))
    index = which_boundary(track, along)
    assert track.positions_mm.shape[1] >= 130  # almost every boundary is a band
    assert np.isnan(track.positions_mm).mean() < 0.01
    # On the raceway: each band where the boundary is.
    miss = np.hypot(*(track.xy_mm - xy[:, index]).transpose(2, 0, 1))
    assert np.sqrt(np.nanmean(miss**2)) < 0.05
    np.testing.assert_allclose(track.head_xy_mm, xy[:, 0], atol=0.3)
    # Along the body: displacement from the rest (the first 3 frames) as true.
    moved = track.positions_mm - np.nanmean(track.positions_mm[:3], axis=0)
    truth = along[:, index] - along[:3, index].mean(axis=0)
    assert np.abs(truth).max() > 3.0  # the twitches are there
    assert np.sqrt(np.nanmean((moved - truth) ** 2)) < 0.05
    # Positions along the body, from the head: within a fraction of a pixel.
    assert np.nanmean(np.abs(track.positions_mm - along[:, index])) < 0.25


def test_region_displacement_and_strain_along_a_bending_body(bending):
    optics, model, frames, along, _ = bending
    track = track_midline(frames, **kwargs(optics))
    index = which_boundary(track, along)
    regions = electrode_regions_mm(model.geometry.pair_centres_m() * 1000)
    got = displacement(track.positions_mm, regions)
    want = displacement(along[:, index], regions)
    assert np.nanmax(np.abs(want.region_mm)) > 1.0
    # Each region's mean of ~19 bands: mostly the head tip's frame-to-frame error.
    assert np.sqrt(np.nanmean((got.region_mm - want.region_mm) ** 2)) < 0.04
    np.testing.assert_allclose(got.region_mm, want.region_mm, atol=0.12)
    np.testing.assert_allclose(got.strain, want.strain, atol=0.008)
    assert np.sqrt(np.nanmean((got.strain - want.strain) ** 2)) < 0.003
    assert np.nanmin(want.strain) < -0.01  # the regions shorten


def sliding_frames(bend: float, tail_steps, shift_steps):
    """Frames where, between one frame and the next, the tail band moves
    ``tail_steps[i]`` segments toward the head (a contraction, head anchored)
    and the whole body slides ``shift_steps[i]`` segments along itself."""
    optics = CameraOptics()
    model = WormModel(WormParams(bend_amplitude_rad=bend), seed=3)
    posture = Posture(model)
    rest = model.segment_boundaries_m(0)
    head, length = rest[0], rest[-1] - rest[0]
    spacing = length / model.geometry.n_segments
    frames, along = [], []
    tail = np.cumsum(tail_steps) * spacing
    shift = np.cumsum(shift_steps) * spacing
    for i, (t, s) in enumerate(zip(tail, shift, strict=True)):
        bounds = head + (rest - head) * (1 - t / length)
        along.append(bounds - head)
        frames.append(render_worm_frame(
            bounds + s, optics, frame_index=i,
            posture=None if posture.still else posture,
        ))  # fmt: skip
    return optics, frames, np.array(along) * 1000, spacing * 1000


TWITCH = [0, 0, 0, 1, 1, 1, 0.5, -1, -1, -1, -0.5, 0, 1, -1, 1, -1, 0]
JERK = [0, 0, 0, 1, 1, -1, -1, 1, -1, -1, 0, 1, -1, 0, 0, 0, 0]


@pytest.mark.parametrize("bend", [0.0, 0.5])
@pytest.mark.parametrize("kind", ["contraction", "jerk", "both"])
def test_identity_is_kept_through_twitches_of_a_segment_per_frame(bend, kind):
    tail = TWITCH if kind != "jerk" else [0] * len(JERK)
    shift = JERK if kind != "contraction" else [0] * len(TWITCH)
    optics, frames, along, spacing = sliding_frames(bend, tail, shift)
    track = track_midline(frames, px_per_mm=optics.px_per_mm)
    index = which_boundary(track, along)
    moved = track.positions_mm - track.positions_mm[0]
    truth = along[:, index] - along[0, index]
    # Bands move a whole segment between frames, on the body or with it.
    step = np.hypot(*np.diff(track.xy_mm, axis=0).transpose(2, 0, 1))
    assert np.nanmax(step) >= 0.95 * spacing
    error = np.abs(moved - truth)
    # A band taken for its neighbour would be a whole segment (~1.07 mm) out.
    assert np.nanmax(error) < 0.2 * spacing
    assert np.isnan(moved).mean() < 0.01


# ---------------------------------------------------------------- drawn frames

PX_PER_MM = 3.2
RADIUS_PX = 300.0  # the body bends along this circle
BODY_HALF_PX = 11.0
BAND_PX = 4.0  # band spacing along the body at rest
N_BANDS = 90


def arc_point(s_px, shift_px=0.0):
    """Point and unit normal ``s_px`` along an arc from its head end."""
    phi = -0.7 + (s_px + shift_px) / RADIUS_PX
    point = np.stack([320 + RADIUS_PX * np.sin(phi), -40 + RADIUS_PX * np.cos(phi)], -1)
    normal = np.stack([np.sin(phi), np.cos(phi)], -1)
    return point, normal


def drawn_worm(bands_px, length_px, *, shift_px=0.0, seed=0):
    """A curved body with dark bands at arc lengths ``bands_px`` (from the
    head), drawn with OpenCV: a filled polygon (flat ends) and 1-px lines
    across it, anti-aliased, at 1/16-px precision, plus noise."""
    import cv2

    s = np.linspace(0.0, length_px, 400)
    p, n = arc_point(s, shift_px)
    outline = np.vstack([p + BODY_HALF_PX * n, (p - BODY_HALF_PX * n)[::-1]])
    body = np.zeros((480, 640), np.uint8)
    cv2.fillPoly(body, [np.round(outline * 16).astype(np.int32)], 255,
                 cv2.LINE_AA, shift=4)  # fmt: skip
    marks = np.zeros_like(body)
    bp, bn = arc_point(np.asarray(bands_px), shift_px)
    for q, m in zip(bp, bn, strict=True):
        a = np.round((q - 13 * m) * 16).astype(int)
        b = np.round((q + 13 * m) * 16).astype(int)
        cv2.line(marks, tuple(a), tuple(b), 255, 1, cv2.LINE_AA, shift=4)
    alpha, dark = body / 255.0, marks / 255.0
    image = 50.0 + alpha * (120.0 - 80.0 * dark)
    image += np.random.default_rng(seed).normal(0, 3, image.shape)
    truth_xy = bp / PX_PER_MM
    return np.clip(image, 0, 255).astype(np.uint8), truth_xy


def test_a_curved_band_pattern_drawn_with_opencv_is_tracked():
    bands = 8.0 + BAND_PX * np.arange(N_BANDS)
    frames, truth = [], []
    for k in range(5):
        frame, xy = drawn_worm(bands, 376.0, shift_px=0.37 * k, seed=k)
        frames.append(frame)
        truth.append(xy)
    track = track_midline(frames, px_per_mm=PX_PER_MM)
    assert track.positions_mm.shape[1] == N_BANDS
    miss = np.hypot(*(track.xy_mm - np.array(truth)).transpose(2, 0, 1))
    assert np.sqrt(np.mean(miss**2)) < 0.05  # mm; 0.16 px
    # Along the body: the arc lengths between bands, and from the head.
    np.testing.assert_allclose(
        np.diff(track.positions_mm, axis=1), BAND_PX / PX_PER_MM, atol=0.05
    )
    # From the head: within a pixel (OpenCV's anti-aliased fill reaches a
    # fraction of a pixel past the polygon's edge).
    np.testing.assert_allclose(
        track.positions_mm, np.tile(bands / PX_PER_MM, (5, 1)), atol=1 / PX_PER_MM
    )


def test_drawn_bands_keep_identity_through_a_segment_per_frame():
    rest = 8.0 + BAND_PX * np.arange(N_BANDS)
    # The body shortens toward its head: the last band moves up to a whole
    # spacing per frame, and back.
    tail_moves = np.cumsum([0, 0, 0, 1, 1, 1, -1, -1, 0.5, -1.5, 0, 1, -1]) * BAND_PX
    frames, truth = [], []
    for k, t in enumerate(tail_moves):
        scale = 1 - t / rest[-1]
        frame, _ = drawn_worm(rest * scale, 376.0 * scale, seed=k)
        frames.append(frame)
        truth.append(rest * scale / PX_PER_MM)
    track = track_midline(frames, px_per_mm=PX_PER_MM)
    moved = track.positions_mm - track.positions_mm[0]
    want = np.array(truth) - truth[0]
    assert np.abs(np.diff(want, axis=0)).max() >= BAND_PX / PX_PER_MM * 0.99
    assert np.nanmax(np.abs(moved - want)) < 0.25 * BAND_PX / PX_PER_MM


# ---------------------------------------------------------------- the tracker


def test_online_tracker_equals_batch_tracking(bending):
    optics, _, frames, _, _ = bending
    batch = track_midline(frames[:20], **kwargs(optics)).positions_mm
    tracker = MidlineTracker(**kwargs(optics))
    online = np.array([tracker.process(f) for f in frames[:20]])
    np.testing.assert_array_equal(online, batch)


def test_a_worm_lost_for_frames_is_picked_up_again_with_its_bands():
    optics, _, frames, along, _ = filmed(BENDING, seconds=0.5, n_stim=1, k1=0.0)
    blank = np.full_like(frames[0], 60)
    tracker = MidlineTracker(px_per_mm=optics.px_per_mm)
    first = tracker.process(frames[0])
    for _ in range(3):
        assert np.isnan(tracker.process(blank)).all()
    assert tracker.frames_lost == 3
    again = tracker.process(frames[20])
    index = np.array([np.argmin(np.abs(along[0] - x)) for x in first])
    moved, truth = again - first, along[20, index] - along[0, index]
    assert np.nanmax(np.abs(moved - truth)) < 0.15
    assert np.isfinite(again).mean() > 0.95


def test_image_points_of_positions_along_the_body(bending):
    optics, _, frames, along, _ = bending
    tracker = MidlineTracker(px_per_mm=optics.px_per_mm, origin_px=optics.origin_px)
    positions = tracker.process(frames[0])
    points = tracker.image_points_px(positions[[10, 60]])
    np.testing.assert_allclose(points, tracker.last_bands_px[[10, 60]], atol=1e-9)
    assert np.isnan(tracker.image_points_px(np.array([-5.0, 1e4]))).all()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: MidlineTracker(px_per_mm=0.0), "px_per_mm must be > 0"),
        (lambda: MidlineTracker(px_per_mm=3, origin_px=(1, 2, 3)), "origin_px"),
        (
            lambda: MidlineTracker(px_per_mm=3).process(np.zeros((4, 5, 3))),
            "grayscale",
        ),
    ],
)
def test_bad_input_is_one_clear_line(make, message):
    with pytest.raises(ValueError, match=message) as info:
        make()
    assert "\n" not in str(info.value)


def test_frames_without_a_worm_give_nan_not_an_error():
    tracker = MidlineTracker(px_per_mm=3.2)
    noise = np.random.default_rng(0).integers(0, 255, (480, 640)).astype(np.uint8)
    for frame in (np.zeros((480, 640), np.uint8), noise, np.zeros((8, 8), np.uint8)):
        assert tracker.process(frame).size == 0  # no band was ever seen
    assert tracker.frames_lost == 3


@settings(max_examples=60, deadline=None)
@given(
    image=hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
        shape=hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=80),
        elements=st.integers(0, 255),
    ),
    blob=st.booleans(),
)
def test_any_image_gives_positions_or_nan_never_an_error(image, blob):
    # Whatever is filmed (a blank, noise, a blob too small or oddly shaped
    # for a worm, one pixel), the tracker answers with band positions or NaN.
    if blob and min(image.shape) > 10:
        image[image.shape[0] // 3 : image.shape[0] // 2, 2:-2] = 200
    tracker = MidlineTracker(px_per_mm=3.2)
    for _ in range(2):
        out = tracker.process(image)
        assert out.ndim == 1
    assert tracker.frames == 2


def test_a_baseline_of_frames_sharing_one_time_is_no_trend_and_no_warning():
    # Live frames stamped with the newest trigger can share a time; two such
    # frames are not a trend (np.polyfit would warn, and pytest fail, here).
    t = np.array([0.0, 0.9, 0.9, 1.0, 1.1, 1.2])
    y = np.array([0.0, 0.1, 0.2, 0.3, 0.5, 0.2])
    [response] = stimulus_motion(y, t, np.array([0.95]))
    assert np.isnan(response.peak_displacement_mm)
    t[1] = 0.85  # two times: a trend
    [response] = stimulus_motion(y, t, np.array([0.95]))
    assert response.peak_displacement_mm > 0.2
