"""Block Gibbs: a block of ``b`` consecutive sites drawn jointly from its exact conditional.

Blocks ``B_j = {jb, ..., jb + b − 1}`` (the last one shifted to end at site ``d − 1``) are
visited in turn; ``P(x_B = v | x_{−B}) ∝ π(x with x_B = v)`` over all ``K^b`` values ``v``
(``K^b`` model evaluations per step).
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nips23jax.core.train import as_key
from nips23jax.discrete.models import DiscreteModel
from nips23jax.discrete.samplers.base import Info, SamplingAlgorithm, check_int

__all__ = ["BlockGibbsState", "block_gibbs", "block_starts"]


class BlockGibbsState(NamedTuple):
    """``x: int32[d]``, ``log_prob``, ``block`` (int32: the next block's number)."""

    x: jax.Array
    log_prob: jax.Array
    block: jax.Array


def block_starts(num_sites: int, block_size: int) -> np.ndarray:
    """First site of each block: ``0, b, 2b, ...``, the last clipped to ``d − b``."""
    n = -(-num_sites // block_size)
    return np.minimum(np.arange(n) * block_size, num_sites - block_size).astype(np.int32)


def block_gibbs(model: DiscreteModel, *, block_size: int = 3) -> SamplingAlgorithm:
    """Systematic block Gibbs with blocks of ``block_size`` sites (``K^b`` values, at most 4096)."""
    d, k = model.num_sites, model.num_categories
    b = check_int("block_gibbs", "block_size", block_size)
    if b > d or k**b > 4096:
        raise ValueError(f"block_gibbs: block_size must be <= {d} with K^block_size <= 4096, got {b} (K={k})")
    starts = jnp.asarray(block_starts(d, b))
    values = jnp.asarray(np.array(list(itertools.product(range(k), repeat=b)), np.int32))  # (K^b, b)

    def init(x, previous=None):
        x = model.check_state(x)
        blk = jnp.zeros((), jnp.int32) if previous is None else previous.block
        return BlockGibbsState(x, model.log_prob(x), blk)

    def step(key, state):
        idx = starts[state.block] + jnp.arange(b)
        candidates = jax.vmap(lambda v: state.x.at[idx].set(v))(values)
        lps = jax.vmap(model.log_prob)(candidates)
        j = jax.random.categorical(as_key(key), lps)
        changed = jnp.sum(candidates[j] != state.x).astype(jnp.int32)
        new = BlockGibbsState(candidates[j], lps[j], (state.block + 1) % starts.shape[0])
        return new, Info(jnp.ones(()), jnp.ones((), bool), changed)

    return SamplingAlgorithm(init, step, "block_gibbs", float(k**b))
