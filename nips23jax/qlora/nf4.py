"""4-bit weight storage (Dettmers et al., QLoRA, NeurIPS 2023), laid out as bitsandbytes lays it.

Three blockwise 4-bit data types share one layout and one pytree, :class:`NF4Tensor` (its
``quant_type`` says which codebook the codes index):

* ``"nf4"``: NormalFloat4, bit-compatible with bitsandbytes ``quant_type="nf4"``;
* ``"fp4"``: bitsandbytes' FP4 (E2M1: sign bit, 2 exponent and 1 mantissa bits, values
  {0, 1/16, 2, 3, 4, 6, 8, 12}/12), bit-compatible with its CPU/default path, value-compatible
  with its CUDA path (which writes the code of -0 for tiny negative values where the CPU path
  writes +0 and vice versa; both decode to 0);
* ``"int4"``: symmetric absmax integers, ``round(7·x/absmax)/7``; 15 levels, code ``k + 8`` for
  ``k = -7..7`` (code 0 is never written).

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
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "FP4_CODE",
    "INT4_CODE",
    "NF4_CODE",
    "NF4Tensor",
    "QUANT_TYPES",
    "bits_per_param",
    "block_scales",
    "codebook",
    "dequantize_4bit",
    "dequantize_nf4",
    "dynamic_map",
    "from_bitsandbytes",
    "quantize_4bit",
    "quantize_4bit_many",
    "quantize_fp4",
    "quantize_int4",
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
# bitsandbytes' FP4 in code-index order: bit 3 is the sign, bits 0-2 the magnitude code.
_FP4_MAGNITUDES = np.array([0.0, 0.0625, 8.0, 12.0, 4.0, 6.0, 2.0, 3.0], np.float32) / np.float32(12)
FP4_CODE = np.concatenate([_FP4_MAGNITUDES, -_FP4_MAGNITUDES]).astype(np.float32)
# Symmetric Int4: code k + 8 holds k/7 (code 0, -8/7, lies outside [-1, 1] and is never written).
INT4_CODE = (np.arange(16, dtype=np.float32) - np.float32(8)) / np.float32(7)

QUANT_TYPES = ("nf4", "fp4", "int4")
_CODES = {"nf4": NF4_CODE, "fp4": FP4_CODE, "int4": INT4_CODE}


def _search_tables(code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(fp32 midpoints of the sorted values, code index of each sorted position)``.

    A stable sort keeps equal values (FP4's +0 and -0) in index order, as bitsandbytes' bucketize
    over its sorted table does; a value on a midpoint goes to the lower sorted position.
    """
    order = np.argsort(code, kind="stable")
    values = code[order]
    return ((values[:-1] + values[1:]) / np.float32(2)).astype(np.float32), order.astype(np.uint8)


_TABLES = {name: _search_tables(code) for name, code in _CODES.items()}


def codebook(quant_type: str = "nf4") -> np.ndarray:
    """The 16 float32 code values of ``quant_type`` ("nf4", "fp4" or "int4"), indexed by code."""
    if quant_type not in _CODES:
        raise ValueError(f"quant_type must be one of {QUANT_TYPES}, got {quant_type!r}")
    return _CODES[quant_type]


def _zero_code(quant_type: str) -> int:
    """The code bitsandbytes pads an odd count with: the one the scaled value 0.0 gets."""
    mids, order = _TABLES[quant_type]
    return int(order[np.searchsorted(mids, np.float32(0.0), side="left")])


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
      shape, dtype, block_size, dq_block_size, double_quant, quant_type: static metadata
      (``quant_type`` is "nf4", "fp4" or "int4": which :func:`codebook` the codes index).
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
    quant_type: str = dataclasses.field(default="nf4", metadata=dict(static=True))

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
    # bitsandbytes multiplies by the reciprocal; above 2^126 that reciprocal is subnormal and XLA:CPU flushes
    # it to 0 (every code would be 0). Such blocks are scaled by 2^-64 first (exact: a power of two), which
    # keeps the reciprocal normal; every other block's codes stay bit-identical to bitsandbytes'.
    huge = absmax >= 2.0**126
    # the barrier keeps XLA's simplifier from folding the two 2^-64 factors back out
    body_small, absmax_small = jax.lax.optimization_barrier((body * 2.0**-64, jnp.where(huge, absmax * 2.0**-64, 1.0)))
    scaled = jnp.where(huge[:, None], body_small * (1.0 / absmax_small)[:, None], body * inv[:, None])
    scaled = jnp.clip(scaled, -1, 1).reshape(-1)
    if n % block:
        tail = flat[full:]
        tail_max = jnp.max(jnp.abs(tail))
        safe = jnp.where(tail_max > 0, tail_max, 1.0)
        absmax = jnp.concatenate([absmax, tail_max[None]])
        scaled = jnp.concatenate([scaled, jnp.clip(tail / safe, -1, 1)])
    return absmax, scaled


