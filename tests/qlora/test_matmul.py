import dataclasses
import functools

import flax.linen as nn
import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.models.transformer import TransformerConfig, TransformerLM
from nips23jax.qlora import NF4Tensor, dequantize_4bit, quantize_4bit
from nips23jax.qlora.matmul import NF4Dense, default_tile, nf4_matmul

# (in, out, batch shape, tile): which path and which tiling each exercises.
SHAPES = {
    "aligned, one tile": (128, 64, (5,), None),
    "aligned, 3 tiles, batch dims": (96, 128, (2, 3), 32),
    "aligned, remainder tile": (100, 64, (4,), 24),
    "blocks straddle rows": (40, 48, (3,), 16),  # 1920 = 30 blocks of 64, each over two rows
    "odd out, short last block": (37, 33, (3,), 8),  # 1221 = 19 * 64 + 5; rows start mid-byte
    "block spans rows, 1-D x": (16, 32, (), 4),
}
# Every shape in NF4 with double quantization; the other storage variants on two of them (the
# codebook and the scales are all that change).
CASES = [(case, "nf4", True) for case in SHAPES] + [
    (case, quant_type, double_quant)
    for case in ("aligned, remainder tile", "odd out, short last block")
    for quant_type, double_quant in (("nf4", False), ("fp4", True), ("int4", False))
]


