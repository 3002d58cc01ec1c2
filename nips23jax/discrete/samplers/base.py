"""What every DISCS sampler shares: the :class:`SamplingAlgorithm` pair and per-step :class:`Info`.

Samplers follow blackjax: ``init(x) -> State`` and a pure ``step(key, state) -> (State, Info)``
for ONE chain (no chain axis); many chains are ``jax.vmap(init)`` then ``lax.scan`` over
``jax.vmap(step)`` (:func:`nips23jax.discrete.run_chains`). Every ``State`` has the fields ``x``
(``int32[d]``) and ``log_prob`` (scalar), so callers can read and refresh them uniformly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from nips23jax.core.train import as_key

__all__ = ["Info", "SamplingAlgorithm", "mh_accept"]


class Info(NamedTuple):
    """Per-step diagnostics of one chain.

    Attributes:
      acceptance_rate: Metropolis–Hastings acceptance probability ``min(1, r)`` (1.0 for Gibbs
        samplers, which always move to their exact conditional draw).
      is_accepted: bool scalar.
      num_changed: Hamming distance between the proposal and the current state (int32).
    """

    acceptance_rate: jax.Array
    is_accepted: jax.Array
    num_changed: jax.Array


class SamplingAlgorithm(NamedTuple):
    """A sampler bound to a model.

    Attributes:
      init: ``init(x: int[d], previous=None) -> State``; ``previous`` (a State) carries its
        adaptive parameters over (used when the target changes, e.g. between annealing stages).
      step: ``step(key, state) -> (state, Info)``, pure, one chain.
      name: sampler name (``"gwg"``).
      evals_per_step: model evaluations (value, or value and gradient) per step, for ESS per
        energy evaluation.
    """

    init: Callable[..., Any]
    step: Callable[[jax.Array, Any], tuple[Any, Info]]
    name: str
    evals_per_step: float


def mh_accept(key: jax.Array, log_ratio: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Metropolis–Hastings test: returns ``(min(1, e^{log_ratio}), accepted)``; NaN never accepts."""
    log_ratio = jnp.where(jnp.isnan(log_ratio), -jnp.inf, log_ratio)
    acc = jnp.exp(jnp.minimum(log_ratio, 0.0))
    u = jax.random.uniform(as_key(key))
    return acc, jnp.log(u) < log_ratio


def check_int(where: str, arg: str, value, least: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{where}: {arg} must be an int >= {least}, got {value!r}")
    return value
