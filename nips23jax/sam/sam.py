"""Sharpness-Aware Minimization (Foret et al. 2021) and its adaptive / m-sharpness variants.

One SAM step at parameters w with loss gradient g = ∇L(w):

    e = ρ · g / ‖g‖                       (SAM: global L2 norm over the whole pytree)
    e = ρ · T² g / ‖T g‖,  T = |w| + η     (ASAM, Kwon et al. 2021; elementwise T)
    w ← base_optimizer step with gradient ∇L(w + e)

m-sharpness computes the perturbation separately for each sub-batch of m examples and averages
the resulting gradients: ``mean_i ∇L_i(w + e_i)`` with ``e_i`` from ``∇L_i(w)``. With m = 1 this is
the "1-SAM" of Wen, Li & Ma (2023).

:func:`sam` is an ``optax.GradientTransformationExtraArgs``; :func:`sam_gradient` is the same
computation as a plain function for hand-written updates.

Example::

    opt = sam(optax.sgd(0.1), rho=0.05)
    state = opt.init(params)
    grads = jax.grad(loss)(params, batch)
    updates, state = opt.update(grads, state, params, grad_fn=lambda p: jax.grad(loss)(p, batch))
    params = optax.apply_updates(params, updates)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from nips23jax.core.compile import jit_per_function
from nips23jax.core.train import global_norm

PyTree = Any

__all__ = ["SAMState", "sam", "sam_gradient", "sam_perturbation"]


def _check_rho_eta(where: str, rho: float, eta: float) -> None:
    """Checks concrete values (traced ones, and schedules, are checked where they become concrete, if ever)."""
    for name, v in (("rho", rho), ("eta", eta)):
        if callable(v) or isinstance(v, jax.core.Tracer):
            continue
        if np.ndim(v) != 0 or not float(v) >= 0:
            raise ValueError(f"{where}: {name} must be a scalar >= 0, got {v!r}")


def sam_perturbation(
    grads: PyTree, params: PyTree, rho: float | jax.Array, *, adaptive: bool = False, eta: float = 0.01
) -> PyTree:
    """The ascent step ``e`` of SAM (``ρ g/‖g‖``) or ASAM (``ρ T²g/‖Tg‖``, ``T = |w| + η``).

    The norm is the global L2 norm over all leaves. At a zero gradient ``e = 0`` (never NaN), and
    the perturbation has no gradient path (it is a fixed point of the ascent step, as in SAM).

    Args:
      grads: gradient pytree ``g`` at ``params``.
      params: parameter pytree ``w`` (used by ASAM only), same structure as ``grads``.
      rho: perturbation radius ``ρ >= 0``.
      adaptive: ASAM's elementwise scaling.
      eta: ASAM's ``η`` added to ``|w|``.

    Returns:
      ``e`` with the structure and dtypes of ``grads``.
    """
    _check_rho_eta("sam_perturbation", rho, eta)
    grads = jax.lax.stop_gradient(grads)
    if adaptive:
        scale = jax.tree.map(lambda w: jnp.abs(jax.lax.stop_gradient(w)) + eta, params)
        scaled = jax.tree.map(lambda t, g: t * g, scale, grads)
        norm = global_norm(scaled)
        direction = jax.tree.map(lambda t, tg: t * tg, scale, scaled)
    else:
        norm = global_norm(grads)
        direction = grads
    factor = jnp.where(norm > 0, rho / jnp.where(norm > 0, norm, 1.0), 0.0)
    return jax.tree.map(lambda d: (factor * d).astype(d.dtype), direction)


def _check_same_structure(where: str, expected: PyTree, got: PyTree) -> None:
    exp_def, got_def = jax.tree.structure(expected), jax.tree.structure(got)
    if exp_def != got_def:
        raise ValueError(f"{where}: grad_fn returned a pytree of structure {got_def}, expected {exp_def} (params')")
    for a, b in zip(jax.tree.leaves(expected), jax.tree.leaves(got)):
        if jnp.shape(a) != jnp.shape(b):
            raise ValueError(f"{where}: grad_fn returned a leaf of shape {jnp.shape(b)}, expected {jnp.shape(a)}")


def _perturbed_grad(grad_fn, params, grads, rho, adaptive, eta, where):
    e = sam_perturbation(grads, params, rho, adaptive=adaptive, eta=eta)
    perturbed = jax.tree.map(lambda w, d: w + d.astype(w.dtype), params, e)
    out = grad_fn(perturbed)
    _check_same_structure(where, params, out)
    return out


def _split(batch: PyTree, m: int) -> PyTree:
    def reshape(x):
        n = jnp.shape(x)[0] if jnp.ndim(x) else None
        if n is None or n % m:
            raise ValueError(f"m-sharpness: every batch leaf needs a leading dimension divisible by m={m}, got shape {jnp.shape(x)}")
        return jnp.reshape(x, (n // m, m) + jnp.shape(x)[1:])

    return jax.tree.map(reshape, batch)


def _m_sharpness_grad(grad_fn, params, batch, m, rho, adaptive, eta, where, chunk_size=None):
    """``mean_i ∇L_i(w + e_i)`` over sub-batches of m examples.

    ``chunk_size=None`` vmaps all sub-batches at once (one perturbed copy of the parameters per
    sub-batch in memory); ``chunk_size=c`` vmaps ``c`` at a time and sums the chunks in a
    ``lax.scan`` (``c`` copies in memory; with ``c = 1`` on a CPU the copy stays in cache).
    """

    def one(sub):
        g = grad_fn(params, sub)
        _check_same_structure(where, params, g)
        return _perturbed_grad(lambda p: grad_fn(p, sub), params, g, rho, adaptive, eta, where)

    subs = _split(batch, m)
    num = jax.tree.leaves(subs)[0].shape[0]
    if chunk_size is None or chunk_size >= num:
        per_sub = jax.vmap(one)(subs)
        return jax.tree.map(lambda x: jnp.mean(x, axis=0), per_sub)
    num_chunks, rest = divmod(num, chunk_size)
    head = jax.tree.map(lambda x: jnp.reshape(x[: num_chunks * chunk_size], (num_chunks, chunk_size) + x.shape[1:]), subs)

    def body(acc, chunk):
        return jax.tree.map(lambda a, g: a + jnp.sum(g, axis=0), acc, jax.vmap(one)(chunk)), None

    zeros = jax.tree.map(jnp.zeros_like, params)
    total, _ = jax.lax.scan(body, zeros, head)
    if rest:
        tail = jax.vmap(one)(jax.tree.map(lambda x: x[num_chunks * chunk_size :], subs))
        total = jax.tree.map(lambda a, g: a + jnp.sum(g, axis=0), total, tail)
    return jax.tree.map(lambda a: (a / num).astype(a.dtype), total)


def _check_count(where: str, name: str, value: int | None) -> None:
    """``value`` (the argument ``name`` of ``where``) is None or a positive int, else a ValueError."""
    if value is not None and (not isinstance(value, int) or value < 1):
        raise ValueError(f"{where}: {name} must be a positive int or None, got {value!r}")


class SAMState(NamedTuple):
    """State of :func:`sam`: the step count (for a ``rho`` schedule) and the base optimizer's state."""

    count: jax.Array
    base_state: optax.OptState


