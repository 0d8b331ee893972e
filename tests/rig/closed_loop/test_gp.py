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


# ------------------------------------------------------------ the mixed kernel


def mixed_features(rng, n):
    """Feature rows as MixedSpace.features makes them: 4 unit axes, site (m),
    anode offset (0 = common return), polarity."""
    return np.column_stack([
        rng.random((n, 4)),
        rng.choice([0.004, 0.02, 0.036, 0.052], n),
        rng.choice([0.0, 1.0, -1.0], n),
        rng.integers(0, 2, n).astype(float),
    ])  # fmt: skip


def mixed_kernel_reference(a, b, p):
    """Plain numpy product kernel (the Numba one must match it)."""
    d = (a[:, None, :4] - b[None, :, :4]) / np.asarray(p.length_scale)
    s = np.sqrt(5.0) * np.sqrt((d * d).sum(axis=2))
    t = np.sqrt(5.0) * np.abs(a[:, None, 4] - b[None, :, 4]) / p.site_length_m
    k = p.constant * (1 + s + s * s / 3) * np.exp(-s) * (1 + t + t * t / 3) * np.exp(-t)
    k = k * np.where(a[:, None, 5] != b[None, :, 5], p.anode_correlation, 1.0)
    return k * np.where(a[:, None, 6] != b[None, :, 6], p.polarity_correlation, 1.0)


def mixed_params():
    from rig.closed_loop._gp import MixedKernelParams

    return MixedKernelParams(1.3, (0.2, 0.5, 0.7, 1.1), 0.015, 0.4, 0.7, 0.03)


def test_numba_mixed_kernel_matches_the_numpy_reference():
    from rig.closed_loop._gp import mixed_kernel

    rng = np.random.default_rng(2)
    a, b = mixed_features(rng, 700), mixed_features(rng, 41)
    p = mixed_params()
    np.testing.assert_allclose(
        mixed_kernel(a, b, p), mixed_kernel_reference(a, b, p), rtol=1e-12
    )
    # it is a covariance: symmetric, positive definite on distinct points
    k = mixed_kernel(a[:60], a[:60], p)
    np.testing.assert_allclose(k, k.T, rtol=1e-12)
    assert np.linalg.eigvalsh(k + 1e-9 * np.eye(60)).min() > 0


def test_mixed_likelihood_gradient_matches_finite_differences():
    from rig.closed_loop._gp import _theta, log_marginal_likelihood

    rng = np.random.default_rng(3)
    x = mixed_features(rng, 25)
    y = np.sin(3 * x[:, 0]) + 20 * x[:, 4] + 0.1 * rng.standard_normal(25)
    yn = (y - y.mean()) / y.std()
    theta = _theta(mixed_params())
    _, grad = log_marginal_likelihood(theta, x, yn)
    step = 1e-6
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += step
        down[i] -= step
        numeric = (
            log_marginal_likelihood(up, x, yn)[0]
            - log_marginal_likelihood(down, x, yn)[0]
        ) / (2 * step)
        assert grad[i] == pytest.approx(numeric, rel=1e-4, abs=1e-6), i


def test_mixed_likelihood_at_one_configuration_equals_scikit_learn():
    """With one site, anode and polarity the kernel is c·Matérn(ARD) + white:
    scikit-learn's log marginal likelihood (normalize_y) must agree."""
    from rig.closed_loop._gp import _theta, log_marginal_likelihood

    rng = np.random.default_rng(4)
    x = mixed_features(rng, 30)
    x[:, 4:] = (0.02, 1.0, 0.0)
    y = np.cos(5 * x[:, 1]) * x[:, 0] + 0.05 * rng.standard_normal(30)
    p = mixed_params()
    kernel = ConstantKernel(p.constant) * Matern(length_scale=p.length_scale, nu=2.5)
    gp = GaussianProcessRegressor(kernel + WhiteKernel(p.noise), optimizer=None)
    yn = (y - y.mean()) / y.std()
    gp.fit(x[:, :4], yn)
    lml, _ = log_marginal_likelihood(_theta(p), x, yn)
    assert lml == pytest.approx(gp.log_marginal_likelihood_value_, rel=1e-9)


