import warnings

import jax
import numpy as np
import pytest
from scipy.stats import norm

from nips23jax.shift import accuracy_on_the_line, plot_accuracy_on_the_line, probit, wilson_interval


def _gaussian_accuracies(c: float, num_models: int = 15, seed: int = 0):
    """Exact accuracies of sign(wᵀx) on x|y ~ N(y·mu, Sigma) (ID) and N(y·mu, c·Sigma) (OOD)."""
    rng = np.random.default_rng(seed)
    mu = np.array([1.0, 0.5, 0.25, 0.1])
    a = rng.normal(size=(4, 4))
    sigma = a @ a.T / 4 + np.eye(4)
    w = rng.normal(size=(num_models, 4)) + 2 * mu  # mostly better than chance
    margin = w @ mu / np.sqrt(np.einsum("md,de,me->m", w, sigma, w))
    return norm.cdf(margin), norm.cdf(margin / np.sqrt(c))


@pytest.mark.parametrize("c", [0.5, 2.0, 4.0])
def test_probit_fit_recovers_slope_one_over_sqrt_c(c):
    id_acc, ood_acc = _gaussian_accuracies(c)
    fit = accuracy_on_the_line(id_acc, ood_acc)
    np.testing.assert_allclose(fit.slope, 1 / np.sqrt(c), rtol=1e-5)
    np.testing.assert_allclose(fit.intercept, 0.0, atol=1e-5)
    np.testing.assert_allclose(fit.r2, 1.0, atol=1e-5)
    np.testing.assert_allclose(fit.predict(id_acc), ood_acc, atol=1e-5)


def test_fit_matches_numpy_least_squares():
    rng = np.random.default_rng(1)
    id_acc = rng.uniform(0.55, 0.97, 20)
    ood_acc = np.clip(id_acc - rng.uniform(0.05, 0.3, 20), 0.01, 0.99)
    fit = accuracy_on_the_line(id_acc, ood_acc)
    x, y = norm.ppf(id_acc), norm.ppf(ood_acc)
    slope, intercept = np.polyfit(x, y, 1)
    np.testing.assert_allclose([fit.slope, fit.intercept], [slope, intercept], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fit.r2, np.corrcoef(x, y)[0, 1] ** 2, rtol=1e-4)


def test_wilson_interval_inverts_the_score_test():
    acc = np.array([0.8, 0.5, 0.0, 1.0, 0.97])
    n = np.array([10, 200, 50, 50, 1000])
    ci = wilson_interval(acc, n)
    z = norm.ppf(0.975)
    for p_hat, num, (lo, hi) in zip(acc, n, ci):
        # the endpoints solve |p_hat - p| = z sqrt(p(1-p)/n) (bisection, independent of the closed form)
        for end, sign in ((lo, -1), (hi, 1)):
            f = lambda p: sign * (p - p_hat) - z * np.sqrt(p * (1 - p) / num)  # noqa: B023, E731
            a, b = (0.0, p_hat) if sign < 0 else (p_hat, 1.0)
            if (sign < 0 and p_hat == 0) or (sign > 0 and p_hat == 1):
                assert abs(end - p_hat) < 1e-12
                continue
            for _ in range(80):
                m = (a + b) / 2
                if (f(m) > 0) == (f(a) > 0):
                    a = m
                else:
                    b = m
            np.testing.assert_allclose(end, (a + b) / 2, atol=1e-9)
    np.testing.assert_allclose(ci[0], [0.4902, 0.9433], atol=1e-4)  # textbook value for 8/10
    with pytest.raises(ValueError, match="num"):
        wilson_interval([0.5], [0])
    for bad in ([1.2, 0.5], [-0.1], [np.nan]):  # were NaN intervals
        with pytest.raises(ValueError, match=r"acc must be accuracies in \[0, 1\]"):
            wilson_interval(bad, 100)


