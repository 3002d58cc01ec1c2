import jax
import numpy as np
import pytest

from nips23jax.scaling import PUBLISHED, chinchilla_optimal, data_constrained_loss, optimal_allocation


def test_unconstrained_allocation_is_chinchilla():
    with jax.enable_x64(True):
        a = optimal_allocation(1e21, 1e16)  # far more unique data than the budget can use
        n, d = chinchilla_optimal(1e21)
        assert float(a.N) == pytest.approx(float(n), rel=1e-3)
        assert float(a.epochs) < 1


def test_constrained_allocation_matches_brute_force():
    with jax.enable_x64(True):
        C, U = np.array([1e21, 1e22]), np.array([5e9, 5e9])
        a = optimal_allocation(C, U)
        np.testing.assert_allclose(6 * np.asarray(a.N) * np.asarray(a.D), C, rtol=1e-10)
        for i in range(2):
            grid = np.geomspace(1e7, 1e12, 20001)  # naive: every N on a dense grid
            losses = np.asarray(data_constrained_loss(grid, C[i] / (6 * grid), U[i]))
            assert float(a.loss[i]) <= losses.min() + 1e-9
            assert float(a.N[i]) == pytest.approx(grid[np.argmin(losses)], rel=2e-3)
        # scarce data: more epochs than one, and the optimum beats Chinchilla's allocation
        n, d = chinchilla_optimal(C[1])
        assert float(a.epochs[1]) > 1
        assert float(a.loss[1]) < float(data_constrained_loss(n, d, U[1]))


def test_bad_input():
    with pytest.raises(ValueError, match="optimal_allocation: C"):
        optimal_allocation(-1.0, 1e9)
    with pytest.raises(ValueError, match="num_points"):
        optimal_allocation(1e20, 1e9, num_points=2)
    assert optimal_allocation(1e20, 1e9, PUBLISHED).N.shape == ()
