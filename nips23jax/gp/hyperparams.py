"""Log marginal likelihood and its optax maximization on a data subset (as Lin et al. 2023 do).

``log p(y) = −½ yᵀ(K + σ²I)⁻¹y − ½ log|K + σ²I| − (n/2) log 2π`` (Rasmussen & Williams eq. 2.30),
maximized over ``log``-free positive hyperparameters through a softplus reparameterization.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from nips23jax.core.train import as_key
from nips23jax.core.compile import dual
from nips23jax.gp.kernels import Kernel, Params, check_data, check_params, get_kernel

__all__ = ["fit_hyperparameters", "log_marginal_likelihood"]

_MIN = 1e-6  # floor added after the softplus so no hyperparameter reaches 0


def log_marginal_likelihood(kernel: Kernel | str, params: Params, x: ArrayLike, y: ArrayLike) -> jax.Array:
    """``log N(y | 0, K + σ²I)`` by a Cholesky factorization; differentiable in ``params``.

    Args:
      kernel: kernel or name.
      params: hyperparameters.
      x: ``(n, d)``.
      y: ``(n,)``.

    Returns:
      Scalar.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    check_data("log_marginal_likelihood", x, y)
    check_params(params, x.shape[1], where="log_marginal_likelihood: params")
    return _lml_impl.at(x.shape[0] ** 2 * (x.shape[1] + 2))(get_kernel(kernel), params, x, y)


@dual(static_argnums=0)
def _lml_impl(kernel: Kernel, params: Params, x: jax.Array, y: jax.Array) -> jax.Array:
    n = x.shape[0]
    k = kernel(params, x, x) + params["noise_variance"] * jnp.eye(n, dtype=x.dtype)
    chol = jnp.linalg.cholesky(k)
    a = jax.scipy.linalg.solve_triangular(chol, y, lower=True)
    return -0.5 * jnp.sum(a * a) - jnp.sum(jnp.log(jnp.diag(chol))) - 0.5 * n * math.log(2 * math.pi)


def _to_raw(params: Params) -> Params:
    # inverse softplus of (v - _MIN)
    return {k: jnp.log(jnp.expm1(jnp.maximum(jnp.asarray(v, jnp.float32) - _MIN, 1e-6))) for k, v in params.items()}


def _from_raw(raw: Params) -> Params:
    return {k: jax.nn.softplus(v) + _MIN for k, v in raw.items()}


def fit_hyperparameters(
    kernel: Kernel | str,
    init: Params,
    x: ArrayLike,
    y: ArrayLike,
    *,
    key: jax.Array | int | None = None,
    subset_size: int = 10_000,
    num_steps: int = 100,
    learning_rate: float = 0.1,
    min_noise: float = 1e-4,
) -> tuple[Params, dict[str, Any]]:
    """Maximizes the log marginal likelihood with Adam on a random subset of the data.

    Args:
      kernel: kernel or name.
      init: starting hyperparameters.
      x: ``(n, d)``.
      y: ``(n,)``.
      key: picks the subset when ``n > subset_size``.
      subset_size: data points used (the paper: 10k).
      num_steps: Adam steps.
      learning_rate: Adam learning rate on the softplus-raw parameters.
      min_noise: lower bound kept on the noise variance during fitting (numerical stability).

    Returns:
      ``(params, info)`` with ``info["lml"]`` the per-point log marginal likelihood at each step.
    """
    kernel = get_kernel(kernel)
    x, y = jnp.asarray(x), jnp.asarray(y)
    check_data("fit_hyperparameters", x, y)
    check_params(init, x.shape[1], where="fit_hyperparameters: init")
    if x.shape[0] > subset_size:
        if key is None:
            raise ValueError("fit_hyperparameters: key is required to choose a subset")
        x, y = _subset.at(x.size)(int(subset_size), as_key(key), x, y)
    n = x.shape[0]
    # One program each for the setup, the Adam step and the result, shared by every call of equal shapes
    # (the learning rate and noise floor are traced, not baked in).
    raw, state = _fit_init.at(0)(dict(init), min_noise)
    step = _fit_step.at(num_steps * n * n * (x.shape[1] + 2))
    history = []
    for _ in range(num_steps):
        raw, state, value = step(kernel, raw, state, x, y, learning_rate, min_noise)
        history.append(-float(value))
    params = _fit_result.at(0)(raw, min_noise, x.dtype)
    return params, {"lml": np.asarray(history), "subset_size": n}


@dual(static_argnums=0)
def _subset(size, key, x, y):
    idx = jax.random.choice(key, x.shape[0], (size,), replace=False)
    return x[idx], y[idx]


@dual()
def _fit_init(init, min_noise):
    init = dict(init)
    # the fit's noise is softplus(raw) + _MIN + min_noise: invert that, so num_steps = 0 returns init
    init["noise_variance"] = jnp.maximum(jnp.asarray(init["noise_variance"]), min_noise) - min_noise
    raw = _to_raw(init)
    return raw, optax.adam(0.0).init(raw)


def _fit_loss(kernel, raw, x, y, min_noise):
    p = _from_raw(raw)
    p["noise_variance"] = p["noise_variance"] + min_noise
    return -_lml_impl(kernel, p, x, y) / x.shape[0]


@dual(static_argnums=0)
def _fit_step(kernel, raw, state, x, y, learning_rate, min_noise):
    """One Adam step on ``−log p(y)/n`` (the state does not depend on the learning rate, so it is traced)."""
    value, grads = jax.value_and_grad(_fit_loss, argnums=1)(kernel, raw, x, y, min_noise)
    updates, state = optax.adam(learning_rate).update(grads, state, raw)
    return optax.apply_updates(raw, updates), state, value


@dual(static_argnums=2)
def _fit_result(raw, min_noise, dtype):
    params = _from_raw(raw)
    params["noise_variance"] = params["noise_variance"] + min_noise
    return {k: jnp.asarray(v, dtype) for k, v in params.items()}
