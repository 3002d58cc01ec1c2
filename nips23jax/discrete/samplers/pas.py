"""Path auxiliary sampler (PAS; Sun et al. 2022) with DISCS' adaptive path length.

A path visits ``R`` distinct sites, drawn sequentially without replacement: at each step the
pair ``(i, c)`` (``c ≠ x_i``, ``i`` not yet visited) has probability
``e^{w[i,c]} / Σ_{j unvisited, c'} e^{w[j,c']}`` with the weights ``w`` of :mod:`balancing` at
``x`` (sampled all at once with Gumbel top-``R``). The reverse path revisits the same sites in
reverse order, setting them back to ``x``, with the weights at ``y``; MH ratio
``π(y) q(reverse | y) / (π(x) q(path | x))``. Adaptive: ``R ← clip(R + a − 0.574, 1, max_flips)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from nips23jax.core.train import as_key
from nips23jax.discrete.models import DiscreteModel
from nips23jax.discrete.samplers.adaptive import TARGET_ACCEPTANCE, adapt_num_flips
from nips23jax.discrete.samplers.balancing import balanced_weights, balancing_function
from nips23jax.discrete.samplers.base import SamplingAlgorithm, check_int, mh_accept
from nips23jax.discrete.samplers.gwg import accept_move, log_prob_and_state_diffs, num_flips_init

__all__ = ["pas", "path_log_prob"]


def path_log_prob(weights: jax.Array, sites: jax.Array, values: jax.Array, active: jax.Array) -> jax.Array:
    """``log q`` of an ordered without-replacement path under ``weights`` ``(d, K)``.

    ``Σ_k active_k [w[i_k, c_k] − logsumexp_{j ∉ {i_0..i_{k−1}}, c} w[j, c]]``; inactive moves
    (the tail beyond ``R``) contribute nothing and must come after the active ones. The
    denominators are ``logaddexp(L_rest, logsumexp_{j >= k} s_{i_j})`` with ``s_i`` a site's
    total log weight and ``L_rest`` that of the sites off the path: ``O(d + R log R)``, no cancellation.
    """
    d = weights.shape[0]
    site_lse = jax.nn.logsumexp(weights, axis=1)  # (d,)
    on_path = jnp.zeros((d,), bool).at[sites].max(active)
    rest = jax.nn.logsumexp(jnp.where(on_path, -jnp.inf, site_lse))
    path_lse = jnp.where(active, site_lse[sites], -jnp.inf)
    # suffix log-sum-exp by an associative scan (O(R log R)): XLA's CPU cumulative ops are O(R²) windows,
    # which made this line most of a PAS step
    suffix = jax.lax.associative_scan(jnp.logaddexp, path_lse, reverse=True)
    denom = jnp.logaddexp(rest, suffix)
    return jnp.sum(jnp.where(active, weights[sites, values] - denom, 0.0))


def pas(
    model: DiscreteModel,
    *,
    balancing: str = "sqrt",
    num_flips: float = 1.0,
    adapt: bool = True,
    max_flips: int | None = None,
) -> SamplingAlgorithm:
    """Path auxiliary sampler.

    Args:
      model: the target.
      balancing: ``"sqrt"`` (default), ``"barker"``, ``"max"``, ``"min"``.
      num_flips: initial path length ``R`` (rounded per step).
      adapt: adapt ``R`` toward acceptance 0.574.
      max_flips: static cap on ``R`` (default ``min(d, 64)``).
    """
    d = model.num_sites
    g = balancing_function(balancing)
    r_max = check_int("pas", "max_flips", min(d, 64) if max_flips is None else max_flips)
    if r_max > d:
        raise ValueError(f"pas: max_flips must be <= num_sites={d}, got {r_max}")
    if not 1.0 <= float(num_flips) <= r_max:
        raise ValueError(f"pas: num_flips must be in [1, max_flips={r_max}], got {num_flips!r}")

    init = num_flips_init(model, num_flips)

    def weights(diffs, x):  # binary: one column, the flips (a move's value is then its index 0)
        return g(diffs)[:, None] if model.is_binary else balanced_weights(diffs, x, g)

    def step(key, state):
        k_move, k_acc = jax.random.split(as_key(key))
        w_x = weights(state.diffs, state.x)
        perturbed = w_x + jax.random.gumbel(k_move, w_x.shape)
        values_all = jnp.argmax(perturbed, axis=1)
        _, sites = jax.lax.top_k(jnp.max(perturbed, axis=1), r_max)  # sequential order, no replacement
        values = values_all[sites]
        n = jnp.round(state.step_size).astype(jnp.int32)
        active = jnp.arange(r_max) < n
        new_values = 1 - state.x[sites] if model.is_binary else values
        y = state.x.at[sites].set(jnp.where(active, new_values, state.x[sites]))
        lp_y, diffs_y = log_prob_and_state_diffs(model, y)
        w_y = weights(diffs_y, y)
        rev = jnp.where(active, n - 1 - jnp.arange(r_max), jnp.arange(r_max))  # active part reversed
        log_fwd = path_log_prob(w_x, sites, values, active)
        rev_values = values[rev] if model.is_binary else state.x[sites[rev]]  # binary: index 0, a flip back
        log_rev = path_log_prob(w_y, sites[rev], rev_values, active)
        acc, accepted = mh_accept(k_acc, lp_y - state.log_prob + log_rev - log_fwd)
        r = adapt_num_flips(state.step_size, acc, TARGET_ACCEPTANCE, r_max) if adapt else state.step_size
        return accept_move(state, y, lp_y, diffs_y, acc, accepted, r)

    return SamplingAlgorithm(init, step, "pas", 1.0)
