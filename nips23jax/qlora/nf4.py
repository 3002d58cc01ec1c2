"""NF4 4-bit weight storage (Dettmers et al., QLoRA, NeurIPS 2023), laid out as bitsandbytes lays it.

Quantization (bitsandbytes ``quantize_4bit(quant_type="nf4")``):

* flatten row-major into blocks of ``block_size`` (64); a short last block is a block of its own;
* per block an fp32 ``absmax``; values are scaled by ``1/absmax`` (the short last block is divided
  by its absmax) and clamped to [-1, 1]; an all-zero block keeps scale 0 and codes for 0.0;
* each value takes the nearest of the 16 NF4 codes, a value exactly on an fp32 midpoint taking the
  lower code;
* two codes per byte, the first element in the high nibble; an odd count is padded with the code of
  0.0 (index 7).

Double quantization (``compress_statistics=True``): ``offset = mean(absmax)`` (fp32) and
``absmax − offset`` is quantized blockwise (256) to 8 bits with bitsandbytes' signed dynamic map
(nearest code, as its CUDA kernels search), with an fp32 second-level absmax per 256 scales;
``absmax = dynamic[qabsmax] · absmax2 + offset``.

Dequantization: ``code[q] · absmax`` in fp32, then cast.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "NF4_CODE",
    "NF4Tensor",
    "bits_per_param",
    "dequantize_nf4",
    "dynamic_map",
    "from_bitsandbytes",
    "quantize_nf4",
    "to_bitsandbytes",
]

# The NF4 codebook: 7 negative and 8 positive normal quantiles and an exact zero, normalized to
# [-1, 1] (values as bitsandbytes defines them).
NF4_CODE = np.array(
    [
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
        -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
        0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
        0.7229568362236023, 1.0,
    ],
    np.float32,
)
_NF4_MIDPOINTS = ((NF4_CODE[:-1] + NF4_CODE[1:]) / np.float32(2)).astype(np.float32)
_ZERO_CODE = 7


def _torch_style_linspace_f32(start: float, end: float, steps: int) -> np.ndarray:
    """float32 linspace rounded as torch's CPU kernel rounds it.

    A float32 step; the first half is ``start + step·i`` and the second ``end − step·(steps−1−i)``,
    each rounded once to float32 (a fused multiply-add), which float64 arithmetic reproduces.
    """
    start32, end32 = np.float32(start), np.float32(end)
    step = np.float64(np.float32((end32 - start32) / np.float32(steps - 1)))
    i = np.arange(steps, dtype=np.float64)
    lo = np.float64(start32) + step * i
    hi = np.float64(end32) - step * (steps - 1 - i)
    return np.where(i < steps // 2, lo, hi).astype(np.float32)


def dynamic_map() -> np.ndarray:
    """bitsandbytes' signed 8-bit "dynamic" code (256 sorted float32 values in [-1, 1], with 0).

    Exponent ``10^(i−6)`` for ``i = 0..6``, each with ``2^i`` linearly spaced fractions in
    (0.1, 1) (the midpoints of ``2^i + 1`` points), both signs; plus 0 and 1.
    """
    values: list[float] = []
    for i in range(7):
        bounds = _torch_style_linspace_f32(0.1, 1.0, 2**i + 1)
        means = ((bounds[:-1] + bounds[1:]) / np.float32(2)).astype(np.float32)
        scaled = (np.float32(10.0 ** (i - 6)) * means).astype(np.float32)  # float32 product, as bitsandbytes
        values += scaled.tolist() + (-scaled).tolist()
    values += [0.0, 1.0]
    return np.sort(np.array(values, np.float32))


_DYNAMIC = dynamic_map()


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NF4Tensor:
    """A weight stored in NF4; a pytree whose leaves are the stored arrays.

    Attributes:
      packed: ``(ceil(n/2),)`` uint8, two 4-bit codes per byte (first element high nibble).
      absmax: ``(num_blocks,)`` float32 block scales, or with double quantization ``(num_blocks,)``
        uint8 codes into :func:`dynamic_map`.
      absmax2: ``(ceil(num_blocks/dq_block_size),)`` float32 second-level scales (DQ), else ``(0,)``.
      offset: ``()`` float32 mean of the block scales (DQ), else 0.
      shape, dtype, block_size, dq_block_size, double_quant: static metadata.
    """

    packed: jax.Array
    absmax: jax.Array
    absmax2: jax.Array
    offset: jax.Array
    shape: tuple[int, ...] = dataclasses.field(metadata=dict(static=True))
    dtype: Any = dataclasses.field(metadata=dict(static=True))
    block_size: int = dataclasses.field(metadata=dict(static=True))
    dq_block_size: int = dataclasses.field(metadata=dict(static=True))
    double_quant: bool = dataclasses.field(metadata=dict(static=True))

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def num_blocks(self) -> int:
        return -(-self.size // self.block_size)


def _blockwise_absmax(flat: jax.Array, block: int) -> tuple[jax.Array, jax.Array]:
    """``(absmax per block, values scaled to [-1, 1])`` following bitsandbytes' handling of the tail."""
    n = flat.shape[0]
    full = n - n % block
    body = flat[:full].reshape(-1, block)
    absmax = jnp.max(jnp.abs(body), axis=1)
    # An all-zero block keeps scale 0 and scaled values 0 (bitsandbytes clamps its absmax to 1e-38,
    # a float32 subnormal that XLA may flush to zero, so the zero case is spelled out).
    inv = jnp.where(absmax > 0, 1.0 / jnp.where(absmax > 0, absmax, 1.0), 0.0)
    scaled = jnp.clip(body * inv[:, None], -1, 1).reshape(-1)
    if n % block:
        tail = flat[full:]
        tail_max = jnp.max(jnp.abs(tail))
        safe = jnp.where(tail_max > 0, tail_max, 1.0)
        absmax = jnp.concatenate([absmax, tail_max[None]])
        scaled = jnp.concatenate([scaled, jnp.clip(tail / safe, -1, 1)])
    return absmax, scaled