def _nearest(scaled: jax.Array, midpoints: np.ndarray, order: np.ndarray | None = None) -> jax.Array:
    """Code of the nearest value given sorted fp32 midpoints (ties to the lower sorted position),
    mapped through ``order`` (sorted position -> code index) when the codebook is not sorted."""
    pos = jnp.searchsorted(jnp.asarray(midpoints), scaled, side="left")
    if order is not None:
        pos = jnp.asarray(order)[pos]
    return pos.astype(jnp.uint8)


def _check_weight(w: jax.Array, name: str) -> jax.Array:
    """The dtype check; finiteness is checked by :func:`_check_finite` on the flag the compiled
    quantization returns (no eager ``isfinite`` program per weight shape)."""
    w = jnp.asarray(w)
    if not jnp.issubdtype(w.dtype, jnp.floating):
        raise TypeError(f"{name}: expected a floating-point array, got dtype {w.dtype}")
    return w


def _check_finite(status: jax.Array, name: str) -> None:
    """Raises on the status the compiled quantization returns: 1 non-finite weight, 2 overflowed scales."""
    if isinstance(status, jax.core.Tracer):
        return
    if int(status) == 1:
        raise ValueError(f"{name}: the weight contains NaN or Inf")
    if int(status) == 2:
        raise ValueError(f"{name}: the weight's block scales are too large for double quantization (their mean "
                         "overflows float32, |w| near 3e38); quantize with double_quant=False")


def quantize_4bit(
    w: jax.Array,
    quant_type: str = "nf4",
    block_size: int = 64,
    *,
    double_quant: bool = True,
    dq_block_size: int = 256,
) -> NF4Tensor:
    """Quantizes ``w`` (any shape, float) blockwise to 4 bits in bitsandbytes' layout.

    Args:
      w: the weight; flattened row-major (a Flax kernel is ``(in, out)``, a torch Linear weight
        ``(out, in)``: transpose before comparing with bitsandbytes).
      quant_type: "nf4", "fp4" (E2M1) or "int4" (symmetric absmax).
      block_size: values per absmax block (bitsandbytes: 64); an even int >= 2.
      double_quant: quantize the block scales to 8 bits (saves ~0.37 bits/param).
      dq_block_size: scales per second-level block (bitsandbytes: 256); an even int >= 2.

    Returns:
      :class:`NF4Tensor` with ``quant_type`` set.

    Raises:
      TypeError: non-float ``w``. ValueError: NaN/Inf in ``w``, a bad block size or quant_type.
    """
    _check_args(quant_type, block_size, dq_block_size, "quantize_4bit")
    w = _check_weight(w, "quantize_4bit: w")
    q, finite = _quantize(w, block_size, double_quant, dq_block_size, quant_type)
    _check_finite(finite, "quantize_4bit: w")
    return q


