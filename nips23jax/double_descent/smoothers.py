"""Linear-regression smoothers: min-norm least squares, ridge, kernel ridge, PCA-then-OLS.

Each function returns the smoother rows ``S`` (``(m, n)``) of the query inputs, so that the fitted
model's predictions are ``S @ y`` (:func:`~nips23jax.double_descent.smoother_predict`) and its
effective parameters are :func:`~nips23jax.double_descent.effective_parameters` ``(S)``.

With the thin SVD of the training features ``Φ = U diag(σ) Vᵀ`` (``Φ`` is ``(n, P)``), every
linear fit of ``y`` on ``Φ`` is a spectral filter ``β = V diag(f(σ)) Uᵀ y``, so

    ŝ(x)ᵀ = φ(x)ᵀ V diag(f(σ)) Uᵀ,

with ``f(σ) = 1/σ`` for min-norm least squares (``pinv(Φ)``; Curth et al. Sec. 4.1),
``f(σ) = σ/(σ² + λ)`` for ridge, and ``f(σ) = 1/σ`` on the top ``k`` singular directions only for
PCA-then-OLS: project the raw features on their first ``k`` (uncentred) principal components
``z = Vₖᵀ φ`` and regress by OLS. With ``k = rank(Φ)`` this is the min-norm fit, which is why the
paper "unfolds" the RFF axis past ``P = n`` into principal components ``P^PC ≤ n`` and excess raw
features ``P^ex`` (Sec. 3.2).
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "gaussian_kernel",
    "kernel_pca_ols_smoother",
    "kernel_ridge_smoother",
    "least_squares_smoother",
    "pca_ols_smoother",
]


def _features(phi_train: ArrayLike, phi_query: ArrayLike, fn: str) -> tuple[jax.Array, jax.Array]:
    a, b = jnp.asarray(phi_train), jnp.asarray(phi_query)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{fn}: phi_train must be a non-empty (n, P) feature matrix, got shape {a.shape}")
    if b.ndim != 2:
        raise ValueError(f"{fn}: phi_query must be an (m, P) feature matrix, got shape {b.shape}")
    if b.shape[1] != a.shape[1]:
        raise ValueError(
            f"{fn}: phi_query has {b.shape[1]} features but phi_train has {a.shape[1]}; they must match"
        )
    dtype = jnp.result_type(a.dtype, b.dtype, float)
    return a.astype(dtype), b.astype(dtype)


def _check_scalar(value, name: str, fn: str, *, positive: bool = False) -> None:
    if isinstance(value, jax.core.Tracer):
        return
    v = float(value)
    if not (v > 0 if positive else v >= 0) or v != v:
        raise ValueError(f"{fn}: {name} must be {'> 0' if positive else '>= 0'}, got {value!r}")


def _eigh_ranked(m):
    """Eigenvalues of a PSD matrix (ascending, clamped at 0), its eigenvectors, and each one's rank from the top."""
    lam, vecs = jnp.linalg.eigh(m)
    lam = jnp.maximum(lam, 0.0)
    return lam, vecs, lam.shape[0] - 1 - jnp.arange(lam.shape[0])


def _spectral_smoother(phi_train, phi_query, coef_fn):
    """``φ_q V diag(f(σ)) Uᵀ`` from the eigendecomposition of the smaller Gram matrix.

    ``coef_fn(λ, rank_from_top) -> f(σ)/σ`` with ``λ = σ²`` (eigenvalues of ``ΦΦᵀ`` or ``ΦᵀΦ``).
    An eigendecomposition of an ``min(n, P)``-square Gram matrix is several times faster than an
    SVD of ``Φ`` on CPU; it resolves singular values down to about ``sqrt(eps)·σ_max``.
    """
    n, p = phi_train.shape
    gram = phi_train @ phi_train.T if p >= n else phi_train.T @ phi_train
    lam, vecs, rank_from_top = _eigh_ranked(gram)
    coef = coef_fn(lam, rank_from_top)
    if p >= n:  # vecs = U: S = φ_q Φᵀ U diag(f/σ) Uᵀ
        return ((phi_query @ phi_train.T @ vecs) * coef) @ vecs.T
    return ((phi_query @ vecs) * coef) @ (phi_train @ vecs).T  # vecs = V, ΦV = UΣ


