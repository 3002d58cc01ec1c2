"""Locally balanced weights (Zanella 2020) in log space, as DISCS uses them.

A balancing function ``g`` with ``g(t) = t·g(1/t)`` applied to the (first-order) probability
ratio ``t = π(y)/π(x) ≈ e^{d}`` gives a proposal weight; in log space ``w = log g(e^d)``:

=============  =====================  =================
name            ``g(t)``               ``log g(e^d)``
=============  =====================  =================
``"sqrt"``      ``√t`` (default)       ``d / 2``
``"barker"``    ``t / (t + 1)``        ``log σ(d)``
``"max"``       ``max(1, t)``          ``max(d, 0)``
``"min"``       ``min(1, t)``          ``min(d, 0)``
=============  =====================  =================

``"t/(t+1)"``, ``"max(1,t)"`` and ``"min(1,t)"`` are accepted as aliases.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = ["BALANCING_FUNCTIONS", "balancing_function", "balanced_weights"]

BALANCING_FUNCTIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "sqrt": lambda d: d / 2.0,
    "barker": jax.nn.log_sigmoid,
    "max": lambda d: jnp.maximum(d, 0.0),
    "min": lambda d: jnp.minimum(d, 0.0),
}
_ALIASES = {"t/(t+1)": "barker", "max(1,t)": "max", "min(1,t)": "min", "√t": "sqrt"}


def balancing_function(name: str) -> Callable[[jax.Array], jax.Array]:
    """The log-space balancing function ``d ↦ log g(e^d)`` named ``name``.

    Raises:
      ValueError: unknown name (the message lists the known ones).
    """
    if isinstance(name, str):
        key = _ALIASES.get(name.replace(" ", ""), name)
        if key in BALANCING_FUNCTIONS:
            return BALANCING_FUNCTIONS[key]
    raise ValueError(f"balancing: unknown balancing function {name!r}; expected one of "
                     f"{sorted(BALANCING_FUNCTIONS)} (or {sorted(_ALIASES)})")


def balanced_weights(diffs: jax.Array, x: jax.Array, balancing: Callable[[jax.Array], jax.Array]) -> jax.Array:
    """Log weights ``w[i, c] = log g(e^{D[i, c]})`` with ``w[i, x_i] = −inf`` (no move).

    Args:
      diffs: ``D`` of shape ``(d, K)`` from :meth:`DiscreteModel.log_prob_and_diffs`.
      x: current state ``int[d]``.
      balancing: from :func:`balancing_function`.

    Returns:
      ``(d, K)`` float.
    """
    stay = jax.nn.one_hot(x, diffs.shape[1], dtype=bool)
    return jnp.where(stay, -jnp.inf, balancing(diffs))

