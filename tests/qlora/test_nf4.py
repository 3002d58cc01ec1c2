from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from nips23jax.qlora import (
    NF4_CODE, bits_per_param, dequantize_nf4, dynamic_map, from_bitsandbytes, quantize_nf4, to_bitsandbytes,
)

BNB = np.load(Path(__file__).parent / "fixtures" / "bnb_nf4.npz")
NAMES = ("w1", "w2", "w3", "w4")


def test_codebook_from_its_definition():
    """8 positive and 7 negative normal quantiles (offset 0.9677083) plus 0, normalized (QLoRA App. E)."""
    offset = 0.9677083
    pos = norm.ppf(np.linspace(offset, 0.5, 9)[:-1])
    neg = -norm.ppf(np.linspace(offset, 0.5, 8)[:-1])
    v = np.sort(np.concatenate([pos, neg, [0.0]]))
    np.testing.assert_allclose(NF4_CODE, v / np.abs(v).max(), atol=2e-7)


def test_dynamic_map_is_bitsandbytes():
    ours, theirs = dynamic_map(), BNB["dynamic_map"]
    np.testing.assert_array_equal(ours, theirs)
    assert ours.min() >= -1.0 and ours.max() == 1.0 and (ours == 0).sum() == 1 and np.all(np.diff(ours) > 0)


def _numpy_nf4_codes(w, block=64):
    """Independent NumPy transcription of the rules (not the library's code path)."""
    flat = w.reshape(-1).astype(np.float32)
    n = flat.size
    codes, absmax = [], []
    for start in range(0, n, block):
        blk = flat[start:start + block]
        am = np.float32(np.abs(blk).max())
        absmax.append(am)
        if start + block <= n:
            x = blk * (np.float32(1) / np.float32(max(am, np.float32(1e-38))))
        else:
            x = blk / np.float32(max(am, np.float32(1e-38)))
        x = np.clip(x, -1, 1).astype(np.float32)
        for v in x:
            mids = (NF4_CODE[:-1] + NF4_CODE[1:]) / np.float32(2)
            codes.append(int(np.sum(v > mids)))  # strictly above a midpoint moves up: ties stay low
    codes = np.array(codes + [7] * (len(codes) % 2), np.uint8)  # padding: the scaled value 0.0
    return (codes[0::2] << 4) | codes[1::2], np.array(absmax, np.float32)


@pytest.mark.parametrize("name", NAMES)
def test_plain_layout_is_bit_identical_to_bitsandbytes(name):
    w = BNB[f"{name}/input"]
    q = quantize_nf4(w, double_quant=False)
    np.testing.assert_array_equal(np.asarray(q.packed), BNB[f"{name}/plain/packed"])
    np.testing.assert_array_equal(np.asarray(q.absmax), BNB[f"{name}/plain/absmax"])
    np.testing.assert_array_equal(np.asarray(dequantize_nf4(q)), BNB[f"{name}/plain/dequantized"])
    ref_packed, ref_absmax = _numpy_nf4_codes(w)
    np.testing.assert_array_equal(np.asarray(q.packed), ref_packed)
    np.testing.assert_array_equal(np.asarray(q.absmax), ref_absmax)


