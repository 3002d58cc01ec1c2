import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax import gp
from nips23jax.core.compile import FAST_COMPILER_OPTIONS


@pytest.mark.parametrize("kernel", [gp.rbf, gp.matern12, gp.matern32, gp.matern52])
def test_rff_kernel_error_shrinks_as_one_over_sqrt_features(kernel):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 2)).astype(np.float32)
    params = gp.init_params(2, lengthscale=[0.9, 1.4], signal_variance=2.0)
    exact = np.asarray(kernel(params, x, x))
    sizes = (64, 256, 1024)

    # one-off program: compiled at XLA's cheapest level (halves its compile time; the check is statistical)
    @functools.partial(jax.jit, compiler_options=FAST_COMPILER_OPTIONS)
    def rms_errors(keys):
        # the first m of 1024 iid features are m iid features: one draw serves every size
        def one(k):
            feats = gp.random_features(k, kernel, 2, sizes[-1])
            errs = []
            for m in sizes:
                phi = gp.rff_features(gp.RandomFeatures(feats.omega[:m], feats.phase[:m]), params, x)
                errs.append(jnp.sqrt(jnp.mean((phi @ phi.T - exact) ** 2)))
            return jnp.stack(errs)
        return jnp.mean(jax.vmap(one)(keys), 0)

    errs = np.asarray(rms_errors(jax.random.split(jax.random.key(1), 64)))
    # 4x the features -> half the error (1/sqrt(M)); Monte Carlo slack either side
    for a, b in zip(errs, errs[1:]):
        assert 1.6 < a / b < 2.5, errs
    assert errs[-1] < 0.12


def test_prior_samples_have_the_kernel_as_covariance_and_are_functions():
    x = np.array([[0.0, 0.0], [0.3, -0.2], [1.0, 1.0], [-2.0, 0.5]], np.float32)
    params = gp.init_params(2, lengthscale=[1.0, 0.5], signal_variance=1.5)
    f = gp.prior_sample_fn(jax.random.key(2), gp.matern32, params, 4000, 32)
    s = np.asarray(f(x), np.float64)
    assert s.shape == (4000, 4)
    cov = s.T @ s / s.shape[0]
    # independent features per sample: the sample covariance converges to k itself
    np.testing.assert_allclose(cov, np.asarray(gp.matern32(params, x, x)), atol=0.15)
    np.testing.assert_allclose(s.mean(0), 0.0, atol=0.1)
    # the same function at every call and in any batching: blockwise evaluation agrees
    np.testing.assert_array_equal(np.asarray(f(x)), np.asarray(f(x)))
    f_blocked = gp.prior_sample_fn(jax.random.key(2), gp.matern32, params, 4000, 32, block_size=3)
    np.testing.assert_allclose(f_blocked(x), s, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f(x[2:3])[:, 0], s[:, 2], rtol=1e-5, atol=1e-5)
    # a raw key gives the same as the typed one
    raw = jax.random.key_data(jax.random.key(2))
    np.testing.assert_array_equal(gp.prior_sample_fn(raw, gp.matern32, params, 4000, 32)(x), f(x))


def test_matern_spectral_density_is_student_t():
    # Matérn-ν frequencies: ω = z·sqrt(2ν/u), u ~ χ²_{2ν}: per coordinate a Student-t with 2ν dof,
    # whose variance is 2ν/(2ν − 2) (finite for ν = 5/2: 5/3).
    w = np.asarray(gp.matern52.spectral_frequencies(jax.random.key(0), (200_000, 1)))
    np.testing.assert_allclose(w.var(), 5 / 3, rtol=0.05)
    w = np.asarray(gp.rbf.spectral_frequencies(jax.random.key(0), (200_000, 1)))
    np.testing.assert_allclose(w.var(), 1.0, rtol=0.02)


def test_bad_feature_counts():
    params = gp.init_params(2)
    with pytest.raises(ValueError, match="num_features"):
        gp.prior_sample_fn(jax.random.key(0), gp.rbf, params, 2, 0)
    with pytest.raises(ValueError, match="num_samples"):
        gp.prior_sample_fn(jax.random.key(0), gp.rbf, params, 0, 10)
    with pytest.raises(ValueError, match="dim"):
        gp.prior_sample_fn(jax.random.key(0), gp.rbf, {**params, "lengthscale": 1.0}, 2, 10)
    f = gp.prior_sample_fn(jax.random.key(0), gp.rbf, params, 2, 10)
    with pytest.raises(ValueError, match="shape"):
        f(np.zeros((3, 5)))
