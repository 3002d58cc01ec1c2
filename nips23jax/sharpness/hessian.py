"""Sharpness measures from Hessian-vector products: trace (exact / Hutchinson), top eigenvalue.

All functions take ``loss_fn(params, batch) -> scalar`` and never form the Hessian: each
Hessian-vector product is one forward-over-reverse pass, ``Hv = ∂/∂ε ∇L(w + εv)``.

For the mean squared error ``L = (1/n) Σ_i (f(x_i) − y_i)²`` the Hessian is
``(2/n) Σ_i ∇f(x_i)∇f(x_i)ᵀ + (2/n) Σ_i (f(x_i) − y_i) ∇²f(x_i)``; at an interpolating solution the
second term vanishes, so ``tr(H) = (2/n) Σ_i ‖∇θ f(x_i)‖²`` (:func:`interpolation_hessian_trace`),
the sharpness Wen, Li & Ma (2023) analyse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from nips23jax.core.compile import jit_per_function
from nips23jax.core.train import as_key

PyTree = Any
LossFn = Callable[[PyTree, PyTree], jax.Array]

__all__ = [
    "TopEigen",
    "hessian_trace",
    "hvp",
    "interpolation_hessian_trace",
    "top_hessian_eigenvalue",
]


def hvp(loss_fn: LossFn, params: PyTree, batch: PyTree, v: PyTree) -> PyTree:
    """Hessian-vector product ``∇²L(params) v`` (forward-over-reverse).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: the point ``w``.
      batch: data passed through to ``loss_fn``.
      v: a pytree like ``params``.

    Returns:
      ``Hv`` with the structure of ``params``.
    """
    if jax.tree.structure(v) != jax.tree.structure(params):
        raise ValueError(f"hvp: v has structure {jax.tree.structure(v)}, expected that of params")
    return _HVP(loss_fn, params, batch, v)


def _hvp(loss_fn, params, batch, v):
    grad = lambda p: jax.grad(loss_fn)(p, batch)  # noqa: E731
    return jax.jvp(grad, (params,), (v,))[1]


def _flat_hvp(loss_fn, params, batch):
    flat, unravel = ravel_pytree(params)

    def matvec(u):
        return ravel_pytree(_hvp(loss_fn, params, batch, unravel(u.astype(flat.dtype))))[0]

    return flat, matvec


def hessian_trace(
    loss_fn: LossFn,
    params: PyTree,
    batch: PyTree,
    *,
    method: str = "exact",
    key: jax.Array | int | None = None,
    num_samples: int = 100,
    chunk_size: int = 256,
) -> jax.Array:
    """``tr ∇²L(params)``.

    ``method="exact"`` sums ``e_iᵀ H e_i`` over all ``d`` coordinates (``d`` Hessian-vector
    products, vmapped in chunks of ``chunk_size``); ``method="hutchinson"`` averages ``vᵀ H v`` over
    ``num_samples`` Rademacher vectors ``v`` (unbiased; standard error
    ``≈ sqrt(2 Σ_{i≠j} H_ij² / num_samples)``).

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params: parameters.
      batch: data.
      method: ``"exact"`` or ``"hutchinson"``.
      key: PRNG key, required for Hutchinson.
      num_samples: Hutchinson probe vectors (>= 1).
      chunk_size: Hessian-vector products per vmapped chunk (>= 1).

    Returns:
      Scalar trace in the parameters' dtype.
    """
    if method not in ("exact", "hutchinson"):
        raise ValueError(f"hessian_trace: unknown method {method!r}; expected 'exact' or 'hutchinson'")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"hessian_trace: chunk_size must be an int >= 1, got {chunk_size!r}")
    if method == "exact":
        return _EXACT_TRACE(loss_fn, chunk_size, params, batch)
    if key is None:
        raise ValueError("hessian_trace: method='hutchinson' needs key=")
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"hessian_trace: num_samples must be an int >= 1, got {num_samples!r}")
    return _HUTCHINSON_TRACE(loss_fn, num_samples, chunk_size, params, batch, as_key(key))


def _exact_trace(loss_fn, chunk_size, params, batch):
    flat, matvec = _flat_hvp(loss_fn, params, batch)
    d = flat.shape[0]

    def diag_entry(i):
        return matvec(jax.nn.one_hot(i, d, dtype=flat.dtype))[i]

    return jnp.sum(jax.lax.map(diag_entry, jnp.arange(d), batch_size=min(chunk_size, d)))


def _hutchinson_trace(loss_fn, num_samples, chunk_size, params, batch, key):
    flat, matvec = _flat_hvp(loss_fn, params, batch)
    probes = jax.random.rademacher(key, (num_samples, flat.shape[0]), dtype=flat.dtype)
    return jnp.mean(jax.lax.map(lambda v: jnp.vdot(v, matvec(v)), probes, batch_size=min(chunk_size, num_samples)))


class TopEigen(NamedTuple):
    """Result of :func:`top_hessian_eigenvalue`: eigenvalue, unit eigenvector pytree, iterations."""

    eigenvalue: jax.Array
    eigenvector: PyTree
    num_iters: jax.Array


def top_hessian_eigenvalue(
    loss_fn: LossFn,
    params: PyTree,
    batch: PyTree,
    *,
    key: jax.Array | int,
    max_iters: int = 100,
    tol: float = 1e-6,
) -> TopEigen:
    """Largest-magnitude Hessian eigenvalue by power iteration on Hessian-vector products.

    Iterates ``v ← Hv/‖Hv‖`` from a random start until the Rayleigh quotient ``vᵀHv`` changes by
    less than ``tol`` (relative) or ``max_iters`` is reached.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar``.
      params, batch: the point and data.
      key: PRNG key of the random start.
      max_iters: iteration cap (>= 1).
      tol: relative tolerance on the eigenvalue.

    Returns:
      :class:`TopEigen` (the eigenvalue is signed: the dominant one in magnitude).
    """
    if max_iters < 1:
        raise ValueError(f"top_hessian_eigenvalue: max_iters must be >= 1, got {max_iters}")
    if not (isinstance(tol, jax.core.Tracer) or (np.ndim(tol) == 0 and 0 <= float(tol) < np.inf)):
        raise ValueError(f"top_hessian_eigenvalue: tol must be a finite number >= 0, got {tol!r}")
    return _TOP_EIGEN(loss_fn, max_iters, params, batch, as_key(key), tol)


def _top_eigen(loss_fn, max_iters, params, batch, key, tol):
    flat, matvec = _flat_hvp(loss_fn, params, batch)
    _, unravel = ravel_pytree(params)
    v0 = jax.random.normal(key, flat.shape, flat.dtype)
    v0 = v0 / jnp.linalg.norm(v0)

    def cond(c):
        i, _, lam, lam_old = c
        return (i < max_iters) & ((i < 2) | (jnp.abs(lam - lam_old) > tol * jnp.abs(lam)))

    def body(c):
        i, v, lam, _ = c
        hv = matvec(v)
        new_lam = jnp.vdot(v, hv)
        norm = jnp.linalg.norm(hv)
        v = jnp.where(norm > 0, hv / jnp.where(norm > 0, norm, 1.0), v)
        return i + 1, v, new_lam, lam

    zero = jnp.zeros((), flat.dtype)
    i, v, lam, _ = jax.lax.while_loop(cond, body, (jnp.int32(0), v0, zero, zero))
    return TopEigen(eigenvalue=jnp.vdot(v, matvec(v)), eigenvector=unravel(v), num_iters=i)


def interpolation_hessian_trace(model_fn: Callable[[PyTree, jax.Array], jax.Array], params: PyTree, xs: jax.Array):
    """``(2/n) Σ_i ‖∇θ f(x_i)‖²``: the MSE Hessian's trace at an interpolating solution.

    Equals :func:`hessian_trace` of ``mean((f(x_i) − y_i)²)`` whenever the residuals are zero (or,
    for any residuals, when every ``∇²f(x_i)`` has zero trace, as for a two-layer ReLU network).

    Args:
      model_fn: ``model_fn(params, x) -> scalar`` output for one input ``x``.
      params: parameters.
      xs: ``(n, ...)`` inputs.

    Returns:
      Scalar.
    """
    if jnp.ndim(xs) < 1 or jnp.shape(xs)[0] == 0:
        raise ValueError(f"interpolation_hessian_trace: xs must hold n >= 1 inputs along its first axis, got shape "
                         f"{jnp.shape(xs)}")
    return _INTERPOLATION_TRACE(model_fn, params, xs)


def _interpolation_trace(model_fn, params, xs):
    per_example = jax.vmap(lambda x: jax.grad(model_fn)(params, x))(xs)
    sq = sum(jnp.sum(jnp.square(g)) for g in jax.tree.leaves(per_example))
    return 2.0 * sq / xs.shape[0]


# The compiled programs behind the public functions, one per (function, static ints, shapes): called
# eagerly, these would otherwise dispatch (and compile) every primitive separately.
_HVP = jit_per_function(_hvp, 0)
_EXACT_TRACE = jit_per_function(_exact_trace, (0, 1))
_HUTCHINSON_TRACE = jit_per_function(_hutchinson_trace, (0, 1, 2))
_TOP_EIGEN = jit_per_function(_top_eigen, (0, 1))
_INTERPOLATION_TRACE = jit_per_function(_interpolation_trace, 0)
