"""Stationary kernels (squared exponential, Matérn 1/2, 3/2, 5/2) with ARD lengthscales.

Hyperparameters are a plain pytree (a dict)::

    params = {"lengthscale": (d,) or (), "signal_variance": (), "noise_variance": ()}

and every kernel is a pure function of it: ``k(x, x') = s · κ(r)`` with the scaled distance
``r = ‖(x − x') / ℓ‖`` (Lin et al. 2023, §2; Rasmussen & Williams eq. 4.14-4.17):

* squared exponential ``κ(r) = exp(−r²/2)``;
* Matérn-1/2 ``exp(−r)``; Matérn-3/2 ``(1 + √3 r) exp(−√3 r)``;
  Matérn-5/2 ``(1 + √5 r + 5r²/3) exp(−√5 r)``.

``kernel_matvec`` computes ``K(X1, X2) v`` in row blocks so that ``n`` in the hundreds of
thousands never forms an ``n × n`` matrix; ``kernel_matrix`` forms it when a solver asks.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nips23jax.core.compile import dual

PyTree = Any
Params = dict

__all__ = [
    "KERNELS",
    "Kernel",
    "check_data",
    "check_params",
    "default_block_size",
    "get_kernel",
    "init_params",
    "kernel_matrix",
    "kernel_matvec",
    "matern12",
    "matern32",
    "matern52",
    "rbf",
]

_R2_FLOOR = 1e-36  # keeps sqrt differentiable at r = 0 (its gradient there is set to 0)


def _scaled_sq_dist(x1: jax.Array, x2: jax.Array, lengthscale: jax.Array) -> jax.Array:
    """``‖(x1_i − x2_j)/ℓ‖²`` as an ``(n1, n2)`` matrix, via ``|a|² + |b|² − 2 a·b`` (clamped at 0).

    Both inputs are first shifted by the mean of ``x2`` (distances do not change): the expansion
    cancels ``|a|²`` against ``2 a·b``, so inputs far from the origin relative to their spread (years,
    timestamps) would lose every digit of the distance in float32. The shift depends on ``x2`` only,
    so the blocks of ``x1`` that :func:`kernel_matvec` takes all share it."""
    centre = jnp.mean(x2, 0)
    a = (x1 - centre) / lengthscale
    b = (x2 - centre) / lengthscale
    sq = jnp.sum(a * a, -1)[:, None] + jnp.sum(b * b, -1)[None, :] - 2.0 * (a @ b.T)
    return jnp.maximum(sq, 0.0)


def _float_inputs(x1: jax.Array, x2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Integer or boolean inputs as the default float dtype (a lengthscale cast to int would be 0)."""
    dtype = jnp.result_type(x1, x2)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return x1.astype(dtype), x2.astype(dtype)


def _profile(name: str, r2: jax.Array) -> jax.Array:
    if name == "rbf":
        return jnp.exp(-0.5 * r2)
    r = jnp.sqrt(jnp.maximum(r2, _R2_FLOOR))
    if name == "matern12":
        return jnp.exp(-r)
    if name == "matern32":
        s3r = math.sqrt(3.0) * r
        return (1.0 + s3r) * jnp.exp(-s3r)
    if name == "matern52":
        s5r = math.sqrt(5.0) * r
        return (1.0 + s5r + (5.0 / 3.0) * r2) * jnp.exp(-s5r)
    raise ValueError(f"unknown kernel {name!r}")


