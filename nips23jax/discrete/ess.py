"""Effective sample size from autocorrelations, as TensorFlow Probability's ``effective_sample_size``.

For one chain ``x_1..x_n`` (tfp's defaults: ``filter_threshold=0``, no lag cap, no
positive-pairs filter)::

    ρ̂_k = ĉ_k / ĉ_0,   ĉ_k = (1/(n − k)) Σ_t (x_t − x̄)(x_{t+k} − x̄)
    ESS  = n / (−1 + 2 Σ_{k=0}^{K−1} (1 − k/n) ρ̂_k)

where ``K`` is the first lag with ``ρ̂_k < 0`` (all later lags are dropped).

DISCS' ESS (``discs/evaluators/ess_eval.py`` and ``discs/experiment/experiment.py`` in
google-research/discs, the code of its recorded Ising results) is exactly this estimator with tfp's
defaults (no ``filter_beyond_positive_pairs``, no cross-chain pooling), float32, per chain, on the
Hamming distance of every chain to one random reference state (:func:`hamming_distance`), over the
states after ``int(chain_length · ess_ratio)`` steps (``ess_ratio = 0.5``). It then sets a constant
chain's ESS (NaN) to 1, averages over chains, and divides by ``chain_length · ess_ratio`` — the
kept steps when ``ess_ratio = 0.5`` — for its ``ESS_M-H`` (:func:`ess_per_step`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["autocorrelation", "ess", "ess_per_step", "hamming_distance"]


def autocorrelation(x: ArrayLike) -> jax.Array:
    """Normalized autocorrelation ``ρ̂_k`` along axis 0 (FFT, the ``1/(n−k)`` estimator).

    Args:
      x: ``(n, ...)``.

    Returns:
      ``(n, ...)``; NaN where a chain is constant.
    """
    x = jnp.asarray(x, jnp.float32)
    n = x.shape[0]
    xc = x - jnp.mean(x, axis=0)
    nfft = 1 << (2 * n - 1).bit_length()
    f = jnp.fft.rfft(xc, n=nfft, axis=0)
    acov = jnp.fft.irfft(f * jnp.conj(f), n=nfft, axis=0)[:n]
    acov = acov / (n - jnp.arange(n)).reshape((n,) + (1,) * (x.ndim - 1))
    return acov / acov[:1]


def ess(samples: ArrayLike, *, burn_in: float = 0.0) -> jax.Array:
    """Effective sample size of each chain (tfp ``effective_sample_size`` with its defaults).

    Args:
      samples: ``(n, ...)``, time along axis 0 (e.g. ``(num_steps, num_chains)``).
      burn_in: fraction of the leading steps to discard, in ``[0, 1)`` (DISCS: 0.5).

    Returns:
      ``samples.shape[1:]`` float32. A constant chain (zero variance) gets NaN, as in tfp.

    Raises:
      ValueError: fewer than 2 samples after burn-in, or ``burn_in`` outside ``[0, 1)``.
    """
    x = jnp.asarray(samples)
    if x.ndim < 1:
        raise ValueError(f"ess: samples must have a time axis (n, ...), got shape {x.shape}")
    if not 0.0 <= burn_in < 1.0:
        raise ValueError(f"ess: burn_in must be a fraction in [0, 1), got {burn_in!r}")
    x = x[int(burn_in * x.shape[0]):]
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"ess: need at least 2 samples after burn-in, got {n}")
    rho = autocorrelation(x)
    shape = (n,) + (1,) * (x.ndim - 1)
    weighted = ((n - jnp.arange(n)) / n).reshape(shape) * rho
    keep = jnp.cumsum((rho < 0).astype(jnp.int32), axis=0) == 0
    return n / (-1.0 + 2.0 * jnp.sum(jnp.where(keep, weighted, 0.0), axis=0))


def ess_per_step(samples: ArrayLike, *, burn_in: float = 0.5, constant_chain_ess: float = 1.0) -> jax.Array:
    """DISCS' ``ESS_M-H``: the mean over chains of :func:`ess` divided by the steps kept after burn-in.

    ``mean_c ESS_c / (n − ⌊burn_in · n⌋)``, with a constant chain's ESS (NaN) replaced by
    ``constant_chain_ess`` (DISCS: 1). DISCS divides by ``n · ess_ratio`` with ``ess_ratio`` its
    burn-in fraction; the two agree at its ``ess_ratio = 0.5``.

    Args:
      samples: ``(n, ...)``, time along axis 0 (e.g. ``(num_steps, num_chains)``).
      burn_in: fraction of the leading steps to discard, in ``[0, 1)`` (DISCS: 0.5).
      constant_chain_ess: the ESS a chain with zero variance after burn-in counts as.

    Returns:
      A float32 scalar.
    """
    samples = jnp.asarray(samples)
    e = ess(samples, burn_in=burn_in)
    kept = samples.shape[0] - int(burn_in * samples.shape[0])
    return jnp.mean(jnp.where(jnp.isfinite(e), e, constant_chain_ess)) / kept


def hamming_distance(x: ArrayLike, reference: ArrayLike) -> jax.Array:
    """Number of sites where ``x[..., i] != reference[i]``; DISCS' ESS statistic. ``x.shape[:-1]`` int32.

    ``x`` is ``(..., d)`` and ``reference`` ``(d,)``; other shapes raise (no broadcasting)."""
    x, reference = jnp.asarray(x), jnp.asarray(reference)
    if x.ndim < 1 or reference.shape != x.shape[-1:]:
        raise ValueError(f"hamming_distance: reference must have shape (d,) = {x.shape[-1:]} matching x (..., d); "
                         f"got x {x.shape} and reference {reference.shape}")
    return jnp.sum(x != reference, axis=-1).astype(jnp.int32)
