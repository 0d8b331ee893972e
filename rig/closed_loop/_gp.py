"""Gaussian-process posterior with fixed kernel hyper-parameters, in numpy.

scikit-learn fits the kernel's hyper-parameters (the slow, well-tested part);
the decision between two stimuli only needs the posterior with those
hyper-parameters, which this computes in about a millisecond for the ~30–100
observations of a closed-loop run over the 41 × 41 candidate grid (scikit-learn's
``predict`` takes ~10 ms there). Kernel: ``c · Matérn(ν = 5/2, length scales) +
white noise``; targets normalised like ``normalize_y=True``. Tested against
scikit-learn's ``GaussianProcessRegressor(optimizer=None)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit
from scipy.linalg import cho_factor, cho_solve, solve_triangular


@dataclass(frozen=True, slots=True)
class KernelParams:
    """Fitted hyper-parameters of ``c·Matern52(length_scale) + White(noise)``."""

    constant: float
    length_scale: tuple[float, float]
    noise: float

    @classmethod
    def from_sklearn(cls, kernel) -> KernelParams:
        """From a fitted ``ConstantKernel * Matern + WhiteKernel``."""
        product, white = kernel.k1, kernel.k2
        scale = np.atleast_1d(product.k2.length_scale).astype(float)
        if scale.size == 1:
            scale = np.repeat(scale, 2)
        return cls(
            float(product.k1.constant_value),
            (float(scale[0]), float(scale[1])),
            float(white.noise_level),
        )


def matern52(a: np.ndarray, b: np.ndarray, params: KernelParams) -> np.ndarray:
    """Covariance matrix between points ``a`` (n, 2) and ``b`` (m, 2)."""
    # Scaled by √5/length so that the kernel's √5·r is a plain distance.
    scale = np.sqrt(5.0) / np.asarray(params.length_scale, dtype=np.float64)
    sa = np.ascontiguousarray(a * scale, dtype=np.float64)
    sb = np.ascontiguousarray(b * scale, dtype=np.float64)
    out = np.empty((sa.shape[0], sb.shape[0]))
    _matern52_scaled(sa, sb, float(params.constant), out)
    return out


@njit(cache=True, nogil=True)
def _matern52_scaled(sa, sb, constant, out):  # pragma: no cover - compiled
    """out[i, j] = c·(1 + s + s²/3)·exp(−s), s = |sa[i] − sb[j]| (2-D points).

    The decision's hot loop (41² candidates × every observation); numpy's
    version allocates five temporaries of that size and is ~4× slower.
    """
    for i in range(sa.shape[0]):
        ax, ay = sa[i, 0], sa[i, 1]
        for j in range(sb.shape[0]):
            dx, dy = ax - sb[j, 0], ay - sb[j, 1]
            s = np.sqrt(dx * dx + dy * dy)
            out[i, j] = constant * (1.0 + s + s * s / 3.0) * np.exp(-s)


def posterior(
    x: np.ndarray, y: np.ndarray, candidates: np.ndarray, params: AnyParams
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and standard deviation at ``candidates`` (in y's units).

    As scikit-learn with ``normalize_y=True``: the std includes the white-noise
    term (the kernel's diagonal at a candidate), so it never falls below the
    fitted noise.
    """
    y = np.asarray(y, dtype=float)
    mean_y = y.mean()
    std_y = y.std()
    if std_y == 0:
        std_y = 1.0
    yn = (y - mean_y) / std_y
    k = kernel(x, x, params)
    k[np.diag_indices_from(k)] += params.noise
    factor = cho_factor(k, lower=True)
    alpha = cho_solve(factor, yn)
    k_star = kernel(candidates, x, params)
    mean = k_star @ alpha
    v = solve_triangular(factor[0], k_star.T, lower=True)
    var = params.constant + params.noise - np.sum(v * v, axis=0)
    std = np.sqrt(np.clip(var, 0.0, None))
    return mean * std_y + mean_y, std * std_y


def kernel(a: np.ndarray, b: np.ndarray, params: AnyParams) -> np.ndarray:
    """The covariance matrix for either kind of hyper-parameters."""
    if isinstance(params, MixedKernelParams):
        return mixed_kernel(a, b, params)
    return matern52(a, b, params)


