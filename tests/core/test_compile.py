import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.core import compile_fast, compiled_on_first_call, jit_per_function


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


def _apply(fn, scale, x):
    return fn(x) * scale


class _Unhashable:
    __hash__ = None

    def __call__(self, x):
        return jnp.sin(x)


def test_jit_per_function_compiles_once_per_function_and_falls_back_inline():
    traced = []

    def apply(fn, scale, x):
        traced.append(fn)
        return _apply(fn, scale, x)

    run = jit_per_function(apply, (0, 1))
    x = jnp.linspace(0.0, 1.0, 5)
    want = np.sin(np.asarray(x, np.float64)) * 2.0
    for _ in range(3):
        np.testing.assert_allclose(run(jnp.sin, 2.0, x), want, rtol=1e-6)
    assert len(traced) == 1  # one trace serves repeated calls with the same function, scale and shape
    np.testing.assert_allclose(run(jnp.sin, 3.0, x), want * 1.5, rtol=1e-6)
    assert len(traced) == 2  # a new static value is a new program
    unhashable = _Unhashable()
    for _ in range(2):  # no cache key: it runs inline every time, with the same result
        np.testing.assert_allclose(run(unhashable, 2.0, x), want, rtol=1e-6)
    assert len(traced) == 4
    partial = functools.partial(jnp.multiply, 1.0)  # hashable: partials hash by identity
    np.testing.assert_allclose(run(partial, 2.0, x), 2.0 * np.asarray(x), rtol=1e-6)
