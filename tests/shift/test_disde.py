import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from scipy.stats import multivariate_normal

from nips23jax.core import make_mesh
from nips23jax.shift import (
    EmptySharedRegionWarning,
    Population,
    disde,
    disde_ground_truth,
    disde_terms,
    sample_population,
    shared_region_weights,
)

N = 600  # examples per domain in every disde() call here: one compiled program for the module
B = 20
SOURCE = Population.create([0.0, 0.0], [1.0, 1.0], [1.5, 1.0])
# Target: mean shift (X-shift) and a changed intercept and slope (Y|X-shift).
TARGET = Population.create([1.0, 0.0], [1.0, 1.0], [1.5, -0.5], bias=0.3)


def h(x):
    return (x @ jnp.array([1.5, 1.0]) > 0).astype(jnp.int32)


def _draw(source, target, seed):
    xp, yp = sample_population(jax.random.key(seed), source, N)
    xq, yq = sample_population(jax.random.key(seed + 1), target, N)
    return xp, (h(xp) == yp).astype(jnp.float32), xq, (h(xq) == yq).astype(jnp.float32)


@pytest.fixture(scope="module")
def shifted():
    data = _draw(SOURCE, TARGET, 10)
    return data, disde(*data, key=jax.random.key(0), num_bootstrap=B)


def _exact_weights(xp, xq):
    p = multivariate_normal(np.asarray(SOURCE.mean), np.diag(np.asarray(SOURCE.std) ** 2))
    q = multivariate_normal(np.asarray(TARGET.mean), np.diag(np.asarray(TARGET.std) ** 2))
    xp, xq = np.asarray(xp, np.float64), np.asarray(xq, np.float64)
    return q.pdf(xp) / (p.pdf(xp) + q.pdf(xp)), p.pdf(xq) / (p.pdf(xq) + q.pdf(xq))


def test_terms_sum_to_total_exactly(shifted):
    _, r = shifted
    t = r.terms
    assert t.x_shift_p_to_s + t.y_given_x + t.x_shift_s_to_q == pytest.approx(t.total, abs=1e-6)
    b = r.bootstrap
    np.testing.assert_allclose(b.x_shift_p_to_s + b.y_given_x + b.x_shift_s_to_q, b.total, atol=1e-6)
    np.testing.assert_allclose(t.yx_share, t.y_given_x / t.total, rtol=1e-5)
    assert b.total.shape == (B,) and all(np.isfinite(v) and v > 0 for v in r.se)


def test_weights_formula_gives_density_ratios():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2)) * 1.5
    wp, wq = _exact_weights(x, x)
    a = 0.3
    p = multivariate_normal([0, 0]).pdf(x)
    q = multivariate_normal([1, 0]).pdf(x)
    pi = a * q / (a * q + (1 - a) * p)  # a calibrated domain classifier
    np.testing.assert_allclose(shared_region_weights(pi, np.zeros(50), a), q / (p + q), rtol=1e-5)
    np.testing.assert_allclose(shared_region_weights(pi, np.ones(50), a), p / (p + q), rtol=1e-5)
    np.testing.assert_allclose(q / (p + q), wp, rtol=1e-10)


def test_disde_terms_match_naive_weighted_means():
    rng = np.random.default_rng(1)
    cp, cq = rng.integers(0, 2, 40).astype(float), rng.uniform(size=30)
    wp, wq = rng.uniform(size=40), rng.uniform(size=30)
    t = disde_terms(cp, cq, wp, wq)
    esp, esq = np.sum(wp * cp) / wp.sum(), np.sum(wq * cq) / wq.sum()
    np.testing.assert_allclose(
        [t.x_shift_p_to_s, t.y_given_x, t.x_shift_s_to_q, t.total],
        [esp - cp.mean(), esq - esp, cq.mean() - esq, cq.mean() - cp.mean()], rtol=1e-5, atol=1e-6,
    )
    np.testing.assert_allclose(t.overlap, wp.mean() + wq.mean(), rtol=1e-5)


def test_estimate_matches_exact_density_ground_truth(shifted):
    (xp, cp, xq, cq), r = shifted
    # (i) on the same samples, the S-terms with the exact densities (NumPy/SciPy, no classifier)
    wp, wq = _exact_weights(xp, xq)
    cp64, cq64 = np.asarray(cp, np.float64), np.asarray(cq, np.float64)
    esp, esq = np.sum(wp * cp64) / wp.sum(), np.sum(wq * cq64) / wq.sum()
    exact = {"x_shift_p_to_s": esp - cp64.mean(), "y_given_x": esq - esp, "x_shift_s_to_q": cq64.mean() - esq}
    for name, value in exact.items():
        assert abs(getattr(r.terms, name) - value) < 0.02, (name, getattr(r.terms, name), value)
    # (ii) the population truth (exact densities and exact P(y = h(x) | x)), within 3 bootstrap SE
    truth = disde_ground_truth(jax.random.key(5), SOURCE, TARGET, h, num=200_000)
    for name in ("x_shift_p_to_s", "y_given_x", "x_shift_s_to_q", "total"):
        est, se, true = getattr(r.terms, name), getattr(r.se, name), float(getattr(truth, name))
        assert abs(est - true) <= 3 * se + 0.005, (name, est, se, true)
    assert float(truth.y_given_x) < -0.05 and float(truth.x_shift_s_to_q) > 0.02  # both kinds of shift present