class PreparedPosterior:
    """Everything a decision needs that does not depend on the newest observation.

    Built while the response to the last stimulus is on its way (from the older
    observations and hyper-parameters fitted on them); ``with_newest`` then adds
    the one new observation by extending the Cholesky factor by a row. With the
    older targets known (``y_old``), the mean's share of the old observations is
    precomputed as two vectors over the candidates (for the targets and for the
    constant the normalisation subtracts), so a decision costs one pass over
    the n × m matrix ``L⁻¹·k(old, candidates)``: ~1 ms for 300 observations
    and 3000 candidates. Same numbers as ``posterior`` (tested).
    """

    def __init__(
        self,
        x_old: np.ndarray,
        candidates: np.ndarray,
        params: AnyParams,
        y_old: np.ndarray | None = None,
    ) -> None:
        self.params = params
        self.x_old = np.asarray(x_old, dtype=float)
        self.candidates = candidates
        k = kernel(self.x_old, self.x_old, params)
        k[np.diag_indices_from(k)] += params.noise
        self.chol = np.linalg.cholesky(k)
        k_star_old = kernel(candidates, self.x_old, params)
        self.v_old = solve_triangular(self.chol, k_star_old.T, lower=True)
        self.sumsq_old = np.einsum("ij,ij->j", self.v_old, self.v_old)
        self._pending: tuple[bytes, tuple[np.ndarray, float, np.ndarray]] | None = None
        self._set_targets(y_old)

    def _set_targets(self, y_old: np.ndarray | None) -> None:
        """Precompute L⁻¹·y, L⁻¹·1 and their projections on the candidates."""
        self.y_old = None if y_old is None else np.array(y_old, dtype=float)
        if self.y_old is None:
            return
        ones = np.ones(self.chol.shape[0])
        self.z_y = solve_triangular(self.chol, self.y_old, lower=True)
        self.z_1 = solve_triangular(self.chol, ones, lower=True)
        self.p_y = self.z_y @ self.v_old
        self.p_1 = self.z_1 @ self.v_old

    def expect(self, x_new: np.ndarray) -> None:
        """Compute the next point's Cholesky row ahead (``_row``), when the point
        is known but its response is not: the stimulus on its way. Its O(n·m)
        part (the row against every candidate) is then out of the decision,
        which is left with O(m) (and O(n) for the targets)."""
        x_new = np.asarray(x_new, dtype=float).reshape(1, -1)
        self._pending = (x_new.tobytes(), self._compute_row(x_new))

    def _row(self, x_new: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """The new point's Cholesky row, corner and ``v`` row over the candidates
        (computed ahead by ``expect`` when it was this point)."""
        if self._pending is not None and self._pending[0] == x_new.tobytes():
            return self._pending[1]
        return self._compute_row(x_new)

    def _compute_row(self, x_new: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        p = self.params
        prior_var = p.constant + p.noise
        row = solve_triangular(
            self.chol, kernel(self.x_old, x_new, p)[:, 0], lower=True
        )
        corner = float(np.sqrt(max(prior_var - row @ row, 1e-12)))
        k_star_new = kernel(self.candidates, x_new, p)[:, 0]
        v_new = (k_star_new - row @ self.v_old) / corner
        return row, corner, v_new

    def extended(
        self, x_new: np.ndarray, y_new: np.ndarray | None = None
    ) -> PreparedPosterior:
        """The same, prepared with ``x_new`` (k, d) added to the old points (and
        their targets ``y_new``): a row of the Cholesky factor each, O(n·m)
        instead of O(n²·m) (the same numbers as preparing from scratch, to
        rounding; tested)."""
        x_new = np.atleast_2d(np.asarray(x_new, dtype=float))
        ys = [None] * len(x_new) if y_new is None else np.asarray(y_new, float)
        out = self
        for x, y in zip(x_new, ys, strict=True):
            out = out._extended_by(x.reshape(1, -1), y)
        return out

    def _extended_by(self, x_new: np.ndarray, y_new: float | None) -> PreparedPosterior:
        row, corner, v_new = self._row(x_new)
        new = object.__new__(PreparedPosterior)
        new._pending = None
        new.params = self.params
        new.x_old = np.vstack([self.x_old, x_new])
        new.candidates = self.candidates
        n = self.chol.shape[0] + 1
        chol = np.zeros((n, n))
        chol[:-1, :-1] = self.chol
        chol[-1, :-1] = row
        chol[-1, -1] = corner
        new.chol = chol
        new.v_old = np.vstack([self.v_old, v_new])
        new.sumsq_old = self.sumsq_old + v_new * v_new
        if self.y_old is None or y_new is None:
            new.y_old = None
            return new
        new.y_old = np.append(self.y_old, y_new)
        zy = (y_new - row @ self.z_y) / corner
        z1 = (1.0 - row @ self.z_1) / corner
        new.z_y, new.z_1 = np.append(self.z_y, zy), np.append(self.z_1, z1)
        new.p_y, new.p_1 = self.p_y + zy * v_new, self.p_1 + z1 * v_new
        return new

    def with_newest(
        self, x_new: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Posterior (mean, std) at the candidates given the old points plus
        ``x_new``; ``y`` holds the targets of all of them, newest last."""
        p = self.params
        x_new = np.asarray(x_new, dtype=float).reshape(1, -1)
        y = np.asarray(y, dtype=float)
        if self.y_old is None or not np.array_equal(self.y_old, y[:-1]):
            self._set_targets(y[:-1])
        row, corner, v_new = self._row(x_new)
        zy = (y[-1] - row @ self.z_y) / corner
        z1 = (1.0 - row @ self.z_1) / corner
        mean_y, std_y = y.mean(), y.std()
        if std_y == 0:
            std_y = 1.0
        # k*ᵀ·K⁻¹·(y − ȳ) + ȳ, through L⁻¹: the normalisation's scale cancels
        mean = (self.p_y + zy * v_new) - mean_y * (self.p_1 + z1 * v_new) + mean_y
        var = p.constant + p.noise - self.sumsq_old - v_new * v_new
        std = np.sqrt(np.clip(var, 0.0, None))
        return mean, std * std_y


# ------------------------------------------------------------ mixed spaces


@dataclass(frozen=True, slots=True)
class MixedKernelParams:
    """Hyper-parameters of the mixed-space kernel (``MixedSpace.features``).

    ::

        k(x, x') = c · M52(‖(u − u')/ℓ‖) · M52(|s − s'|/ℓ_site)
                     · (1 if same anode else ρ_anode) · (1 if same polarity else ρ_pol)
                   + noise·[x = x']

    u: amplitude, duration, pulses per train, train rate on [0, 1] (ARD length
    scales ℓ); s: the stimulation site (cathode position, m), so neighbouring
    sites share what is learnt about one another; the anode (its offset from
    the cathode, or the common return) and the polarity are categories whose
    members correlate by ρ.
    """

    constant: float
    length_scale: tuple[float, float, float, float]
    site_length_m: float
    anode_correlation: float
    polarity_correlation: float
    noise: float


AnyParams = KernelParams | MixedKernelParams


def mixed_kernel(a: np.ndarray, b: np.ndarray, params: MixedKernelParams) -> np.ndarray:
    """Covariance matrix between feature rows ``a`` (n, 7) and ``b`` (m, 7)."""
    out = np.empty((a.shape[0], b.shape[0]))
    _mixed_kernel(
        np.ascontiguousarray(a, dtype=np.float64),
        np.ascontiguousarray(b, dtype=np.float64),
        np.sqrt(5.0) / np.asarray(params.length_scale, dtype=np.float64),
        np.sqrt(5.0) / params.site_length_m,
        float(params.anode_correlation),
        float(params.polarity_correlation),
        float(params.constant),
        out,
    )
    return out


@njit(cache=True, nogil=True)
def _mixed_kernel(
    a, b, scale, site_scale, rho_a, rho_p, constant, out
):  # pragma: no cover
    """The mixed kernel's loop (candidates × observations at every decision)."""
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            r2 = 0.0
            for k in range(4):
                d = (a[i, k] - b[j, k]) * scale[k]
                r2 += d * d
            s = np.sqrt(r2)
            value = constant * (1.0 + s + s * s / 3.0) * np.exp(-s)
            t = abs(a[i, 4] - b[j, 4]) * site_scale
            value *= (1.0 + t + t * t / 3.0) * np.exp(-t)
            if a[i, 5] != b[j, 5]:
                value *= rho_a
            if a[i, 6] != b[j, 6]:
                value *= rho_p
            out[i, j] = value


# log-space bounds of the fitted hyper-parameters, in the order of _theta
_BOUNDS = {
    "constant": (1e-3, 1e3),
    "length_scale": (0.05, 5.0),
    "site_length_m": (2e-3, 1.0),
    "correlation": (0.01, 0.99),
    "noise": (1e-6, 1.0),
}
DEFAULT_MIXED = MixedKernelParams(1.0, (0.3, 0.3, 0.5, 0.5), 0.02, 0.5, 0.5, 1e-2)


def _theta(p: MixedKernelParams) -> np.ndarray:
    """Unconstrained parameters: logs, and logits of the correlations."""
    rho = np.array([p.anode_correlation, p.polarity_correlation])
    return np.concatenate([
        [np.log(p.constant)], np.log(p.length_scale), [np.log(p.site_length_m)],
        np.log(rho / (1 - rho)), [np.log(p.noise)],
    ])  # fmt: skip


def _params(theta: np.ndarray) -> MixedKernelParams:
    rho = 1.0 / (1.0 + np.exp(-theta[6:8]))
    ls = np.exp(theta[1:5])
    return MixedKernelParams(
        float(np.exp(theta[0])),
        (float(ls[0]), float(ls[1]), float(ls[2]), float(ls[3])),
        float(np.exp(theta[5])),
        float(rho[0]),
        float(rho[1]),
        float(np.exp(theta[8])),
    )


def _theta_bounds() -> list[tuple[float, float]]:
    b = _BOUNDS
    log = [(np.log(lo), np.log(hi)) for lo, hi in (
        b["constant"], *[b["length_scale"]] * 4, b["site_length_m"])]  # fmt: skip
    lo, hi = b["correlation"]
    logit = [(np.log(lo / (1 - lo)), np.log(hi / (1 - hi)))] * 2
    return [*log, *logit, (np.log(b["noise"][0]), np.log(b["noise"][1]))]


def _geometry(x: np.ndarray) -> tuple[np.ndarray, ...]:
    """What the likelihood needs of the points, whatever the parameters:
    squared differences on the unit axes, site distances, category masks."""
    diff = x[:, None, :] - x[None, :, :]
    d2 = np.ascontiguousarray(np.moveaxis(diff[:, :, :4] ** 2, 2, 0))
    return d2, np.abs(diff[:, :, 4]), diff[:, :, 5] != 0, diff[:, :, 6] != 0


def log_marginal_likelihood(
    theta: np.ndarray, x: np.ndarray | tuple, yn: np.ndarray
) -> tuple[float, np.ndarray]:
    """Log marginal likelihood of normalised targets ``yn`` and its gradient
    with respect to ``theta`` (the ``_theta`` parametrisation); ``x`` is the
    feature rows or their ``_geometry``."""
    d2, dsite, other_a, other_p = _geometry(x) if isinstance(x, np.ndarray) else x
    p = _params(theta)
    n = dsite.shape[0]
    inv_ls2 = 1.0 / np.asarray(p.length_scale) ** 2
    r = np.sqrt(5.0 * np.tensordot(inv_ls2, d2, axes=1))
    e = np.exp(-r)
    m = (1.0 + r + r * r / 3.0) * e
    t = np.sqrt(5.0) * dsite / p.site_length_m
    et = np.exp(-t)
    site = (1.0 + t + t * t / 3.0) * et
    cat_a = np.where(other_a, p.anode_correlation, 1.0)
    cat_p = np.where(other_p, p.polarity_correlation, 1.0)
    k0 = p.constant * m * site * cat_a * cat_p
    k = k0.copy()
    k[np.diag_indices(n)] += p.noise
    try:
        chol = np.linalg.cholesky(k)
    except np.linalg.LinAlgError:
        return -1e25, np.zeros_like(theta)
    alpha = cho_solve((chol, True), yn)
    lml = -0.5 * yn @ alpha - np.log(np.diag(chol)).sum() - 0.5 * n * np.log(2 * np.pi)
    w = np.outer(alpha, alpha) - cho_solve((chol, True), np.eye(n))
    # ½·tr(W·∂K/∂θ) = ½·Σ W∘∂K for each parameter (W symmetric)
    wr = w * (p.constant * site * cat_a * cat_p) * (1.0 + r) * e * (5.0 / 3.0)
    grad = np.empty(9)
    grad[0] = 0.5 * np.sum(w * k0)
    grad[1:5] = 0.5 * np.tensordot(d2, wr, axes=([1, 2], [0, 1])) * inv_ls2
    wk = w * k0
    grad[5] = 0.5 * np.sum(wk / site * (1.0 + t) * et * t * t / 3.0)
    rho_a, rho_p = p.anode_correlation, p.polarity_correlation
    grad[6] = 0.5 * np.sum(wk[other_a]) * (1.0 - rho_a)  # ∂ρ/∂logit = ρ(1−ρ)
    grad[7] = 0.5 * np.sum(wk[other_p]) * (1.0 - rho_p)
    grad[8] = 0.5 * np.trace(w) * p.noise
    return float(lml), grad


FIT_MAX_POINTS = 150  # the hyper-parameters are fitted on the newest these many


def fit_mixed(
    x: np.ndarray,
    y: np.ndarray,
    varied: np.ndarray,
    start: MixedKernelParams = DEFAULT_MIXED,
    min_noise: float | None = None,
) -> MixedKernelParams:
    """Maximum-likelihood hyper-parameters (L-BFGS-B, analytic gradient) for
    targets normalised as ``posterior`` does, on the newest ``FIT_MAX_POINTS``
    observations (the cost grows as n³; the length scales and correlations are
    well determined by 150); the parameters of feature columns that do not
    vary (``MixedSpace.varied``) stay at ``start``. ``min_noise`` raises the
    noise's lower bound (normalised targets' variance units)."""
    from scipy.optimize import minimize

    x, y = x[-FIT_MAX_POINTS:], np.asarray(y, dtype=float)[-FIT_MAX_POINTS:]
    std = y.std() or 1.0
    yn = (y - y.mean()) / std
    geometry = _geometry(x)
    theta0 = _theta(start)
    # which theta entries are free: constant, 4 length scales, site, ρa, ρp, noise
    free = np.array([True, *varied[:4], varied[4], varied[5], varied[6], True])
    all_bounds = _theta_bounds()
    if min_noise is not None:
        all_bounds[-1] = (np.log(min_noise), max(all_bounds[-1][1], np.log(min_noise)))
    bounds = [b for b, f in zip(all_bounds, free, strict=True) if f]

    def negative(free_theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = theta0.copy()
        theta[free] = free_theta
        lml, grad = log_marginal_likelihood(theta, geometry, yn)
        return -lml, -grad[free]

    x0 = np.clip(theta0[free], [b[0] for b in bounds], [b[1] for b in bounds])
    result = minimize(negative, x0, jac=True, method="L-BFGS-B", bounds=bounds,
                      options={"maxiter": 60})  # fmt: skip
    theta = theta0.copy()
    theta[free] = result.x
    return _params(theta)


def warm_up() -> None:
    """Compile (or load from Numba's cache) the kernels before the board is
    armed: the first run after an install compiles them at the first
    decision, holding the GIL for seconds, and a host that stops reading
    the board for a second loses it (the heartbeat is withheld: HOST_LOSS)."""
    x = np.zeros((2, 7))
    matern52(x[:, :2], x[:, :2], KernelParams(1.0, (1.0, 1.0), 0.1))
    mixed_kernel(
        x, x, MixedKernelParams(1.0, (1.0, 1.0, 1.0, 1.0), 0.01, 0.5, 0.5, 0.1)
    )
