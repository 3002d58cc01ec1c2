"""Discrete Langevin Monte Carlo (DLMC; Sun et al. 2023) with interpolating and Euler solvers.

Each site follows, for time ``τ``, the continuous-time Markov chain whose rate of moving from
value ``a`` to ``b`` is ``exp(g(∂_b − ∂_a))`` (the locally balanced rate, with the gradient
frozen at ``x``). Binary sites (``K = 2``) have the closed form

    ``P(flip) = ν_i (1 − exp(−τ e^{w_i} / ν_i))``,  ``ν_i = σ(D_i)``  (interpolating solver)
    ``P(flip) = min(τ e^{w_i}, ν_i)``                              (Euler solver)

(``ν = t/(t+1)`` for every balancing function with ``g(t) = t g(1/t)``). For ``K > 2`` the
interpolating solver uses the per-site matrix exponential ``exp(τ Q_i)`` and Euler uses
``τ e^{w[i,c]}`` capped at ``σ(D[i,c])`` (renormalized if the total exceeds 1). MH-corrected;
adaptive ``τ`` as DMALA (:mod:`adaptive`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nips23jax.discrete.models import DiscreteModel
from nips23jax.discrete.samplers.balancing import balancing_function
from nips23jax.discrete.samplers.base import SamplingAlgorithm
from nips23jax.discrete.samplers.dmala import corrected_local_sampler

__all__ = ["SOLVERS", "dlmc", "dlmc_transition_log_probs"]

SOLVERS = ("interpolate", "euler")


def dlmc_transition_log_probs(diffs: jax.Array, x: jax.Array, log_tau: jax.Array, g, solver: str) -> jax.Array:
    """Per-site log-probabilities ``(d, K)`` of the value after time ``τ``, starting from ``x``."""
    d, k = diffs.shape
    stay = jax.nn.one_hot(x, k, dtype=bool)
    w = jnp.where(stay, -jnp.inf, g(diffs))
    nu = jax.nn.sigmoid(diffs)
    tau = jnp.exp(log_tau)
    if k == 2 or solver == "euler":
        if solver == "interpolate":
            move = nu * -jnp.expm1(-tau * jnp.exp(w) / nu)
        else:
            move = jnp.minimum(tau * jnp.exp(w), nu)
        move = jnp.where(stay, 0.0, move)
        total = jnp.sum(move, axis=1, keepdims=True)
        move = move / jnp.maximum(total, 1.0)
        p = jnp.where(stay, jnp.maximum(1.0 - jnp.sum(move, axis=1, keepdims=True), 0.0), move)
        return jnp.log(p)
    # general K: rates Q[a, b] = exp(g(grad_b − grad_a)); grad_c − grad_a = D[c] − D[a]
    rates = jnp.exp(g(diffs[:, None, :] - diffs[:, :, None]))  # (d, a, b)
    rates = jnp.where(jnp.eye(k, dtype=bool), 0.0, rates)
    q = rates - jnp.eye(k) * jnp.sum(rates, axis=2, keepdims=True)
    p = jax.vmap(jax.scipy.linalg.expm)(tau * q)  # (d, K, K)
    row = jnp.take_along_axis(p, x[:, None, None], axis=1)[:, 0, :]
    return jnp.log(jnp.clip(row, 1e-30, 1.0))


def dlmc(
    model: DiscreteModel,
    *,
    balancing: str = "sqrt",
    solver: str = "interpolate",
    log_tau: float | None = None,
    adapt: bool = True,
) -> SamplingAlgorithm:
    """DLMC.

    Args:
      model: the target.
      balancing: ``"sqrt"`` (default), ``"barker"``, ``"max"``, ``"min"``.
      solver: ``"interpolate"`` (exact per-site CTMC) or ``"euler"``.
      log_tau: initial ``log τ``; ``None``: ``log 3 − log Z(x₀)``.
      adapt: adapt ``τ`` toward acceptance 0.574.
    """
    g = balancing_function(balancing)
    if solver not in SOLVERS:
        raise ValueError(f"dlmc: solver must be one of {SOLVERS}, got {solver!r}")

    return corrected_local_sampler(
        model, "dlmc", g, lambda diffs, x, lt: dlmc_transition_log_probs(diffs, x, lt, g, solver),
        log_tau=log_tau, adapt=adapt,
    )
