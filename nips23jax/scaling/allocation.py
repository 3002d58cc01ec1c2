"""Compute-optimal allocation under a unique-data constraint (Muennighoff et al., Section 3 / Fig. 3).

For a budget of ``C = 6·N·D`` FLOPs and ``U_D`` unique tokens, choose the parameters ``N`` (and so
the tokens ``D = C/(6N)`` and the epochs ``D/U_D``) minimizing the data-constrained loss
``L(N, C/(6N), U_D)`` (:func:`~nips23jax.scaling.law.data_constrained_loss`). Without the
constraint (``U_D ≥ D``) this is Chinchilla's ``N_opt(C)``; with little unique data the optimum
spends compute on more epochs and (since excess parameters decay faster, ``R_N* < R_D*``) on
fewer parameters than a naive Chinchilla allocation would.

The minimum is found on a log-spaced grid of ``N`` over six decades around Chinchilla's ``N_opt``,
refined by a second grid around the best point. The grid step is ≈ 9e-5 in ``log N``; in float32 the
loss is so flat near the optimum that the answer can sit ~0.3% from it (e.g. 2.907e9 vs Chinchilla's
2.915e9 at C = 1e21 without the constraint); under ``jax.enable_x64`` it is exact to the grid.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nips23jax.scaling.law import (
    PUBLISHED,
    DataConstrainedParams,
    _check_params,
    _check_positive,
    _float_dtype,
    _number,
    chinchilla_optimal,
    data_constrained_loss,
)

__all__ = ["Allocation", "optimal_allocation"]


class Allocation(NamedTuple):
    """A compute allocation: ``N`` parameters, ``D`` tokens, ``epochs = D/U_D``, and its predicted ``loss``."""

    N: jax.Array
    D: jax.Array
    epochs: jax.Array
    loss: jax.Array


def _allocate_one(C, U_D, params, num_points, decades):
    n_opt, _ = chinchilla_optimal(C, params)
    log_n = jnp.log(n_opt) + jnp.linspace(-decades, decades, num_points) * jnp.log(10.0)

    def loss_at(log_n):
        n = jnp.exp(log_n)
        return data_constrained_loss(n, C / (6.0 * n), U_D, params)

    step = log_n[1] - log_n[0]
    best = log_n[jnp.argmin(loss_at(log_n))]
    fine = best + jnp.linspace(-2.0, 2.0, num_points) * step
    best = fine[jnp.argmin(loss_at(fine))]
    n = jnp.exp(best)
    d = C / (6.0 * n)
    return n, d, d / U_D, loss_at(best)


def optimal_allocation(
    C: ArrayLike,
    U_D: ArrayLike,
    params: DataConstrainedParams = PUBLISHED,
    *,
    num_points: int = 801,
    decades: float = 3.0,
) -> Allocation:
    """``argmin_N L(N, C/(6N), U_D)``: the best parameters, tokens and epochs for a budget.

    Args:
      C: compute budgets in FLOPs (``6·N·D``), any shape, > 0.
      U_D: unique tokens available, broadcastable with ``C``, > 0.
      params: the law's constants (default: the paper's).
      num_points: grid points per refinement level.
      decades: the search spans ``N_opt(C)·10^(±decades)``.

    Returns:
      :class:`Allocation` with the broadcast shape; ``6·N·D = C``.

    Example::

        alloc = optimal_allocation(1e21, 25e9)     # epochs > 1: the unique data is repeated
    """
    _check_params(params, "optimal_allocation")
    C, U_D = _number(C), _number(U_D)
    _check_positive("C", C, "optimal_allocation")
    _check_positive("U_D", U_D, "optimal_allocation")
    if not isinstance(num_points, (int, np.integer)) or num_points < 5:
        raise ValueError(f"optimal_allocation: num_points must be an int >= 5, got {num_points!r}")
    if not decades > 0:
        raise ValueError(f"optimal_allocation: decades must be > 0, got {decades!r}")
    dtype = _float_dtype(C, U_D)
    C, U_D = jnp.broadcast_arrays(jnp.asarray(C, dtype), jnp.asarray(U_D, dtype))
    shape = C.shape
    params = jax.tree.map(lambda v: jnp.asarray(v, dtype), params)
    n, d, e, loss = _allocate(C.reshape(-1), U_D.reshape(-1), params, int(num_points), float(decades))
    return Allocation(*(x.reshape(shape) for x in (n, d, e, loss)))


@functools.partial(jax.jit, static_argnums=(3, 4))
def _allocate(C, U_D, params, num_points, decades):
    return jax.vmap(lambda c, u: _allocate_one(c, u, params, num_points, decades))(C, U_D)
