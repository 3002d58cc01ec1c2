from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from nips23jax.qlora import (
    FP4_CODE, INT4_CODE, NF4_CODE, bits_per_param, codebook, dequantize_4bit, dequantize_nf4, dynamic_map,
    from_bitsandbytes, quantize_4bit, quantize_4bit_many, quantize_fp4, quantize_int4, quantize_nf4, to_bitsandbytes,
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


def test_quantize_many_in_one_program_is_bitsandbytes_per_weight():
    """Every fixture weight quantized in one call (one program): each equals bitsandbytes' result alone."""
    qs = quantize_4bit_many([BNB[f"{name}/input"] for name in NAMES], double_quant=False)
    for name, q in zip(NAMES, qs):
        assert q.shape == BNB[f"{name}/input"].shape and not q.double_quant
        np.testing.assert_array_equal(np.asarray(q.packed), BNB[f"{name}/plain/packed"])
        np.testing.assert_array_equal(np.asarray(q.absmax), BNB[f"{name}/plain/absmax"])
    dq = quantize_4bit_many([BNB["w1/input"], BNB["w2/input"]], double_quant=True)
    np.testing.assert_array_equal(np.asarray(dq[1].packed), BNB["w2/dq/packed"])
    np.testing.assert_allclose(np.asarray(dq[1].offset), BNB["w2/dq/offset"], rtol=1e-6)
    # the stored layout, and so bits/param, follows from the shapes alone: an abstract quantization counts the same
    abstract = jax.eval_shape(lambda w: quantize_nf4(w), jax.ShapeDtypeStruct(BNB["w1/input"].shape, jnp.float32))
    assert bits_per_param(abstract) == bits_per_param(dq[0])
    with pytest.raises(ValueError, match=r"ws\[1\]: the weight contains NaN"):
        quantize_4bit_many([np.ones(8, np.float32), np.array([1.0, np.inf], np.float32)])
    with pytest.raises(TypeError, match=r"ws\[0\]: expected a floating-point"):
        quantize_4bit_many([np.arange(8)])
    with pytest.raises(ValueError, match="quant_type must be one of"):
        quantize_4bit_many([np.ones(8, np.float32)], "nf8")


def test_fp4_codebook_is_e2m1():
    """Sign in bit 3; bitsandbytes' magnitude codes 0..7 hold {0, 1/16, 8, 12, 4, 6, 2, 3}/12: the E2M1
    values 2^e·(1 + m/2) (and the subnormal 1/16), normalized by their maximum 12."""
    for code in range(16):
        mag = [0.0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0][code & 7] / 12.0
        assert FP4_CODE[code] == np.float32(-mag if code >> 3 else mag), code
    np.testing.assert_array_equal(np.sort(np.abs(FP4_CODE[:8])) * 12, [0, 0.0625, 2, 3, 4, 6, 8, 12])
    np.testing.assert_allclose(INT4_CODE[1:], np.arange(-7, 8) / 7, rtol=1e-7)
    with pytest.raises(ValueError, match="quant_type must be one of"):
        codebook("int8")


@pytest.mark.parametrize("name", NAMES)
def test_fp4_is_bit_identical_to_bitsandbytes(name):
    w = BNB[f"{name}/input"]
    q = quantize_fp4(w, double_quant=False)
    assert q.quant_type == "fp4"
    np.testing.assert_array_equal(np.asarray(q.packed), BNB[f"{name}/plain/fp4/packed"])
    np.testing.assert_array_equal(np.asarray(q.absmax), BNB[f"{name}/plain/fp4/absmax"])
    np.testing.assert_array_equal(np.asarray(dequantize_4bit(q)), BNB[f"{name}/plain/fp4/dequantized"])
    qd = quantize_fp4(w)
    np.testing.assert_array_equal(np.asarray(qd.packed), BNB[f"{name}/dq/fp4/packed"])
    k = f"{name}/dq/fp4"
    loaded = from_bitsandbytes(BNB[f"{k}/packed"], BNB[f"{k}/absmax"], w.shape, nested_absmax=BNB[f"{k}/nested_absmax"],
                               offset=BNB[f"{k}/offset"], quant_type="fp4")
    np.testing.assert_allclose(np.asarray(dequantize_4bit(loaded)), BNB[f"{k}/dequantized"], rtol=1e-6, atol=1e-7)


def _numpy_nearest(x, code):
    """Naive reference: the nearest code value by brute force, ties to the smaller value, then the
    first index holding that value (FP4's +0 and -0 are told apart by the sign of x as bitsandbytes'
    sorted search does: tiny negatives take code 0, tiny positives code 8)."""
    d = np.abs(x[:, None].astype(np.float64) - code[None, :].astype(np.float64))
    best = d.min(axis=1, keepdims=True)
    cand = np.where(np.isclose(d, best, rtol=0, atol=1e-12), code[None, :], np.inf)
    val = cand.min(axis=1)
    out = np.array([np.flatnonzero(code == v)[0] for v in val])
    if code is FP4_CODE:
        out = np.where((val == 0) & (x > 0), 8, out)
    return out


@pytest.mark.parametrize("quant_type", ["fp4", "int4"])
def test_fp4_and_int4_nearest_code_against_brute_force(quant_type):
    code = codebook(quant_type)
    x = np.concatenate([[1.0], np.random.default_rng(1).uniform(-1, 1, 4095)]).astype(np.float32)
    q = quantize_4bit(x, quant_type, block_size=4096, double_quant=False)
    got = np.stack([np.asarray(q.packed) >> 4, np.asarray(q.packed) & 15], -1).reshape(-1)
    np.testing.assert_array_equal(got, _numpy_nearest(x, code))
    if quant_type == "int4":  # round(7x)/7 with absmax 1; code 0 never written
        np.testing.assert_allclose(np.asarray(dequantize_4bit(q)), np.round(7 * x) / 7, atol=1e-6)
        assert not (got == 0).any()


def test_nf4_beats_fp4_beats_int4_on_normal_weights():
    """The paper's data-type ordering shows up in the quantization error of normal weights."""
    w = jax.random.normal(jax.random.key(3), (512, 256))
    err = {}
    for qt in ("nf4", "fp4", "int4"):
        out = dequantize_4bit(quantize_4bit(w, qt, double_quant=False))
        err[qt] = float(jnp.sqrt(jnp.mean((out - w) ** 2)))
    assert err["nf4"] < err["fp4"] and err["nf4"] < err["int4"], err


def test_bad_input():
    with pytest.raises(ValueError, match="quant_type must be one of"):
        quantize_4bit(np.ones(8, np.float32), "nf8")
    with pytest.raises(ValueError, match="no 'int4'"):
        to_bitsandbytes(quantize_int4(np.ones(8, np.float32)))
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
    # inconsistent double-quantization arrays: uint8 codes read as scales (max |w| 255 instead of ~4), float
    # scales truncated to uint8, an offset without nested scales, bad block sizes and dtypes
    with pytest.raises(ValueError, match="uint8 codes need nested_absmax"):
        from_bitsandbytes(BNB["w2/dq/packed"], BNB["w2/dq/absmax"], (33, 7))
    with pytest.raises(ValueError, match="absmax must be the uint8 codes"):
        from_bitsandbytes(BNB[f"{k}/packed"], BNB[f"{k}/absmax"], (33, 7), nested_absmax=BNB["w2/dq/nested_absmax"],
                          offset=0.1)
    with pytest.raises(ValueError, match="offset belongs to double quantization"):
        from_bitsandbytes(BNB[f"{k}/packed"], BNB[f"{k}/absmax"], (33, 7), offset=5.0)
    with pytest.raises(ValueError, match="block_size must be an even int"):
        from_bitsandbytes(BNB[f"{k}/packed"], BNB[f"{k}/absmax"], (33, 7), block_size=0)
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        from_bitsandbytes(BNB[f"{k}/packed"], BNB[f"{k}/absmax"], (33, 7), dtype=jnp.int32)
    with pytest.raises(ValueError, match="dtype must be a floating dtype"):
        dequantize_4bit(quantize_nf4(np.ones(8, np.float32)), jnp.int8)
    with pytest.raises(ValueError, match="too large for double quantization"):
        quantize_nf4(np.full(4096, 3e38, np.float32))  # the mean of the block scales overflows
    big = dequantize_4bit(quantize_nf4(np.full(4096, 3e38, np.float32), double_quant=False))
    np.testing.assert_allclose(big, 3e38, rtol=1e-6)