@dataclasses.dataclass(frozen=True)
class Kernel:
    """A stationary kernel ``k(x, x') = s · κ(‖(x − x')/ℓ‖)``.

    Attributes:
      name: ``"rbf"``, ``"matern12"``, ``"matern32"`` or ``"matern52"``.
      nu: Matérn smoothness (``None`` for the squared exponential, the ``ν → ∞`` limit).

    Call it as ``kernel(params, x1, x2) -> (n1, n2)``.
    """

    name: str
    nu: float | None

    def __call__(self, params: Params, x1: ArrayLike, x2: ArrayLike) -> jax.Array:
        """The kernel matrix ``K(x1, x2)``, shape ``(n1, n2)``; ``x1 (n1, d)``, ``x2 (n2, d)``.

        One compiled program per kernel and shapes (called eagerly it is not dispatched op by op).
        """
        x1, x2 = jnp.asarray(x1), jnp.asarray(x2)
        _check_kernel_args(self.name, params, x1, x2)
        return _kernel_matrix_impl.at(x1.shape[0] * x2.shape[0])(self, params, x1, x2)

    def diag(self, params: Params, x: ArrayLike) -> jax.Array:
        """``k(x_i, x_i) = s`` for every row of ``x``: shape ``(n,)``."""
        return _kernel_diag_impl.at(0)(params, jnp.asarray(x))

    def spectral_frequencies(self, key: jax.Array, shape: tuple[int, ...], dtype=jnp.float32) -> jax.Array:
        """Samples of the kernel's spectral density at unit lengthscale, ``shape + (d,)`` in the last axis.

        Bochner: ``κ(r) = E_ω[cos(ωᵀ(x − x'))]``. Squared exponential: ``ω ~ N(0, I)``. Matérn-ν:
        a multivariate Student-t with ``2ν`` degrees of freedom, ``ω = z·√(2ν/u)``, ``z ~ N(0, I)``,
        ``u ~ χ²_{2ν}`` (Matérn-3/2: ``√(3/u)``, ``u ~ χ²₃``).

        Args:
          key: PRNG key.
          shape: ``(..., d)``: the leading dims index frequencies, the last is the input dimension.

        Returns:
          Frequencies ``ω`` of ``shape``.
        """
        shape = tuple(int(s) for s in shape)
        work = math.prod(shape) * (2 + (0 if self.nu is None else 2 * self.nu))
        return _spectral_frequencies_impl.at(work)(self, key, shape, dtype)


def _check_kernel_args(where: str, params: Params, x1: jax.Array, x2: jax.Array) -> None:
    """Inputs ``(n1, d)``, ``(n2, d)``; lengthscale and signal variance finite and > 0 (when concrete)."""
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1]:
        raise ValueError(f"{where}: inputs must have shapes (n1, d) and (n2, d), got {x1.shape} and {x2.shape}")
    if not isinstance(params, dict) or not {"lengthscale", "signal_variance"} <= set(params):
        raise ValueError(f"{where}: params must be a dict with lengthscale and signal_variance, got {params!r}")
    check_params({"noise_variance": 0.0, **params}, x1.shape[1], where=f"{where}: params")


@dual(static_argnums=(0, 2, 3))
def _spectral_frequencies_impl(kernel: Kernel, key: jax.Array, shape: tuple[int, ...], dtype) -> jax.Array:
    kz, ku = jax.random.split(key)
    z = jax.random.normal(kz, shape, dtype)
    if kernel.nu is None:
        return z
    dof = 2.0 * kernel.nu
    if float(dof).is_integer() and dof <= 16:
        # χ²_k as a sum of k squared normals: exact, and far cheaper to compile than a gamma sampler
        u = jnp.sum(jnp.square(jax.random.normal(ku, (int(dof),) + shape[:-1] + (1,), dtype)), 0)
    else:
        u = jax.random.chisquare(ku, dof, shape[:-1] + (1,), dtype)
    return z * jnp.sqrt(2.0 * kernel.nu / u)


@dual(static_argnums=0)
def _kernel_matrix_impl(kernel: Kernel, params: Params, x1: jax.Array, x2: jax.Array) -> jax.Array:
    x1, x2 = _float_inputs(x1, x2)
    ls = jnp.asarray(params["lengthscale"], x1.dtype)
    r2 = _scaled_sq_dist(x1, x2, ls)
    return jnp.asarray(params["signal_variance"], x1.dtype) * _profile(kernel.name, r2)


@dual()
def _kernel_diag_impl(params: Params, x: jax.Array) -> jax.Array:
    return jnp.full((x.shape[0],), params["signal_variance"], x.dtype)


