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

from nips23jax.core.train import as_key
from nips23jax.discrete.models import DiscreteModel
from nips23jax.discrete.samplers.adaptive import adapt_log_tau, init_log_tau
from nips23jax.discrete.samplers.balancing import balanced_weights, balancing_function
from nips23jax.discrete.samplers.base import Info, SamplingAlgorithm, mh_accept
from nips23jax.discrete.samplers.gwg import GradientState

__all__ = ["SOLVERS", "dlmc", "dlmc_transition_log_probs"]

SOLVERS = ("interpolate", "euler")
TARGET_ACCEPTANCE = 0.574


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

    def init(x, previous=None):
        x = model.check_state(x)
        lp, diffs = model.log_prob_and_diffs(x)
        if previous is not None:
            lt = previous.step_size
        elif log_tau is None:
            lt = init_log_tau(jax.nn.logsumexp(balanced_weights(diffs, x, g)))
        else:
            lt = jnp.asarray(log_tau, jnp.float32)
        return GradientState(x, lp, diffs, lt)

    def step(key, state):
        k_move, k_acc = jax.random.split(as_key(key))
        q_x = dlmc_transition_log_probs(state.diffs, state.x, state.step_size, g, solver)
        y = jax.random.categorical(k_move, q_x, axis=1).astype(jnp.int32)
        lp_y, diffs_y = model.log_prob_and_diffs(y)
        q_y = dlmc_transition_log_probs(diffs_y, y, state.step_size, g, solver)
        log_fwd = jnp.sum(jnp.take_along_axis(q_x, y[:, None], 1))
        log_rev = jnp.sum(jnp.take_along_axis(q_y, state.x[:, None], 1))
        acc, accepted = mh_accept(k_acc, lp_y - state.log_prob + log_rev - log_fwd)
        if adapt:
            log_z = jax.nn.logsumexp(balanced_weights(state.diffs, state.x, g))
            lt = adapt_log_tau(state.step_size, log_z, acc, TARGET_ACCEPTANCE)
        else:
            lt = state.step_size
        new = GradientState(
            jnp.where(accepted, y, state.x), jnp.where(accepted, lp_y, state.log_prob),
            jnp.where(accepted, diffs_y, state.diffs), lt,
        )
        return new, Info(acc, accepted, jnp.sum(y != state.x).astype(jnp.int32))

    return SamplingAlgorithm(init, step, "dlmc", 1.0)
