import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.core import compile_fast, compiled_on_first_call


@jax.jit
def _f(x, w):
    return jnp.tanh(x @ w).sum(axis=-1)


def _inputs():
    kx, kw = jax.random.split(jax.random.key(0))
    return jax.random.normal(kx, (5, 4)), jax.random.normal(kw, (4, 3))


def test_level0_executable_matches_jit():
    x, w = _inputs()
    want = np.tanh(np.asarray(x, np.float64) @ np.asarray(w, np.float64)).sum(-1)
    np.testing.assert_allclose(compile_fast(_f, x, w)(x, w), want, rtol=1e-5)
    lazy = compiled_on_first_call(_f)
    np.testing.assert_allclose(lazy(x, w), want, rtol=1e-5)
    np.testing.assert_allclose(lazy(2 * x, w), np.asarray(_f(2 * x, w)), rtol=1e-5)


def test_not_fast_returns_jit_itself():
    x, w = _inputs()
    assert compile_fast(_f, x, w, fast=False) is _f
    assert compiled_on_first_call(_f, fast=False) is _f


def test_executable_rejects_other_shapes():
    x, w = _inputs()
    lazy = compiled_on_first_call(_f)
    lazy(x, w)
    with pytest.raises((TypeError, ValueError)):
        lazy(jnp.ones((6, 4)), w)
