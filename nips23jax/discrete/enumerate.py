"""Exact enumeration of a small model's distribution (for tests and tiny references)."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np

from nips23jax.discrete.models import DiscreteModel

__all__ = ["MAX_STATES", "all_states", "exact_log_probs", "exact_marginals"]

MAX_STATES = 1 << 20


def all_states(num_sites: int, num_categories: int) -> np.ndarray:
    """Every state of ``{0..K−1}^d`` in lexicographic order (site 0 most significant), ``(K^d, d)`` int32.

    Raises:
      ValueError: more than ``MAX_STATES`` states.
    """
    if num_categories**num_sites > MAX_STATES:
        raise ValueError(f"all_states: {num_categories}^{num_sites} states exceed MAX_STATES={MAX_STATES}")
    return np.array(list(itertools.product(range(num_categories), repeat=num_sites)), np.int32).reshape(-1, num_sites)


def state_index(x: np.ndarray, num_categories: int) -> np.ndarray:
    """Row of :func:`all_states` for states ``x`` (``(..., d)`` → ``(...)``)."""
    x = np.asarray(x)
    powers = num_categories ** np.arange(x.shape[-1] - 1, -1, -1)
    return (x * powers).sum(-1)


def exact_log_probs(model: DiscreteModel) -> tuple[np.ndarray, np.ndarray]:
    """``(states, log p)``: all states and their normalized log-probabilities (float64)."""
    states = all_states(model.num_sites, model.num_categories)
    lp = np.asarray(jax.jit(jax.vmap(model.log_prob))(jnp.asarray(states)), np.float64)
    lp = lp - lp.max()
    return states, lp - np.log(np.exp(lp).sum())


def exact_marginals(model: DiscreteModel) -> np.ndarray:
    """Per-site marginals ``P(x_i = c)``, ``(d, K)`` float64."""
    states, lp = exact_log_probs(model)
    p = np.exp(lp)
    return np.stack([(p[:, None] * (states == c)).sum(0) for c in range(model.num_categories)], 1)
