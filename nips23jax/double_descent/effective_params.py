"""The generalized effective number of parameters of a linear smoother (Curth et al., 2023, Def. 1).

A linear smoother predicts ``ŷ(x) = ŝ(x)ᵀ y`` from the ``n`` training outcomes ``y``; its smoother
row ``ŝ(x) ∈ R^n`` depends on the training inputs (and, for trees, on how they were grown) but not
on ``y`` at prediction time. Over a set of inputs ``I₀ = {x_j}`` the paper measures complexity by

    p̂⁰_ŝ = n / |I₀| · Σ_{j ∈ I₀} ‖ŝ(x_j)‖²                                         (Def. 1)

On the training inputs and a square smoother matrix ``S`` this is ``tr(S Sᵀ)``, the classical
"degrees of freedom" variance term (equal to the rank ``p`` of a projection, e.g. OLS with
``p < n`` features). On test inputs it measures how much the model's predictions there vary with
the training outcomes: the quantity whose U-turn the paper shows.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

__all__ = ["effective_parameters", "smoother_predict"]


def _as_rows(smoother_rows: ArrayLike, name: str, fn: str) -> jax.Array:
    s = jnp.asarray(smoother_rows)
    if s.ndim < 2:
        raise ValueError(f"{fn}: {name} must have shape (..., num_inputs, num_train), got shape {s.shape}")
    if s.shape[-1] == 0 or s.shape[-2] == 0:
        raise ValueError(f"{fn}: {name} has an empty axis, shape {s.shape}")
    if not jnp.issubdtype(s.dtype, jnp.floating):
        s = s.astype(jnp.result_type(float))
    return s


def effective_parameters(smoother_rows: ArrayLike) -> jax.Array:
    """Generalized effective parameters ``p̂⁰ = n/|I₀| · Σ_j ‖ŝ(x_j)‖²`` (Curth et al., Def. 1).

    Args:
      smoother_rows: ``(..., m, n)``: row ``j`` is the smoother row ``ŝ(x_j)`` of input ``x_j``
        (``m`` inputs ``I₀``, ``n`` training outcomes). Leading axes are batch axes (e.g. one
        smoother per model in a sweep).

    Returns:
      ``(...)``: ``n · mean_j ‖ŝ(x_j)‖²``. On the training inputs (``m = n``) this is
      ``tr(S Sᵀ)``.

    Example::

      s_train = rff_regression_smoother(rff, x_train, x_train)
      s_test = rff_regression_smoother(rff, x_train, x_test)
      p_train, p_test = effective_parameters(s_train), effective_parameters(s_test)
    """
    s = _as_rows(smoother_rows, "smoother_rows", "effective_parameters")
    n = s.shape[-1]
    return n * jnp.mean(jnp.sum(jnp.square(s), axis=-1), axis=-1)


def smoother_predict(smoother_rows: ArrayLike, y_train: ArrayLike) -> jax.Array:
    """Predictions ``ŷ(x_j) = ŝ(x_j)ᵀ y`` of a linear smoother.

    Args:
      smoother_rows: ``(m, n)`` smoother rows.
      y_train: ``(n,)`` or ``(n, k)`` training outcomes (``k`` outputs share one smoother, e.g.
        one-hot class indicators).

    Returns:
      ``(m,)`` or ``(m, k)`` predictions.
    """
    s = _as_rows(smoother_rows, "smoother_rows", "smoother_predict")
    y = jnp.asarray(y_train)
    if s.ndim != 2:
        raise ValueError(f"smoother_predict: smoother_rows must be (m, n), got shape {s.shape}")
    if y.ndim not in (1, 2) or y.shape[0] != s.shape[1]:
        raise ValueError(
            f"smoother_predict: y_train must have shape (n,) or (n, k) with n = {s.shape[1]} "
            f"(the smoother's training axis), got shape {y.shape}"
        )
    return s @ y.astype(s.dtype)