rbf = Kernel("rbf", None)
matern12 = Kernel("matern12", 0.5)
matern32 = Kernel("matern32", 1.5)
matern52 = Kernel("matern52", 2.5)
KERNELS: dict[str, Kernel] = {k.name: k for k in (rbf, matern12, matern32, matern52)}


def get_kernel(kernel: Kernel | str) -> Kernel:
    """A :class:`Kernel` from itself or its name; ``ValueError`` listing the names otherwise."""
    if isinstance(kernel, Kernel):
        return kernel
    if isinstance(kernel, str) and kernel in KERNELS:
        return KERNELS[kernel]
    raise ValueError(f"kernel: expected a nips23jax.gp Kernel or one of {sorted(KERNELS)}, got {kernel!r}")


def init_params(
    dim: int,
    *,
    lengthscale: float | ArrayLike = 1.0,
    signal_variance: float = 1.0,
    noise_variance: float = 0.1,
    dtype=jnp.float32,
) -> Params:
    """A hyperparameter dict with ARD lengthscales of shape ``(dim,)``."""
    ls = jnp.broadcast_to(jnp.asarray(lengthscale, dtype), (dim,))
    return {
        "lengthscale": ls,
        "signal_variance": jnp.asarray(signal_variance, dtype),
        "noise_variance": jnp.asarray(noise_variance, dtype),
    }


def check_params(params: Params, dim: int | None = None, *, where: str = "kernel_params") -> None:
    """Raises ``ValueError`` unless lengthscales and signal variance are finite and > 0 and the noise >= 0.

    Only concrete (non-traced) values are checked; inside ``jit`` this is a no-op.
    """
    if not isinstance(params, dict):
        raise TypeError(f"{where}: expected a dict with lengthscale, signal_variance, noise_variance; got {type(params).__name__}")
    missing = {"lengthscale", "signal_variance", "noise_variance"} - set(params)
    if missing:
        raise ValueError(f"{where}: missing {sorted(missing)}")
    for name, strict in (("lengthscale", True), ("signal_variance", True), ("noise_variance", False)):
        v = params[name]
        if isinstance(v, jax.core.Tracer):
            continue
        a = np.asarray(v, dtype=np.float64)
        ok = np.all(np.isfinite(a)) and (np.all(a > 0) if strict else np.all(a >= 0))
        if not ok:
            raise ValueError(f"{where}[{name!r}] must be finite and {'> 0' if strict else '>= 0'}, got {a}")
        if name == "lengthscale" and dim is not None and a.ndim > 0 and a.shape != (dim,):
            raise ValueError(f"{where}['lengthscale'] must be a scalar or of shape ({dim},), got shape {a.shape}")


def check_data(where: str, x: ArrayLike, y: ArrayLike, *, names: tuple[str, str] = ("x", "y")) -> None:
    """Raises ``ValueError`` unless ``x`` has shape ``(n, d)`` and ``y`` shape ``(n,)`` with ``n >= 1``, and
    both are finite (checked when concrete; traced arrays get the shape checks only).

    ``where`` and ``names`` go into the message, e.g. ``"posterior: x_train has 10 rows but y_train has 9"``.
    """
    nx, ny = names
    if np.ndim(x) != 2 or np.ndim(y) != 1:
        raise ValueError(f"{where}: {nx} must have shape (n, d) and {ny} shape (n,), got {np.shape(x)} and {np.shape(y)}")
    if np.shape(x)[0] != np.shape(y)[0]:
        raise ValueError(f"{where}: {nx} has {np.shape(x)[0]} rows but {ny} has {np.shape(y)[0]}")
    if np.shape(x)[0] == 0:
        raise ValueError(f"{where}: {nx} is empty")
    for name, a in ((nx, x), (ny, y)):
        if not isinstance(a, jax.core.Tracer) and not bool(np.all(np.isfinite(np.asarray(a)))):
            raise ValueError(f"{where}: {name} contains NaN or Inf")