def _gram_spectral(k_train, k_query, coef_fn):
    """``K_q U diag(c) Uᵀ`` with ``K = U diag(λ) Uᵀ`` and ``c = coef_fn(λ, rank_from_top)``."""
    lam, vecs, rank_from_top = _eigh_ranked(k_train)
    return ((k_query @ vecs) * coef_fn(lam, rank_from_top)) @ vecs.T


def _inverse_on(keep, lam):
    return jnp.where(keep, 1.0 / jnp.where(keep, lam, 1.0), 0.0)


def _default_rtol(phi_train: jax.Array) -> float:
    # the Gram matrix's eigenvalues are accurate to about eps·λ_max, i.e. σ to sqrt(eps·max(n, P))·σ_max
    return float(jnp.sqrt(jnp.finfo(phi_train.dtype).eps * max(phi_train.shape)))


@jax.jit
def _min_norm(phi_train, phi_query, rtol, ridge):
    def coef(lam, _):
        keep = lam > (rtol**2) * lam[-1]
        return jnp.where(ridge > 0, 1.0 / (lam + jnp.where(ridge > 0, ridge, 1.0)), _inverse_on(keep, lam))

    return _spectral_smoother(phi_train, phi_query, coef)


def least_squares_smoother(
    phi_train: ArrayLike, phi_query: ArrayLike, *, ridge: float = 0.0, rtol: float | None = None
) -> jax.Array:
    """Smoother rows of least squares on features: min-norm (``ridge=0``) or ridge.

    ``ridge=0``: ``ŝ(x)ᵀ = φ(x)ᵀ pinv(Φ)`` (the min-norm solution ``β = pinv(Φ) y``, which is OLS
    for ``P ≤ n`` and the min-norm interpolator for ``P ≥ n``; Curth et al. Sec. 4.1).
    ``ridge=λ>0``: ``ŝ(x)ᵀ = φ(x)ᵀ (ΦᵀΦ + λI)⁻¹ Φᵀ``.

    Args:
      phi_train: ``(n, P)`` training features ``Φ``.
      phi_query: ``(m, P)`` features of the inputs to predict at.
      ridge: ``λ ≥ 0``.
      rtol: for ``ridge=0``, singular values below ``rtol·σ_max`` count as zero (as ``numpy.linalg.pinv``'s
        ``rcond``); default ``sqrt(eps·max(n, P))`` of the dtype, the resolution of the Gram
        eigendecomposition used (use float64 near the interpolation threshold ``P = n``).

    Returns:
      ``(m, n)`` smoother rows.
    """
    fn = "least_squares_smoother"
    a, b = _features(phi_train, phi_query, fn)
    _check_scalar(ridge, "ridge", fn)
    rtol = _default_rtol(a) if rtol is None else rtol
    _check_scalar(rtol, "rtol", fn)
    return _min_norm(a, b, jnp.asarray(rtol, a.dtype), jnp.asarray(ridge, a.dtype))


@jax.jit
def _truncated(phi_train, phi_query, num_components, rtol):
    def coef(lam, rank_from_top):
        return _inverse_on((rank_from_top < num_components) & (lam > (rtol**2) * lam[-1]), lam)

    return _spectral_smoother(phi_train, phi_query, coef)


