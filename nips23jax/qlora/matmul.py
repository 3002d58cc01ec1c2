"""Matrix products with a 4-bit weight, dequantized tile by tile inside the computation (QLoRA, Sec. 3).

QLoRA's forward pass is ``Y = X · doubleDequant(c₁, c₂, W^{NF4})`` (Dettmers et al. 2023, Eq. 6):
the weight stays in its 4-bit storage and is dequantized to the computation dtype only to be
multiplied. :func:`nf4_matmul` computes that product for a Flax kernel ``(in, out)`` stored as an
:class:`~nips23jax.qlora.nf4.NF4Tensor` without ever holding the whole dequantized weight: a loop
over tiles of ``tile`` rows of the weight (slices of the ``in`` dimension) dequantizes one
``(tile, out)`` slab at a time and accumulates ``x[:, rows] · W[rows, :]`` in float32.

Layout: the weight is flattened row-major into blocks of ``block_size`` (64), so when
``out % block_size == 0`` every block is ``block_size`` consecutive entries of one row, a tile of
rows is one contiguous run of packed bytes, and its scales are a ``(tile, out / block_size)``
slice of the block scales (the fast path). Each packed byte holds two neighbouring entries of a
row; it is decoded with one lookup into a 256 x 2 table of code pairs, which yields the entries
already interleaved. Any other shape (blocks straddling rows, a short last block, odd ``out``)
takes a general path that finds each entry's byte, nibble and block by index arithmetic.

:class:`NF4Dense` is a Flax Dense layer whose kernel is such a frozen 4-bit weight, for the
shared Transformer's ``dense`` factory.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from nips23jax.qlora.nf4 import QUANT_TYPES, NF4Tensor, block_scales, codebook, quantize_4bit

__all__ = ["NF4Dense", "default_tile", "nf4_matmul"]

# Rows per tile for the default: a (tile, out) float32 slab of about this many entries. Measured on a
# 2-core AMD EPYC (1 MiB L2 per core, 32 MiB L3) with a 4096 x 4096 weight (benchmarks/nf4_matmul.py):
# small batches want slabs of ~0.5-2 MiB (the product is a matrix-vector one, bound by the
# dequantization), large batches slabs of ~8 MiB (fewer, larger matrix products).
_SMALL_BATCH_TILE_ENTRIES = 2**18
_LARGE_BATCH_TILE_ENTRIES = 2**21
_LARGE_BATCH = 128


def _pair_table(quant_type: str) -> np.ndarray:
    """``(256, 2)`` float32: byte ``b`` decodes to ``(code[b >> 4], code[b & 15])``."""
    code = codebook(quant_type)
    return np.stack([np.repeat(code, 16), np.tile(code, 16)], axis=-1)


_PAIRS = {name: _pair_table(name) for name in QUANT_TYPES}


def default_tile(in_features: int, out_features: int, batch: int) -> int:
    """Rows of the weight per tile that :func:`nf4_matmul` uses when ``tile=None``.

    About ``2^18`` entries per ``(tile, out)`` slab for batches under 128 and ``2^21`` from 128 on
    (at least 8 rows), then evened out over as many tiles so the last one is not a sliver. A weight
    smaller than one slab is one tile.
    """
    target = _LARGE_BATCH_TILE_ENTRIES if batch >= _LARGE_BATCH else _SMALL_BATCH_TILE_ENTRIES
    rows = max(8, target // max(out_features, 1) // 8 * 8)
    if rows >= in_features:
        return in_features
    return -(-in_features // -(-in_features // rows))  # as many tiles, of equal size


def _dequantize_rows_aligned(q: NF4Tensor, scales: jax.Array, start: Any, rows: int) -> jax.Array:
    """Rows ``start:start + rows`` of the float32 weight when ``out % block_size == 0``."""
    n_in, n_out = q.shape
    bs = q.block_size
    packed = lax.dynamic_slice_in_dim(q.packed.reshape(n_in, n_out // 2), start, rows)
    s = lax.dynamic_slice_in_dim(scales.reshape(n_in, n_out // bs), start, rows)
    values = jnp.asarray(_PAIRS[q.quant_type]).at[packed].get(mode="promise_in_bounds")  # uint8: no wrap-around
    return (values.reshape(rows, n_out // bs, bs) * s[:, :, None]).reshape(rows, n_out)


def _dequantize_rows_general(q: NF4Tensor, scales: jax.Array, start: Any, rows: int) -> jax.Array:
    """Rows ``start:start + rows`` of the float32 weight, any shape: per entry its flat index ``e``,
    byte ``e // 2`` (high nibble when ``e`` is even) and block ``e // block_size``."""
    n_out = q.shape[1]
    e = (start + jnp.arange(rows, dtype=jnp.int32))[:, None] * n_out + jnp.arange(n_out, dtype=jnp.int32)[None, :]
    byte = q.packed.at[e >> 1].get(mode="promise_in_bounds").astype(jnp.int32)
    code = (byte >> (4 * (1 - (e & 1)))) & 0xF
    values = jnp.asarray(codebook(q.quant_type)).at[code].get(mode="promise_in_bounds")
    return values * scales.at[e // q.block_size].get(mode="promise_in_bounds")


def _tile_fn(q: NF4Tensor, compute_dtype: Any):
    """``(start, rows) -> (rows, out)`` weight rows in ``compute_dtype`` (block scales computed once)."""
    scales = block_scales(q)
    aligned = q.shape[1] % q.block_size == 0
    dequantize = _dequantize_rows_aligned if aligned else _dequantize_rows_general

    def rows_of_w(start, rows):
        return dequantize(q, scales, start, rows).astype(compute_dtype)

    return rows_of_w


def _dot(a: jax.Array, b: jax.Array, contract: tuple[int, int], acc_dtype: Any) -> jax.Array:
    """``a · b`` contracting ``a``'s axis ``contract[0]`` with ``b``'s ``contract[1]``, accumulated in
    ``acc_dtype``. XLA:CPU has no fast bfloat16/float16 matrix product, so there the operands (already
    rounded to the compute dtype) are multiplied in ``acc_dtype``: the same products, exact in float32."""
    if jax.default_backend() == "cpu" and a.dtype != acc_dtype:
        a, b = a.astype(acc_dtype), b.astype(acc_dtype)
    dims = (((contract[0],), (contract[1],)), ((), ()))
    return lax.dot_general(a, b, dims, preferred_element_type=acc_dtype)


def _forward(x: jax.Array, q: NF4Tensor, compute_dtype: Any, tile: int) -> jax.Array:
    """``x (N, in) @ W (in, out)``: accumulate ``x[:, rows] @ W[rows]`` over tiles of rows."""
    n_in, n_out = q.shape
    acc_dtype = jnp.promote_types(compute_dtype, jnp.float32)
    rows_of_w = _tile_fn(q, compute_dtype)
    n_full, rest = divmod(n_in, tile)

    def product(start, rows):
        xs = lax.dynamic_slice_in_dim(x, start, rows, axis=1)
        return _dot(xs, rows_of_w(start, rows), (1, 0), acc_dtype)

    acc = jnp.zeros((x.shape[0], n_out), acc_dtype)
    if n_full == 1:
        acc = product(0, tile)
    elif n_full > 1:
        acc = lax.fori_loop(0, n_full, lambda k, a: a + product(k * tile, tile), acc)
    if rest:
        acc = acc + product(n_full * tile, rest)
    return acc.astype(compute_dtype)


def _backward_x(g: jax.Array, q: NF4Tensor, compute_dtype: Any, tile: int) -> jax.Array:
    """``g (N, out) @ W^T``, one ``(N, tile)`` column slab of the result per tile of rows of W."""
    n_in, _ = q.shape
    acc_dtype = jnp.promote_types(compute_dtype, jnp.float32)
    rows_of_w = _tile_fn(q, compute_dtype)
    n_full, rest = divmod(n_in, tile)

    def product(start, rows):
        return _dot(g, rows_of_w(start, rows), (1, 1), acc_dtype).astype(compute_dtype)

    parts = []
    if n_full == 1:
        parts.append(product(0, tile))
    elif n_full > 1:
        _, slabs = lax.scan(lambda c, k: (c, product(k * tile, tile)), None, jnp.arange(n_full, dtype=jnp.int32))
        parts.append(jnp.moveaxis(slabs, 0, 1).reshape(g.shape[0], n_full * tile))
    if rest:
        parts.append(product(n_full * tile, rest))
    return parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=1)


