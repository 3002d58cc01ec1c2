"""core.compile.dual_jit: the level-0 compilation of small one-off programs agrees with the default one."""

import jax
import jax.numpy as jnp
import numpy as np

from nips23jax.core import SMALL_WORK, dual_jit


def test_fast_and_default_compilations_agree_and_nest_inside_jit():
    f = dual_jit(lambda x, k: jnp.cos(x) * k + jnp.exp(-x), static_argnums=1)
    x = np.linspace(-3.0, 3.0, 11, dtype=np.float32)
    expected = np.cos(x.astype(np.float64)) * 2.0 + np.exp(-x.astype(np.float64))
    assert f.at(SMALL_WORK + 1) is f.default
    assert (f.at(0) is f.default) == (jax.default_backend() != "cpu")  # level 0 only on the CPU backend
    for out in (f.at(0)(x, 2.0), f.at(SMALL_WORK + 1)(x, 2.0), f(x, 2.0),
                jax.jit(lambda v: f.at(0)(v, 2.0))(x),  # traced argument: traced inline
                jax.jit(lambda: f.at(0)(x, 2.0))()):     # only constants, inside an outer jit: traced inline too
        np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