def pca_ols_smoother(
    phi_train: ArrayLike, phi_query: ArrayLike, num_components: int, *, rtol: float | None = None
) -> jax.Array:
    """Smoother rows of PCA-then-OLS: OLS on the first ``k`` principal components of the features.

    The components are the top-``k`` right singular vectors ``Vₖ`` of the (uncentred) training
    features; the regression ``z = Vₖᵀ φ → y`` is OLS, so ``ŝ(x)ᵀ = φ(x)ᵀ Vₖ diag(1/σₖ) Uₖᵀ``.
    This is the paper's unfolding of RFF regression (Sec. 3.2): ``P^PC = k`` principal-component
    parameters built from ``P^ex = P`` raw features; ``k = min(n, P)`` recovers the min-norm fit.

    Args:
      phi_train: ``(n, P)`` training features.
      phi_query: ``(m, P)`` query features.
      num_components: ``k``, ``1 ≤ k ≤ min(n, P)``.
      rtol: singular values below ``rtol·σ_max`` are dropped even within the top ``k``.

    Returns:
      ``(m, n)`` smoother rows.
    """
    fn = "pca_ols_smoother"
    a, b = _features(phi_train, phi_query, fn)
    if isinstance(num_components, bool) or not isinstance(num_components, (int, np.integer)):
        raise TypeError(f"{fn}: num_components must be an int, got {type(num_components).__name__}")
    if not 1 <= num_components <= min(a.shape):
        raise ValueError(f"{fn}: num_components must be in [1, min(n, P) = {min(a.shape)}], got {num_components}")
    rtol = _default_rtol(a) if rtol is None else rtol
    _check_scalar(rtol, "rtol", fn)
    return _truncated(a, b, int(num_components), jnp.asarray(rtol, a.dtype))


def gaussian_kernel(x: ArrayLike, z: ArrayLike, bandwidth: float) -> jax.Array:
    """``k(x, z) = exp(−‖x − z‖² / (2 h²))``, the kernel random Fourier features approximate.

    Args:
      x: ``(m, d)``.
      z: ``(n, d)``.
      bandwidth: ``h > 0``.

    Returns:
      ``(m, n)`` kernel matrix.
    """
    x, z = jnp.asarray(x), jnp.asarray(z)
    if x.ndim != 2 or z.ndim != 2 or x.shape[1] != z.shape[1]:
        raise ValueError(f"gaussian_kernel: x and z must be (m, d) and (n, d) with equal d, got {x.shape}, {z.shape}")
    _check_scalar(bandwidth, "bandwidth", "gaussian_kernel", positive=True)
    dtype = jnp.result_type(x.dtype, z.dtype, float)
    return _gaussian(x.astype(dtype), z.astype(dtype), jnp.asarray(bandwidth, dtype))


@jax.jit
def _gaussian(x, z, bandwidth):
    sq = jnp.sum(x**2, 1)[:, None] + jnp.sum(z**2, 1)[None, :] - 2 * x @ z.T
    return jnp.exp(-jnp.maximum(sq, 0.0) / (2 * bandwidth**2))


@jax.jit
def _krr(k_train, k_query, ridge):
    n = k_train.shape[0]
    return jnp.linalg.solve(k_train + ridge * jnp.eye(n, dtype=k_train.dtype), k_query.T).T


@jax.jit
def _kernel_min_norm(k_train, k_query, rtol):
    return _gram_spectral(k_train, k_query, lambda lam, _: _inverse_on(lam > rtol * lam[-1], lam))


@jax.jit
def _kernel_pca(k_train, k_query, num_components, rtol):
    """Stacked smoothers, one per entry of ``num_components`` (``(c,)`` ints), from one eigendecomposition."""
    lam, vecs, rank_from_top = _eigh_ranked(k_train)
    projected = k_query @ vecs

    def one(k):
        return (projected * _inverse_on((rank_from_top < k) & (lam > rtol * lam[-1]), lam)) @ vecs.T

    return jax.lax.map(one, num_components)


def _kernels(k_train, k_query, fn):
    a, b = jnp.asarray(k_train), jnp.asarray(k_query)
    if a.ndim != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
        raise ValueError(f"{fn}: k_train must be a square (n, n) kernel matrix, got shape {a.shape}")
    if b.ndim != 2 or b.shape[1] != a.shape[0]:
        raise ValueError(f"{fn}: k_query must have shape (m, n) with n = {a.shape[0]}, got shape {b.shape}")
    dtype = jnp.result_type(a.dtype, b.dtype, float)
    return a.astype(dtype), b.astype(dtype)