def row_blocks(block: int, *arrays: jax.Array) -> tuple[tuple[jax.Array, ...], jax.Array]:
    """The rows of equal-length arrays ``(n, ...)`` in blocks: each zero-padded to ``nb·block`` rows and
    reshaped ``(nb, block, ...)``, with the mask ``(nb, block)`` of real (not padded) rows, in the
    first array's dtype (or float32 when it is not floating)."""
    n = arrays[0].shape[0]
    nb = -(-n // block)
    pad = nb * block - n
    blocked = tuple(
        (jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)]) if pad else a).reshape((nb, block) + a.shape[1:])
        for a in arrays)
    dtype = arrays[0].dtype if jnp.issubdtype(arrays[0].dtype, jnp.floating) else jnp.float32
    return blocked, (jnp.arange(nb * block) < n).astype(dtype).reshape(nb, block)


def default_block_size(n2: int, max_entries: int = 2**23) -> int:
    """Rows per block so that one ``(block, n2)`` kernel block holds at most ``max_entries`` values."""
    return int(max(1, min(max_entries // max(n2, 1), 1 << 30)))


def kernel_matvec(
    kernel: Kernel,
    params: Params,
    x1: ArrayLike,
    x2: ArrayLike,
    v: ArrayLike,
    *,
    block_size: int | None = None,
) -> jax.Array:
    """``K(x1, x2) @ v`` computed in blocks of rows of ``x1``; never forms ``K`` unless one block covers it.

    Memory is ``O(block_size · n2)``. Works under ``jit`` and with ``x1``/``x2`` sharded over a
    mesh's data axis (XLA inserts the reductions).

    Args:
      kernel: a :class:`Kernel`.
      params: hyperparameters.
      x1: ``(n1, d)``.
      x2: ``(n2, d)``.
      v: ``(n2,)`` or ``(n2, s)``.
      block_size: rows per block (default :func:`default_block_size`).

    Returns:
      ``(n1,)`` or ``(n1, s)``.
    """
    x1, x2, v = jnp.asarray(x1), jnp.asarray(x2), jnp.asarray(v)
    _check_kernel_args("kernel_matvec", params, x1, x2)
    if v.shape[:1] != x2.shape[:1] or v.ndim > 2:
        raise ValueError(f"kernel_matvec: v must have shape ({x2.shape[0]},) or ({x2.shape[0]}, s), got {v.shape}")
    bs = default_block_size(x2.shape[0]) if block_size is None else int(block_size)
    if bs < 1:
        raise ValueError(f"kernel_matvec: block_size must be >= 1, got {block_size}")
    work = x1.shape[0] * x2.shape[0] * (1 + (v.shape[1] if v.ndim == 2 else 1))
    return _kernel_matvec_impl.at(work)(kernel, bs, params, x1, x2, v)


@dual(static_argnums=(0, 1))
def _kernel_matvec_impl(kernel: Kernel, bs: int, params: Params, x1: jax.Array, x2: jax.Array, v: jax.Array
                        ) -> jax.Array:
    """:func:`kernel_matvec` as one program per kernel, block size and shapes."""
    n1 = x1.shape[0]
    if bs >= n1:
        return kernel(params, x1, x2) @ v
    (blocks,), _ = row_blocks(bs, x1)
    out = jax.lax.map(lambda xb: kernel(params, xb, x2) @ v, blocks)
    return out.reshape((-1,) + v.shape[1:])[:n1]


def kernel_matrix(kernel: Kernel, params: Params, x1: ArrayLike, x2: ArrayLike | None = None) -> jax.Array:
    """The dense ``K(x1, x2)`` (``x2`` defaults to ``x1``): ``(n1, n2)``. For solvers that hold it."""
    return kernel(params, x1, x1 if x2 is None else x2)


def warn_duplicates_zero_noise(x: np.ndarray, noise_variance: float, jitter: float) -> float:
    """With zero noise and repeated rows ``K`` is singular: warn and return a jitter to add (else the noise)."""
    if noise_variance > 0:
        return noise_variance
    if np.unique(np.asarray(x), axis=0).shape[0] < x.shape[0]:
        warnings.warn(
            f"x_train has duplicate rows and noise_variance is 0: K is singular; adding jitter {jitter:g} "
            "to the diagonal",
            RuntimeWarning,
            stacklevel=3,
        )
        return jitter
    return noise_variance
