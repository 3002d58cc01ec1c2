"""Random Fourier features and prior samples as functions.

Bochner's theorem writes a stationary kernel as an expectation over its spectral density,
``k(x, x') = s · E_ω[cos(ωᵀ(x − x')/ℓ)]``, so with ``M`` frequencies ``ω_j`` and phases
``φ_j ~ U(−π, π)`` the features (Rahimi & Recht 2007; Lin et al. 2023 §2, their prior ``f₀``)

    Φ(x)_j = √(2s/M) · cos(xᵀ(ω_j/ℓ) + φ_j)

give ``Φ(x)Φ(x')ᵀ → k(x, x')`` with error ``O(1/√M)``, and ``f₀(x) = Φ(x) w``, ``w ~ N(0, I)``,
is an (approximate) prior sample that can be evaluated at any inputs.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nips23jax.core.train import as_key
from nips23jax.core.compile import dual
from nips23jax.gp.kernels import Kernel, Params, check_params, get_kernel, row_blocks

__all__ = ["PriorSampleFn", "RandomFeatures", "prior_sample_fn", "random_features", "rff_features"]

# Rows of x a prior sample evaluates at once (memory ``S · PRIOR_BLOCK_ROWS · M`` floats).
PRIOR_BLOCK_ROWS = 4096


class RandomFeatures(NamedTuple):
    """Frequencies ``omega (..., M, d)`` (unit lengthscale) and phases ``phase (..., M)``."""

    omega: jax.Array
    phase: jax.Array


def _check_num(name: str, value: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{where}: {name} must be an int >= 1, got {value!r}")
    return value


def random_features(
    key: jax.Array, kernel: Kernel | str, dim: int, num_features: int, *, batch_shape: tuple[int, ...] = (),
    dtype=jnp.float32,
) -> RandomFeatures:
    """Draws ``num_features`` frequencies from ``kernel``'s spectral density and uniform phases.

    Args:
      key: PRNG key (int, raw or typed).
      kernel: kernel or its name.
      dim: input dimension ``d``.
      num_features: ``M >= 1``.
      batch_shape: leading shape for independent feature sets (e.g. one per prior sample).

    Returns:
      :class:`RandomFeatures` with ``omega (*batch_shape, M, d)``, ``phase (*batch_shape, M)``.
    """
    kernel = get_kernel(kernel)
    _check_num("num_features", num_features, "random_features")
    work = math.prod(batch_shape) * num_features * (dim + 2)
    return _random_features_impl.at(work)(as_key(key), kernel, int(dim), num_features, tuple(batch_shape), dtype)


@dual(static_argnums=(1, 2, 3, 4, 5))
def _random_features_impl(key, kernel, dim, num_features, batch_shape, dtype) -> RandomFeatures:
    k_omega, k_phase = jax.random.split(key)
    omega = kernel.spectral_frequencies(k_omega, (*batch_shape, num_features, dim), dtype)
    phase = jax.random.uniform(k_phase, (*batch_shape, num_features), dtype, -jnp.pi, jnp.pi)
    return RandomFeatures(omega, phase)


def rff_features(features: RandomFeatures, params: Params, x: ArrayLike) -> jax.Array:
    """``Φ(x) = √(2s/M) cos(x (ω/ℓ)ᵀ + φ)``: ``(n, M)`` for unbatched ``features``.

    Args:
      features: from :func:`random_features` (no batch dims).
      params: hyperparameters (``lengthscale``, ``signal_variance``).
      x: ``(n, d)``.

    Returns:
      ``(n, M)`` with ``Φ(x) Φ(x')ᵀ ≈ k(x, x')``.
    """
    x = jnp.asarray(x)
    return _rff_features_impl.at(x.shape[0] * features.omega.size)(features, params, x)


@dual()
def _rff_features_impl(features: RandomFeatures, params: Params, x: jax.Array) -> jax.Array:
    m = features.omega.shape[-2]
    ls = jnp.asarray(params["lengthscale"], x.dtype)
    proj = (x / ls) @ features.omega.T.astype(x.dtype) + features.phase.astype(x.dtype)
    return jnp.sqrt(2.0 * jnp.asarray(params["signal_variance"], x.dtype) / m) * jnp.cos(proj)


def prior_sample_fn(
    key: jax.Array,
    kernel: Kernel | str,
    params: Params,
    num_samples: int,
    num_features: int = 2000,
    *,
    dim: int | None = None,
    block_size: int = PRIOR_BLOCK_ROWS,
) -> PriorSampleFn:
    """Approximate GP prior samples ``f₀⁽ⁱ⁾(·) = Φ⁽ⁱ⁾(·) w⁽ⁱ⁾`` as one function, vmapped over samples.

    Each sample has its own frequencies, phases and weights, so the sample covariance over samples
    converges to ``k`` itself (not to one fixed random-feature approximation of it).

    Args:
      key: PRNG key.
      kernel: kernel or its name.
      params: hyperparameters; ``lengthscale`` of shape ``(d,)`` fixes ``d`` (else pass ``dim``).
      num_samples: ``S >= 1``.
      num_features: ``M >= 1`` features per sample (the paper uses 2000).
      dim: input dimension when ``lengthscale`` is a scalar.
      block_size: rows evaluated at once (memory ``S · block_size · M``).

    Returns:
      ``f(x) -> (S, n)`` for ``x`` of shape ``(n, d)`` (a :class:`PriorSampleFn`); pure, jit-able (and a
      pytree, so it can be passed into ``jit``), same values at the same inputs.
    """
    kernel = get_kernel(kernel)
    _check_num("num_samples", num_samples, "prior_sample_fn")
    _check_num("num_features", num_features, "prior_sample_fn")
    check_params(params, where="prior_sample_fn: params")
    ls = jnp.asarray(params["lengthscale"])
    if dim is None:
        if ls.ndim == 0:
            raise ValueError("prior_sample_fn: a scalar lengthscale needs dim= (the input dimension)")
        dim = int(ls.shape[0])
    work = num_samples * num_features * (dim + 3)
    feats, weights = _draw_prior.at(work)(as_key(key), kernel, num_samples, num_features, dim)
    return PriorSampleFn(feats, weights, params, dim, block_size)


@dual(static_argnums=(1, 2, 3, 4))
def _draw_prior(key, kernel, num_samples, num_features, dim):
    """Frequencies, phases and weights of ``num_samples`` prior samples (as :func:`prior_sample_fn` draws them)."""
    k_feat, k_w = jax.random.split(key)
    feats = random_features(k_feat, kernel, dim, num_features, batch_shape=(num_samples,))
    weights = jax.random.normal(k_w, (num_samples, num_features))
    return feats, weights


@jax.tree_util.register_pytree_node_class
class PriorSampleFn:
    """``x (n, d) -> (S, n)``: the prior samples ``f₀⁽ⁱ⁾(x) = Φ⁽ⁱ⁾(x) w⁽ⁱ⁾`` of :func:`prior_sample_fn`.

    A pytree (features, weights and hyperparameters are its leaves), so it can be passed into ``jit``;
    called eagerly it runs one compiled program per input shape.
    """

    def __init__(self, features: RandomFeatures, weights: jax.Array, params: Params, dim: int, block_size: int):
        self.features, self.weights, self.params = features, weights, params
        self.dim, self.block_size = dim, block_size

    @property
    def num_samples(self) -> int:
        return int(self.weights.shape[0])

    def tree_flatten(self):
        return (self.features, self.weights, self.params), (self.dim, self.block_size)

    @classmethod
    def tree_unflatten(cls, aux, children):
        return cls(*children, *aux)

    def __call__(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"prior sample: x must have shape (n, {self.dim}), got {x.shape}")
        work = x.shape[0] * self.features.omega.size
        return _evaluate_prior.at(work)(self.block_size, self.features, self.weights, self.params, x)


@dual(static_argnums=0)
def _evaluate_prior(block_size: int, feats: RandomFeatures, weights: jax.Array, params: Params, x: jax.Array
                    ) -> jax.Array:
    n = x.shape[0]
    num_samples = weights.shape[0]

    def one(f: RandomFeatures, w: jax.Array, xb: jax.Array) -> jax.Array:
        return rff_features(f, params, xb) @ w.astype(xb.dtype)

    if n <= block_size:
        return jax.vmap(one, in_axes=(0, 0, None))(feats, weights, x)
    (blocks,), _ = row_blocks(block_size, x)
    out = jax.lax.map(lambda xb: jax.vmap(one, in_axes=(0, 0, None))(feats, weights, xb), blocks)
    return jnp.moveaxis(out, 0, 1).reshape(num_samples, -1)[:, :n]
