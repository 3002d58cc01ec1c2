"""Random-walk Metropolis on ``{0..K-1}^d`` with DISCS' adaptive flip rate.

Proposal: each site independently changes with probability ``p = R/d`` to a uniformly drawn
other value, so ``q(y|x) = Π_i [p/(K−1)]^{1[y_i≠x_i]} (1 − p)^{1[y_i=x_i]}`` is symmetric and the
MH ratio is ``π(y)/π(x)``. Adaptive: ``R ← clip(R + a − 0.237, 1, d)`` after every step.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from nips23jax.core.train import as_key
from nips23jax.discrete.models import DiscreteModel
from nips23jax.discrete.samplers.adaptive import adapt_num_flips
from nips23jax.discrete.samplers.base import Info, SamplingAlgorithm, mh_accept

__all__ = ["RWMState", "rwm"]

TARGET_ACCEPTANCE = 0.237


class RWMState(NamedTuple):
    """``x: int32[d]``, ``log_prob``, ``num_flips`` (``R``, float: expected changed sites)."""

    x: jax.Array
    log_prob: jax.Array
    num_flips: jax.Array


def rwm(model: DiscreteModel, *, num_flips: float = 1.0, adapt: bool = True) -> SamplingAlgorithm:
    """Random-walk Metropolis.

    Args:
      model: the target.
      num_flips: initial ``R`` (expected number of changed sites), in ``[1, d]``.
      adapt: adapt ``R`` toward acceptance 0.237 (off: a fixed, reversible kernel).

    Returns:
      :class:`SamplingAlgorithm` with ``evals_per_step = 1``.
    """
    d, k = model.num_sites, model.num_categories
    if not 1.0 <= float(num_flips) <= d:
        raise ValueError(f"rwm: num_flips must be in [1, {d}], got {num_flips!r}")

    def init(x, previous=None):
        x = model.check_state(x)
        r = jnp.asarray(num_flips, jnp.float32) if previous is None else previous.num_flips
        return RWMState(x, model.log_prob(x), r)

    def step(key, state):
        k_change, k_val, k_acc = jax.random.split(as_key(key), 3)
        p = state.num_flips / d
        change = jax.random.bernoulli(k_change, p, (d,))
        shift = jax.random.randint(k_val, (d,), 1, k)  # uniform over the other K-1 values
        y = jnp.where(change, (state.x + shift) % k, state.x)
        lp_y = model.log_prob(y)
        acc, accepted = mh_accept(k_acc, lp_y - state.log_prob)
        r = adapt_num_flips(state.num_flips, acc, TARGET_ACCEPTANCE, d) if adapt else state.num_flips
        new = RWMState(jnp.where(accepted, y, state.x), jnp.where(accepted, lp_y, state.log_prob), r)
        return new, Info(acc, accepted, jnp.sum(change).astype(jnp.int32))

    return SamplingAlgorithm(init, step, "rwm", 1.0)
