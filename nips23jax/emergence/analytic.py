"""The paper's analytic model of "emergence", BIG-bench's emergence score, and test-set resolution.

Schaeffer, Miranda & Koyejo (NeurIPS 2023), Sec. 2: suppose the per-token cross-entropy of a model
family falls as a power law in the parameter count ``N`` (Eq. 1),

    L_CE(N) = (N / c)^alpha,      alpha < 0,

so the probability of emitting a correct token is ``p(N) = exp(-L_CE(N))`` (Eq. 2), smooth in
``log N``. Scoring a length-``L`` answer with a *nonlinear* metric, exact match, gives (Eq. 3)

    Accuracy(N) ~= p(N)^L = exp(-L (N/c)^alpha),

a geometric function of ``p`` that stays near 0 and then shoots up: an apparently "emergent"
ability. A *linear* metric such as token edit distance gives (Eq. 4)

    Token edit distance(N) ~= L (1 - p(N)),

a smooth, predictable curve. Sec. 3 adds the resolution argument: a test set of ``M`` items cannot
tell accuracies below about ``1/M`` from zero, so small models read as exactly 0 until the test set
is enlarged (their Fig. 4).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = [
    "analytic_edit_distance",
    "analytic_exact_match",
    "emergence_score",
    "items_to_resolve",
    "power_law_cross_entropy",
    "resolution",
    "token_probability",
]


def _positive(where: str, name: str, x: ArrayLike) -> jax.Array:
    arr = jnp.asarray(x, dtype=jnp.result_type(float))
    try:
        host = np.asarray(arr)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return arr
    if np.any(~(host > 0)):
        raise ValueError(f"{where}: {name} must be > 0 (and not NaN), got {host.ravel()[~(host.ravel() > 0)][:3]}")
    return arr


def power_law_cross_entropy(num_params: ArrayLike, c: ArrayLike, alpha: ArrayLike) -> jax.Array:
    """Per-token cross-entropy as a power law in parameters, ``L_CE(N) = (N / c)^alpha`` (Eq. 1).

    Args:
      num_params: ``N``, any shape, > 0.
      c: scale constant, > 0.
      alpha: exponent; the paper's regime is ``alpha < 0`` (loss falls with ``N``).

    Returns:
      ``L_CE`` with the broadcast shape of the arguments (nats per token).
    """
    n = _positive("power_law_cross_entropy", "num_params", num_params)
    c = _positive("power_law_cross_entropy", "c", c)
    return (n / c) ** jnp.asarray(alpha, n.dtype)


def token_probability(cross_entropy: ArrayLike) -> jax.Array:
    """Probability of a correct token from the per-token cross-entropy, ``p = exp(-L_CE)`` (Eq. 2)."""
    return jnp.exp(-jnp.asarray(cross_entropy, jnp.result_type(float)))


def _length(where: str, length) -> int | jax.Array:
    if isinstance(length, jax.core.Tracer):
        return length
    arr = np.asarray(length)
    if arr.size and (not np.issubdtype(arr.dtype, np.number) or np.any(~np.isfinite(arr)) or np.any(arr < 0)):
        raise ValueError(f"{where}: length must be finite and >= 0 tokens, got {length!r}")
    return length


def _probability(where: str, p) -> jax.Array:
    p = jnp.asarray(p, jnp.result_type(float))
    if not isinstance(p, jax.core.Tracer):
        a = np.asarray(p)
        if not np.all((a >= 0) & (a <= 1)):
            bad = a[~((a >= 0) & (a <= 1))][:3] if a.ndim else a
            raise ValueError(f"{where}: p must be a per-token accuracy in [0, 1], got {bad}")
    return p


def analytic_exact_match(p: ArrayLike, length: ArrayLike) -> jax.Array:
    """Expected exact match of a ``length``-token answer with independent per-token accuracy ``p``: ``p^L`` (Eq. 3).

    Args:
      p: per-token probability of a correct token in ``[0, 1]``.
      length: answer length ``L`` (tokens).

    Returns:
      ``p ** L`` (broadcast).
    """
    return _probability("analytic_exact_match", p) ** _length("analytic_exact_match", length)


def analytic_edit_distance(p: ArrayLike, length: ArrayLike) -> jax.Array:
    """Expected token edit distance of a ``length``-token answer with per-token accuracy ``p``: ``L (1 - p)`` (Eq. 4).

    This is the expected number of wrong tokens (the Hamming distance); the edit distance is at
    most that, and equal to it to first order in ``1 - p`` (an alignment can only save edits when
    at least two errors line up).

    Returns:
      ``L * (1 - p)`` (broadcast).
    """
    return _length("analytic_edit_distance", length) * (1.0 - _probability("analytic_edit_distance", p))


def emergence_score(values: ArrayLike, scales: ArrayLike | None = None) -> jax.Array:
    """BIG-bench's emergence score of a metric measured across model scales (Srivastava et al., 2022).

    With the points sorted by scale (``y_1 .. y_n``)::

        score = sign(argmax_i y_i - argmin_i y_i) * (max y - min y) / sqrt(median_i (y_i - y_{i-1})^2)

    Large when the whole change happens in one or two jumps (the median step is small), about
    ``n - 1`` for a straight line; the sign says whether the metric rises or falls with scale. A
    perfectly flat-then-jump curve (median step exactly 0) gives ``±inf``, a constant curve 0.

    Args:
      values: ``(..., n)`` metric values, ``n >= 3`` so that the median step is defined by a
        majority of steps (batch axes in front are scored independently).
      scales: ``(n,)`` model scales (e.g. parameter counts) used to sort the points; ``None``
        means the points are already in order of scale.

    Returns:
      ``(...)`` scores.
    """
    y = jnp.asarray(values, jnp.result_type(float))
    if y.ndim < 1 or y.shape[-1] < 3:
        raise ValueError(f"emergence_score: values must have >= 3 points on the last axis, got shape {y.shape}")
    if scales is not None:
        s = np.asarray(scales)
        if s.shape != (y.shape[-1],):
            raise ValueError(f"emergence_score: scales must have shape ({y.shape[-1]},), got {s.shape}")
        y = y[..., np.argsort(s, kind="stable")]
    return _emergence_score(y)


@jax.jit
def _emergence_score(y: jax.Array) -> jax.Array:
    steps2 = jnp.diff(y, axis=-1) ** 2
    med = jnp.median(steps2, axis=-1)
    span = y.max(-1) - y.min(-1)
    sign = jnp.sign(jnp.argmax(y, -1) - jnp.argmin(y, -1)).astype(y.dtype)
    safe = jnp.where(med > 0, med, 1.0)
    return jnp.where(span == 0, 0.0, jnp.where(med > 0, sign * span / jnp.sqrt(safe), sign * jnp.inf))


def resolution(num_items: ArrayLike, length: ArrayLike = 1) -> jax.Array:
    """The smallest nonzero rate a test set can show: ``1 / (M L)`` for ``M`` items of ``L`` tokens.

    With ``length=1`` this is the accuracy resolution ``1/M``: an accuracy below it usually reads as
    exactly 0. With the answer length it is the resolution of a per-token error rate (Sec. 3).
    """
    m = _positive("resolution", "num_items", num_items)
    return 1.0 / (m * _positive("resolution", "length", length))


def items_to_resolve(accuracy: ArrayLike, confidence: float = 0.95, min_correct: int = 1) -> jax.Array:
    """Test-set size ``M`` at which an accuracy ``a`` shows at least ``min_correct`` correct items with probability ``confidence``.

    ``M = min {m : P(Binomial(m, a) >= k) >= confidence}``; for ``k = 1`` in closed form
    ``M = ceil(log(1 - confidence) / log(1 - a))`` (about ``3/a`` at 95%). This is how many test
    items resolve a given accuracy from zero (the paper's Fig. 4 argument).

    Args:
      accuracy: true accuracy ``a`` in ``(0, 1]``, any shape.
      confidence: probability in ``(0, 1)``.
      min_correct: ``k >= 1``.

    Returns:
      int64 NumPy array of test-set sizes (host computation; the search needs concrete values).
    """
    a = np.asarray(accuracy, np.float64)
    if np.any(~((a > 0) & (a <= 1))):
        raise ValueError(f"items_to_resolve: accuracy must be in (0, 1], got {a.ravel()[~((a.ravel() > 0) & (a.ravel() <= 1))][:3]}")
    if not 0 < confidence < 1:
        raise ValueError(f"items_to_resolve: confidence must be in (0, 1), got {confidence!r}")
    if not isinstance(min_correct, (int, np.integer)) or min_correct < 1:
        raise ValueError(f"items_to_resolve: min_correct must be an int >= 1, got {min_correct!r}")
    with np.errstate(divide="ignore", over="ignore"):  # a -> 0 gives inf items, rejected below
        first = np.where(a >= 1, 1.0, np.ceil(np.log1p(-confidence) / np.log1p(-np.minimum(a, 1 - 1e-300))))
    if np.any(first > 2.0**62):
        raise ValueError(f"items_to_resolve: accuracy {a.min():.3g} needs more than 4.6e18 items (beyond int64)")
    if min_correct == 1:
        return np.maximum(first, 1).astype(np.int64)
    from scipy.stats import binom  # scipy ships with jax

    out = np.empty(a.shape, np.int64)
    for idx, ai in np.ndenumerate(a):
        lo, hi = int(min_correct), int(max(first[idx], min_correct))
        while binom.sf(min_correct - 1, hi, ai) < confidence:
            hi *= 2
        while lo < hi:  # smallest m with P(X >= k) >= confidence (monotone in m)
            mid = (lo + hi) // 2
            if binom.sf(min_correct - 1, mid, ai) >= confidence:
                hi = mid
            else:
                lo = mid + 1
        out[idx] = lo
    return out
