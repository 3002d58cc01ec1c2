import jax
import numpy as np
import pytest

from nips23jax.scaling import (
    PUBLISHED,
    bootstrap_data_constrained,
    data_constrained_loss,
    fit_data_constrained,
    huber_log_objective,
    r_squared,
)

# a small grid of starts: the test checks the procedure, not the paper's 4500-start search
GRID = {"a": (5.0, 8.0), "b": (5.0, 8.0), "e": (0.0, 1.0), "alpha": (0.3, 0.6), "beta": (0.3, 0.6)}


def _synthetic_runs(seed=0, num=60, noise=0.005):
    rng = np.random.default_rng(seed)
    N = 10 ** rng.uniform(7, 10, num)
    U = 10 ** rng.uniform(8, 11, num)
    D = U * rng.choice([0.5, 1, 1, 2, 4, 8, 16, 40], num)
    with jax.enable_x64(True):
        clean = np.asarray(data_constrained_loss(N, D, U))
    return N, D, U, clean * np.exp(rng.normal(0, noise, num)), clean


@pytest.fixture(scope="module")
def fitted():
    N, D, U, L, clean = _synthetic_runs()
    params, r2 = fit_data_constrained(N, D, U, L, grid=GRID, max_iter=100)
    return (N, D, U, L, clean), params, r2


def test_fit_recovers_the_laws_losses(fitted):
    (N, D, U, L, clean), params, r2 = fitted
    # as good as the true law itself on these noisy losses (R² < 1 only through the noise)
    assert r2 >= r_squared(L, clean) - 0.005 and r2 > 0.95
    with jax.enable_x64(True):
        pred = np.asarray(data_constrained_loss(N, D, U, params))
        # judged by predicted loss (the objective is flat in R_D*, R_N*): within the 0.5% noise
        assert np.max(np.abs(pred / clean - 1)) < 0.01
        # and on held-out runs from the same law, including heavy repetition
        Nt, Dt, Ut, _, cleant = _synthetic_runs(seed=1, num=40)
        assert np.max(np.abs(np.asarray(data_constrained_loss(Nt, Dt, Ut, params)) / cleant - 1)) < 0.02
    assert 0.2 < params.alpha < 0.5 and 0.2 < params.beta < 0.5
    assert r2 == pytest.approx(r_squared(L, pred))


def test_bootstrap_is_deterministic_and_brackets_the_estimate(fitted):
    (N, D, U, L, _), params, _ = fitted
    a = bootstrap_data_constrained(N, D, U, L, jax.random.key(3), num_samples=2, grid=GRID, max_iter=100)
    b = bootstrap_data_constrained(N, D, U, L, 3, num_samples=2, grid=GRID, max_iter=100)
    np.testing.assert_array_equal(a.samples["E"], b.samples["E"])
    assert a.params == params
    lo, hi = a.intervals["r2"]
    assert 0.9 < lo <= hi <= 1.0
    assert set(a.intervals) == set(PUBLISHED._fields) | {"r2"}


def test_huber_objective_and_r2_match_numpy():
    rng = np.random.default_rng(0)
    p, y, w = rng.normal(size=20) * 3e-3, rng.normal(size=20) * 3e-3, rng.uniform(size=20)
    r = np.abs(p - y)
    naive = np.where(r <= 1e-3, 0.5 * r**2, 1e-3 * (r - 0.5e-3))
    np.testing.assert_allclose(huber_log_objective(p, y, w, 1e-3), np.sum(w * naive), rtol=1e-5)
    with pytest.raises(ValueError, match="equal-length vectors"):
        huber_log_objective(p[:3], y[:3], np.ones((3, 1)))  # would broadcast to (3, 3)
    with pytest.raises(ValueError, match="delta must be > 0"):
        huber_log_objective(p, y, w, -1.0)
    y2 = rng.normal(size=10)
    p2 = y2 + 0.1 * rng.normal(size=10)
    assert r_squared(y2, p2) == pytest.approx(1 - np.sum((y2 - p2) ** 2) / np.sum((y2 - y2.mean()) ** 2))


def test_bad_runs_are_clear_errors():
    N, D, U, L, _ = _synthetic_runs(num=8)
    L = L.copy()
    L[3] = np.nan
    with pytest.raises(ValueError, match=r"fit_data_constrained: loss contains NaN at runs \[3\]"):
        fit_data_constrained(N, D, U, L)
    with pytest.raises(ValueError, match="U_D must be finite and > 0"):
        fit_data_constrained(N, D, -U, np.ones(8))
    with pytest.raises(ValueError, match="same length"):
        fit_data_constrained(N, D[:5], U, np.ones(8))
    with pytest.raises(ValueError, match="at least 3 runs"):
        fit_data_constrained(N[:2], D[:2], U[:2], np.ones(2))
    with pytest.raises(ValueError, match="r_squared: observed losses are all equal"):
        r_squared(np.ones(3), np.ones(3))


def test_the_fit_objective_predicts_what_the_law_does():
    """The fit's log-space law (``fit._predict_log_loss``, what L-BFGS differentiates) and
    :func:`data_constrained_loss` are written separately; they must agree on every regime
    (single epoch, repeated data, excess parameters) for published and perturbed constants."""
    import jax.numpy as jnp

    from nips23jax.scaling.fit import _predict_log_loss

    N, D, U, _, _ = _synthetic_runs(seed=4, num=40)
    N = np.concatenate([N, [1e11, 3e11]])  # far more parameters than the unique data supports: N' < N
    D, U = np.concatenate([D, [4e10, 8e10]]), np.concatenate([U, [1e9, 2e9]])
    with jax.enable_x64(True):
        for p in (PUBLISHED, PUBLISHED._replace(alpha=0.4, beta=0.25, R_D_star=3.0, R_N_star=40.0)):
            x = jnp.asarray([np.log(p.A), np.log(p.B), np.log(p.E), p.alpha, p.beta, np.log(p.R_D_star),
                             np.log(p.R_N_star)])
            got = _predict_log_loss(x, *(jnp.asarray(np.log(v)) for v in (N, D, U)), False)
            np.testing.assert_allclose(np.exp(np.asarray(got)), np.asarray(data_constrained_loss(N, D, U, p)),
                                       rtol=1e-12)
