import numpy as np
import pytest
from scipy.stats import binom

from nips23jax.emergence import (
    analytic_edit_distance,
    analytic_exact_match,
    emergence_score,
    items_to_resolve,
    power_law_cross_entropy,
    resolution,
    token_probability,
)


def test_power_law_closed_forms():
    n = np.array([1e6, 1e8, 1e10])
    ce = np.asarray(power_law_cross_entropy(n, 1e8, -0.5))
    np.testing.assert_allclose(ce, [10.0, 1.0, 0.1], rtol=1e-6)
    p = np.asarray(token_probability(ce))
    np.testing.assert_allclose(p, np.exp(-ce), rtol=1e-6)
    np.testing.assert_allclose(analytic_exact_match(p, 5), np.exp(-5 * ce), rtol=1e-5)
    np.testing.assert_allclose(analytic_edit_distance(p, 5), 5 * (1 - np.exp(-ce)), rtol=1e-6)
    # extreme: huge N -> p -> 1, exact match -> 1, edit distance -> 0; tiny N -> p -> 0
    assert float(analytic_exact_match(token_probability(power_law_cross_entropy(1e30, 1.0, -0.5)), 10)) == pytest.approx(1.0, abs=1e-12)
    assert float(analytic_exact_match(token_probability(power_law_cross_entropy(1e-30, 1.0, -0.5)), 10)) == 0.0
    with pytest.raises(ValueError, match="num_params must be > 0"):
        power_law_cross_entropy([1e6, 0.0], 1e8, -0.5)
    with pytest.raises(ValueError, match="c must be > 0"):
        power_law_cross_entropy(1e6, float("nan"), -0.5)
    with pytest.raises(ValueError, match="length must be finite and >= 0"):
        analytic_exact_match(0.5, -1)
    for fn, p in ((analytic_exact_match, 1.5), (analytic_exact_match, -0.5), (analytic_edit_distance, 2.0)):
        with pytest.raises(ValueError, match=r"p must be a per-token accuracy in \[0, 1\]"):
            fn(p, 3)


def test_emergence_score_against_hand_computation():
    y = np.array([0.0, 0.01, 0.02, 0.9, 0.95])
    steps2 = np.diff(y) ** 2
    want = (0.95 - 0.0) / np.sqrt(np.median(steps2))
    assert float(emergence_score(y)) == pytest.approx(want, rel=1e-6)
    # a straight line scores n - 1; falling curves are negative; order by scale first
    assert float(emergence_score(np.arange(6.0))) == pytest.approx(5.0)
    assert float(emergence_score(-np.arange(6.0))) == pytest.approx(-5.0)
    scales = np.array([5, 1, 4, 2, 3])
    assert float(emergence_score(y[[4, 0, 3, 1, 2]], scales)) == pytest.approx(want, rel=1e-6)
    # flat then jump: median step 0 -> inf; constant -> 0; batched rows scored independently
    assert float(emergence_score([0, 0, 0, 1])) == np.inf
    np.testing.assert_allclose(emergence_score(np.stack([np.arange(4.0), np.ones(4)])), [3.0, 0.0])
    with pytest.raises(ValueError, match=">= 3 points"):
        emergence_score([0.0, 1.0])
    with pytest.raises(ValueError, match="scales must have shape"):
        emergence_score(y, scales[:3])


def test_resolution_and_items_to_resolve_against_binomial():
    assert float(resolution(100)) == pytest.approx(0.01)
    assert float(resolution(1000, 5)) == pytest.approx(2e-4)
    for a in (0.5, 0.01, 1e-4):
        m = int(items_to_resolve(a))
        assert binom.sf(0, m, a) >= 0.95 > binom.sf(0, m - 1, a)
    m = int(items_to_resolve(0.02, confidence=0.9, min_correct=3))
    assert binom.sf(2, m, 0.02) >= 0.9 > binom.sf(2, m - 1, 0.02)
    assert int(items_to_resolve(1.0)) == 1
    with pytest.raises(ValueError, match="accuracy must be in \\(0, 1\\]"):
        items_to_resolve(0.0)
    with pytest.raises(ValueError, match="confidence"):
        items_to_resolve(0.1, confidence=1.0)
    with pytest.raises(ValueError, match="beyond int64"):  # was -9223372036854775808
        items_to_resolve([1e-19, 1e-310])