def _check_args(quant_type: str, block_size: int, dq_block_size: int, where: str) -> None:
    if quant_type not in _CODES:
        raise ValueError(f"{where}: quant_type must be one of {QUANT_TYPES}, got {quant_type!r}")
    for name, v in (("block_size", block_size), ("dq_block_size", dq_block_size)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 2 or v % 2:
            raise ValueError(f"{where}: {name} must be an even int >= 2, got {v!r}")


def quantize_4bit_many(
    ws: Sequence[jax.Array],
    quant_type: str = "nf4",
    block_size: int = 64,
    *,
    double_quant: bool = True,
    dq_block_size: int = 256,
) -> list[NF4Tensor]:
    """:func:`quantize_4bit` of each weight in ``ws``, all in one compiled program.

    The result is bit-identical to quantizing each weight alone; one program per list of shapes
    instead of one per shape (quantizing a model's kernels compiles once).

    Args:
      ws: floating-point weights of any shapes.
      quant_type, block_size, double_quant, dq_block_size: as :func:`quantize_4bit`.

    Returns:
      ``[NF4Tensor]``, one per weight, in order.

    Raises:
      TypeError: a non-float weight. ValueError: NaN/Inf in a weight (its index is named), a bad
      block size or quant_type.
    """
    _check_args(quant_type, block_size, dq_block_size, "quantize_4bit_many")
    ws = tuple(_check_weight(w, f"quantize_4bit_many: ws[{i}]") for i, w in enumerate(ws))
    out = _quantize_many(ws, block_size, double_quant, dq_block_size, quant_type)
    for i, (_, finite) in enumerate(out):
        _check_finite(finite, f"quantize_4bit_many: ws[{i}]")
    return [q for q, _ in out]


def quantize_nf4(
    w: jax.Array, block_size: int = 64, *, double_quant: bool = True, dq_block_size: int = 256
) -> NF4Tensor:
    """NF4 quantization, bit-compatible with bitsandbytes: :func:`quantize_4bit` with ``quant_type="nf4"``."""
    return quantize_4bit(w, "nf4", block_size, double_quant=double_quant, dq_block_size=dq_block_size)


def quantize_fp4(
    w: jax.Array, block_size: int = 64, *, double_quant: bool = True, dq_block_size: int = 256
) -> NF4Tensor:
    """FP4 (E2M1) quantization as bitsandbytes' ``quant_type="fp4"``: :func:`quantize_4bit` with "fp4"."""
    return quantize_4bit(w, "fp4", block_size, double_quant=double_quant, dq_block_size=dq_block_size)


def quantize_int4(
    w: jax.Array, block_size: int = 64, *, double_quant: bool = True, dq_block_size: int = 256
) -> NF4Tensor:
    """Symmetric absmax Int4 (``round(7·x/absmax)/7``): :func:`quantize_4bit` with "int4"."""
    return quantize_4bit(w, "int4", block_size, double_quant=double_quant, dq_block_size=dq_block_size)


def _quantize_one(w: jax.Array, block_size: int, double_quant: bool, dq_block_size: int,
                  quant_type: str) -> tuple[NF4Tensor, jax.Array]:
    """``(the NF4Tensor, status)``: 0, or 1 for a non-finite weight, 2 for overflowed DQ scales; one program."""
    finite = jnp.all(jnp.isfinite(w))
    flat = w.reshape(-1).astype(jnp.float32)
    absmax, scaled = _blockwise_absmax(flat, block_size)
    mids, order = _TABLES[quant_type]
    codes = _nearest(scaled, mids, None if quant_type == "nf4" else order)
    if codes.shape[0] % 2:  # bitsandbytes pads the scaled values with 0.0
        codes = jnp.concatenate([codes, jnp.full((1,), _zero_code(quant_type), jnp.uint8)])
    packed = (codes[0::2] << 4) | codes[1::2]
    absmax2 = jnp.zeros((0,), jnp.float32)
    offset = jnp.zeros((), jnp.float32)
    if double_quant:
        offset = jnp.mean(absmax)
        absmax2, scaled2 = _blockwise_absmax(absmax - offset, dq_block_size)
        dyn_mid = ((_DYNAMIC[:-1] + _DYNAMIC[1:]) / np.float32(2)).astype(np.float32)
        absmax = _nearest(scaled2, dyn_mid)
    status = jnp.where(finite, jnp.where(jnp.isfinite(offset) & jnp.all(jnp.isfinite(absmax2)), 0, 2), 1)
    return NF4Tensor(packed, absmax, absmax2, offset, tuple(w.shape), jnp.dtype(w.dtype), block_size,
                     dq_block_size, double_quant, quant_type), status


_quantize = jax.jit(_quantize_one, static_argnums=(1, 2, 3, 4))


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def _quantize_many(ws: tuple[jax.Array, ...], block_size: int, double_quant: bool, dq_block_size: int,
                   quant_type: str) -> tuple[tuple[NF4Tensor, jax.Array], ...]:
    return tuple(_quantize_one(w, block_size, double_quant, dq_block_size, quant_type) for w in ws)


def block_scales(q: NF4Tensor) -> jax.Array:
    """``(num_blocks,)`` float32 absmax per block (double quantization undone)."""
    if not q.double_quant:
        return q.absmax
    dq = jnp.asarray(_DYNAMIC)[q.absmax.astype(jnp.int32)]
    second = jnp.repeat(q.absmax2, q.dq_block_size)[: q.absmax.shape[0]]
    return dq * second + q.offset


@functools.partial(jax.jit, static_argnames=("dtype",))
def dequantize_4bit(q: NF4Tensor, dtype: Any = None) -> jax.Array:
    """``code[q] · absmax`` in float32, reshaped to ``q.shape`` and cast to ``dtype`` (default ``q.dtype``).

    Works for every ``quant_type`` (the codebook is ``codebook(q.quant_type)``).
    """
    if dtype is not None and not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise ValueError(f"dequantize_4bit: dtype must be a floating dtype, got {jnp.dtype(dtype)}")
    codes = jnp.stack([q.packed >> 4, q.packed & 0xF], axis=-1).reshape(-1)[: q.size]
    values = jnp.asarray(codebook(q.quant_type))[codes.astype(jnp.int32)]
    scales = jnp.repeat(block_scales(q), q.block_size)[: q.size]
    return (values * scales).reshape(q.shape).astype(q.dtype if dtype is None else dtype)


dequantize_nf4 = dequantize_4bit  # the name QLoRA users look for; dequantizes any quant_type


def bits_per_param(q: NF4Tensor) -> float:
    """Stored bits per parameter, counting every byte of every leaf (4.5 without DQ, ~4.127 with).

    ``q`` may also be abstract (``jax.eval_shape`` of a quantization: leaves are ShapeDtypeStructs).
    """
    nbytes = sum(math.prod(x.shape) * np.dtype(x.dtype).itemsize for x in jax.tree.leaves(q))
    return 8.0 * nbytes / q.size


def to_bitsandbytes(q: NF4Tensor) -> dict[str, np.ndarray]:
    """Plain NumPy arrays as bitsandbytes stores them: ``packed`` (uint8), ``absmax`` (fp32, or uint8
    codes with DQ), ``nested_absmax``, ``offset``, ``shape``, ``blocksize``, ``nested_blocksize``,
    ``quant_type``."""
    if q.quant_type not in ("nf4", "fp4"):
        raise ValueError(f"to_bitsandbytes: bitsandbytes has no {q.quant_type!r} 4-bit type (nf4 and fp4 only)")
    out = {"packed": np.asarray(q.packed), "absmax": np.asarray(q.absmax), "shape": np.array(q.shape),
           "blocksize": np.array(q.block_size), "quant_type": np.array(q.quant_type)}
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
    quant_type: str = "nf4",
) -> NF4Tensor:
    """Wraps arrays quantized by bitsandbytes (``quantize_4bit(..., quant_type="nf4")``) as an NF4Tensor.

    Args:
      packed: the packed uint8 codes (any shape; flattened).
      absmax: fp32 block scales, or uint8 codes when ``nested_absmax`` is given (double quantization).
      shape: the original weight's shape (torch Linear: ``(out, in)``; transpose the dequantized
        result for a Flax kernel).
      nested_absmax, offset: bitsandbytes' ``state2.absmax`` and ``offset`` for double quantization.
      quant_type: "nf4" or "fp4" (bitsandbytes' ``quant_type``).

    Raises:
      ValueError: array sizes inconsistent with ``shape`` and the block sizes.
    """
    if quant_type not in ("nf4", "fp4"):
        raise ValueError(f"from_bitsandbytes: quant_type must be 'nf4' or 'fp4', got {quant_type!r}")
    _check_args(quant_type, block_size, dq_block_size, "from_bitsandbytes")
    if not jnp.issubdtype(jnp.dtype(dtype), jnp.floating):
        raise ValueError(f"from_bitsandbytes: dtype must be a floating dtype, got {jnp.dtype(dtype)}")
    dq = nested_absmax is not None
    absmax_kind = np.asarray(absmax).dtype
    if dq and absmax_kind != np.uint8:
        raise ValueError(f"from_bitsandbytes: with nested_absmax (double quantization) absmax must be the uint8 codes, "
                         f"got dtype {absmax_kind}")
    if not dq and not np.issubdtype(absmax_kind, np.floating):
        raise ValueError(f"from_bitsandbytes: without nested_absmax absmax must be float block scales, got dtype "
                         f"{absmax_kind} (uint8 codes need nested_absmax and offset)")
    if not dq and offset is not None:
        raise ValueError("from_bitsandbytes: offset belongs to double quantization; pass nested_absmax too")
    shape = tuple(int(s) for s in shape)
    n = math.prod(shape)
    packed = np.asarray(packed, np.uint8).reshape(-1)
    absmax = np.asarray(absmax).reshape(-1)
    if packed.size != -(-n // 2):
        raise ValueError(f"from_bitsandbytes: packed has {packed.size} bytes, expected {-(-n // 2)} for shape {shape}")
    blocks = -(-n // block_size)
    if absmax.size != blocks:
        raise ValueError(f"from_bitsandbytes: absmax has {absmax.size} entries, expected {blocks} blocks of {block_size}")
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
                     jnp.dtype(dtype), block_size, dq_block_size, dq, quant_type)
