"""Random Fourier feature regression as a smoother."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nips23jax.core.sharding import make_mesh
from nips23jax.double_descent import (
    effective_parameters,
    gaussian_kernel,
    init_rff,
    least_squares_smoother,
    rff_features,
    rff_regression_smoother,
    unfolded_rff_smoother,
)


def _x(n, d=3, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, d))


def test_features_match_numpy_and_approximate_the_gaussian_kernel():
    with jax.enable_x64(True):
        rff = init_rff(jax.random.key(0), 3, 20000, 0.8, dtype=jnp.float64)
        x = _x(6)
        w, b = np.asarray(rff.frequencies), np.asarray(rff.phases)
        phi = rff_features(rff, x)
        np.testing.assert_allclose(phi, np.sqrt(2 / 20000) * np.cos(x @ w / 0.8 + b), rtol=1e-9, atol=1e-15)
        # Monte Carlo: entries of ΦΦᵀ have standard error ~ 1/sqrt(2P) ≈ 0.005
        np.testing.assert_allclose(phi @ phi.T, gaussian_kernel(x, x, 0.8), atol=0.03)
        np.testing.assert_array_equal(rff.take(5).frequencies, w[:, :5])


def test_rff_regression_matches_lstsq_and_peaks_at_interpolation():
    with jax.enable_x64(True):
        x, xq = _x(20), _x(9, seed=1)
        y = np.sin(3 * x[:, 0]) + 0.1 * np.random.default_rng(2).normal(size=20)
        bank = init_rff(1, 3, 200, 1.0, dtype=jnp.float64)
        p_test = {}
        for p in (5, 20, 200):
            rff = bank.take(p)
            both = rff_regression_smoother(rff, x, np.concatenate([x, xq]))  # training rows, then test rows
            s = both[20:]
            w, b = np.asarray(rff.frequencies), np.asarray(rff.phases)
            phi, phiq = np.cos(x @ w + b), np.cos(xq @ w + b)  # NumPy features (bandwidth 1; scale drops out)
            ref = phiq @ np.linalg.lstsq(phi, y, rcond=None)[0]
            np.testing.assert_allclose(s @ y, ref, rtol=1e-6, atol=1e-8)
            np.testing.assert_allclose(effective_parameters(both[:20]), min(p, 20), rtol=1e-6)
            p_test[p] = float(effective_parameters(s))
        assert p_test[20] > p_test[5] and p_test[20] > p_test[200]  # the U-turn in miniature
        s_ridge = rff_regression_smoother(bank, x, xq, ridge=0.1)
        np.testing.assert_allclose(s_ridge, least_squares_smoother(rff_features(bank, x), rff_features(bank, xq), ridge=0.1))
        # unfolding with every component is the min-norm fit
        np.testing.assert_allclose(unfolded_rff_smoother(bank, x, xq, 20), rff_regression_smoother(bank, x, xq),
                                   rtol=1e-6, atol=1e-9)


def test_same_key_same_features_typed_or_raw():
    a = init_rff(jax.random.key(3), 4, 8, 1.0)
    b = init_rff(jax.random.key_data(jax.random.key(3)), 4, 8, 1.0)
    c = init_rff(3, 4, 8, 1.0)
    for other in (b, c):
        np.testing.assert_array_equal(a.frequencies, other.frequencies)
        np.testing.assert_array_equal(a.phases, other.phases)


def test_sharded_query_rows_equal_unsharded():
    mesh = make_mesh({"data": 8})
    x, xq = _x(12).astype(np.float32), _x(16, seed=4).astype(np.float32)
    rff = init_rff(0, 3, 30, 1.0)
    ref = rff_regression_smoother(rff, x, xq)
    xq_sharded = jax.device_put(xq, NamedSharding(mesh, P("data", None)))
    out = rff_regression_smoother(rff, x, xq_sharded)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


def test_bad_input():
    rff = init_rff(0, 3, 10, 1.0)
    with pytest.raises(ValueError, match=r"x must have shape \(m, 3\)"):
        rff_features(rff, np.ones((4, 5)))
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        init_rff(0, 3, 10, -1.0)
    with pytest.raises(ValueError, match="num_features must be an int >= 1"):
        init_rff(0, 3, 0, 1.0)
    with pytest.raises(ValueError, match="num_features must be in"):
        rff.take(11)
    with pytest.raises(TypeError, match="key"):
        init_rff(jnp.ones(3), 3, 10, 1.0)
