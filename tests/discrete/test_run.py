import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nips23jax.discrete as D
from nips23jax.core import make_mesh
from nips23jax.core.compile import FAST_COMPILER_OPTIONS


FAST = FAST_COMPILER_OPTIONS  # 8 chains of 20 steps: compiling is the test's time


def _model():
    # the 3x3 Ising (λ = 0.5, μ = 0.5, field from key 0) with 8 chains of 20 steps: the two tests below
    # share the unsharded RWM program (the run-wide persistent compilation cache of tests/conftest.py)
    return D.ising(3, key=jax.random.key(0))


def test_sharded_chains_equal_unsharded():
    assert jax.device_count() == 8
    model = _model()
    alg = D.rwm(model)  # the chain axis is sharded the same way whatever the sampler
    tr, info = D.run_chains(jax.random.key(5), model, alg, 8, 20, compiler_options=FAST)
    mesh = make_mesh({"data": 8})
    tr_s, info_s = D.run_chains(jax.random.key(5), model, alg, 8, 20, mesh=mesh, compiler_options=FAST)
    assert tr_s.sharding.spec[1] == "data"
    np.testing.assert_array_equal(tr, tr_s)
    np.testing.assert_array_equal(info.final_state.x, info_s.final_state.x)
    np.testing.assert_allclose(info.acceptance_rate, info_s.acceptance_rate, rtol=1e-5)  # XLA may reorder float ops
    assert np.ptp(np.asarray(tr)) > 0  # the chains moved


def test_run_chains_shapes_keys_and_statistic():
    model = _model()
    alg = D.rwm(model)
    xs, info = D.run_chains(3, model, alg, 8, 20, keep="states", compiler_options=FAST)
    assert xs.shape == (20, 8, 9)
    xs_raw, _ = D.run_chains(jax.random.key_data(jax.random.key(3)), model, alg, 8, 20, keep="states",
                             compiler_options=FAST)  # same compile
    np.testing.assert_array_equal(xs, xs_raw)
    # by name (a sampler built with its defaults), the Hamming trace of the same chains
    tr, info2 = D.run_chains(3, model, "rwm", 8, 20, compiler_options=FAST)
    np.testing.assert_array_equal(tr, (np.asarray(xs) != np.asarray(info2.reference)).sum(-1))
    assert info.acceptance_rate.shape == (20, 8) and info.evals_per_step == 1.0


def test_run_chains_bad_input():
    model = D.bernoulli(jnp.zeros(5))
    with pytest.raises(ValueError, match="unknown sampler"):
        D.run_chains(0, model, "nuts", 2, 2)
    with pytest.raises(ValueError, match="num_chains"):
        D.run_chains(0, model, "rwm", 0, 2)
    with pytest.raises(ValueError, match="keep"):
        D.run_chains(0, model, "rwm", 2, 2, keep="all")
    with pytest.raises(ValueError, match="divisible"):
        D.run_chains(0, model, "rwm", 3, 2, mesh=make_mesh({"data": 8}))
    with pytest.raises(ValueError, match="init"):
        D.run_chains(0, model, "rwm", 2, 2, init=jnp.zeros((2, 4), jnp.int32))
    with pytest.raises(ValueError, match=r"init has values outside 0..1 \(3 entries; first init\[1, 0\] = 5\)"):
        D.run_chains(0, model, "rwm", 2, 2, init=jnp.array([[0, 1, 0, 1, 0], [5, 7, -3, 0, 1]]))
    with pytest.raises(TypeError, match="SamplingAlgorithm"):
        D.run_chains(0, model, object(), 2, 2)
    with pytest.raises(TypeError, match="compiler_options"):
        D.run_chains(0, model, "rwm", 2, 2, compiler_options=["xla_backend_optimization_level"])