def _nearest(scaled: jax.Array, midpoints: np.ndarray) -> jax.Array:
    """Index of the nearest code given sorted fp32 midpoints; ties go to the lower index."""
    return jnp.searchsorted(jnp.asarray(midpoints), scaled, side="left").astype(jnp.uint8)


def _check_weight(w: jax.Array, name: str) -> jax.Array:
    w = jnp.asarray(w)
    if not jnp.issubdtype(w.dtype, jnp.floating):
        raise TypeError(f"{name}: expected a floating-point array, got dtype {w.dtype}")
    if not isinstance(w, jax.core.Tracer) and not bool(jnp.all(jnp.isfinite(w))):
        raise ValueError(f"{name}: the weight contains NaN or Inf")
    return w


def quantize_nf4(
    w: jax.Array, block_size: int = 64, *, double_quant: bool = True, dq_block_size: int = 256
) -> NF4Tensor:
    """Quantizes ``w`` (any shape, float) to NF4, bit-compatible with bitsandbytes.

    Args:
      w: the weight; flattened row-major (a Flax kernel is ``(in, out)``, a torch Linear weight
        ``(out, in)``: transpose before comparing with bitsandbytes).
      block_size: values per absmax block (bitsandbytes: 64).
      double_quant: quantize the block scales to 8 bits (saves ~0.37 bits/param).
      dq_block_size: scales per second-level block (bitsandbytes: 256).

    Returns:
      :class:`NF4Tensor`.
    """
    for name, v in (("block_size", block_size), ("dq_block_size", dq_block_size)):
        if not isinstance(v, int) or v < 2 or v % 2:
            raise ValueError(f"quantize_nf4: {name} must be an even int >= 2, got {v!r}")
    w = _check_weight(w, "quantize_nf4")
    return _quantize(w, block_size, double_quant, dq_block_size)


@functools.partial(jax.jit, static_argnums=(1, 2, 3))
def _quantize(w: jax.Array, block_size: int, double_quant: bool, dq_block_size: int) -> NF4Tensor:
    flat = w.reshape(-1).astype(jnp.float32)
    absmax, scaled = _blockwise_absmax(flat, block_size)
    codes = _nearest(scaled, _NF4_MIDPOINTS)
    if codes.shape[0] % 2:  # bitsandbytes pads the scaled values with 0.0, i.e. with the zero code
        codes = jnp.concatenate([codes, jnp.full((1,), _ZERO_CODE, jnp.uint8)])
    packed = (codes[0::2] << 4) | codes[1::2]
    absmax2 = jnp.zeros((0,), jnp.float32)
    offset = jnp.zeros((), jnp.float32)
    if double_quant:
        offset = jnp.mean(absmax)
        absmax2, scaled2 = _blockwise_absmax(absmax - offset, dq_block_size)
        dyn_mid = ((_DYNAMIC[:-1] + _DYNAMIC[1:]) / np.float32(2)).astype(np.float32)
        absmax = _nearest(scaled2, dyn_mid)
    return NF4Tensor(packed, absmax, absmax2, offset, tuple(w.shape), jnp.dtype(w.dtype), block_size,
                     dq_block_size, double_quant)


