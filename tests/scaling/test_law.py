import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.scaling import (
    PUBLISHED,
    DataConstrainedParams,
    chinchilla_loss,
    chinchilla_optimal,
    compute_optimal_params_for_data,
    data_constrained_loss,
    effective_data,
    effective_params,
)

P = PUBLISHED


def _naive(N, D, U, p=P):
    """Eq. 5 written out with NumPy float64, independently of the library."""
    U = min(U, D)
    G = (p.alpha * p.A / (p.beta * p.B)) ** (1 / (p.alpha + p.beta))
    # U_N: the N of the Chinchilla-optimal pair whose D is U (solve D_opt(C) = U for C)
    C = 6 * (G * U) ** ((p.alpha + p.beta) / p.alpha)
    U_N = min(N, G * (C / 6) ** (p.beta / (p.alpha + p.beta)))
    R_D = D / U - 1
    R_N = N / U_N - 1
    Dp = U + U * p.R_D_star * (1 - np.exp(-R_D / p.R_D_star))
    Np = U_N + U_N * p.R_N_star * (1 - np.exp(-R_N / p.R_N_star))
    return p.E + p.A / Np**p.alpha + p.B / Dp**p.beta


def test_published_constants_give_the_papers_losses():
    with jax.enable_x64(True):
        assert float(data_constrained_loss(6.34e9, 242e9, 25e9)) == pytest.approx(2.225644, abs=5e-7)
        assert float(data_constrained_loss(8.67e9, 178e9, 25e9)) == pytest.approx(2.226963, abs=5e-7)
    # float32 by default, same numbers to float32 precision
    out = data_constrained_loss(6.34e9, 242e9, 25e9)
    assert out.dtype == jnp.float32 and float(out) == pytest.approx(2.225644, rel=1e-5)
    assert P.A == pytest.approx(np.exp(6.255414)) and P.R_D_star == 15.387756
    # token and parameter counts as Python ints (2.42e11 overflowed int32 before they became floats)
    assert float(data_constrained_loss(6_340_000_000, 242_000_000_000, 25_000_000_000)) == pytest.approx(2.225644, rel=1e-5)


def test_loss_matches_naive_numpy_on_random_runs():
    rng = np.random.default_rng(0)
    N = 10 ** rng.uniform(6, 11, 50)
    U = 10 ** rng.uniform(7, 12, 50)
    D = U * 10 ** rng.uniform(-1, 2.5, 50)
    with jax.enable_x64(True):
        ours = np.asarray(data_constrained_loss(N, D, U))
    np.testing.assert_allclose(ours, [_naive(*x) for x in zip(N, D, U)], rtol=1e-12)


def test_effective_data_limits():
    U = 1e9
    with jax.enable_x64(True):
        assert float(effective_data(U, U)) == U                          # R_D = 0 -> D' = D
        assert float(effective_data(0.3 * U, U)) == pytest.approx(0.3 * U)  # less than an epoch: D' = D
        big = float(effective_data(1e9 * U, U))
        assert big == pytest.approx(U * (1 + P.R_D_star), rel=1e-12)      # R_D -> inf
        # R_D* -> inf: no decay, D' = D
        assert float(effective_data(7 * U, U, 1e12)) == pytest.approx(7 * U, rel=1e-9)
        # small R_D: D' ~ D (first-order) and always D' <= D
        d = np.geomspace(1, 1000, 30) * U
        eff = np.asarray(effective_data(d, U))
        assert np.all(eff <= d * (1 + 1e-15)) and np.all(np.diff(eff) >= 0) and np.all(np.diff(eff[:15]) > 0)
        # extreme magnitudes stay finite
        assert np.isfinite(float(effective_data(1e30, 1.0)))


def test_effective_params_and_U_N():
    with jax.enable_x64(True):
        U = 25e9
        G = (P.alpha * P.A / (P.beta * P.B)) ** (1 / (P.alpha + P.beta))
        U_N = float(compute_optimal_params_for_data(U))
        assert U_N == pytest.approx(G * (G * U) ** (P.beta / P.alpha), rel=1e-12)
        # the Chinchilla-optimal pair for the compute of U_N, U is (U_N, U)
        n, d = chinchilla_optimal(6 * U_N * U)
        assert float(n) == pytest.approx(U_N, rel=1e-9) and float(d) == pytest.approx(U, rel=1e-9)
        assert float(effective_params(0.5 * U_N, U)) == pytest.approx(0.5 * U_N)   # no excess: N' = N
        assert float(effective_params(1e6 * U_N, U)) == pytest.approx(U_N * (1 + P.R_N_star), rel=1e-9)


def test_chinchilla_optimal_minimizes_the_loss_at_fixed_compute():
    with jax.enable_x64(True):
        for C in (1e19, 1e22):
            n, d = (float(x) for x in chinchilla_optimal(C))
            assert 6 * n * d == pytest.approx(C, rel=1e-12)
            grid = n * np.geomspace(0.1, 10, 4001)
            losses = np.asarray(chinchilla_loss(grid, C / (6 * grid)))
            assert grid[np.argmin(losses)] == pytest.approx(n, rel=2e-3)


def test_jit_and_vmap():
    f = jax.jit(lambda n, d, u: data_constrained_loss(n, d, u))
    np.testing.assert_allclose(f(6.34e9, 242e9, 25e9), 2.225644, rtol=1e-5)
    out = jax.vmap(data_constrained_loss, in_axes=(0, None, None))(jnp.array([1e9, 2e9]), 1e11, 1e10)
    assert out.shape == (2,) and float(out[0]) > float(out[1])


@pytest.mark.parametrize("args,name", [((0.0, 1e9, 1e9), "N"), ((1e9, -1.0, 1e9), "D"), ((1e9, 1e9, np.nan), "U_D"),
                                       ((1e9, np.inf, 1e9), "D")])
def test_bad_input_is_a_clear_error(args, name):
    with pytest.raises(ValueError, match=f"data_constrained_loss: {name} must be finite and > 0"):
        data_constrained_loss(*args)


def test_bad_params():
    with pytest.raises(TypeError, match="params must be a DataConstrainedParams"):
        data_constrained_loss(1e9, 1e9, 1e9, params=(1, 2, 3))
    with pytest.raises(ValueError, match="params.R_D_star"):
        data_constrained_loss(1e9, 1e9, 1e9, params=P._replace(R_D_star=0.0))
    with pytest.raises(ValueError, match="effective_data: R_D_star"):
        effective_data(1e9, 1e9, -1.0)
    assert isinstance(P, DataConstrainedParams)