def _zero_cotangent(q: NF4Tensor) -> NF4Tensor:
    """Zeros shaped like ``q``'s leaves: float0 for the integer leaves (codes), as JAX requires."""
    def zero(leaf):
        if jnp.issubdtype(leaf.dtype, jnp.inexact):
            return jnp.zeros(leaf.shape, leaf.dtype)
        return np.zeros(leaf.shape, jax.dtypes.float0)

    return jax.tree.map(zero, q)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _matmul_2d(x: jax.Array, q: NF4Tensor, compute_dtype: Any, tile: int) -> jax.Array:
    return _forward(x, q, compute_dtype, tile)


def _matmul_2d_fwd(x, q, compute_dtype, tile):
    return _forward(x, q, compute_dtype, tile), q


def _matmul_2d_bwd(compute_dtype, tile, q, g):
    return _backward_x(g, q, compute_dtype, tile), _zero_cotangent(q)


_matmul_2d.defvjp(_matmul_2d_fwd, _matmul_2d_bwd)


@functools.partial(jax.jit, static_argnames=("compute_dtype", "tile"))
def _nf4_matmul(x: jax.Array, q: NF4Tensor, compute_dtype: Any, tile: int) -> jax.Array:
    lead = x.shape[:-1]
    y = _matmul_2d(x.reshape(-1, x.shape[-1]).astype(compute_dtype), q, compute_dtype, tile)
    return y.reshape(*lead, q.shape[1])


