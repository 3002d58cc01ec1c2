import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nips23jax.discrete as D
from nips23jax.discrete.ess import ess_per_step

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def test_matches_tensorflow_probability_fixture():
    f = np.load(FIXTURES / "tfp_ess.npz")
    np.testing.assert_allclose(D.ess(f["samples"]), f["ess"], rtol=2e-4)


def test_matches_tfp_on_discs_sized_hamming_chains():
    # 50,000 kept steps of integer Hamming distances, as in DISCS' recorded Ising results (tfp in
    # float32 there); ESS from ~11 (as slow as DISCS' random walk) to ~2,600, and a constant chain
    f = np.load(FIXTURES / "tfp_ess_long.npz")
    ours = np.asarray(D.ess(f["trace"]))
    np.testing.assert_allclose(ours[:-1], f["ess_float64"][:-1], rtol=1e-5)
    np.testing.assert_allclose(ours[:-1], f["ess_float32"][:-1], rtol=1e-4)  # tfp float32 vs float64: 5e-5
    assert np.isnan(ours[-1]) and np.isnan(f["ess_float32"][-1])
    # DISCS' ESS_M-H: mean over chains with a constant chain counted as ESS 1, over the kept steps
    expected = (f["ess_float32"][:-1].sum() + 1.0) / 5 / 50_000
    np.testing.assert_allclose(float(ess_per_step(f["trace"], burn_in=0.0)), expected, rtol=1e-4)
    half = f["trace"][:1000]
    np.testing.assert_allclose(float(ess_per_step(half, burn_in=0.5, constant_chain_ess=0.0)),
                               np.nan_to_num(np.asarray(D.ess(half[500:])), nan=0.0).mean() / 500, rtol=1e-6)


def test_naive_numpy_autocorrelation():
    x = np.random.default_rng(1).normal(size=(37, 2)).cumsum(0)
    xc = x - x.mean(0)
    n = len(x)
    acov = np.array([(xc[: n - k] * xc[k:]).sum(0) / (n - k) for k in range(n)])
    np.testing.assert_allclose(D.autocorrelation(x), acov / acov[0], atol=1e-5)


N, C = 8000, 32  # one shape for the i.i.d. and AR(1) checks: the eager ops compile once


def test_iid_draws_have_ess_near_n():
    x = jax.random.normal(jax.random.key(0), (N, C))
    e = np.asarray(D.ess(x))
    assert abs(e.mean() / N - 1) < 0.05


def test_ar1_matches_closed_form():
    rho, n, c = 0.9, N, C
    eps = jax.random.normal(jax.random.key(1), (n, c))
    x = jax.lax.scan(lambda s, e: (rho * s + e, rho * s + e), jnp.zeros(c), eps)[1]
    expected = n * (1 - rho) / (1 + rho)
    assert abs(float(D.ess(x).mean()) / expected - 1) < 0.1


def test_burn_in_and_hamming():
    x = np.concatenate([np.full((50, 1), 100.0), np.random.default_rng(0).normal(size=(50, 1))])
    np.testing.assert_allclose(D.ess(x, burn_in=0.5), D.ess(x[50:]))
    assert D.hamming_distance(jnp.array([[0, 1, 2], [1, 0, 0]]), jnp.array([0, 1, 1])).tolist() == [1, 3]
    with pytest.raises(ValueError, match=r"reference must have shape \(d,\) = \(4,\)"):
        D.hamming_distance(jnp.zeros((2, 4)), jnp.ones(1))  # would broadcast to [4, 4]


def test_ess_bad_input():
    with pytest.raises(ValueError, match="burn_in"):
        D.ess(np.zeros((10, 2)), burn_in=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        D.ess(np.zeros((3, 2)), burn_in=0.7)
    with pytest.raises(ValueError, match="time axis"):
        D.ess(np.float32(1.0))
    with pytest.raises(ValueError, match="burn_in"):
        ess_per_step(np.zeros((10, 2)), burn_in=-0.1)
    # every chain constant (never moved): each counts as constant_chain_ess over the kept steps
    assert float(ess_per_step(np.zeros((10, 2)), burn_in=0.5)) == pytest.approx(1.0 / 5)
