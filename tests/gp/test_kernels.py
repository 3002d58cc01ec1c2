import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from nips23jax import gp


def naive_kernel(name, x1, x2, ls, s):
    """Closed forms, one pair at a time (Rasmussen & Williams eq. 4.9, 4.14-4.17)."""
    out = np.zeros((len(x1), len(x2)))
    for i, a in enumerate(x1):
        for j, b in enumerate(x2):
            r = np.sqrt(np.sum(((a - b) / ls) ** 2))
            out[i, j] = s * {
                "rbf": np.exp(-0.5 * r * r),
                "matern12": np.exp(-r),
                "matern32": (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r),
                "matern52": (1 + np.sqrt(5) * r + 5 * r * r / 3) * np.exp(-np.sqrt(5) * r),
            }[name]
    return out


@pytest.mark.parametrize("name", ["rbf", "matern12", "matern32", "matern52"])
def test_kernels_match_closed_forms_with_ard(name):
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(7, 3)), rng.normal(size=(5, 3))
    ls, s = np.array([0.5, 1.0, 2.0]), 1.7
    params = gp.init_params(3, lengthscale=ls, signal_variance=s, dtype=jnp.float32)
    kern = getattr(gp, name)
    np.testing.assert_allclose(kern(params, x1, x2), naive_kernel(name, x1, x2, ls, s), rtol=2e-5, atol=2e-6)
    np.testing.assert_allclose(kern.diag(params, x1), np.full(7, s), rtol=1e-6)
    assert gp.get_kernel(name) is kern
    # r = 0 gives the variance exactly and a finite lengthscale gradient (the sqrt is guarded)
    g = jax.grad(lambda p: kern(p, x1, x1).sum())(params)
    assert np.all(np.isfinite(g["lengthscale"]))


def test_blockwise_matvec_equals_dense_including_ragged_last_block():
    rng = np.random.default_rng(1)
    x1, x2, v = rng.normal(size=(37, 2)), rng.normal(size=(23, 2)), rng.normal(size=(23, 3))
    params = gp.init_params(2, lengthscale=[0.7, 1.3])
    dense = naive_kernel("matern32", x1, x2, np.array([0.7, 1.3]), 1.0) @ v
    for bs in (5, 37, 100):
        np.testing.assert_allclose(gp.kernel_matvec(gp.matern32, params, x1, x2, v, block_size=bs), dense,
                                   rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gp.kernel_matvec(gp.matern32, params, x1, x2, v[:, 0], block_size=4), dense[:, 0],
                               rtol=1e-5, atol=1e-5)
    jitted = jax.jit(lambda v: gp.kernel_matvec(gp.matern32, params, x1, x2, v, block_size=6))
    np.testing.assert_allclose(jitted(v), dense, rtol=1e-5, atol=1e-5)


def test_extreme_inputs_stay_finite():
    params = gp.init_params(2, lengthscale=1e-3)
    x = np.array([[0.0, 0.0], [1e4, -1e4], [1e-7, 0.0]])
    for kern in (gp.rbf, gp.matern12, gp.matern32, gp.matern52):
        k = np.asarray(kern(params, x, x))
        assert np.all(np.isfinite(k)) and np.all(k >= 0) and np.all(k <= 1 + 1e-6)
        np.testing.assert_allclose(np.diag(k), 1.0, rtol=1e-6)


def test_log_marginal_likelihood_matches_scipy_and_sklearn():
    from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel

    rng = np.random.default_rng(2)
    x, y = rng.uniform(-2, 2, size=(25, 2)), rng.normal(size=25)
    with jax.enable_x64(True):
        params = gp.init_params(2, lengthscale=[0.8, 1.5], signal_variance=1.3, noise_variance=0.2, dtype=jnp.float64)
        lml = float(gp.log_marginal_likelihood(gp.matern32, params, x, y))
    cov = naive_kernel("matern32", x, x, np.array([0.8, 1.5]), 1.3) + 0.2 * np.eye(25)
    np.testing.assert_allclose(lml, multivariate_normal(np.zeros(25), cov).logpdf(y), rtol=1e-10)
    sk = ConstantKernel(1.3) * Matern(length_scale=[0.8, 1.5], nu=1.5) + WhiteKernel(0.2)
    from sklearn.gaussian_process import GaussianProcessRegressor

    reg = GaussianProcessRegressor(sk, optimizer=None, normalize_y=False).fit(x, y)
    np.testing.assert_allclose(lml, reg.log_marginal_likelihood_value_, rtol=1e-8)