def test_bootstrap_band_reproducible_and_brackets_the_fit():
    id_acc, ood_acc = _gaussian_accuracies(2.0)
    ood_acc = np.clip(ood_acc + np.random.default_rng(2).normal(0, 0.01, ood_acc.shape), 0.01, 0.99)
    a = accuracy_on_the_line(id_acc, ood_acc, key=jax.random.key(0), num_bootstrap=200, num_id=1000, num_ood=1000)
    b = accuracy_on_the_line(id_acc, ood_acc, key=jax.random.PRNGKey(0), num_bootstrap=200)
    c = accuracy_on_the_line(id_acc, ood_acc, key=jax.random.key(1), num_bootstrap=200)
    np.testing.assert_array_equal(a.band, b.band)  # typed and raw key: same resamples
    assert not np.array_equal(a.band, c.band)
    line = a.slope * a.band_x + a.intercept
    assert np.all(a.band[:, 0] <= line + 1e-6) and np.all(line <= a.band[:, 1] + 1e-6)
    assert a.id_ci.shape == (len(id_acc), 2) and np.all(a.id_ci[:, 0] <= id_acc) and np.all(id_acc <= a.id_ci[:, 1])
    ax = plot_accuracy_on_the_line(a)
    assert len(ax.lines) >= 2


def test_exact_zero_and_one_excluded_with_warning():
    id_acc, ood_acc = _gaussian_accuracies(2.0, num_models=6)
    full = accuracy_on_the_line(id_acc, ood_acc)
    with pytest.warns(UserWarning, match="excluding 2 model"):
        fit = accuracy_on_the_line(np.r_[id_acc, 1.0, 0.7], np.r_[ood_acc, 0.9, 0.0])
    np.testing.assert_allclose([fit.slope, fit.intercept], [full.slope, full.intercept], rtol=1e-6, atol=1e-7)
    assert fit.kept.tolist() == [True] * 6 + [False, False]
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="at least 3 models"):
        accuracy_on_the_line([0.6, 0.7, 1.0], [0.5, 0.6, 0.9])


def test_extreme_accuracies_keep_finite_probits():
    id_acc = np.array([1 - 1e-9, 1 - 1e-6, 0.999, 0.99])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = accuracy_on_the_line(id_acc, id_acc)
    assert np.isfinite(probit(1 - 1e-9)) and float(probit(1 - 1e-9)) > 5.9
    np.testing.assert_allclose([fit.slope, fit.intercept, fit.r2], [1.0, 0.0, 1.0], atol=1e-4)


@pytest.mark.parametrize(
    "id_acc, ood_acc, match",
    [
        ([0.5, 0.6, 1.2], [0.5, 0.6, 0.7], "id_acc must lie in"),
        ([0.5, 0.6, 0.7], [0.5, -0.1, 0.7], "ood_acc must lie in"),
        ([0.5, np.nan, 0.7], [0.5, 0.6, 0.7], "id_acc must lie in"),
        ([0.5, 0.6], [0.5, 0.6], "at least 3 models"),
        ([0.5, 0.6, 0.7], [0.5, 0.6], "one entry per model"),
        ([[0.5, 0.6, 0.7]], [0.5, 0.6, 0.7], "1-D"),
        ([0.8, 0.8, 0.8], [0.6, 0.7, 0.75], "id_acc has no spread"),  # was slope, intercept, R² all NaN
    ],
)
def test_bad_input(id_acc, ood_acc, match):
    with pytest.raises(ValueError, match=match):
        accuracy_on_the_line(id_acc, ood_acc)


def test_bootstrap_ols_with_unit_weights_is_the_point_fit():
    """The bootstrap refits with a weighted JAX OLS; the point fit is NumPy float64 OLS: the same line."""
    import jax.numpy as jnp

    from nips23jax.shift.accuracy_on_the_line import _ols

    ida, ooda = np.array([0.55, 0.62, 0.7, 0.78, 0.85]), np.array([0.31, 0.42, 0.47, 0.6, 0.66])
    fit = accuracy_on_the_line(ida, ooda)
    slope, intercept, r2 = _ols(jnp.asarray(probit(ida), jnp.float32), jnp.asarray(probit(ooda), jnp.float32),
                                jnp.ones(5, jnp.float32))
    np.testing.assert_allclose([slope, intercept, r2], [fit.slope, fit.intercept, fit.r2], rtol=1e-5, atol=1e-6)
