"""Systematic-scan Gibbs: one site per step, drawn from its exact conditional.

Step ``t`` updates site ``i = t mod d``: ``P(x_i = c | x_{−i}) ∝ π(x with x_i = c)`` over the
``K`` values (``K`` model evaluations per step). Each single-site update is reversible with
respect to ``π``; the sweep leaves ``π`` invariant.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from nips23jax.core.train import as_key
from nips23jax.discrete.models import DiscreteModel
from nips23jax.discrete.samplers.base import Info, SamplingAlgorithm

__all__ = ["GibbsState", "gibbs"]


class GibbsState(NamedTuple):
    """``x: int32[d]``, ``log_prob``, ``index`` (int32: the next site)."""

    x: jax.Array
    log_prob: jax.Array
    index: jax.Array


def gibbs(model: DiscreteModel) -> SamplingAlgorithm:
    """Systematic-scan single-site Gibbs sampler (``evals_per_step = K``)."""
    d, k = model.num_sites, model.num_categories

    def init(x, previous=None):
        x = model.check_state(x)
        index = jnp.zeros((), jnp.int32) if previous is None else previous.index
        return GibbsState(x, model.log_prob(x), index)

    def step(key, state):
        i = state.index
        candidates = jnp.broadcast_to(state.x, (k, d)).at[:, i].set(jnp.arange(k))
        lps = jax.vmap(model.log_prob)(candidates)
        c = jax.random.categorical(as_key(key), lps)
        changed = (c != state.x[i]).astype(jnp.int32)
        new = GibbsState(candidates[c], lps[c], (i + 1) % d)
        return new, Info(jnp.ones(()), jnp.ones((), bool), changed)

    return SamplingAlgorithm(init, step, "gibbs", float(k))
