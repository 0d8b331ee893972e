"""The midline tracking's Numba kernels equal their plain references."""

from __future__ import annotations

import numpy as np
import pytest

from analysis._tracking_kernels import (
    bspline_fit,
    cross_profiles,
    cross_section_edges,
    match_bands,
    strip_means,
    thin,
)
from tests.analysis._tracking_reference import (
    bspline_fit_reference,
    cross_profiles_reference,
    cross_section_edges_reference,
    match_bands_reference,
    strip_means_reference,
    thin_reference,
)


def blobs(seed: int) -> np.ndarray:
    """Thick curved bands and discs, with a one-pixel empty border."""
    import cv2

    rng = np.random.default_rng(seed)
    img = np.zeros((80, 200), np.uint8)
    pts = np.column_stack([np.linspace(10, 190, 30), 40 + 15 * np.sin(
        np.linspace(0, rng.uniform(2, 6), 30))]).astype(np.int32)  # fmt: skip
    cv2.polylines(img, [pts], False, 1, thickness=int(rng.integers(5, 15)))
    for _ in range(3):
        centre = (int(rng.integers(20, 180)), int(rng.integers(15, 65)))
        cv2.circle(img, centre, int(rng.integers(3, 10)), 1, -1)
    img[0, :] = img[-1, :] = img[:, 0] = img[:, -1] = 0
    return img


@pytest.mark.parametrize("seed", range(4))
def test_thinning_kernel_equals_the_reference(seed):
    mask = blobs(seed)
    expected = thin_reference(mask)
    got = thin(mask.copy())
    np.testing.assert_array_equal(got, expected)
    assert 0 < got.sum() < mask.sum() / 4  # it thinned, and kept something


@pytest.mark.parametrize("seed", range(4))
def test_cross_section_edges_kernel_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    x = np.arange(41, dtype=float)
    centre = rng.uniform(15, 25, size=30)
    half = rng.uniform(3, 12, size=30)
    profiles = 60 + 100 / (1 + np.exp(-(half[:, None] - np.abs(x - centre[:, None]))))
    profiles += rng.normal(0, 3, profiles.shape)
    profiles[3] = 60.0  # no body: the centre is below the level
    profiles[4, :20] = 170.0  # no left edge inside the profile
    levels = 0.5 * (60 + profiles.max(axis=1))
    left, right = cross_section_edges(profiles, levels, 20)
    ref_left, ref_right = cross_section_edges_reference(profiles, levels, 20)
    np.testing.assert_allclose(left, ref_left, rtol=0, atol=1e-12)
    np.testing.assert_allclose(right, ref_right, rtol=0, atol=1e-12)
    assert np.isnan(left[3]) and np.isnan(right[3]) and np.isnan(left[4])
    good = np.isfinite(left) & np.isfinite(right)
    np.testing.assert_allclose(0.5 * (left + right)[good], centre[good], atol=1.0)


@pytest.mark.parametrize("seed", range(6))
def test_band_matching_kernel_equals_the_reference(seed):
    rng = np.random.default_rng(seed)
    spacing = 1.0
    rest = np.arange(60, dtype=float) * spacing
    # A smooth deformation up to a few segments, bands lost and spurious ones.
    moved = rest + rng.uniform(-3, 3) * (rest / rest[-1]) ** 2
    kept = moved[rng.random(rest.size) > 0.1]
    found = kept + rng.normal(0, 0.03, kept.size)
    found = np.sort(np.r_[found, rng.uniform(0, 60, size=3)])
    predicted = rest + rng.normal(0, 0.05, rest.size)
    predicted[rng.integers(0, 60)] = np.nan
    got = match_bands(predicted, found, 0.45 * spacing)
    np.testing.assert_array_equal(got, match_bands_reference(predicted, found, 0.45))


def test_band_matching_keeps_identity_where_nearest_neighbour_loses_it():
    rest = np.arange(50, dtype=float)
    moved = rest - 2.0 * rest / rest[-1]  # the tail moves two segments
    got = match_bands(rest, moved, 0.45)
    np.testing.assert_array_equal(got, np.arange(50))
    nearest = np.abs(moved[None, :] - rest[:, None]).argmin(axis=1)
    assert (nearest != np.arange(50)).sum() > 10  # what the old rule did


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_image_sampling_kernels_equal_scipys_bilinear_interpolation(dtype):
    rng = np.random.default_rng(5)
    image = rng.integers(0, 255, (60, 90)).astype(dtype)
    # Points inside, near and past the border (which repeats its pixels).
    points = np.column_stack([rng.uniform(-5, 95, 40), rng.uniform(-5, 65, 40)])
    angle = rng.uniform(0, 2 * np.pi, 40)
    tangents = np.column_stack([np.cos(angle), np.sin(angle)])
    np.testing.assert_allclose(
        cross_profiles(image, points, tangents, 6, 1),
        cross_profiles_reference(image, points, tangents, 6, 1),
        rtol=0,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        strip_means(image, points, tangents, 3),
        strip_means_reference(image, points, tangents, 3),
        rtol=0,
        atol=1e-9,
    )


@pytest.mark.parametrize("seed", range(3))
def test_spline_fit_kernel_equals_numpys_least_squares(seed):
    rng = np.random.default_rng(seed)
    s = np.sort(rng.uniform(0, 400, 70))
    s[0], s[-1] = 0.0, 400.0
    curve = np.column_stack([s, 30 * np.sin(s / 60)])
    points = curve + rng.normal(0, 0.2, curve.shape)
    at = np.arange(-20.0, 421.0)
    got = bspline_fit(s, points, 8, at)
    np.testing.assert_allclose(got, bspline_fit_reference(s, points, 8, at), atol=1e-8)
    inside = (at >= 0) & (at <= 400)
    truth = np.column_stack([at, 30 * np.sin(at / 60)])[inside]
    miss = np.hypot(*(got[inside] - truth).T)  # it smooths the noise, not the curve
    assert np.sqrt(np.mean(miss**2)) < 0.15 and miss.max() < 0.6
