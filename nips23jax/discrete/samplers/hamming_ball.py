"""Hamming-ball sampler (Titsias & Yau 2017) on blocks of sites.

For block ``B`` (visited in turn, as in :mod:`block_gibbs`) and radius ``r``: draw an auxiliary
``u`` uniformly from the Hamming ball ``H(x_B, r)`` (values of the block within ``r`` changes of
``x_B``), then ``x_B' ∝ π`` over ``H(u, r)``. Both balls have the same size ``M``, so the joint
``π(x)·1[u ∈ H(x_B, r)]/M`` is left invariant and the move is exact (no rejection). The ball is
enumerated as ``u = (x_B + s) mod K`` over the ``M = Σ_{j<=r} C(b, j)(K−1)^j`` shifts ``s`` with at most
``r`` non-zero entries; ``M`` model evaluations per step.
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
from nips23jax.discrete.samplers.block_gibbs import block_starts

__all__ = ["HammingBallState", "ball_shifts", "hamming_ball"]


class HammingBallState(NamedTuple):
    """``x: int32[d]``, ``log_prob``, ``block`` (int32: the next block's number)."""

    x: jax.Array
    log_prob: jax.Array
    block: jax.Array


def ball_shifts(block_size: int, radius: int, num_categories: int) -> np.ndarray:
    """All shifts ``s ∈ {0..K−1}^b`` with at most ``radius`` non-zero entries, ``(M, b)`` int32."""
    rows = []
    for j in range(radius + 1):
        for pos in itertools.combinations(range(block_size), j):
            for vals in itertools.product(range(1, num_categories), repeat=j):
                s = np.zeros(block_size, np.int32)
                s[list(pos)] = vals
                rows.append(s)
    return np.stack(rows)


def hamming_ball(model: DiscreteModel, *, block_size: int = 10, radius: int = 1) -> SamplingAlgorithm:
    """Hamming-ball sampler with blocks of ``block_size`` sites and ball radius ``radius``."""
    d, k = model.num_sites, model.num_categories
    b = check_int("hamming_ball", "block_size", block_size)
    r = check_int("hamming_ball", "radius", radius)
    if b > d or r > b:
        raise ValueError(f"hamming_ball: need radius <= block_size <= {d}, got block_size={b}, radius={r}")
    shifts_np = ball_shifts(b, r, k)
    if shifts_np.shape[0] > 4096:
        raise ValueError(f"hamming_ball: the ball has {shifts_np.shape[0]} > 4096 points; use a smaller block or radius")
    shifts = jnp.asarray(shifts_np)
    starts = jnp.asarray(block_starts(d, b))

    def init(x, previous=None):
        x = model.check_state(x)
        blk = jnp.zeros((), jnp.int32) if previous is None else previous.block
        return HammingBallState(x, model.log_prob(x), blk)

    def step(key, state):
        k_u, k_x = jax.random.split(as_key(key))
        idx = starts[state.block] + jnp.arange(b)
        u = (state.x[idx] + shifts[jax.random.randint(k_u, (), 0, shifts.shape[0])]) % k
        candidates = jax.vmap(lambda s: state.x.at[idx].set((u + s) % k))(shifts)
        lps = jax.vmap(model.log_prob)(candidates)
        j = jax.random.categorical(k_x, lps)
        changed = jnp.sum(candidates[j] != state.x).astype(jnp.int32)
        new = HammingBallState(candidates[j], lps[j], (state.block + 1) % starts.shape[0])
        return new, Info(jnp.ones(()), jnp.ones((), bool), changed)

    return SamplingAlgorithm(init, step, "hamming_ball", float(shifts_np.shape[0]))