def test_fitting_the_mixed_kernel_raises_the_likelihood_and_learns_the_site_scale():
    from rig.closed_loop._gp import (
        DEFAULT_MIXED,
        _theta,
        fit_mixed,
        log_marginal_likelihood,
    )

    rng = np.random.default_rng(5)
    x = mixed_features(rng, 80)
    x[:, 4] = rng.uniform(0.0, 0.1, 80)  # sites spread along 100 mm
    y = np.exp(-(((x[:, 4] - 0.06) / 0.02) ** 2)) * x[
        :, 0
    ] + 0.02 * rng.standard_normal(80)
    varied = np.array([True, True, False, False, True, True, True])
    fitted = fit_mixed(x, y, varied)
    yn = (y - y.mean()) / y.std()
    assert (
        log_marginal_likelihood(_theta(fitted), x, yn)[0]
        > log_marginal_likelihood(_theta(DEFAULT_MIXED), x, yn)[0] + 5
    )
    assert 0.005 < fitted.site_length_m < 0.1  # the bump's 20 mm width, roughly
    assert fitted.length_scale[2:] == DEFAULT_MIXED.length_scale[2:]  # not varied


@pytest.mark.parametrize("n", [3, 30])
def test_mixed_prepared_posterior_extended_and_with_newest_equal_the_full_posterior(n):
    from rig.closed_loop._gp import PreparedPosterior

    rng = np.random.default_rng(n)
    x = mixed_features(rng, n)
    y = x[:, 0] * np.sin(40 * x[:, 4]) + 0.1 * rng.standard_normal(n)
    candidates = mixed_features(rng, 400)
    p = mixed_params()
    prepared = PreparedPosterior(x[:1], candidates, p, y[:1]).extended(x[1:-1], y[1:-1])
    mean, std = prepared.with_newest(x[-1], y)
    mean_ref, std_ref = posterior(x, y, candidates, p)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(std, std_ref, rtol=1e-7, atol=1e-9)


def test_prepared_posterior_without_the_old_targets_computes_them_at_the_decision():
    from rig.closed_loop._gp import PreparedPosterior

    rng = np.random.default_rng(8)
    x = mixed_features(rng, 12)
    y = rng.random(12)
    candidates = mixed_features(rng, 50)
    p = mixed_params()
    prepared = PreparedPosterior(x[:5], candidates, p).extended(x[5:-1])
    mean, std = prepared.with_newest(x[-1], y)
    mean_ref, std_ref = posterior(x, y, candidates, p)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(std, std_ref, rtol=1e-7, atol=1e-9)


def test_expecting_the_next_point_gives_the_same_posterior_and_is_used():
    """``expect`` computes the pending point's row ahead: the decision's
    posterior is unchanged, the decision then does no O(n·m) work for it, and
    another point observed instead (a user's override) is still right."""
    from rig.closed_loop import _gp
    from rig.closed_loop._gp import PreparedPosterior

    rng = np.random.default_rng(11)
    x = mixed_features(rng, 40)
    y = x[:, 1] * np.cos(30 * x[:, 4]) + 0.1 * rng.standard_normal(40)
    candidates = mixed_features(rng, 300)
    p = mixed_params()
    prepared = PreparedPosterior(x[:-1], candidates, p, y[:-1])
    prepared.expect(x[-1])
    calls = []
    original = _gp.PreparedPosterior._compute_row

    def counting(self, x_new):
        calls.append(x_new)
        return original(self, x_new)

    _gp.PreparedPosterior._compute_row = counting
    try:
        mean, std = prepared.with_newest(x[-1], y)
        assert calls == []  # the row computed ahead was used
        other = mixed_features(rng, 1)[0]  # a different point observed
        mean_o, std_o = prepared.with_newest(other, np.append(y[:-1], 0.3))
        assert len(calls) == 1
    finally:
        _gp.PreparedPosterior._compute_row = original
    mean_ref, std_ref = posterior(x, y, candidates, p)
    np.testing.assert_allclose(mean, mean_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(std, std_ref, rtol=1e-7, atol=1e-9)
    x_o = np.vstack([x[:-1], other])
    mean_ref, std_ref = posterior(x_o, np.append(y[:-1], 0.3), candidates, p)
    np.testing.assert_allclose(mean_o, mean_ref, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(std_o, std_ref, rtol=1e-7, atol=1e-9)
    # extending the prepared posterior by the expected point uses it too
    ext_mean, ext_std = prepared.extended(x[-1:], y[-1:]).with_newest(
        x[0], np.append(y, y[0])
    )
    ref = posterior(np.vstack([x, x[:1]]), np.append(y, y[0]), candidates, p)
    np.testing.assert_allclose(ext_mean, ref[0], rtol=1e-6, atol=1e-8)
