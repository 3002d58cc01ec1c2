"""Percentile-bootstrap confidence intervals for any metric over a test set.

The paper's plots carry uncertainty over test items; a metric averaged over ``M`` items is resampled
with replacement ``R`` times (``vmap`` over resamples) and the interval is read off the percentiles
of the resampled statistic (Efron & Tibshirani, 1993, Ch. 13).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nips23jax.core.train import as_key
from nips23jax.emergence.edit_distance import as_device_array

__all__ = ["BootstrapCI", "bootstrap_ci"]


class BootstrapCI(NamedTuple):
    """A point estimate and its percentile interval (arrays with the statistic's shape)."""

    estimate: jax.Array
    low: jax.Array
    high: jax.Array


def bootstrap_ci(
    key: jax.Array | int,
    values: ArrayLike,
    statistic: Callable[[jax.Array], jax.Array] | None = None,
    *,
    num_resamples: int = 1000,
    confidence: float = 0.95,
) -> BootstrapCI:
    """Percentile bootstrap over the leading (item) axis of ``values``.

    ``estimate = statistic(values)``; for ``r = 1..R`` draw item indices ``i_1..i_M`` uniformly with
    replacement and compute ``statistic(values[i])``; ``low`` / ``high`` are the
    ``(1 -/+ confidence) / 2`` quantiles of those ``R`` numbers.

    Args:
      key: PRNG key (int seed, raw or typed); the same key gives the same interval.
      values: ``(M, ...)`` per-item metric values (e.g. exact match per test problem); trailing
        axes are carried along (e.g. ``(M, num_models)`` resamples the same items for every model).
      statistic: ``(M, ...) -> (...)``, reducing the item axis (``None``: the mean over axis 0).
      num_resamples: ``R``.
      confidence: interval coverage in ``(0, 1)``.

    Returns:
      :class:`BootstrapCI` of arrays with ``statistic``'s output shape.
    """
    key = as_key(key)
    values = as_device_array(values)
    if values.ndim < 1 or values.shape[0] < 1:
        raise ValueError(f"bootstrap_ci: values must have a non-empty leading item axis, got shape {values.shape}")
    if not isinstance(num_resamples, int) or num_resamples < 2:
        raise ValueError(f"bootstrap_ci: num_resamples must be an int >= 2, got {num_resamples!r}")
    if not 0 < confidence < 1:
        raise ValueError(f"bootstrap_ci: confidence must be in (0, 1), got {confidence!r}")
    if statistic is None:
        statistic = _mean_over_items
    return _bootstrap(statistic, num_resamples, float(confidence), key, values)


def _mean_over_items(v: jax.Array) -> jax.Array:
    return jnp.mean(v, axis=0)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _bootstrap(statistic, num_resamples: int, confidence: float, key, values) -> BootstrapCI:
    m = values.shape[0]
    idx = jax.random.randint(key, (num_resamples, m), 0, m)
    stats = jax.vmap(lambda i: statistic(values[i]))(idx)
    q = jnp.asarray([(1 - confidence) / 2, (1 + confidence) / 2])
    low, high = jnp.quantile(stats.astype(jnp.result_type(float)), q, axis=0)
    return BootstrapCI(statistic(values), low, high)
