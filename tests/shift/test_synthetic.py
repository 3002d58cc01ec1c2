import jax
import numpy as np
import pytest
from scipy.stats import multivariate_normal, norm

from nips23jax.shift import Population, conditional_accuracy, exact_shared_weights, sample_population
from nips23jax.shift.synthetic import label_probability, log_density

POP = Population.create([0.5, -1.0, 0.0], [1.0, 2.0, 0.5], [1.0, 0.5, -2.0], bias=0.2, noise=0.7)


def test_density_and_labels_match_scipy():
    x = np.random.default_rng(0).normal(size=(20, 3))
    ref = multivariate_normal(np.asarray(POP.mean), np.diag(np.asarray(POP.std) ** 2)).logpdf(x)
    np.testing.assert_allclose(log_density(POP, x), ref, rtol=1e-5)
    eta = norm.cdf((x @ np.asarray(POP.beta) + 0.2) / 0.7)
    np.testing.assert_allclose(label_probability(POP, x), eta, rtol=1e-5, atol=1e-6)
    pred = (np.arange(20) % 2).astype(np.int32)
    np.testing.assert_allclose(conditional_accuracy(POP, x, pred), np.where(pred == 1, eta, 1 - eta), atol=1e-6)


def test_samples_have_the_population_moments():
    x, y = sample_population(jax.random.key(0), POP, 8000)
    x, y = np.asarray(x, np.float64), np.asarray(y)
    np.testing.assert_allclose(x.mean(0), POP.mean, atol=0.06)
    np.testing.assert_allclose(x.std(0), POP.std, rtol=0.04)
    eta = norm.cdf((x @ np.asarray(POP.beta) + 0.2) / 0.7)
    assert abs(y.mean() - eta.mean()) < 0.02
    np.testing.assert_array_equal(x, sample_population(jax.random.PRNGKey(0), POP, 8000)[0])


def test_exact_shared_weights():
    other = POP._replace(mean=POP.mean + 1.0)
    x = np.random.default_rng(1).normal(size=(6, 3))
    p, q = np.exp(log_density(POP, x)), np.exp(log_density(other, x))
    wp, wq = exact_shared_weights(POP, other, x)
    np.testing.assert_allclose(wp, q / (p + q), rtol=1e-5)
    np.testing.assert_allclose(wq, p / (p + q), rtol=1e-5)


def test_bad_population():
    with pytest.raises(ValueError, match="positive"):
        Population.create(0.0, [1.0, 0.0], [1.0, 1.0])