def _check_compute_dtype(compute_dtype: Any) -> np.dtype:
    try:
        dtype = jnp.dtype(compute_dtype)
    except TypeError as err:
        raise TypeError(f"nf4_matmul: unknown compute_dtype {compute_dtype!r}") from err
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"nf4_matmul: compute_dtype must be a floating-point dtype, got {dtype}")
    return dtype


def nf4_matmul(
    x: jax.typing.ArrayLike, q: NF4Tensor, *, compute_dtype: Any = None, tile: int | None = None
) -> jax.Array:
    """``x @ dequantize_4bit(q)`` without materializing the dequantized weight (QLoRA Eq. 6).

    The weight is dequantized ``tile`` rows at a time inside the compiled computation and each
    slab's product ``x[..., rows] @ W[rows, :]`` is accumulated in (at least) float32. The
    gradient flows to ``x`` only (``dx = g @ Wᵀ``, also tile by tile); the stored codes and
    scales are constants and get zero cotangents (float0 for the uint8 leaves).

    Args:
      x: ``(..., in)`` floating-point activations.
      q: an :class:`NF4Tensor` of shape ``(in, out)`` (a Flax kernel), any ``quant_type``,
        with or without double quantization.
      compute_dtype: dtype of the product and of the dequantized weight (default ``x.dtype``);
        ``x`` is cast to it. Accumulation is float32 (float64 for float64).
      tile: rows of the weight dequantized per step (default :func:`default_tile`); the peak
        extra memory is one ``(tile, out)`` slab.

    Returns:
      ``(..., out)`` in ``compute_dtype``.

    Raises:
      TypeError: ``q`` is not an NF4Tensor, ``x`` is not floating-point, or ``compute_dtype`` is
        not a floating-point dtype. ValueError: ``q`` is not 2-D, ``x``'s last dimension is not
        ``q.shape[0]``, ``tile`` is not a positive int, or a weight of 2^31 entries or more has
        ``out`` not a multiple of ``block_size``.

    Example::

        q = quantize_nf4(jax.random.normal(key, (4096, 4096)) * 0.02)
        y = nf4_matmul(x, q)                                  # x: (batch, 4096) -> (batch, 4096)
        dx = jax.grad(lambda x: nf4_matmul(x, q).sum())(x)
    """
    if not isinstance(q, NF4Tensor):
        raise TypeError(f"nf4_matmul: q must be an NF4Tensor, got {type(q).__name__}")
    if len(q.shape) != 2:
        raise ValueError(f"nf4_matmul: q must be a 2-D (in, out) weight, got shape {q.shape}")
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"nf4_matmul: x must be floating-point, got dtype {x.dtype}")
    if x.ndim < 1 or x.shape[-1] != q.shape[0]:
        raise ValueError(f"nf4_matmul: x's last dimension must equal q.shape[0] = {q.shape[0]}, got x shape {x.shape}")
    if q.shape[1] % q.block_size and q.size >= 2**31:
        raise ValueError(f"nf4_matmul: a weight of {q.size} entries whose blocks straddle rows (out = {q.shape[1]} "
                         f"is not a multiple of block_size = {q.block_size}) is beyond the int32 index arithmetic")
    dtype = _check_compute_dtype(x.dtype if compute_dtype is None else compute_dtype)
    if tile is None:
        tile = default_tile(q.shape[0], q.shape[1], math.prod(x.shape[:-1]))
    elif isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1:
        raise ValueError(f"nf4_matmul: tile must be a positive int (rows of the weight per step), got {tile!r}")
    return _nf4_matmul(x, q, dtype, min(int(tile), q.shape[0]))


