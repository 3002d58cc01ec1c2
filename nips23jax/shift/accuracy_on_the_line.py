"""Accuracy on the line: a probit-linear fit of out-of-distribution on in-distribution accuracy.

Across a family of models evaluated on a source (ID) and a shifted target (OOD) test set, Miller
et al. ("Accuracy on the Line", ICML 2021) observe, and the NeurIPS 2023 distribution-shift
tutorial restates, that

    Φ⁻¹(acc_OOD) ≈ a · Φ⁻¹(acc_ID) + b                                            (AoL)

with Φ⁻¹ the probit (inverse standard-normal CDF). For Gaussian classes ``x | y ~ N(y·μ, Σ)`` and
linear classifiers without bias, accuracy is ``Φ(wᵀμ / √(wᵀΣw))``; an OOD covariance ``c·Σ``
divides every probit by ``√c``, so the line is exact with slope ``1/√c`` and intercept 0.

:func:`accuracy_on_the_line` fits (AoL) by ordinary least squares in probit space, with per-model
Wilson binomial confidence intervals (when the test-set sizes are given) and a bootstrap band over
models; :func:`plot_accuracy_on_the_line` draws it on probit-scaled axes.
"""

from __future__ import annotations

import statistics
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nips23jax.core.compile import dual_jit
from nips23jax.core.train import as_key

__all__ = [
    "LineFit",
    "accuracy_on_the_line",
    "plot_accuracy_on_the_line",
    "probit",
    "wilson_interval",
]


class LineFit(NamedTuple):
    """The probit-space fit of :func:`accuracy_on_the_line` (``m`` models, ``k`` of them kept).

    Attributes:
      slope, intercept: ``a`` and ``b`` of (AoL), float scalars.
      r2: coefficient of determination of the fit in probit space.
      id_acc, ood_acc: ``(m,)`` the accuracies as given.
      kept: ``(m,)`` bool, False for models dropped because an accuracy is exactly 0 or 1.
      id_ci, ood_ci: ``(m, 2)`` Wilson intervals ``[lo, hi]`` per model, or None without test sizes.
      band_x: ``(g,)`` probit(ID) grid of the bootstrap band, or None without a key.
      band: ``(g, 2)`` pointwise ``[lo, hi]`` of the refitted line over the grid (probit units), or None.
      bootstrap_slope: ``(B,)`` slopes of the bootstrap refits (NaN for degenerate resamples), or None.
    """

    slope: float
    intercept: float
    r2: float
    id_acc: np.ndarray
    ood_acc: np.ndarray
    kept: np.ndarray
    id_ci: np.ndarray | None = None
    ood_ci: np.ndarray | None = None
    band_x: np.ndarray | None = None
    band: np.ndarray | None = None
    bootstrap_slope: np.ndarray | None = None

    def predict(self, id_acc: ArrayLike) -> np.ndarray:
        """OOD accuracy the line predicts for ID accuracy ``id_acc``: ``Φ(a·Φ⁻¹(id_acc) + b)``."""
        return np.vectorize(_NORMAL.cdf, otypes=[np.float64])(self.slope * probit(id_acc) + self.intercept)


def probit(p: ArrayLike) -> np.ndarray:
    """``Φ⁻¹(p)``, the inverse standard-normal CDF, elementwise, in float64 on the host.

    ``±inf`` at 1 and 0; accuracies such as ``1 − 1e-9`` keep a finite probit (float32 would round
    them to 1).
    """
    p = np.asarray(p, np.float64)
    if np.any(~((p >= 0) & (p <= 1))):
        raise ValueError(f"probit: p must lie in [0, 1], got {p[~((p >= 0) & (p <= 1))][:5].tolist()}")
    inner = (p > 0) & (p < 1)
    out = np.where(p >= 1, np.inf, -np.inf)
    out[inner] = [_NORMAL.inv_cdf(v) for v in p[inner].ravel()]
    return out


_NORMAL = statistics.NormalDist()


def wilson_interval(acc: ArrayLike, num: ArrayLike, *, level: float = 0.95) -> np.ndarray:
    """Wilson score interval for a binomial proportion (accuracy on ``num`` test examples).

    The interval is the set of ``p`` with ``|acc − p| ≤ z·√(p(1−p)/num)``, ``z = Φ⁻¹((1+level)/2)``:

        center = (acc + z²/2n) / (1 + z²/n),   half = z/(1 + z²/n) · √(acc(1−acc)/n + z²/4n²).

    Args:
      acc: ``(m,)`` observed accuracies in ``[0, 1]``.
      num: test-set size(s), scalar or ``(m,)``, positive.
      level: coverage, in ``(0, 1)``.

    Returns:
      ``(m, 2)`` float64 array of ``[lo, hi]``.
    """
    acc = np.asarray(acc, np.float64)
    ok = np.isfinite(acc) & (acc >= 0) & (acc <= 1)
    if not np.all(ok):
        raise ValueError(f"wilson_interval: acc must be accuracies in [0, 1], got {acc[~ok][:5].tolist() if acc.ndim else acc}")
    num = np.broadcast_to(np.asarray(num, np.float64), acc.shape)
    if not 0.0 < level < 1.0:
        raise ValueError(f"wilson_interval: level must be in (0, 1), got {level}")
    if np.any(~(num > 0)):
        raise ValueError(f"wilson_interval: num (test-set sizes) must be positive, got {num}")
    z = _NORMAL.inv_cdf((1.0 + level) / 2.0)
    z2n = z * z / num
    center = (acc + z2n / 2) / (1 + z2n)
    half = z / (1 + z2n) * np.sqrt(acc * (1 - acc) / num + z2n / (4 * num))
    return np.stack([np.clip(center - half, 0, 1), np.clip(center + half, 0, 1)], axis=-1)


