"""Linear-regression smoothers and effective parameters against NumPy / scikit-learn references."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.double_descent import (
    effective_parameters,
    gaussian_kernel,
    kernel_pca_ols_smoother,
    kernel_ridge_smoother,
    least_squares_smoother,
    pca_ols_smoother,
    smoother_predict,
)


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _data(n=24, p=10, m=7, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, p)), rng.normal(size=(m, p)), rng.normal(size=(n, 3))


@pytest.mark.parametrize("p", [6, 40])  # under- and over-parameterized
def test_min_norm_smoother_matches_numpy_lstsq(p):
    a, b, y = _data(p=p)
    s = least_squares_smoother(a, b)
    beta = np.linalg.lstsq(a, y, rcond=None)[0]  # the min-norm solution when p > n
    np.testing.assert_allclose(smoother_predict(s, y), b @ beta, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(smoother_predict(s, y[:, 0]), b @ beta[:, 0], rtol=1e-8, atol=1e-10)


def test_ridge_smoother_and_its_effective_parameters_match_closed_forms():
    a, b, y = _data(p=15)
    lam = 2.5
    s = least_squares_smoother(a, np.concatenate([a, b]), ridge=lam)
    hat = np.linalg.solve(a.T @ a + lam * np.eye(15), a.T)
    np.testing.assert_allclose(s, np.concatenate([a, b]) @ hat, rtol=1e-9, atol=1e-12)
    sig = np.linalg.svd(a, compute_uv=False)
    # p_train = tr(S Sᵀ) = Σ σ⁴/(σ² + λ)²
    np.testing.assert_allclose(effective_parameters(s[:24]), np.sum(sig**4 / (sig**2 + lam) ** 2), rtol=1e-9)


def test_ols_effective_parameters_on_training_inputs_is_p():
    a, b, _ = _data(n=30, p=5)
    s = least_squares_smoother(a, a)
    np.testing.assert_allclose(effective_parameters(s), 5.0, rtol=1e-10)
    np.testing.assert_allclose(effective_parameters(s), np.trace(s @ s.T), rtol=1e-12)
    np.testing.assert_allclose(np.trace(s), 5.0, rtol=1e-10)  # a projection: tr(S) = tr(SSᵀ)
    # on other inputs it is not p: the generalized definition, checked against a naive loop
    sq = np.asarray(least_squares_smoother(a, b))
    naive = 30 / len(b) * sum(float(row @ row) for row in sq)
    np.testing.assert_allclose(effective_parameters(sq), naive, rtol=1e-12)
    # batched: one value per smoother
    np.testing.assert_allclose(effective_parameters(jnp.stack([s, 2 * s])), [5.0, 20.0], rtol=1e-10)


def test_smoother_is_invariant_to_extreme_feature_scales():
    a, b, y = _data(p=40)
    s = least_squares_smoother(a, b)
    for scale in (1e-8, 1e8):
        np.testing.assert_allclose(least_squares_smoother(scale * a, scale * b), s, rtol=1e-6, atol=1e-9)
    assert np.isfinite(np.asarray(least_squares_smoother(np.zeros((5, 3)), np.ones((2, 3))))).all()


def test_kernel_ridge_matches_sklearn():
    from sklearn.kernel_ridge import KernelRidge
    from sklearn.metrics.pairwise import rbf_kernel

    a, b, y = _data(p=4)
    h = 1.7
    k = gaussian_kernel(a, a, h)
    np.testing.assert_allclose(k, rbf_kernel(a, a, gamma=1 / (2 * h**2)), rtol=1e-12)
    s = kernel_ridge_smoother(k, gaussian_kernel(b, a, h), ridge=0.3)
    ref = KernelRidge(alpha=0.3, kernel="rbf", gamma=1 / (2 * h**2)).fit(a, y).predict(b)
    np.testing.assert_allclose(smoother_predict(s, y), ref, rtol=1e-8)


def test_kernel_forms_equal_feature_forms():
    a, b, _ = _data(p=40)
    both = np.concatenate([a, b])
    np.testing.assert_allclose(
        kernel_ridge_smoother(a @ a.T, both @ a.T, ridge=0.0), least_squares_smoother(a, both), rtol=1e-7, atol=1e-9
    )
    path = kernel_pca_ols_smoother(a @ a.T, both @ a.T, [1, 5, 24])  # one eigendecomposition
    for s, k in zip(path, (1, 5, 24)):
        np.testing.assert_allclose(s, pca_ols_smoother(a, both, k), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(kernel_pca_ols_smoother(a @ a.T, both @ a.T, 5), path[1], rtol=1e-12)


def test_pca_then_ols_matches_numpy_and_recovers_min_norm():
    a, b, y = _data(p=40)
    k = 6
    _, _, vt = np.linalg.svd(a, full_matrices=False)
    z, zq = a @ vt[:k].T, b @ vt[:k].T  # first k (uncentred) principal components
    beta = np.linalg.lstsq(z, y, rcond=None)[0]
    np.testing.assert_allclose(smoother_predict(pca_ols_smoother(a, b, k), y), zq @ beta, rtol=1e-8, atol=1e-10)
    s_train = pca_ols_smoother(a, a, k)
    np.testing.assert_allclose(effective_parameters(s_train), k, rtol=1e-9)  # OLS on k components
    np.testing.assert_allclose(pca_ols_smoother(a, b, 24), least_squares_smoother(a, b), rtol=1e-7, atol=1e-9)


def test_bad_input():
    a, b, y = _data()
    with pytest.raises(ValueError, match="phi_query has 3 features but phi_train has 10"):
        least_squares_smoother(a, b[:, :3])
    with pytest.raises(ValueError, match="phi_train"):
        least_squares_smoother(a[0], b)
    with pytest.raises(ValueError, match="ridge must be >= 0"):
        least_squares_smoother(a, b, ridge=-1.0)
    with pytest.raises(ValueError, match="num_components must be in"):
        pca_ols_smoother(a, b, 11)
    with pytest.raises(TypeError, match="num_components must be an int"):
        pca_ols_smoother(a, b, 2.0)
    with pytest.raises(ValueError, match="k_train must be a square"):
        kernel_ridge_smoother(a, b, ridge=1.0)
    with pytest.raises(ValueError, match="k_query must have shape"):
        kernel_ridge_smoother(a @ a.T, b, ridge=1.0)
    with pytest.raises(ValueError, match="bandwidth must be > 0"):
        gaussian_kernel(a, b, 0.0)
    with pytest.raises(ValueError, match="smoother_rows must have shape"):
        effective_parameters(np.ones(5))
    with pytest.raises(ValueError, match="y_train must have shape"):
        smoother_predict(np.ones((3, 5)), np.ones(4))