def kernel_ridge_smoother(
    k_train: ArrayLike, k_query: ArrayLike, *, ridge: float, rtol: float | None = None
) -> jax.Array:
    """Smoother rows of kernel ridge regression: ``ŝ(x)ᵀ = k(x, X) (K + λI)⁻¹``.

    Kernel ridge minimizes ``‖y − f(X)‖² + λ‖f‖²_H``; its fit is ``f(x) = k(x, X)(K + λI)⁻¹ y``
    (scikit-learn's ``KernelRidge(alpha=λ)``). ``ridge=0`` gives the min-norm interpolant
    ``k(x, X) pinv(K)``; with the linear kernel of features, ``K = ΦΦᵀ``, that is min-norm least
    squares on the features (:func:`least_squares_smoother`), for any number of features.

    Args:
      k_train: ``(n, n)`` kernel matrix ``K`` of the training inputs (symmetric PSD).
      k_query: ``(m, n)`` kernel between query and training inputs.
      ridge: ``λ ≥ 0``.
      rtol: for ``ridge=0``, eigenvalues of ``K`` below ``rtol·λ_max`` count as zero; default
        ``eps·n`` of the dtype.

    Returns:
      ``(m, n)`` smoother rows.
    """
    fn = "kernel_ridge_smoother"
    a, b = _kernels(k_train, k_query, fn)
    _check_scalar(ridge, "ridge", fn)
    if isinstance(ridge, jax.core.Tracer) or float(ridge) > 0:
        return _krr(a, b, jnp.asarray(ridge, a.dtype))
    rtol = float(jnp.finfo(a.dtype).eps) * a.shape[0] if rtol is None else rtol
    _check_scalar(rtol, "rtol", fn)
    return _kernel_min_norm(a, b, jnp.asarray(rtol, a.dtype))


def kernel_pca_ols_smoother(
    k_train: ArrayLike, k_query: ArrayLike, num_components: int | Sequence[int], *, rtol: float | None = None
) -> jax.Array:
    """PCA-then-OLS from kernel matrices: ``ŝ(x)ᵀ = k(x, X) Uₖ diag(1/λₖ) Uₖᵀ`` (``K = U diag(λ) Uᵀ``).

    With ``K = ΦΦᵀ`` this equals :func:`pca_ols_smoother` on the features (``Φᵀ Uₖ = Vₖ Σₖ``), so a
    sweep over nested feature sets only needs the running Gram matrices (the unfolded RFF axis of
    Curth et al., Sec. 3.2, at the cost of ``n × n`` eigendecompositions).

    Args:
      k_train: ``(n, n)`` PSD kernel (Gram) matrix.
      k_query: ``(m, n)``.
      num_components: ``k``, ``1 ≤ k ≤ n``; or a sequence of them (a path along the PC axis from a
        single eigendecomposition).
      rtol: eigenvalues below ``rtol·λ_max`` are dropped even within the top ``k`` (default ``eps·n``).

    Returns:
      ``(m, n)`` smoother rows; ``(len(num_components), m, n)`` for a sequence.
    """
    fn = "kernel_pca_ols_smoother"
    a, b = _kernels(k_train, k_query, fn)
    many = isinstance(num_components, (list, tuple, np.ndarray))
    ks = list(np.ravel(num_components)) if many else [num_components]
    for k in ks:
        if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"{fn}: num_components must be an int or a sequence of ints, got {k!r}")
        if not 1 <= k <= a.shape[0]:
            raise ValueError(f"{fn}: num_components must be in [1, n = {a.shape[0]}], got {k}")
    if not ks:
        raise ValueError(f"{fn}: num_components is an empty sequence")
    rtol = float(jnp.finfo(a.dtype).eps) * a.shape[0] if rtol is None else rtol
    _check_scalar(rtol, "rtol", fn)
    out = _kernel_pca(a, b, jnp.asarray(ks, jnp.int32), jnp.asarray(rtol, a.dtype))
    return out if many else out[0]