def test_fit_hyperparameters_raises_the_marginal_likelihood():
    rng = np.random.default_rng(3)
    x = rng.uniform(-3, 3, size=(60, 1)).astype(np.float32)
    y = (np.sin(2 * x[:, 0]) + 0.1 * rng.normal(size=60)).astype(np.float32)
    init = gp.init_params(1, lengthscale=5.0, noise_variance=1.0)
    params, info = gp.fit_hyperparameters(gp.matern32, init, x, y, key=0, subset_size=50, num_steps=60,
                                          learning_rate=0.1)
    assert info["subset_size"] == 50 and info["lml"][-1] > info["lml"][0] + 0.2
    assert float(params["noise_variance"]) < 0.5 and float(params["lengthscale"][0]) < 5.0
    gp.check_params(params, 1)


@pytest.mark.parametrize("bad,match", [
    ({"lengthscale": -1.0}, "lengthscale"), ({"lengthscale": 0.0}, "lengthscale"),
    ({"signal_variance": 0.0}, "signal_variance"), ({"noise_variance": -1e-3}, "noise_variance"),
    ({"lengthscale": np.nan}, "lengthscale"), ({"lengthscale": np.ones(3)}, "shape"),
])
def test_check_params_rejects_bad_hyperparameters(bad, match):
    params = {**gp.init_params(2), **bad}
    with pytest.raises(ValueError, match=match):
        gp.check_params(params, 2)


def test_kernels_likelihood_and_fit_reject_bad_hyperparameters_and_data():
    x, y = np.linspace(0, 1, 6, dtype=np.float32)[:, None], np.ones(6, np.float32)
    p = gp.init_params(1)
    with pytest.raises(ValueError, match=r"matern32: params\['lengthscale'\] must be finite and > 0"):
        gp.matern32({**p, "lengthscale": -np.ones(1)}, x, x)
    with pytest.raises(ValueError, match="signal_variance"):
        gp.kernel_matvec(gp.rbf, {**p, "signal_variance": -1.0}, x, x, y)
    with pytest.raises(ValueError, match=r"v must have shape \(6,\)"):
        gp.kernel_matvec(gp.rbf, p, x, x, y[:5])
    with pytest.raises(ValueError, match="inputs must have shapes"):
        gp.rbf(p, x, np.ones((2, 3)))
    with pytest.raises(ValueError, match="noise_variance"):
        gp.log_marginal_likelihood(gp.rbf, {**p, "noise_variance": -5.0}, x, y)
    with pytest.raises(ValueError, match="log_marginal_likelihood: y contains NaN"):
        gp.log_marginal_likelihood(gp.rbf, p, x, np.where(np.arange(6) == 2, np.nan, y))
    with pytest.raises(ValueError, match="fit_hyperparameters: y contains NaN"):
        gp.fit_hyperparameters(gp.rbf, p, x, np.where(np.arange(6) == 2, np.nan, y), num_steps=1)
    with pytest.raises(ValueError, match="x has 6 rows but y has 5"):
        gp.fit_hyperparameters(gp.rbf, p, x, y[:5], num_steps=1)
    with pytest.raises(ValueError, match="log_marginal_likelihood: x is empty"):
        gp.log_marginal_likelihood(gp.rbf, p, x[:0], y[:0])


@pytest.mark.parametrize(
    "x, y, match",
    [(np.ones((3, 2)), np.ones(3), None), (np.ones(3), np.ones(3), r"a: u must have shape \(n, d\) and v shape \(n,\)"),
     (np.ones((3, 2)), np.ones((3, 1)), "must have shape"), (np.ones((3, 2)), np.ones(2), "u has 3 rows but v has 2"),
     (np.ones((0, 2)), np.ones(0), "a: u is empty"), (np.full((3, 2), np.inf), np.ones(3), "a: u contains NaN or Inf"),
     (np.ones((3, 2)), np.array([0.0, np.nan, 1.0]), "a: v contains NaN or Inf")],
)
def test_check_data(x, y, match):
    if match is None:
        gp.check_data("a", x, y, names=("u", "v"))
        jax.jit(lambda x, y: gp.check_data("a", x, y) or 0)(x, y)  # traced: shapes only, no error
    else:
        with pytest.raises(ValueError, match=match):
            gp.check_data("a", x, y, names=("u", "v"))


def test_fit_with_no_steps_returns_its_start():
    x = np.linspace(0, 1, 8, dtype=np.float32)[:, None]
    init = gp.init_params(1, lengthscale=0.7, signal_variance=1.3, noise_variance=0.1)
    params, _ = gp.fit_hyperparameters(gp.rbf, init, x, np.sin(x[:, 0]), num_steps=0)
    for k in init:
        np.testing.assert_allclose(params[k], init[k], rtol=1e-5)


def test_unknown_kernel_name():
    with pytest.raises(ValueError, match="kernel"):
        gp.get_kernel("laplace")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gp.check_params(gp.init_params(2, noise_variance=0.0), 2)  # zero noise alone is valid
