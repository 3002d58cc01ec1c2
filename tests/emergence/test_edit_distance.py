import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nips23jax.core import make_mesh
from nips23jax.emergence import longest_common_subsequence, token_edit_distance
from nips23jax.emergence.edit_distance import as_device_array


def naive_levenshtein(a, b):
    """Wagner-Fischer, written out in plain Python."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def naive_lcs(a, b):
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    return prev[-1]


def _random_batch(seed, batch=64, tp=9, tt=7, vocab=4):
    rng = np.random.default_rng(seed)
    pred = rng.integers(0, vocab, (batch, tp)).astype(np.int32)
    target = rng.integers(0, vocab, (batch, tt)).astype(np.int32)
    lp = rng.integers(0, tp + 1, batch).astype(np.int32)
    lt = rng.integers(0, tt + 1, batch).astype(np.int32)
    lp[:3], lt[:3] = [0, 0, tp], [0, tt, 0]  # both empty, empty prediction, empty target
    return pred, target, lp, lt


def test_edit_distance_and_lcs_match_naive_dynamic_programs():
    pred, target, lp, lt = _random_batch(0)
    got = np.asarray(token_edit_distance(pred, target, lp, lt))
    got_lcs = np.asarray(longest_common_subsequence(pred, target, lp, lt))
    for i in range(len(pred)):
        a, b = pred[i, : lp[i]].tolist(), target[i, : lt[i]].tolist()
        assert got[i] == naive_levenshtein(a, b), (a, b)
        assert got_lcs[i] == naive_lcs(a, b), (a, b)
    assert got[0] == 0 and got[1] == lt[1] and got[2] == lp[2]


def test_hand_worked_examples_and_default_lengths():
    # kitten -> sitting: 3 (two substitutions, one insertion)
    kitten, sitting = [[10, 8, 19, 19, 4, 13]], [[18, 8, 19, 19, 8, 13, 6]]
    assert int(token_edit_distance(kitten, sitting)[0]) == 3
    assert int(token_edit_distance(jnp.array([[1, 2, 3]]), jnp.array([[1, 3, 0]]), target_lengths=jnp.array([2]))[0]) == 1
    # padding beyond the lengths is ignored, whatever it holds
    assert int(token_edit_distance([[5, 6, 9, 9]], [[5, 6, 7]], [2], [2])[0]) == 0
    # width-0 arrays are valid (empty sequences)
    empty = np.zeros((2, 0), np.int32)
    np.testing.assert_array_equal(token_edit_distance(empty, [[1, 2], [3, 4]]), [2, 2])


def test_jit_vmap_and_sharded_equal_unsharded():
    pred, target, lp, lt = _random_batch(1, batch=16)
    want = np.asarray(token_edit_distance(pred, target, lp, lt))
    jitted = jax.jit(token_edit_distance)(pred, target, lp, lt)
    np.testing.assert_array_equal(jitted, want)
    mesh = make_mesh({"data": 8})
    sh = NamedSharding(mesh, P("data"))
    args = [jax.device_put(x, sh) for x in (pred, target, lp, lt)]
    got = token_edit_distance(*args)
    np.testing.assert_array_equal(np.asarray(got), want)


def test_bad_input():
    x = np.zeros((2, 3), np.int32)
    with pytest.raises(ValueError, match="pred_lengths must lie in \\[0, 3\\]"):
        token_edit_distance(x, x, pred_lengths=[1, 4])
    with pytest.raises(ValueError, match="target_lengths must lie"):
        token_edit_distance(x, x, target_lengths=[-1, 2])
    with pytest.raises(ValueError, match="same batch size"):
        token_edit_distance(x, np.zeros((3, 3), np.int32))
    with pytest.raises(ValueError, match="pred_lengths must have shape \\(2,\\)"):
        token_edit_distance(x, x, pred_lengths=[1, 2, 3])
    with pytest.raises(TypeError, match="integer token ids"):
        token_edit_distance(x.astype(np.float32), x)
    with pytest.raises(ValueError, match="\\(batch, length\\)"):
        token_edit_distance(np.zeros(3, np.int32), x)
    with pytest.raises(ValueError, match="outside the int32 range"):  # 2**32 + 1 wrapped to 1
        token_edit_distance(np.array([[2**32 + 1]], np.uint64), np.array([[1]]))



def test_as_device_array_matches_jnp_asarray_and_keeps_jax_arrays():
    for host in (np.arange(6, dtype=np.int64).reshape(2, 3), np.linspace(0, 1, 4), [[1, 2], [3, 4]], 7, [True, False]):
        got, want = as_device_array(host), jnp.asarray(host)
        assert isinstance(got, jax.Array) and got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    x = jnp.ones((2, 2), jnp.int32)
    assert as_device_array(x) is x
