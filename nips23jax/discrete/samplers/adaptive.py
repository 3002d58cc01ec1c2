"""DISCS' adaptive step-size rules (Robbins–Monro-style updates toward a target acceptance rate).

* number of changed sites (RWM: target 0.237; GWG / PAS: target 0.574):
  ``R ← clip(R + (a − a*), 1, R_max)`` (:func:`adapt_num_flips`);
* step size ``τ`` of DMALA / DLMC, expressed through the expected number of moves ``n = τZ`` with
  ``Z = Σ_{i,c} e^{w_{i,c}}``: ``log τ₀ = log 3 − log Z``, ``n ← τZ + 3(a − 0.574)``,
  ``log τ = max(log n − log Z, −log Z)`` (:func:`init_log_tau`, :func:`adapt_log_tau`).

DISCS averages ``a`` and ``Z`` over chains; here each chain adapts on its own (no chain axis
inside a kernel), which is the same rule with a noisier signal.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["TARGET_ACCEPTANCE", "adapt_log_tau", "adapt_num_flips", "init_log_tau"]


# The acceptance rate the gradient-informed samplers (GWG, PAS, DMALA, DLMC) adapt toward (DISCS).
TARGET_ACCEPTANCE = 0.574


def adapt_num_flips(num_flips: jax.Array, acceptance: jax.Array, target: float, max_flips: int) -> jax.Array:
    """``clip(R + (acceptance − target), 1, max_flips)`` (float scalar)."""
    return jnp.clip(num_flips + acceptance - target, 1.0, float(max_flips))


def init_log_tau(log_z: jax.Array) -> jax.Array:
    """``log τ₀ = log 3 − log Z``: about three expected moves at the start."""
    return jnp.log(3.0) - log_z


def adapt_log_tau(log_tau: jax.Array, log_z: jax.Array, acceptance: jax.Array,
                  target: float = TARGET_ACCEPTANCE) -> jax.Array:
    """``n = τZ + 3(a − a*)``; ``log τ = max(log n − log Z, −log Z)`` (at least one expected move)."""
    n = jnp.exp(log_tau + log_z) + 3.0 * (acceptance - target)
    return jnp.maximum(jnp.log(jnp.maximum(n, 0.0)), 0.0) - log_z