def test_ground_truth_of_a_pure_label_shift_is_all_y_given_x():
    target = SOURCE._replace(beta=jnp.array([1.5, -1.0]))
    t = disde_ground_truth(0, SOURCE, target, h, num=200_000)  # same h and num as above: no recompile
    assert abs(float(t.x_shift_p_to_s)) < 1e-6 and abs(float(t.x_shift_s_to_q)) < 1e-6
    np.testing.assert_allclose(t.y_given_x, t.total, atol=1e-6)
    assert float(t.total) < -0.1
    null = disde_ground_truth(1, SOURCE, SOURCE, h, num=200_000)
    assert all(abs(float(v)) < 1e-6 for v in (null.total, null.x_shift_p_to_s, null.y_given_x, null.x_shift_s_to_q))


def test_null_case_all_terms_near_zero():
    data = _draw(SOURCE, SOURCE, 20)
    r = disde(*data, key=jax.random.key(1), num_bootstrap=B)
    for name in ("x_shift_p_to_s", "y_given_x", "x_shift_s_to_q"):
        assert abs(getattr(r.terms, name)) <= 3 * getattr(r.se, name) + 0.005, (name, r.terms, r.se)
    assert r.terms.overlap > 0.9


def test_same_key_same_result(shifted):
    data, r = shifted
    again = disde(*data, key=jax.random.PRNGKey(0), num_bootstrap=B)  # raw key, same bits
    assert again.terms == r.terms and again.se == r.se
    other = disde(*data, key=jax.random.key(7), num_bootstrap=B)
    assert other.se != r.se


def test_fixed_pi_bootstrap(shifted):
    data, r = shifted
    fixed = disde(*data, key=jax.random.key(0), num_bootstrap=B, refit_bootstrap=False)
    np.testing.assert_allclose(list(fixed.terms), list(r.terms), rtol=1e-5, atol=1e-6)  # same point estimate
    np.testing.assert_allclose(fixed.bootstrap.total, r.bootstrap.total, rtol=1e-6)  # same resamples
    assert all(np.isfinite(v) and v > 0 for v in fixed.se)


def test_no_overlap_warns_that_s_is_empty():
    far = Population.create([40.0, 0.0], [1.0, 1.0], [1.5, 1.0])
    data = _draw(SOURCE, far, 30)
    with pytest.warns(EmptySharedRegionWarning, match="shared region S is empty"):
        r = disde(*data, key=jax.random.key(2), num_bootstrap=B)
    assert all(np.isfinite(v) for v in r.terms) and r.terms.overlap < 0.01
    assert np.all(np.isfinite(r.source_weight)) and np.all(np.isfinite(r.target_weight))


@pytest.mark.parametrize(
    "change, match",
    [
        (lambda d: (d[0], d[1], d[2][:, :1], d[3]), "same feature dimension"),
        (lambda d: (d[0][:, 0], d[1], d[2], d[3]), r"source_x must be \(n, d\)"),
        (lambda d: (d[0], d[1][:-1], d[2], d[3]), "source_correct must be"),
        (lambda d: (d[0], d[1], d[2], d[3].at[0].set(jnp.nan)), "target_correct has non-finite"),
        (lambda d: (d[0], d[1], d[2].at[0, 0].set(jnp.inf), d[3]), "target_x has non-finite"),
    ],
)
def test_bad_input(shifted, change, match):
    data, _ = shifted
    with pytest.raises(ValueError, match=match):
        disde(*change(data), key=0)


def test_bad_hyperparameters(shifted):
    data, _ = shifted
    with pytest.raises(ValueError, match="num_folds"):
        disde(*data, key=0, num_folds=1)
    with pytest.raises(ValueError, match="kind must be one of"):
        disde(*data, key=0, classifier="forest")
    with pytest.raises(ValueError, match="num_bootstrap"):
        disde(*data, key=0, num_bootstrap=1)


def test_sharded_equals_unsharded():
    rng = np.random.default_rng(3)
    cp, cq = rng.integers(0, 2, 64).astype(np.float32), rng.integers(0, 2, 64).astype(np.float32)
    wp, wq = rng.uniform(size=64).astype(np.float32), rng.uniform(size=64).astype(np.float32)
    mesh = make_mesh({"data": 8})
    s = NamedSharding(mesh, P("data"))
    sharded = jax.jit(disde_terms)(*(jax.device_put(v, s) for v in (cp, cq, wp, wq)))
    plain = disde_terms(cp, cq, wp, wq)
    np.testing.assert_allclose(np.array(sharded), np.array(plain), rtol=1e-5, atol=1e-7)


def test_weights_are_checked():
    c = np.array([1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="source_weight must be finite, >= 0 and not all 0"):
        disde_terms(c, [1.0, 1.0], np.zeros(3), [1.0, 1.0])  # was NaN
    with pytest.raises(ValueError, match="source_weight must be finite, >= 0"):
        disde_terms(c, [1.0, 1.0], [-1.0, 1.0, 0.0], [1.0, 1.0])  # was -inf
    with pytest.raises(ValueError, match=r"pi and is_target must be \(n,\)"):
        shared_region_weights(jnp.array([0.3, 0.6]), jnp.array([[0.0], [1.0]]), 0.5)  # would broadcast to (2, 2)
