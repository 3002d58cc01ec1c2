"""The data-constrained scaling law (Muennighoff et al., NeurIPS 2023, Section 3 / Eq. 5).

With ``U_D`` unique tokens seen for ``D`` total tokens, the repetitions beyond the first epoch are
``R_D = D/U_D − 1`` and the effective data is (Eq. 5)::

    D' = U_D + U_D·R_D*·(1 − exp(−R_D/R_D*)),

so repeated tokens lose value exponentially and ``D' → U_D·(1 + R_D*)`` as ``R_D → ∞``. Excess
parameters beyond ``U_N``, the Chinchilla compute-optimal parameter count for ``U_D`` tokens, decay
the same way with ``R_N = N/U_N − 1`` and ``R_N*``. The loss is the Chinchilla form (Eq. 2) on the
effective quantities::

    L(N, D, U_D) = E + A/N'^α + B/D'^β.

``D < U_D`` is valid: a run that stops before one epoch sees only ``D`` unique tokens, so the law
uses ``min(U_D, D)`` as the unique data (``R_D = 0``, ``D' = D``), and ``U_N`` is computed from it.

Chinchilla's compute-optimal allocation for ``C = 6·N·D`` FLOPs (Hoffmann et al., Eq. 4)::

    N_opt(C) = G·(C/6)^{β/(α+β)},   D_opt(C) = G⁻¹·(C/6)^{α/(α+β)},   G = (αA/(βB))^{1/(α+β)}.

Example::

    data_constrained_loss(8.67e9, 178e9, 25e9)          # 2.226963 (the paper's 8.7B, 7-epoch run)
    effective_data(178e9, 25e9)                          # D' (tokens)
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "PUBLISHED",
    "DataConstrainedParams",
    "chinchilla_loss",
    "chinchilla_optimal",
    "compute_optimal_params_for_data",
    "data_constrained_loss",
    "effective_data",
    "effective_params",
]


class DataConstrainedParams(NamedTuple):
    """Constants of the law (a pytree of scalars).

    Attributes:
      A, B, E: the Chinchilla coefficients (``L = E + A/N'^α + B/D'^β``), positive (``E`` may be 0).
      alpha, beta: the exponents of parameters and data.
      R_D_star: decay constant of repeated data (epochs beyond the first at which a repeated
        token keeps ``1/e`` of its value).
      R_N_star: decay constant of excess parameters.
    """

    A: ArrayLike
    B: ArrayLike
    E: ArrayLike
    alpha: ArrayLike
    beta: ArrayLike
    R_D_star: ArrayLike
    R_N_star: ArrayLike


#: The paper's fitted constants (datablations, final fit on 182 runs): A = e^6.255414,
#: B = e^7.3049974, E = e^0.6254804, α = β = 0.3526596, R_D* = 15.387756, R_N* = 5.309743.
PUBLISHED = DataConstrainedParams(
    A=float(np.exp(6.255414)),
    B=float(np.exp(7.3049974)),
    E=float(np.exp(0.6254804)),
    alpha=0.3526596,
    beta=0.3526596,
    R_D_star=15.387756,
    R_N_star=5.309743,
)


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _number(x):
    """A Python int as a float (counts such as 2.4e11 tokens overflow int32, and 1e21 FLOPs int64)."""
    return float(x) if isinstance(x, int) and not isinstance(x, bool) else x


def _check_positive(name: str, x: ArrayLike, fn: str) -> None:
    """ValueError unless every entry of ``x`` is finite and > 0 (skipped for traced values)."""
    if not _is_concrete(x):
        return
    arr = np.asarray(_number(x))
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{fn}: {name} must be real numbers, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        bad = arr[~(np.isfinite(arr) & (arr > 0))].reshape(-1)[:3]
        raise ValueError(f"{fn}: {name} must be finite and > 0, got {bad.tolist()}")


def _check_params(params: DataConstrainedParams, fn: str) -> None:
    if not isinstance(params, DataConstrainedParams):
        raise TypeError(f"{fn}: params must be a DataConstrainedParams, got {type(params).__name__}")
    for name, value in params._asdict().items():
        if name == "E" and _is_concrete(value) and np.all(np.asarray(value) == 0):
            continue  # E = 0 (no irreducible loss) is a valid law; fits on small ranges can reach it
        _check_positive(f"params.{name}", value, fn)


def _float(*xs):
    """Arrays of the inputs' common float dtype (Python numbers: the default float, i.e. float64
    under ``jax.enable_x64``; integers are promoted to it)."""
    xs = [_number(x) for x in xs]
    return [jnp.asarray(x, _float_dtype(*xs)) for x in xs]


def _float_dtype(*xs):
    """The common float dtype of ``xs``, decided without converting them (a Python int such as 2.4e11
    tokens does not fit the int32 that ``jnp.asarray`` would make of it)."""
    def proxy(x):  # a float array of x's dtype, or a weakly typed Python number
        x = _number(x)
        if hasattr(x, "dtype"):
            return jnp.zeros((), jax.dtypes.canonicalize_dtype(x.dtype)) if np.issubdtype(x.dtype, np.floating) else 0
        if np.ndim(x):  # a (nested) list: its NumPy dtype
            k = np.asarray(x).dtype
            return jnp.zeros((), jax.dtypes.canonicalize_dtype(k)) if np.issubdtype(k, np.floating) else 0
        return 0.0 if isinstance(x, float) else 0

    dtype = jnp.result_type(*[proxy(x) for x in xs])
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.asarray(0.0).dtype
    return dtype


def effective_data(D: ArrayLike, U_D: ArrayLike, R_D_star: ArrayLike = PUBLISHED.R_D_star) -> jax.Array:
    """Effective data ``D' = U + U·R_D*·(1 − exp(−R_D/R_D*))`` (Eq. 5), ``U = min(U_D, D)``.

    ``R_D = D/U − 1`` are the repetitions beyond the first epoch. Limits: ``R_D = 0`` gives
    ``D' = D``; ``R_D → ∞`` gives ``D' → U·(1 + R_D*)``; ``R_D* → ∞`` gives ``D' = D``.

    Args:
      D: total training tokens, any shape, > 0.
      U_D: unique tokens, broadcastable with ``D``, > 0 (``D < U_D`` means less than one epoch).
      R_D_star: decay constant, > 0.

    Returns:
      ``D'`` with the broadcast shape (float32, or float64 under x64 for float64 inputs).
    """
    for name, v in (("D", D), ("U_D", U_D), ("R_D_star", R_D_star)):
        _check_positive(name, v, "effective_data")
    D, U_D, R_D_star = _float(D, U_D, R_D_star)
    U = jnp.minimum(U_D, D)
    R_D = jnp.maximum(D / U - 1.0, 0.0)
    return U + U * R_D_star * (-jnp.expm1(-R_D / R_D_star))


def compute_optimal_params_for_data(U_D: ArrayLike, params: DataConstrainedParams = PUBLISHED) -> jax.Array:
    """``U_N``: the Chinchilla compute-optimal parameter count whose optimal data is ``U_D``.

    Solving ``D_opt(C) = U_D`` for ``C`` and taking ``N_opt(C)``: ``U_N = G·(G·U_D)^{β/α}``.

    Args:
      U_D: unique tokens, any shape, > 0.
      params: the law's constants (uses ``A, B, alpha, beta``).

    Returns:
      ``U_N`` with the shape of ``U_D``.
    """
    _check_positive("U_D", U_D, "compute_optimal_params_for_data")
    (U_D,) = _float(U_D)
    G = _G(params)
    return G * (G * U_D) ** (params.beta / params.alpha)


def _G(params: DataConstrainedParams) -> jax.Array:
    return (params.alpha * params.A / (params.beta * params.B)) ** (1.0 / (params.alpha + params.beta))


def effective_params(
    N: ArrayLike, U_D: ArrayLike, params: DataConstrainedParams = PUBLISHED, D: ArrayLike | None = None
) -> jax.Array:
    """Effective parameters ``N' = U_N + U_N·R_N*·(1 − exp(−R_N/R_N*))`` (Eq. 5 for parameters).

    ``U_N = min(N, G·(G·U)^{β/α})`` is the compute-optimal size for the unique data ``U``
    (:func:`compute_optimal_params_for_data`) and ``R_N = N/U_N − 1`` the excess. ``U = U_D``, or
    ``min(U_D, D)`` when the total tokens ``D`` are given (a run shorter than an epoch).

    Args:
      N: parameters, any shape, > 0.
      U_D: unique tokens, broadcastable, > 0.
      params: the law's constants (``A, B, alpha, beta, R_N_star``).
      D: optional total tokens, broadcastable, > 0.

    Returns:
      ``N'`` with the broadcast shape; ``N' = N`` when ``N <= U_N``.
    """
    _check_positive("N", N, "effective_params")
    _check_positive("U_D", U_D, "effective_params")
    if D is not None:
        _check_positive("D", D, "effective_params")
        U_D = jnp.minimum(*_float(U_D, D))
    N, U_D = _float(N, U_D)
    U_N = jnp.minimum(N, compute_optimal_params_for_data(U_D, params))
    R_N = jnp.maximum(N / U_N - 1.0, 0.0)
    return U_N + U_N * params.R_N_star * (-jnp.expm1(-R_N / params.R_N_star))


def chinchilla_loss(N: ArrayLike, D: ArrayLike, params: DataConstrainedParams = PUBLISHED) -> jax.Array:
    """``L(N, D) = E + A/N^α + B/D^β`` (Eq. 2, unlimited unique data).

    Args:
      N: parameters, any shape, > 0; D: tokens, broadcastable, > 0.
      params: the law's constants.

    Returns:
      Loss with the broadcast shape.
    """
    _check_positive("N", N, "chinchilla_loss")
    _check_positive("D", D, "chinchilla_loss")
    N, D = _float(N, D)
    return params.E + params.A / N**params.alpha + params.B / D**params.beta


def data_constrained_loss(
    N: ArrayLike, D: ArrayLike, U_D: ArrayLike, params: DataConstrainedParams = PUBLISHED
) -> jax.Array:
    """``L(N, D, U_D) = E + A/N'^α + B/D'^β`` with ``N'``, ``D'`` from Eq. 5.

    Args:
      N: parameters, any shape, > 0.
      D: total training tokens (all epochs), broadcastable, > 0.
      U_D: unique tokens, broadcastable, > 0. ``D < U_D`` is valid (only ``D`` unique tokens are
        seen); ``U_D >= D`` gives the Chinchilla loss when ``N`` is not in excess.
      params: the law's constants; defaults to the paper's :data:`PUBLISHED` fit.

    Returns:
      Predicted final loss with the broadcast shape.

    Example::

        data_constrained_loss(6.34e9, 242e9, 25e9)   # 2.225644
    """
    fn = "data_constrained_loss"
    _check_params(params, fn)
    for name, v in (("N", N), ("D", D), ("U_D", U_D)):
        _check_positive(name, v, fn)
    D_eff = effective_data(D, U_D, params.R_D_star)
    N_eff = effective_params(N, U_D, params, D=D)
    return params.E + params.A / N_eff**params.alpha + params.B / D_eff**params.beta


def chinchilla_optimal(C: ArrayLike, params: DataConstrainedParams = PUBLISHED) -> tuple[jax.Array, jax.Array]:
    """Compute-optimal ``(N_opt, D_opt)`` for ``C = 6·N·D`` FLOPs (Chinchilla, Eq. 4).

    ``N_opt = G·(C/6)^{β/(α+β)}``, ``D_opt = G⁻¹·(C/6)^{α/(α+β)}``, ``G = (αA/(βB))^{1/(α+β)}``;
    ``6·N_opt·D_opt = C`` exactly.

    Args:
      C: compute in FLOPs, any shape, > 0.
      params: the law's constants (``A, B, alpha, beta``).

    Returns:
      ``(N_opt, D_opt)``, each with the shape of ``C``.
    """
    _check_positive("C", C, "chinchilla_optimal")
    (C,) = _float(C)
    G = _G(params)
    s = params.alpha + params.beta
    return G * (C / 6.0) ** (params.beta / s), (C / 6.0) ** (params.alpha / s) / G