def sam(
    base_optimizer: optax.GradientTransformation,
    rho: float | optax.Schedule = 0.05,
    *,
    adaptive: bool = False,
    eta: float = 0.01,
    m_sharpness: int | None = None,
    chunk_size: int | None = None,
) -> optax.GradientTransformationExtraArgs:
    """SAM / ASAM / m-sharpness as one Optax transform around ``base_optimizer``.

    ``update(grads, state, params, *, grad_fn, batch=None, **extra)``: one call is one SAM step.

    * Without ``m_sharpness``: ``grad_fn(params) -> grads`` (the loss gradient on the current
      batch). ``grads`` is ``∇L(w)`` on the same batch; the returned updates are the base
      optimizer's for ``∇L(w + e(grads))``. Under ``jit`` with a data-sharded batch the incoming
      gradient is already the global one, so the perturbation uses the globally averaged gradient.
    * With ``m_sharpness=m``: ``grad_fn(params, batch) -> grads`` and ``batch`` is required; its
      leading axis is split into sub-batches of ``m``, each gets its own perturbation (vmapped),
      and the perturbed gradients are averaged. ``grads`` is ignored (pass the plain gradient).

    Remaining keyword arguments go to ``base_optimizer`` if it accepts extra args. Put SAM first:
    it recomputes gradients through ``grad_fn``, so transforms such as clipping belong inside
    ``base_optimizer`` (``sam(optax.chain(optax.clip_by_global_norm(1.0), optax.sgd(0.1)))``).

    Args:
      base_optimizer: the optimizer that consumes the SAM gradient (e.g. ``optax.sgd``).
      rho: perturbation radius (>= 0; ``0`` recovers the base optimizer), or an Optax schedule
        ``rho(step) -> radius`` (e.g. ``optax.piecewise_constant_schedule``).
      adaptive: ASAM (``T = |w| + eta`` scaling).
      eta: ASAM's offset.
      m_sharpness: sub-batch size for m-sharpness, or ``None``.
      chunk_size: with ``m_sharpness``, sub-batches vmapped together; chunks run one after another
        in a ``lax.scan`` and their gradients are summed, so memory holds ``chunk_size`` perturbed
        copies of the parameters instead of one per sub-batch. ``None`` (default) vmaps all
        sub-batches at once (fastest on an accelerator); ``1`` is fastest on a CPU. Same result
        up to float rounding.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with state :class:`SAMState`.
    """
    _check_rho_eta("sam", 0.0 if callable(rho) else rho, eta)
    _check_count("sam", "chunk_size", chunk_size)
    _check_count("sam", "m_sharpness", m_sharpness)
    base = optax.with_extra_args_support(base_optimizer)

    def init_fn(params):
        return SAMState(count=jnp.zeros((), jnp.int32), base_state=base.init(params))

    def update_fn(grads, state, params=None, *, grad_fn: Callable | None = None, batch: PyTree = None, **extra):
        if params is None:
            raise ValueError("sam: update needs params (the point where the perturbation starts)")
        if grad_fn is None:
            raise ValueError("sam: update needs grad_fn=..., the loss gradient as a function of the parameters")
        radius = rho(state.count) if callable(rho) else rho
        if m_sharpness is None:
            _check_same_structure("sam", params, grads)
            sam_grads = _perturbed_grad(grad_fn, params, grads, radius, adaptive, eta, "sam")
        else:
            if batch is None:
                raise ValueError("sam: m_sharpness needs batch=..., and grad_fn(params, batch)")
            sam_grads = _m_sharpness_grad(grad_fn, params, batch, m_sharpness, radius, adaptive, eta, "sam", chunk_size)
        updates, base_state = base.update(sam_grads, state.base_state, params, **extra)
        return updates, SAMState(count=optax.safe_increment(state.count), base_state=base_state)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def sam_gradient(
    loss_fn: Callable[..., jax.Array],
    params: PyTree,
    batch: PyTree,
    rho: float | jax.Array = 0.05,
    *,
    adaptive: bool = False,
    eta: float = 0.01,
    m_sharpness: int | None = None,
    chunk_size: int | None = None,
) -> tuple[jax.Array, PyTree]:
    """The SAM gradient ``∇L(w + e)`` for hand-written updates.

    Args:
      loss_fn: ``loss_fn(params, batch) -> scalar`` (mean over the batch's examples).
      params: parameters ``w``.
      batch: a pytree of arrays with a leading example axis.
      rho, adaptive, eta, m_sharpness, chunk_size: as in :func:`sam`.

    Returns:
      ``(loss at w, SAM gradient)``; the gradient has the structure of ``params``.
    """
    _check_rho_eta("sam_gradient", rho, eta)
    _check_count("sam_gradient", "chunk_size", chunk_size)
    _check_count("sam_gradient", "m_sharpness", m_sharpness)
    return _sam_gradient_jit(loss_fn, params, batch, rho, adaptive, eta, m_sharpness, chunk_size)


def _sam_gradient(loss_fn, params, batch, rho, adaptive, eta, m_sharpness, chunk_size):
    grad_fn = jax.grad(loss_fn)
    loss, grads = jax.value_and_grad(loss_fn)(params, batch)
    if m_sharpness is None:
        return loss, _perturbed_grad(lambda p: grad_fn(p, batch), params, grads, rho, adaptive, eta, "sam_gradient")
    return loss, _m_sharpness_grad(grad_fn, params, batch, m_sharpness, rho, adaptive, eta, "sam_gradient", chunk_size)


# One compiled program per (loss_fn, options, shapes): called eagerly, sam_gradient would otherwise
# dispatch (and compile) every primitive separately.
_sam_gradient_jit = jit_per_function(_sam_gradient, (0, 4, 6, 7))
