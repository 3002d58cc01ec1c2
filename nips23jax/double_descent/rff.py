"""Random Fourier feature (RFF) regression as a linear smoother (Curth et al., Sec. 3.2 and 4.1).

Features ``φ(x) = sqrt(2/P) · cos(Wᵀx / h + b)`` with ``W ~ N(0, I)`` (``(d, P)``) and
``b ~ U[0, 2π)`` approximate the Gaussian kernel of bandwidth ``h`` (Rahimi & Recht, 2007):
``φ(x)ᵀφ(z) → exp(−‖x − z‖²/(2h²))``. The features are nested: the first ``P`` columns of a bank
of ``P_max`` features are the model with ``P`` raw parameters, as in the paper's sweeps.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from nips23jax.core.train import as_key
from nips23jax.double_descent.smoothers import least_squares_smoother, pca_ols_smoother

__all__ = [
    "RandomFourierFeatures",
    "init_rff",
    "rff_features",
    "rff_regression_smoother",
    "unfolded_rff_smoother",
]


class RandomFourierFeatures(NamedTuple):
    """A bank of ``P`` random Fourier features for ``d``-dimensional inputs.

    Attributes:
      frequencies: ``(d, P)`` standard-normal directions ``W``.
      phases: ``(P,)`` phases ``b`` uniform on ``[0, 2π)``.
      bandwidth: scalar ``h`` of the approximated Gaussian kernel.
    """

    frequencies: jax.Array
    phases: jax.Array
    bandwidth: jax.Array

    @property
    def num_features(self) -> int:
        return self.frequencies.shape[1]

    def take(self, num_features: int) -> RandomFourierFeatures:
        """The first ``num_features`` features (the nested model with ``P = num_features``)."""
        if isinstance(num_features, bool) or not isinstance(num_features, int):
            raise TypeError(f"RandomFourierFeatures.take: num_features must be an int, got {num_features!r}")
        if not 1 <= num_features <= self.num_features:
            raise ValueError(
                f"RandomFourierFeatures.take: num_features must be in [1, {self.num_features}], got {num_features}"
            )
        return RandomFourierFeatures(self.frequencies[:, :num_features], self.phases[:num_features], self.bandwidth)


def init_rff(key: jax.Array | int, dim: int, num_features: int, bandwidth: float, dtype=jnp.float32) -> RandomFourierFeatures:
    """Draws ``W ~ N(0, I_d)`` (``(dim, num_features)``) and ``b ~ U[0, 2π)``.

    Args:
      key: PRNG key (typed, raw, or an int seed).
      dim: input dimension ``d``.
      num_features: ``P``.
      bandwidth: ``h > 0`` of the Gaussian kernel approximated.
      dtype: float dtype of the bank.

    Returns:
      :class:`RandomFourierFeatures`.
    """
    for name, v in (("dim", dim), ("num_features", num_features)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"init_rff: {name} must be an int >= 1, got {v!r}")
    if not float(bandwidth) > 0:
        raise ValueError(f"init_rff: bandwidth must be > 0, got {bandwidth!r}")
    k_w, k_b = jax.random.split(as_key(key))
    return RandomFourierFeatures(
        frequencies=jax.random.normal(k_w, (dim, num_features), dtype),
        phases=jax.random.uniform(k_b, (num_features,), dtype, 0.0, 2 * jnp.pi),
        bandwidth=jnp.asarray(bandwidth, dtype),
    )


def rff_features(rff: RandomFourierFeatures, x: ArrayLike) -> jax.Array:
    """``φ(x) = sqrt(2/P) cos(Wᵀx / h + b)``.

    Args:
      rff: the feature bank (``P`` features for ``d``-dimensional inputs).
      x: ``(m, d)`` inputs.

    Returns:
      ``(m, P)`` features.
    """
    x = jnp.asarray(x)
    d = rff.frequencies.shape[0]
    if x.ndim != 2 or x.shape[1] != d:
        raise ValueError(f"rff_features: x must have shape (m, {d}) (the features' input dimension), got {x.shape}")
    return _features(rff, x)


@jax.jit
def _features(rff, x):
    dtype = jnp.result_type(x.dtype, rff.frequencies.dtype, float)
    z = x.astype(dtype) @ rff.frequencies.astype(dtype) / rff.bandwidth.astype(dtype) + rff.phases.astype(dtype)
    return jnp.sqrt(2.0 / rff.num_features).astype(dtype) * jnp.cos(z)


def rff_regression_smoother(
    rff: RandomFourierFeatures, x_train: ArrayLike, x_query: ArrayLike, *, ridge: float = 0.0
) -> jax.Array:
    """Smoother rows of RFF regression: ``ŝ(x)ᵀ = φ(x)ᵀ pinv(Φ_train)`` (ridge: ``φ(x)ᵀ(ΦᵀΦ + λI)⁻¹Φᵀ``).

    The min-norm least-squares fit of Belkin et al.'s RFF experiments, written as a smoother
    (Curth et al., Sec. 4.1): OLS when ``P < n``, the min-norm interpolator when ``P ≥ n``.

    Args:
      rff: ``P`` random Fourier features.
      x_train: ``(n, d)`` training inputs.
      x_query: ``(m, d)`` inputs to predict at.
      ridge: ``λ ≥ 0`` (0: min-norm least squares).

    Returns:
      ``(m, n)`` smoother rows.
    """
    return least_squares_smoother(rff_features(rff, x_train), rff_features(rff, x_query), ridge=ridge)


def unfolded_rff_smoother(
    rff: RandomFourierFeatures, x_train: ArrayLike, x_query: ArrayLike, num_components: int
) -> jax.Array:
    """Smoother rows of the unfolded RFF model: ``P^ex`` raw features, then OLS on ``P^PC`` principal components.

    ``P^ex = rff.num_features`` raw features; ``P^PC = num_components ≤ min(n, P^ex)``
    (:func:`~nips23jax.double_descent.pca_ols_smoother`). With ``P^PC = min(n, P^ex)`` it equals
    :func:`rff_regression_smoother`.

    Args:
      rff: ``P^ex`` random Fourier features.
      x_train: ``(n, d)``.
      x_query: ``(m, d)``.
      num_components: ``P^PC``.

    Returns:
      ``(m, n)`` smoother rows.
    """
    return pca_ols_smoother(rff_features(rff, x_train), rff_features(rff, x_query), num_components)
