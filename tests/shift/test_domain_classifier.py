import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from nips23jax.shift import ClassifierSpec, cross_fit_domain_probability, fit_domain_classifier
from nips23jax.shift.domain_classifier import fold_ids


def _pooled(seed=0, n=400, shift=1.0, scale=1.0):
    rng = np.random.default_rng(seed)
    xp = rng.normal(size=(n, 2))
    xq = rng.normal(size=(n, 2)) * scale + np.array([shift, -0.5 * shift])
    return np.concatenate([xp, xq]).astype(np.float32), np.r_[np.zeros(n), np.ones(n)].astype(np.float32)


def test_logistic_fit_matches_sklearn():
    x, t = _pooled()
    z = (x - x.mean(0)) / x.std(0)  # our classifier standardizes; give sklearn the same inputs
    l2 = 1e-2
    params, pi = fit_domain_classifier(x, t, key=0, spec=ClassifierSpec(l2=l2))
    ref = LogisticRegression(C=1 / (2 * l2 * len(t)), tol=1e-10, max_iter=1000).fit(z, t)
    np.testing.assert_allclose(params["w"], ref.coef_[0], rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(params["b"], ref.intercept_[0], atol=5e-4)
    np.testing.assert_allclose(pi, ref.predict_proba(z)[:, 1], atol=2e-4)


def test_cross_fit_recovers_exact_domain_probability():
    x, t = _pooled(n=1000)
    pi = cross_fit_domain_probability(x, t, key=jax.random.key(0))
    lr = x @ np.array([1.0, -0.5]) - 0.5 * (1.0 + 0.25)  # log q/p for the two unit Gaussians
    exact = 1 / (1 + np.exp(-lr))  # target share 1/2
    err = np.abs(np.asarray(pi) - exact)
    assert err.mean() < 0.02 and err.max() < 0.1, (err.mean(), err.max())
    np.testing.assert_array_equal(pi, cross_fit_domain_probability(x, t, key=jax.random.key(0)))


def test_mlp_learns_a_quadratic_log_ratio():
    x, t = _pooled(n=400, shift=0.0, scale=0.5)  # log q/p = log 4 - 1.5 |x|²: not linear in x
    spec = ClassifierSpec(kind="mlp", hidden=8, num_steps=200, learning_rate=0.05)
    _, pi = fit_domain_classifier(x, t, key=jax.random.key(1), spec=spec)
    lr = np.log(4.0) - 1.5 * np.sum(x.astype(np.float64) ** 2, 1)
    exact = 1 / (1 + np.exp(-lr))
    assert np.mean(np.abs(np.asarray(pi) - exact)) < 0.06
    _, pi_lin = fit_domain_classifier(x, t, key=0)
    assert np.mean(np.abs(np.asarray(pi_lin) - exact)) > 0.15  # a linear classifier cannot


def test_folds_are_stratified_and_balanced():
    t = jnp.asarray(np.r_[np.zeros(23), np.ones(17)])
    f = np.asarray(fold_ids(jax.random.key(0), t, 5))
    for dom, n in ((0, 23), (1, 17)):
        counts = np.bincount(f[np.asarray(t) == dom], minlength=5)
        assert counts.sum() == n and counts.max() - counts.min() <= 1


def test_bad_input():
    x, t = _pooled(n=10)
    with pytest.raises(ValueError, match="is_target must be"):
        fit_domain_classifier(x, t[:-1], key=0)
    with pytest.raises(ValueError, match="x must be"):
        fit_domain_classifier(x[:, 0], t, key=0)
    with pytest.raises(ValueError, match="num_folds"):
        cross_fit_domain_probability(x, t, key=0, num_folds=1)
    with pytest.raises(TypeError, match="key"):
        fit_domain_classifier(x, t, key=jnp.zeros(3))
