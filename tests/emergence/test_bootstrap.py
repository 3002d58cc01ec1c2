import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.emergence import bootstrap_ci


def test_bootstrap_mean_interval_matches_normal_theory():
    x = np.random.default_rng(0).normal(1.0, 2.0, 400)
    ci = bootstrap_ci(jax.random.key(0), x, num_resamples=4000)
    half = 1.96 * x.std() / np.sqrt(len(x))
    assert float(ci.estimate) == pytest.approx(x.mean(), rel=1e-5)
    assert float(ci.high - ci.low) == pytest.approx(2 * half, rel=0.1)
    assert float(ci.low) < x.mean() < float(ci.high)


def test_bootstrap_is_deterministic_per_key_and_carries_trailing_axes():
    x = np.random.default_rng(1).random((50, 3))
    a = bootstrap_ci(0, x, num_resamples=200)
    b = bootstrap_ci(jax.random.key(0), x, num_resamples=200)
    raw = bootstrap_ci(jax.random.PRNGKey(0), x, num_resamples=200)
    np.testing.assert_array_equal(a.low, b.low)
    np.testing.assert_array_equal(a.high, raw.high)
    assert a.low.shape == (3,)
    # a constant sample has a zero-width interval; the median statistic works too
    c = bootstrap_ci(0, np.ones(20), statistic=lambda v: jnp.median(v, 0), num_resamples=50)
    assert float(c.low) == float(c.high) == 1.0


def test_bootstrap_bad_input():
    with pytest.raises(ValueError, match="non-empty leading item axis"):
        bootstrap_ci(0, np.zeros((0,)))
    with pytest.raises(ValueError, match="num_resamples"):
        bootstrap_ci(0, np.ones(3), num_resamples=1)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci(0, np.ones(3), confidence=1.5)
    with pytest.raises(TypeError, match="key"):
        bootstrap_ci(jnp.ones(3), np.ones(3))
