"""The numpy GP posterior equals scikit-learn's with the same fixed kernel."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

from rig.closed_loop._gp import KernelParams, posterior


@pytest.mark.parametrize("n", [2, 7, 40])
def test_posterior_matches_sklearn_with_fixed_hyperparameters(n):
    rng = np.random.default_rng(n)
    x = rng.random((n, 2))
    y = np.sin(4 * x[:, 0]) * x[:, 1] + 0.05 * rng.standard_normal(n)
    kernel = ConstantKernel(1.7) * Matern(length_scale=(0.25, 0.6), nu=2.5)
    kernel = kernel + WhiteKernel(0.02)
    gp = GaussianProcessRegressor(kernel, normalize_y=True, optimizer=None)
    gp.fit(x, y)
    candidates = rng.random((300, 2))
    mean_ref, std_ref = gp.predict(candidates, return_std=True)
    mean, std = posterior(x, y, candidates, KernelParams.from_sklearn(gp.kernel_))
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(std, std_ref, rtol=1e-6, atol=1e-9)


def matern52_reference(a, b, params):
    """Plain numpy Matérn 5/2 (the Numba kernel must match it)."""
    d = (a[:, None, :] - b[None, :, :]) / np.asarray(params.length_scale)
    s = np.sqrt(5.0) * np.sqrt((d * d).sum(axis=2))
    return params.constant * (1 + s + s * s / 3) * np.exp(-s)


def test_numba_matern_kernel_matches_the_numpy_reference():
    from rig.closed_loop._gp import matern52

    rng = np.random.default_rng(5)
    a, b = rng.random((1681, 2)), rng.random((37, 2))
    params = KernelParams(2.3, (0.2, 0.9), 0.01)
    np.testing.assert_allclose(
        matern52(a, b, params), matern52_reference(a, b, params), rtol=1e-12
    )


@pytest.mark.parametrize("n", [2, 9, 50])
def test_prepared_posterior_plus_the_newest_point_equals_the_full_posterior(n):
    from rig.closed_loop._gp import PreparedPosterior

    rng = np.random.default_rng(n)
    x = rng.random((n, 2))
    y = np.sin(6 * x[:, 1]) + 0.1 * rng.standard_normal(n)
    candidates = rng.random((500, 2))
    params = KernelParams(0.8, (0.3, 0.15), 0.05)
    prepared = PreparedPosterior(x[:-1], candidates, params)
    mean, std = prepared.with_newest(x[-1], y)
    mean_ref, std_ref = posterior(x, y, candidates, params)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(std, std_ref, rtol=1e-7, atol=1e-10)