def _weight(n_in, n_out, quant_type="nf4", double_quant=True, seed=0, block_size=64):
    """A random 4-bit weight: uniform codes (every code, padding nibble included) and positive scales,
    built directly (nf4_matmul must agree with dequantize_4bit on any stored content; this also
    spares a quantization's compilation per shape)."""
    rng = np.random.default_rng(seed)
    n = n_in * n_out
    blocks = -(-n // block_size)
    packed = rng.integers(0, 256, -(-n // 2), dtype=np.uint8)
    if double_quant:
        absmax = rng.integers(0, 256, blocks, dtype=np.uint8)
        absmax2 = rng.uniform(0.05, 0.1, -(-blocks // 256)).astype(np.float32)
        offset = np.float32(0.1)
    else:
        absmax = rng.uniform(0.05, 0.2, blocks).astype(np.float32)
        absmax2, offset = np.zeros(0, np.float32), np.float32(0)
    return NF4Tensor(jnp.asarray(packed), jnp.asarray(absmax), jnp.asarray(absmax2), jnp.asarray(offset), (n_in, n_out),
                     jnp.dtype(jnp.float32), block_size, 256, double_quant, quant_type)


def _x(shape, seed=1, dtype=jnp.float32):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, np.float32), dtype)


def _reference(x, q):
    """x @ W in float64 NumPy, W from dequantize_4bit (the library's independent full dequantization)."""
    return np.asarray(x, np.float64) @ np.asarray(dequantize_4bit(q), np.float64)


@pytest.mark.parametrize("case,quant_type,double_quant", CASES)
def test_equals_dequantize_then_matmul_float32(case, quant_type, double_quant):
    n_in, n_out, batch, tile = SHAPES[case]
    q = _weight(n_in, n_out, quant_type, double_quant)
    x = _x((*batch, n_in))
    y = nf4_matmul(x, q, tile=tile)
    assert y.shape == (*batch, n_out) and y.dtype == jnp.float32
    ref = _reference(x, q)
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@pytest.mark.parametrize("case", ["aligned, remainder tile", "odd out, short last block"])
def test_bfloat16(case):
    n_in, n_out, batch, tile = SHAPES[case]
    q = _weight(n_in, n_out)
    x = _x((*batch, n_in), dtype=jnp.bfloat16)
    y = nf4_matmul(x, q, tile=tile)
    assert y.dtype == jnp.bfloat16
    # The product of the bf16-rounded operands, accumulated exactly, then rounded once to bf16.
    w16 = np.asarray(dequantize_4bit(q, jnp.bfloat16), np.float64)
    ref = np.asarray(x, np.float64) @ w16
    np.testing.assert_allclose(np.asarray(y, np.float64), ref, rtol=1e-2, atol=1e-2 * np.abs(ref).max())


def test_compute_dtype_overrides_x_dtype():
    n_in, n_out, batch, tile = SHAPES["aligned, remainder tile"]
    q = _weight(n_in, n_out)
    x = _x((*batch, n_in), dtype=jnp.bfloat16)
    y32 = nf4_matmul(x, q, tile=tile, compute_dtype=jnp.float32)
    assert y32.dtype == jnp.float32
    ref = _reference(x, q)
    np.testing.assert_allclose(np.asarray(y32), ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    y16 = nf4_matmul(x.astype(jnp.float32), q, tile=tile, compute_dtype="bfloat16")
    assert y16.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(y16, np.float64), ref, rtol=1e-2, atol=1e-2 * np.abs(ref).max())


@pytest.mark.parametrize("case", ["aligned, remainder tile", "odd out, short last block"])
def test_gradient_wrt_x_equals_naive(case):
    n_in, n_out, batch, tile = SHAPES[case]
    q = _weight(n_in, n_out)
    x = _x((*batch, n_in))
    t = _x((*batch, n_out), seed=2)

    def loss(f):
        return lambda x: jnp.sum(jnp.sin(f(x)) * t)

    ours = jax.grad(loss(lambda x: nf4_matmul(x, q, tile=tile)))(x)
    naive = jax.grad(loss(lambda x: x @ dequantize_4bit(q)))(x)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(naive), rtol=1e-5, atol=1e-6)


def test_codes_and_scales_get_zero_cotangents():
    q = _weight(64, 64)
    x = _x((3, 64))
    y, vjp = jax.vjp(lambda x, q: nf4_matmul(x, q, tile=16), x, q)
    dx, dq = vjp(jnp.ones_like(y))
    assert isinstance(dq, NF4Tensor) and dq.shape == q.shape
    for leaf, ct in zip(jax.tree.leaves(q), jax.tree.leaves(dq)):
        assert ct.shape == leaf.shape
        if jnp.issubdtype(leaf.dtype, jnp.integer):
            assert ct.dtype == jax.dtypes.float0
        else:
            assert ct.dtype == leaf.dtype and not np.any(np.asarray(ct))
    np.testing.assert_allclose(np.asarray(dx), np.asarray(jnp.ones((3, 64)) @ dequantize_4bit(q).T), rtol=1e-5)


def test_jit_and_vmap():
    q = _weight(48, 64)
    xs = _x((4, 3, 48))
    ref = _reference(xs, q)
    tol = dict(rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    np.testing.assert_allclose(np.asarray(jax.jit(nf4_matmul, static_argnames="tile")(xs, q, tile=16)), ref, **tol)
    np.testing.assert_allclose(np.asarray(jax.vmap(lambda x: nf4_matmul(x, q, tile=16))(xs)), ref, **tol)
    # vmapped over stacked weights as well (e.g. scanned layers), and per-example gradients.
    qs = [_weight(48, 64, seed=s) for s in range(4)]
    stacked = jax.tree.map(lambda *a: jnp.stack(a), *qs)
    ys = jax.jit(jax.vmap(lambda x, q: nf4_matmul(x, q, tile=16)))(xs, stacked)
    for i in range(4):
        np.testing.assert_allclose(np.asarray(ys[i]), _reference(xs[i], qs[i]), **tol)
    grads = jax.vmap(jax.grad(lambda x: nf4_matmul(x, q, tile=16).sum()))(xs)
    np.testing.assert_allclose(np.asarray(grads), np.broadcast_to(np.asarray(dequantize_4bit(q)).sum(1), xs.shape),
                               rtol=1e-5, atol=1e-6)


def _float_intermediates(jaxpr):
    """Shapes of every floating-point value a jaxpr (and its sub-jaxprs) computes."""
    out = []
    for eqn in jaxpr.eqns:
        out += [v.aval.shape for v in eqn.outvars if jnp.issubdtype(v.aval.dtype, jnp.floating)]
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            out += _float_intermediates(sub)
    return out


@pytest.mark.parametrize("case", ["aligned", "general"])
def test_never_materializes_the_weight(case):
    n_in, n_out = (512, 256) if case == "aligned" else (512, 250)
    q = _weight(n_in, n_out)
    x = _x((4, n_in))
    full = n_in * n_out
    ours = lambda x, q: nf4_matmul(x, q, tile=64)  # noqa: E731
    naive = lambda x, q: x @ dequantize_4bit(q)  # noqa: E731
    for f in (ours, jax.grad(lambda x, q: ours(x, q).sum())):
        sizes = [int(np.prod(s)) for s in _float_intermediates(jax.make_jaxpr(f)(x, q).jaxpr)]
        assert max(sizes) <= 64 * n_out, sorted(sizes)[-5:]
    # The compiled program agrees: its scratch memory is well under one float32 copy of the weight,
    # which the naive program needs (checked, so the measure is known to see it).
    temp = lambda f: jax.jit(f).lower(x, q).compile().memory_analysis().temp_size_in_bytes  # noqa: E731
    assert temp(naive) >= 4 * full
    assert temp(ours) < 4 * full / 2
    assert temp(jax.grad(lambda x, q: ours(x, q).sum())) < 4 * full / 2


def test_default_tile():
    assert default_tile(4096, 4096, 1) == 64 and default_tile(4096, 4096, 512) == 512
    assert default_tile(64, 64, 1) == 64  # smaller than one slab: one tile
    assert default_tile(1000, 300, 1) == 500  # 872 rows would leave a last tile of 128: two of 500
    assert default_tile(10, 10**6, 1) == 5
    for n_in, n_out, batch in [(4096, 11008, 8), (11008, 4096, 256), (777, 1000, 1)]:
        t = default_tile(n_in, n_out, batch)
        assert 1 <= t <= n_in and (n_in % t == 0 or n_in % t >= t - n_in // t)


def test_bad_inputs():
    q = _weight(32, 64)
    with pytest.raises(ValueError, match="x's last dimension must equal q.shape"):
        nf4_matmul(jnp.ones((2, 31)), q)
    with pytest.raises(ValueError, match="x's last dimension"):
        nf4_matmul(jnp.ones(()), q)
    with pytest.raises(ValueError, match="q must be a 2-D"):
        nf4_matmul(jnp.ones((2, 32)), dataclasses.replace(q, shape=(32, 8, 8)))
    with pytest.raises(TypeError, match="x must be floating-point"):
        nf4_matmul(jnp.ones((2, 32), jnp.int32), q)
    with pytest.raises(TypeError, match="q must be an NF4Tensor"):
        nf4_matmul(jnp.ones((2, 32)), jnp.ones((32, 64)))
    with pytest.raises(TypeError, match="unknown compute_dtype"):
        nf4_matmul(jnp.ones((2, 32)), q, compute_dtype="float17")
    with pytest.raises(TypeError, match="compute_dtype must be a floating-point"):
        nf4_matmul(jnp.ones((2, 32)), q, compute_dtype=jnp.int8)
    with pytest.raises(ValueError, match="tile must be a positive int"):
        nf4_matmul(jnp.ones((2, 32)), q, tile=0)


def test_nf4_dense_init_apply_and_grad():
    x = _x((2, 5, 48))
    layer = NF4Dense(features=64, bias_init=nn.initializers.normal(1.0))
    variables = jax.jit(layer.init)(jax.random.key(0), x)
    assert set(variables) == {"params", "quant"}
    assert list(variables["params"]) == ["bias"] and variables["params"]["bias"].shape == (64,)
    kernel = variables["quant"]["kernel"]
    assert isinstance(kernel, NF4Tensor) and kernel.shape == (48, 64) and kernel.double_quant
    assert not any(jnp.issubdtype(leaf.dtype, jnp.integer) for leaf in jax.tree.leaves(variables["params"]))
    # The same kernel nn.Dense draws from the same key, quantized.
    dense_kernel = jax.jit(nn.Dense(64).init)(jax.random.key(0), x)["params"]["kernel"]
    np.testing.assert_array_equal(np.asarray(kernel.packed), np.asarray(quantize_4bit(dense_kernel).packed))

    y = jax.jit(layer.apply)(variables, x)
    ref = _reference(x, kernel) + np.asarray(variables["params"]["bias"])
    np.testing.assert_allclose(np.asarray(y), ref, rtol=1e-5, atol=1e-5)

    def loss(params, x):
        return jnp.sum(layer.apply({"params": params, "quant": variables["quant"]}, x) ** 2)

    g_params, g_x = jax.jit(jax.grad(loss, argnums=(0, 1)))(variables["params"], x)
    np.testing.assert_allclose(np.asarray(g_params["bias"]), np.sum(2 * ref, axis=(0, 1)), rtol=1e-4)
    w = np.asarray(dequantize_4bit(kernel), np.float64)
    np.testing.assert_allclose(np.asarray(g_x), (2 * ref) @ w.T, rtol=1e-4, atol=1e-5)


def test_nf4_dense_options():
    x = _x((3, 32), dtype=jnp.bfloat16)
    layer = NF4Dense(features=16, use_bias=False, quant_type="fp4", double_quant=False, dtype=jnp.bfloat16)
    variables = layer.init(jax.random.key(0), x)  # eagerly: the weight is checked for NaN/Inf
    assert "params" not in variables or not variables["params"]
    kernel = variables["quant"]["kernel"]
    assert kernel.quant_type == "fp4" and not kernel.double_quant and kernel.dtype == jnp.float32
    assert layer.apply(variables, x).dtype == jnp.bfloat16
    assert NF4Dense(features=16, use_bias=False).apply(variables, x).dtype == jnp.float32  # bf16 x, float32 params
    bad = {"quant": {"kernel": quantize_4bit(jnp.ones((8, 16)))}}
    with pytest.raises(ValueError, match="NF4Tensor of shape"):
        layer.apply(bad, x)


def test_nf4_dense_as_the_transformer_dense_factory():
    cfg = TransformerConfig(vocab_size=16, d_model=16, num_heads=2, num_layers=1, max_len=8, tied_head=False)
    model = TransformerLM(cfg, dense=NF4Dense)
    tokens = jnp.arange(12, dtype=jnp.int32).reshape(2, 6) % 16

    def init_and_grad(key):
        variables = model.init(key, tokens)
        loss = lambda p: jnp.mean(model.apply({"params": p, "quant": variables["quant"]}, tokens) ** 2)  # noqa: E731
        return variables, jax.grad(loss)(variables["params"])

    # Traced, not compiled (compiling the model takes seconds; NF4Dense's numbers are tested above):
    # every Dense of the model built by the factory, the kernels in "quant", a gradient over "params".
    variables, grads = jax.eval_shape(init_and_grad, jax.random.key(0))
    quant = variables["quant"]
    for path in (("block_0", "attn", "query"), ("block_0", "mlp", "fc1"), ("block_0", "mlp", "fc2"), ("head",)):
        kernel = functools.reduce(dict.__getitem__, path, quant)["kernel"]
        assert isinstance(kernel, NF4Tensor) and kernel.packed.dtype == jnp.uint8
        assert list(functools.reduce(dict.__getitem__, path, variables["params"])) == ["bias"]
    assert quant["block_0"]["mlp"]["fc1"]["kernel"].shape == (16, 64)
    assert jax.tree.structure(grads) == jax.tree.structure(variables["params"])