def _ols(x: jax.Array, y: jax.Array, w: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Weighted OLS ``y ≈ a·x + b`` (weights = bootstrap multiplicities); NaN slope if x is constant."""
    sw = jnp.sum(w)
    mx, my = jnp.sum(w * x) / sw, jnp.sum(w * y) / sw
    sxx = jnp.sum(w * (x - mx) ** 2)
    sxy = jnp.sum(w * (x - mx) * (y - my))
    syy = jnp.sum(w * (y - my) ** 2)
    slope = jnp.where(sxx > 0, sxy / jnp.where(sxx > 0, sxx, 1.0), jnp.nan)
    intercept = my - slope * mx
    r2 = jnp.where(syy > 0, 1.0 - jnp.sum(w * (y - slope * x - intercept) ** 2) / jnp.where(syy > 0, syy, 1.0), 1.0)
    return slope, intercept, r2


def _bootstrap_lines(key: jax.Array, x: jax.Array, y: jax.Array, num_bootstrap: int) -> tuple[jax.Array, jax.Array]:
    """Slopes and intercepts ``(B,)`` of OLS refits on models resampled with replacement (vmapped).

    One compiled program; on a CPU compiled at XLA's fastest level unless the work is large (it runs
    once, on a few models, and compiling dominates its cost)."""
    return _BOOTSTRAP_LINES.at(num_bootstrap * x.shape[0] ** 2)(key, x, y, num_bootstrap)


def _bootstrap_lines_impl(key, x, y, num_bootstrap):
    k = x.shape[0]
    idx = jax.random.randint(key, (num_bootstrap, k), 0, k)
    counts = jax.vmap(lambda i: jnp.zeros(k).at[i].add(1.0))(idx)
    slopes, intercepts, _ = jax.vmap(_ols, in_axes=(None, None, 0))(x, y, counts)
    return slopes, intercepts


_BOOTSTRAP_LINES = dual_jit(_bootstrap_lines_impl, static_argnums=3)


def _check_acc(name: str, acc: ArrayLike) -> np.ndarray:
    a = np.asarray(acc, np.float64)
    if a.ndim != 1:
        raise ValueError(f"accuracy_on_the_line: {name} must be a 1-D array of accuracies, got shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any((a < 0) | (a > 1)):
        bad = a[~(np.isfinite(a) & (a >= 0) & (a <= 1))]
        raise ValueError(f"accuracy_on_the_line: {name} must lie in [0, 1]; got {bad[:5].tolist()}")
    return a


def accuracy_on_the_line(
    id_acc: ArrayLike,
    ood_acc: ArrayLike,
    *,
    num_id: ArrayLike | None = None,
    num_ood: ArrayLike | None = None,
    key: jax.Array | int | None = None,
    num_bootstrap: int = 1000,
    level: float = 0.95,
    grid_size: int = 50,
) -> LineFit:
    """Fits ``Φ⁻¹(ood_acc) = slope · Φ⁻¹(id_acc) + intercept`` across models (eq. AoL).

    Models with an accuracy of exactly 0 or 1 (infinite probit) are dropped with a warning.

    Args:
      id_acc: ``(m,)`` in-distribution accuracies, one per model, in ``[0, 1]``.
      ood_acc: ``(m,)`` out-of-distribution accuracies of the same models.
      num_id, num_ood: ID / OOD test-set sizes (scalar or ``(m,)``): adds Wilson intervals per model.
      key: PRNG key (typed, raw or int) for the bootstrap band; ``None`` skips it.
      num_bootstrap: resamples of the models (with replacement) for the band; vmapped.
      level: coverage of the intervals and of the band.
      grid_size: points of the band's probit(ID) grid (spanning the kept models).

    Returns:
      A :class:`LineFit`.

    Raises:
      ValueError: accuracies outside ``[0, 1]`` or NaN, mismatched lengths, or fewer than 3 models
        left to fit.

    Example::

        fit = accuracy_on_the_line([0.7, 0.8, 0.9], [0.6, 0.7, 0.8], key=jax.random.key(0))
        fit.slope, fit.intercept, fit.r2
    """
    ida, ooda = _check_acc("id_acc", id_acc), _check_acc("ood_acc", ood_acc)
    if ida.shape != ooda.shape:
        raise ValueError(
            f"accuracy_on_the_line: id_acc and ood_acc need one entry per model; got {ida.shape[0]} and {ooda.shape[0]}"
        )
    if ida.shape[0] < 3:
        raise ValueError(f"accuracy_on_the_line: needs at least 3 models to fit a line, got {ida.shape[0]}")
    kept = (ida > 0) & (ida < 1) & (ooda > 0) & (ooda < 1)
    if not kept.all():
        warnings.warn(
            f"accuracy_on_the_line: excluding {int((~kept).sum())} model(s) with an accuracy of exactly 0 or 1 "
            f"(infinite probit): indices {np.flatnonzero(~kept).tolist()}",
            UserWarning,
            stacklevel=2,
        )
    if kept.sum() < 3:
        raise ValueError(
            f"accuracy_on_the_line: needs at least 3 models with accuracies strictly inside (0, 1), got {int(kept.sum())}"
        )
    x, y = probit(ida[kept]), probit(ooda[kept])
    xc, yc = x - x.mean(), y - y.mean()
    if not xc @ xc > 0:
        raise ValueError(f"accuracy_on_the_line: id_acc has no spread across the {x.size} kept models (all "
                         f"{float(ida[kept][0])}): the line's slope is undefined")
    slope = float(xc @ yc / (xc @ xc))
    intercept = float(y.mean() - slope * x.mean())
    r2 = float(1.0 - np.sum((y - slope * x - intercept) ** 2) / (yc @ yc)) if yc @ yc > 0 else 1.0

    id_ci = None if num_id is None else wilson_interval(ida, num_id, level=level)
    ood_ci = None if num_ood is None else wilson_interval(ooda, num_ood, level=level)

    band_x = band = boot_slope = None
    if key is not None:
        if num_bootstrap < 2:
            raise ValueError(f"accuracy_on_the_line: num_bootstrap must be >= 2, got {num_bootstrap}")
        slopes, intercepts = _bootstrap_lines(as_key(key), jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32),
                                              num_bootstrap)
        band_x = np.linspace(float(x.min()), float(x.max()), grid_size)
        lines = np.asarray(slopes)[:, None] * band_x[None, :] + np.asarray(intercepts)[:, None]
        q = [(1 - level) / 2, (1 + level) / 2]
        band = np.nanquantile(lines, q, axis=0).T
        boot_slope = np.asarray(slopes, np.float64)
    return LineFit(slope, intercept, r2, ida, ooda, kept, id_ci, ood_ci, band_x, band, boot_slope)


def plot_accuracy_on_the_line(
    fit: LineFit, ax: Any = None, *, label: str | None = None, color: str = "C0", diagonal: bool = True
) -> Any:
    """Draws the models, their intervals, the fitted line and its band on probit-scaled axes.

    Coordinates are probits; ticks are labelled in accuracy, as in Miller et al.'s figures.

    Args:
      fit: from :func:`accuracy_on_the_line`.
      ax: a matplotlib ``Axes`` (a new ``Figure`` with the Agg canvas if None).
      label: legend label for the models.
      color: color of the points, line and band.
      diagonal: also draw ``y = x`` (no shift).

    Returns:
      The ``Axes``.
    """
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(5, 5)).subplots()
    k = fit.kept
    px, py = np.asarray(probit(fit.id_acc[k])), np.asarray(probit(fit.ood_acc[k]))
    xerr = yerr = None
    if fit.id_ci is not None:
        lo, hi = np.asarray(probit(np.clip(fit.id_ci[k], 1e-6, 1 - 1e-6))).T
        xerr = np.stack([px - lo, hi - px])
    if fit.ood_ci is not None:
        lo, hi = np.asarray(probit(np.clip(fit.ood_ci[k], 1e-6, 1 - 1e-6))).T
        yerr = np.stack([py - lo, hi - py])
    ax.errorbar(px, py, xerr=xerr, yerr=yerr, fmt="o", ms=4, color=color, alpha=0.8, lw=0.8,
                label=f"{label or 'models'} (R² {fit.r2:.3f})")
    xs = np.linspace(px.min(), px.max(), 50) if fit.band_x is None else fit.band_x
    ax.plot(xs, fit.slope * xs + fit.intercept, color=color, lw=1.5,
            label=f"probit fit: slope {fit.slope:.2f}, intercept {fit.intercept:.2f}")
    if fit.band is not None:
        ax.fill_between(fit.band_x, fit.band[:, 0], fit.band[:, 1], color=color, alpha=0.2)
    lo = min(px.min(), py.min()) - 0.2
    hi = max(px.max(), py.max()) + 0.2
    if diagonal:
        ax.plot([lo, hi], [lo, hi], ls="--", color="gray", lw=1, label="y = x")
    ticks = np.array([0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.999])
    pt = np.asarray(probit(ticks))
    keep = (pt >= lo) & (pt <= hi)
    for setter in (ax.set_xticks, ax.set_yticks):
        setter(pt[keep], [f"{t:g}" for t in ticks[keep]])
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="ID accuracy (probit scale)", ylabel="OOD accuracy (probit scale)")
    ax.legend(fontsize=8)
    return ax