def _block_scales(q: NF4Tensor) -> jax.Array:
    if not q.double_quant:
        return q.absmax
    dq = jnp.asarray(_DYNAMIC)[q.absmax.astype(jnp.int32)]
    second = jnp.repeat(q.absmax2, q.dq_block_size)[: q.absmax.shape[0]]
    return dq * second + q.offset


@functools.partial(jax.jit, static_argnames=("dtype",))
def dequantize_nf4(q: NF4Tensor, dtype: Any = None) -> jax.Array:
    """``code[q] · absmax`` in float32, reshaped to ``q.shape`` and cast to ``dtype`` (default ``q.dtype``)."""
    codes = jnp.stack([q.packed >> 4, q.packed & 0xF], axis=-1).reshape(-1)[: q.size]
    values = jnp.asarray(NF4_CODE)[codes.astype(jnp.int32)]
    scales = jnp.repeat(_block_scales(q), q.block_size)[: q.size]
    return (values * scales).reshape(q.shape).astype(q.dtype if dtype is None else dtype)


def bits_per_param(q: NF4Tensor) -> float:
    """Stored bits per parameter, counting every byte of every leaf (4.5 without DQ, ~4.127 with)."""
    nbytes = sum(int(np.asarray(x).nbytes) for x in jax.tree.leaves(q))
    return 8.0 * nbytes / q.size


def to_bitsandbytes(q: NF4Tensor) -> dict[str, np.ndarray]:
    """Plain NumPy arrays as bitsandbytes stores them: ``packed`` (uint8), ``absmax`` (fp32, or uint8
    codes with DQ), ``nested_absmax``, ``offset``, ``shape``, ``blocksize``, ``nested_blocksize``."""
    out = {"packed": np.asarray(q.packed), "absmax": np.asarray(q.absmax), "shape": np.array(q.shape),
           "blocksize": np.array(q.block_size)}
    if q.double_quant:
        out.update(nested_absmax=np.asarray(q.absmax2), offset=np.asarray(q.offset),
                   nested_blocksize=np.array(q.dq_block_size))
    return out


def from_bitsandbytes(
    packed: np.ndarray,
    absmax: np.ndarray,
    shape: tuple[int, ...],
    *,
    block_size: int = 64,
    nested_absmax: np.ndarray | None = None,
    offset: float | np.ndarray | None = None,
    dq_block_size: int = 256,
    dtype: Any = jnp.float32,
) -> NF4Tensor:
    """Wraps arrays quantized by bitsandbytes (``quantize_4bit(..., quant_type="nf4")``) as an NF4Tensor.

    Args:
      packed: the packed uint8 codes (any shape; flattened).
      absmax: fp32 block scales, or uint8 codes when ``nested_absmax`` is given (double quantization).
      shape: the original weight's shape (torch Linear: ``(out, in)``; transpose the dequantized
        result for a Flax kernel).
      nested_absmax, offset: bitsandbytes' ``state2.absmax`` and ``offset`` for double quantization.

    Raises:
      ValueError: array sizes inconsistent with ``shape`` and the block sizes.
    """
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    packed = np.asarray(packed, np.uint8).reshape(-1)
    absmax = np.asarray(absmax).reshape(-1)
    if packed.size != -(-n // 2):
        raise ValueError(f"from_bitsandbytes: packed has {packed.size} bytes, expected {-(-n // 2)} for shape {shape}")
    blocks = -(-n // block_size)
    if absmax.size != blocks:
        raise ValueError(f"from_bitsandbytes: absmax has {absmax.size} entries, expected {blocks} blocks of {block_size}")
    dq = nested_absmax is not None
    if dq:
        nested = np.asarray(nested_absmax, np.float32).reshape(-1)
        if nested.size != -(-blocks // dq_block_size):
            raise ValueError(f"from_bitsandbytes: nested_absmax has {nested.size} entries, expected "
                             f"{-(-blocks // dq_block_size)}")
        if offset is None:
            raise ValueError("from_bitsandbytes: double quantization needs offset")
        absmax, absmax2, off = absmax.astype(np.uint8), nested, np.float32(offset)
    else:
        absmax, absmax2, off = absmax.astype(np.float32), np.zeros((0,), np.float32), np.float32(0)
    return NF4Tensor(jnp.asarray(packed), jnp.asarray(absmax), jnp.asarray(absmax2), jnp.asarray(off), shape,
                     jnp.dtype(dtype), block_size, dq_block_size, dq)
