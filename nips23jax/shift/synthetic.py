"""Synthetic populations whose shift is known in closed form.

A :class:`Population` is ``x ~ N(mean, diag(std²))`` with probit label noise

    P(y = 1 | x) = Φ((βᵀx + bias) / noise),                                         (labels)

so X-shifts change ``mean``/``std`` and Y|X-shifts change ``beta``/``bias``/``noise``. Everything
the DISDE terms need is exact: densities ``p, q`` (hence ``s ∝ pq/(p+q)``) and, for a fixed
classifier ``h``, the conditional correctness ``R(x) = P(y = h(x) | x)``.
:func:`disde_ground_truth` integrates the terms by Monte Carlo with these exact functions (no
domain classifier, no sampled labels): the reference the estimator is judged against.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr
from jax.typing import ArrayLike

from nips23jax.core.train import as_key
from nips23jax.shift.disde import DisdeTerms, disde_terms

__all__ = [
    "Population",
    "conditional_accuracy",
    "disde_ground_truth",
    "exact_shared_weights",
    "label_probability",
    "log_density",
    "sample_population",
]


class Population(NamedTuple):
    """``x ~ N(mean, diag(std²))``; ``P(y=1|x) = Φ((βᵀx + bias)/noise)``. Arrays ``(d,)``, floats."""

    mean: jax.Array
    std: jax.Array
    beta: jax.Array
    bias: float = 0.0
    noise: float = 1.0

    @classmethod
    def create(cls, mean: ArrayLike, std: ArrayLike, beta: ArrayLike, bias: float = 0.0, noise: float = 1.0) -> Population:
        """Broadcasts ``mean``/``std``/``beta`` to one dimension ``d``; checks ``std > 0`` and ``noise > 0``."""
        mean, std, beta = (jnp.asarray(v, jnp.float32) for v in (mean, std, beta))
        d = max(v.size for v in (mean, std, beta))
        mean, std, beta = (jnp.broadcast_to(v, (d,)) for v in (mean, std, beta))
        if not bool(jnp.all(std > 0)) or not noise > 0:
            raise ValueError(f"Population: std and noise must be positive, got std={std}, noise={noise}")
        return cls(mean, std, beta, float(bias), float(noise))


def sample_population(key: jax.Array | int, pop: Population, num: int) -> tuple[jax.Array, jax.Array]:
    """``num`` draws: ``x`` ``(num, d)`` float32 and ``y`` ``(num,)`` int32 in {0, 1} from (labels)."""
    kx, ky = jax.random.split(as_key(key))
    x = pop.mean + pop.std * jax.random.normal(kx, (num, pop.mean.shape[0]))
    y = jax.random.uniform(ky, (num,)) < label_probability(pop, x)
    return x, y.astype(jnp.int32)


def log_density(pop: Population, x: ArrayLike) -> jax.Array:
    """``log p(x)`` of the Gaussian ``N(mean, diag(std²))``, ``(n, d) -> (n,)``."""
    z = (jnp.asarray(x) - pop.mean) / pop.std
    return -0.5 * jnp.sum(z**2, -1) - jnp.sum(jnp.log(pop.std)) - 0.5 * z.shape[-1] * jnp.log(2 * jnp.pi)


def label_probability(pop: Population, x: ArrayLike) -> jax.Array:
    """``η(x) = P(y = 1 | x) = Φ((βᵀx + bias)/noise)``, ``(n, d) -> (n,)``."""
    return ndtr((jnp.asarray(x) @ pop.beta + pop.bias) / pop.noise)


def conditional_accuracy(pop: Population, x: ArrayLike, pred: ArrayLike) -> jax.Array:
    """``R(x) = P(y = pred | x)``: ``η(x)`` where ``pred = 1`` and ``1 − η(x)`` where ``pred = 0``."""
    eta = label_probability(pop, x)
    return jnp.where(jnp.asarray(pred) > 0, eta, 1 - eta)


def exact_shared_weights(source: Population, target: Population, x: ArrayLike) -> tuple[jax.Array, jax.Array]:
    """Exact ``(q/(p+q), p/(p+q))`` at ``x`` ``(n, d)``: the S-weights of source and of target examples."""
    lr = log_density(target, x) - log_density(source, x)  # log q/p
    return jax.nn.sigmoid(lr), jax.nn.sigmoid(-lr)


def disde_ground_truth(
    key: jax.Array | int,
    source: Population,
    target: Population,
    predict: Callable[[jax.Array], jax.Array],
    *,
    num: int = 400_000,
) -> DisdeTerms:
    """The DISDE terms of classifier ``predict`` by Monte Carlo with exact densities and exact ``R``.

    ``E_P[R_P] = mean_{x~P} R_P(x)``; ``E_S[R_P] = Σ R_P(x)·q/(p+q) / Σ q/(p+q)`` over ``x ~ P``;
    likewise on ``x ~ Q`` with ``p/(p+q)`` and ``R_Q``. Error ``O(num^-1/2)`` from X only; both
    domains use the same standard-normal draws (common random numbers).

    Args:
      key: PRNG key for the ``x`` draws.
      source, target: the populations P and Q.
      predict: ``(n, d) -> (n,)`` hard predictions in {0, 1}.
      num: draws per domain.

    Returns:
      :class:`DisdeTerms` (jax scalars).
    """
    if num < 2:
        raise ValueError(f"disde_ground_truth: num must be >= 2, got {num}")
    return _ground_truth(as_key(key), source, target, predict, num)


@functools.partial(jax.jit, static_argnums=(3, 4))
def _ground_truth(key, source, target, predict, num):
    # Common random numbers: both domains map the same standard-normal draws, so P = Q gives
    # exactly zero terms and the differences have less Monte Carlo noise.
    xp, _ = sample_population(key, source, num)
    xq, _ = sample_population(key, target, num)
    rp = conditional_accuracy(source, xp, predict(xp))
    rq = conditional_accuracy(target, xq, predict(xq))
    wp, _ = exact_shared_weights(source, target, xp)
    _, wq = exact_shared_weights(source, target, xq)
    return disde_terms(rp, rq, wp, wq)
