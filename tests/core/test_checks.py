import jax
import jax.numpy as jnp
import numpy as np

from nips23jax.core import ids_out_of_range
from nips23jax.models import lm


def test_in_range_gives_none_and_out_of_range_gives_min_max():
    assert ids_out_of_range(np.array([[0, 3], [2, 1]]), 4) is None
    assert ids_out_of_range(np.array([[0, 4], [2, -1]]), 4) == (-1, 4)
    assert ids_out_of_range(jnp.array([5]), 5) == (5, 5)
    assert ids_out_of_range(np.zeros((0,), np.int32), 1) is None  # nothing to check
    assert ids_out_of_range(np.array([True, False]), 2) is None  # bool states are 0/1


def test_mask_excludes_placeholders():
    ids = np.array([[1, -100], [2, 7]])
    mask = np.array([[1, 0], [1, 0]])
    assert ids_out_of_range(ids, 3, mask) is None
    assert ids_out_of_range(ids, 3, np.ones_like(mask)) == (-100, 7)
    assert ids_out_of_range(ids, 3, np.zeros_like(mask)) is None


def test_traced_ids_are_not_checked():
    seen = []
    jax.jit(lambda ids: seen.append(ids_out_of_range(ids, 2)) or ids)(jnp.array([9]))
    assert seen == [None]
    # a constant closed over by an outer jit is concrete there and is checked through NumPy
    const = jnp.array([0, 3])
    jax.jit(lambda x: seen.append(ids_out_of_range(const, 2)) or x)(1.0)
    assert seen[-1] == (0, 3)


def test_models_lm_re_exports_the_same_function():
    assert lm.ids_out_of_range is ids_out_of_range