class NF4Dense(nn.Module):
    """A Dense layer with a frozen 4-bit kernel: ``nf4_matmul(x, kernel) + bias``.

    Drop-in for the shared Transformer's ``dense`` factory (``features``, ``use_bias``, ``dtype``,
    ``param_dtype``, ``name``). The kernel lives as an :class:`NF4Tensor` in the non-trainable
    collection ``"quant"`` (variable ``"kernel"``): at init it is ``kernel_init(rng, (in, features))``
    quantized with ``quant_type``/``block_size``/``double_quant``, drawn with the same rng as
    ``nn.Dense``'s kernel would be. To use a pretrained weight, put ``quantize_4bit(kernel)`` in
    that collection. Only the bias (if ``use_bias``) is in ``"params"``, so ``jax.grad`` over the
    params never meets the uint8 codes.

    Attributes:
      features: output width.
      use_bias: add a trainable bias (``"params"``).
      dtype: computation dtype (default: ``x``'s dtype promoted with ``param_dtype``).
      param_dtype: dtype of the initial kernel (the NF4Tensor's ``dtype``) and of the bias.
      kernel_init, bias_init: initializers, as ``nn.Dense``'s.
      quant_type, block_size, double_quant, dq_block_size: as :func:`quantize_4bit`.
      tile: rows per tile for :func:`nf4_matmul` (default: its own choice).

    Example::

        layer = NF4Dense(features=256)
        variables = layer.init(key, x)                 # {"params": {"bias"}, "quant": {"kernel"}}
        y = layer.apply(variables, x)
        model = TransformerLM(cfg, dense=NF4Dense)     # every Dense of the model in NF4
    """

    features: int
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Any = nn.initializers.lecun_normal()
    bias_init: Any = nn.initializers.zeros_init()
    quant_type: str = "nf4"
    block_size: int = 64
    double_quant: bool = True
    dq_block_size: int = 256
    tile: int | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel_shape = (jnp.shape(x)[-1], self.features)

        def init_kernel():
            w = self.kernel_init(self.make_rng("params"), kernel_shape, self.param_dtype)
            return quantize_4bit(w, self.quant_type, self.block_size, double_quant=self.double_quant,
                                 dq_block_size=self.dq_block_size)

        kernel = self.variable("quant", "kernel", init_kernel).value
        if not isinstance(kernel, NF4Tensor) or tuple(kernel.shape) != kernel_shape:
            got = kernel.shape if isinstance(kernel, NF4Tensor) else type(kernel).__name__
            raise ValueError(f"NF4Dense {self.name}: quant/kernel must be an NF4Tensor of shape {kernel_shape}, "
                             f"got {got}")
        bias = self.param("bias", self.bias_init, (self.features,), self.param_dtype) if self.use_bias else None
        dtype = self.dtype if self.dtype is not None else jnp.promote_types(jnp.result_type(x), self.param_dtype)
        y = nf4_matmul(jnp.asarray(x, dtype), kernel, compute_dtype=dtype, tile=self.tile)
        return y if bias is None else y + bias.astype(dtype)