@pytest.mark.parametrize("name", NAMES)
def test_double_quant_matches_bitsandbytes(name):
    w = BNB[f"{name}/input"]
    q = quantize_nf4(w, double_quant=True)
    np.testing.assert_array_equal(np.asarray(q.packed), BNB[f"{name}/dq/packed"])
    np.testing.assert_allclose(np.asarray(q.offset), BNB[f"{name}/dq/offset"], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(q.absmax2), BNB[f"{name}/dq/nested_absmax"], rtol=1e-6)
    # bitsandbytes' CPU kernel finds the 8-bit code through a lookup table, so a few scale codes may
    # be a neighbour of the exact nearest one (its CUDA kernels search exactly, as we do).
    ours, theirs = np.asarray(q.absmax).astype(int), BNB[f"{name}/dq/absmax"].astype(int)
    assert np.abs(ours - theirs).max() <= 1 and (ours != theirs).mean() <= 0.05
    agree = ours == theirs
    blocks = np.repeat(agree, 64)[: w.size].reshape(w.shape)
    np.testing.assert_allclose(np.asarray(dequantize_nf4(q))[blocks], BNB[f"{name}/dq/dequantized"][blocks], rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_loading_bitsandbytes_arrays(name):
    for kind in ("plain", "dq"):
        k = f"{name}/{kind}"
        q = from_bitsandbytes(
            BNB[f"{k}/packed"], BNB[f"{k}/absmax"], BNB[f"{name}/input"].shape,
            nested_absmax=BNB[f"{k}/nested_absmax"] if kind == "dq" else None,
            offset=BNB[f"{k}/offset"] if kind == "dq" else None,
        )
        np.testing.assert_allclose(np.asarray(dequantize_nf4(q)), BNB[f"{k}/dequantized"], rtol=1e-6, atol=1e-7)
        back = to_bitsandbytes(q)
        np.testing.assert_array_equal(back["packed"], BNB[f"{k}/packed"])
        np.testing.assert_array_equal(back["absmax"], BNB[f"{k}/absmax"])


def test_ties_go_to_the_lower_code_and_zero_blocks_stay_zero():
    mids = (NF4_CODE[:-1] + NF4_CODE[1:]) / np.float32(2)
    w = np.concatenate([[1.0], mids, [0.0] * 48]).astype(np.float32)  # absmax 1: scaled == value
    codes = np.asarray(quantize_nf4(w, double_quant=False).packed)
    unpacked = np.stack([codes >> 4, codes & 15], -1).reshape(-1)
    np.testing.assert_array_equal(unpacked[1:16], np.arange(15))
    zeros = quantize_nf4(np.zeros((3, 64), np.float32))
    out = np.asarray(dequantize_nf4(zeros))
    assert np.array_equal(out, np.zeros((3, 64))) and not np.isnan(out).any()


def test_round_trip_error_and_dtype():
    w = jax.random.normal(jax.random.key(0), (256, 128), jnp.bfloat16)
    q = quantize_nf4(w)
    out = dequantize_nf4(q)
    assert out.dtype == jnp.bfloat16 and out.shape == (256, 128)
    assert dequantize_nf4(q, jnp.float32).dtype == jnp.float32
    # NF4 of normal data: relative RMS error about 0.1 (16 levels)
    err = np.sqrt(np.mean((np.asarray(out, np.float32) - np.asarray(w, np.float32)) ** 2)) / np.std(np.asarray(w, np.float32))
    assert 0.05 < err < 0.15
    # quantizing the dequantized weight again gives back the same codes and scales (a fixed point)
    plain = quantize_nf4(w.astype(jnp.float32), double_quant=False)
    again = quantize_nf4(dequantize_nf4(plain), double_quant=False)
    np.testing.assert_array_equal(np.asarray(again.packed), np.asarray(plain.packed))
    np.testing.assert_array_equal(np.asarray(again.absmax), np.asarray(plain.absmax))


def test_pytree_jit_and_bits_per_param():
    w = jax.random.normal(jax.random.key(1), (512, 512))
    q = quantize_nf4(w, double_quant=False)
    assert len(jax.tree.leaves(q)) == 4
    np.testing.assert_array_equal(jax.jit(dequantize_nf4)(q), dequantize_nf4(q))
    assert bits_per_param(q) == pytest.approx(4.5, abs=1e-3)
    qd = quantize_nf4(w)
    assert bits_per_param(qd) == pytest.approx(4 + 8 / 64 + 32 / (64 * 256), abs=2e-3)  # ~4.127
    jq = jax.jit(quantize_nf4, static_argnames=("block_size", "double_quant", "dq_block_size"))(w)
    np.testing.assert_array_equal(np.asarray(jq.packed), np.asarray(qd.packed))


def test_bad_input():
    with pytest.raises(ValueError, match="NaN or Inf"):
        quantize_nf4(np.array([1.0, np.nan], np.float32))
    with pytest.raises(TypeError, match="floating-point"):
        quantize_nf4(np.arange(8))
    with pytest.raises(ValueError, match="block_size must be an even int"):
        quantize_nf4(np.ones(8, np.float32), block_size=63)
    k = "w2/plain"
    with pytest.raises(ValueError, match="packed has"):
        from_bitsandbytes(BNB[f"{k}/packed"][:-1], BNB[f"{k}/absmax"], (33, 7))
    with pytest.raises(ValueError, match="absmax has"):
        from_bitsandbytes(BNB[f"{k}/packed"], BNB[f"{k}/absmax"][:-1], (33, 7))
    with pytest.raises(ValueError, match="needs offset"):
        from_bitsandbytes(BNB["w2/dq/packed"], BNB["w2/dq/absmax"], (33, 7), nested_absmax=BNB["w2/dq/nested_absmax"])
