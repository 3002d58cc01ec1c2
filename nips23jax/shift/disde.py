"""DISDE: decomposing a performance change into X-shift and Y|X-shift (Cai, Namkoong & Yadlowsky).

A model's per-example performance ``R`` (correctness, or a loss) changes from source ``P`` to
target ``Q``. With the *shared* covariate distribution ``S``, ``s(x) ∝ p(x)q(x)/(p(x)+q(x))``
(mass where both domains have support), the change telescopes into three terms:

    E_Q[R_Q] − E_P[R_P] = (E_S[R_P] − E_P[R_P])      X-shift, P → S
                        + (E_S[R_Q] − E_S[R_P])      Y|X-shift, on S
                        + (E_Q[R_Q] − E_S[R_Q])      X-shift, S → Q                 (DISDE)

``E_S[R_P]`` reweights source examples by ``s/p ∝ q/(p+q)``, ``E_S[R_Q]`` target examples by
``s/q ∝ p/(p+q)``. Both come from one domain classifier ``π(x) = P(target | x)`` fitted on the
pooled inputs (target share ``a``):

    w = [T·a(1−π) + (1−T)(1−a)π] / [a(1−π) + (1−a)π]                                (W)

which is ``q/(p+q)`` for a source example (``T = 0``) and ``p/(p+q)`` for a target one when π is
calibrated. Each S-term is a self-normalized weighted mean, so the three terms sum to the total
exactly (up to float rounding). The WhyShift benchmark reports the Y|X share
``(E_S[R_P] − E_S[R_Q]) / (E_P[R_P] − E_Q[R_Q])`` = ``y_given_x / total``.

The overlap ``E_P[q/(p+q)] + E_Q[p/(p+q)] = 2∫pq/(p+q)`` lies in ``[0, 1]``: 1 when ``P = Q``, 0 when
the domains are disjoint (S empty: :func:`disde` warns instead of returning meaningless terms silently).
"""

from __future__ import annotations

import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nips23jax.core.train import as_key
from nips23jax.shift.domain_classifier import ClassifierSpec, _cross_fit, fold_ids

__all__ = [
    "DisdeResult",
    "DisdeTerms",
    "EmptySharedRegionWarning",
    "disde",
    "disde_terms",
    "shared_region_weights",
]


class EmptySharedRegionWarning(UserWarning):
    """The domain classifier separates source and target: the shared region S is (nearly) empty."""


class DisdeTerms(NamedTuple):
    """The decomposition (DISDE); every field a scalar (or ``(B,)`` for bootstrap replicates).

    Attributes:
      total: ``E_Q[R_Q] − E_P[R_P]``.
      x_shift_p_to_s: ``E_S[R_P] − E_P[R_P]``.
      y_given_x: ``E_S[R_Q] − E_S[R_P]``.
      x_shift_s_to_q: ``E_Q[R_Q] − E_S[R_Q]``.
      yx_share: ``y_given_x / total`` (NaN when ``total == 0``).
      source_perf, shared_source_perf, shared_target_perf, target_perf: ``E_P[R_P]``,
        ``E_S[R_P]``, ``E_S[R_Q]``, ``E_Q[R_Q]``.
      overlap: ``mean_P(w) + mean_Q(w)`` with the weights (W): ``2∫pq/(p+q)`` in ``[0, 1]``.
    """

    total: jax.Array
    x_shift_p_to_s: jax.Array
    y_given_x: jax.Array
    x_shift_s_to_q: jax.Array
    yx_share: jax.Array
    source_perf: jax.Array
    shared_source_perf: jax.Array
    shared_target_perf: jax.Array
    target_perf: jax.Array
    overlap: jax.Array


class DisdeResult(NamedTuple):
    """What :func:`disde` returns.

    Attributes:
      terms: the point estimates, :class:`DisdeTerms` of Python floats.
      se: bootstrap standard errors of each field, or None with ``num_bootstrap=0``.
      bootstrap: the ``(B,)`` replicates of each field, or None.
      source_weight: ``(n_P,)`` weights ``s/p`` (up to scale) of the source examples.
      target_weight: ``(n_Q,)`` weights ``s/q`` (up to scale) of the target examples.
      source_pi, target_pi: cross-fitted ``π(x) = P(target | x)`` on each domain's examples.
    """

    terms: DisdeTerms
    se: DisdeTerms | None
    bootstrap: DisdeTerms | None
    source_weight: np.ndarray
    target_weight: np.ndarray
    source_pi: np.ndarray
    target_pi: np.ndarray


def shared_region_weights(pi: ArrayLike, is_target: ArrayLike, target_share: ArrayLike) -> jax.Array:
    """Weights (W) that turn source and target averages into averages over S.

    Args:
      pi: ``(n,)`` ``P(target | x)`` from a domain classifier, in ``(0, 1)``.
      is_target: ``(n,)`` 1 for target examples, 0 for source.
      target_share: ``a``, the classifier's prior share of target examples.

    Returns:
      ``(n,)`` ``w = [T·a(1−π) + (1−T)(1−a)π] / [a(1−π) + (1−a)π]``: ``q/(p+q)`` on source
      examples and ``p/(p+q)`` on target examples for a calibrated π.
    """
    pi = jnp.asarray(pi)
    t = jnp.asarray(is_target, pi.dtype)
    a = jnp.asarray(target_share, pi.dtype)
    if pi.ndim != 1 or t.shape != pi.shape or a.ndim != 0:
        raise ValueError(f"shared_region_weights: pi and is_target must be (n,) and target_share a scalar; got "
                         f"{pi.shape}, {t.shape} and {a.shape}")
    num = t * a * (1 - pi) + (1 - t) * (1 - a) * pi
    return num / (a * (1 - pi) + (1 - a) * pi)


def _weighted_mean(v, w):
    return jnp.sum(w * v) / jnp.sum(w)


def _terms(c: jax.Array, t: jax.Array, w: jax.Array, counts: jax.Array) -> DisdeTerms:
    """DISDE from per-example performance ``c``, domain ``t``, S-weights ``w`` and multiplicities."""
    src, tgt = counts * (1 - t), counts * t
    ep, eq = _weighted_mean(c, src), _weighted_mean(c, tgt)
    esp, esq = _weighted_mean(c, src * w), _weighted_mean(c, tgt * w)
    total = eq - ep
    yx = esq - esp
    overlap = jnp.sum(src * w) / jnp.sum(src) + jnp.sum(tgt * w) / jnp.sum(tgt)
    share = jnp.where(total != 0, yx / jnp.where(total != 0, total, 1.0), jnp.nan)
    return DisdeTerms(total, esp - ep, yx, eq - esq, share, ep, esp, esq, eq, overlap)


def disde_terms(
    source_correct: ArrayLike, target_correct: ArrayLike, source_weight: ArrayLike, target_weight: ArrayLike
) -> DisdeTerms:
    """DISDE with given S-weights (e.g. exact density ratios ``q/(p+q)`` and ``p/(p+q)``).

    Args:
      source_correct: ``(n_P,)`` per-example performance on source examples (``R_P``).
      target_correct: ``(n_Q,)`` per-example performance on target examples (``R_Q``).
      source_weight: ``(n_P,)`` nonnegative ``s/p`` up to scale.
      target_weight: ``(n_Q,)`` nonnegative ``s/q`` up to scale.

    Returns:
      :class:`DisdeTerms` (jax scalars); ``overlap`` is ``2∫pq/(p+q)`` only when the weights are
      exactly ``q/(p+q)`` and ``p/(p+q)``.
    """
    cp, cq = jnp.asarray(source_correct, jnp.float32), jnp.asarray(target_correct, jnp.float32)
    wp, wq = jnp.asarray(source_weight, jnp.float32), jnp.asarray(target_weight, jnp.float32)
    if cp.ndim != 1 or cq.ndim != 1 or wp.shape != cp.shape or wq.shape != cq.shape:
        raise ValueError(
            "disde_terms: source_correct/source_weight and target_correct/target_weight must be matching 1-D arrays; "
            f"got {cp.shape}/{wp.shape} and {cq.shape}/{wq.shape}"
        )
    for name, w in (("source_weight", wp), ("target_weight", wq)):
        if not isinstance(w, jax.core.Tracer):
            wn = np.asarray(w)
            if not (np.all(np.isfinite(wn)) and np.all(wn >= 0) and wn.sum() > 0):
                raise ValueError(f"disde_terms: {name} must be finite, >= 0 and not all 0 (weights of the shared "
                                 f"region), got min {wn.min() if wn.size else None}, sum {wn.sum()}")
    c = jnp.concatenate([cp, cq])
    t = jnp.concatenate([jnp.zeros_like(cp), jnp.ones_like(cq)])
    return _terms(c, t, jnp.concatenate([wp, wq]), jnp.ones_like(c))


def _estimate(x, t, c, counts, folds, key, spec, num_folds, clip):
    pi = _cross_fit(x, t, counts, folds, key, spec, num_folds)
    pi = jnp.clip(pi, clip, 1 - clip)
    a = jnp.sum(counts * t) / jnp.sum(counts)
    w = shared_region_weights(pi, t, a)
    return _terms(c, t, w, counts), w, pi


@functools.partial(jax.jit, static_argnames=("n_p", "spec", "num_folds", "num_bootstrap", "refit"))
def _disde_all(x, t, c, folds, k_init, k_boot, clip, *, n_p, spec, num_folds, num_bootstrap, refit):
    """Point estimate and bootstrap replicates in one compiled program.

    Row 0 of the multiplicities is all ones (the point estimate); rows 1..B are the stratified
    resamples. With ``refit`` every row refits the cross-fitted classifier, all in one ``vmap``.
    """
    n = x.shape[0]
    kp, kq = jax.random.split(k_boot)
    ip = jax.random.randint(kp, (num_bootstrap, n_p), 0, n_p)
    iq = jax.random.randint(kq, (num_bootstrap, n - n_p), n_p, n)
    counts = jax.vmap(lambda i, j: jnp.zeros(n, x.dtype).at[i].add(1.0).at[j].add(1.0))(ip, iq)
    ones = jnp.ones((1, n), x.dtype)
    if refit:
        terms, w, pi = jax.vmap(lambda cnt: _estimate(x, t, c, cnt, folds, k_init, spec, num_folds, clip))(
            jnp.concatenate([ones, counts])
        )
        point = jax.tree.map(lambda v: v[0], terms)
        boot = jax.tree.map(lambda v: v[1:], terms)
        return point, w[0], pi[0], boot
    point, w, pi = _estimate(x, t, c, ones[0], folds, k_init, spec, num_folds, clip)

    def fixed(cnt):
        a = jnp.sum(cnt * t) / jnp.sum(cnt)
        return _terms(c, t, shared_region_weights(pi, t, a), cnt)

    return point, w, pi, jax.vmap(fixed)(counts)


def _as_2d(name: str, x: ArrayLike) -> jax.Array:
    x = jnp.asarray(x, jnp.float32)
    if x.ndim != 2:
        raise ValueError(f"disde: {name} must be (n, d) features, got shape {x.shape}")
    if not bool(jnp.all(jnp.isfinite(x))):
        raise ValueError(f"disde: {name} has non-finite values")
    return x


def _as_perf(name: str, c: ArrayLike, n: int, xname: str) -> jax.Array:
    c = jnp.asarray(c, jnp.float32)
    if c.shape != (n,):
        raise ValueError(f"disde: {name} must be (n,) = ({n},) like {xname}, got shape {c.shape}")
    if not bool(jnp.all(jnp.isfinite(c))):
        raise ValueError(f"disde: {name} has non-finite values")
    return c


def disde(
    source_x: ArrayLike,
    source_correct: ArrayLike,
    target_x: ArrayLike,
    target_correct: ArrayLike,
    *,
    key: jax.Array | int,
    num_folds: int = 5,
    num_bootstrap: int = 100,
    refit_bootstrap: bool = True,
    classifier: str = "logistic",
    hidden: int = 32,
    num_steps: int = 300,
    learning_rate: float = 0.1,
    l2: float = 1e-4,
    clip: float = 1e-6,
    min_overlap: float = 0.01,
) -> DisdeResult:
    """Decomposes the performance change from source to target into X- and Y|X-shift (DISDE).

    The domain classifier (:mod:`nips23jax.shift.domain_classifier`) is cross-fitted over
    ``num_folds`` folds stratified by domain; the weights (W) and the three terms follow. Standard
    errors come from a stratified bootstrap (source and target resampled separately); with
    ``refit_bootstrap`` each resample refits the cross-fitted classifier (on the same folds, with
    the multiplicities as sample weights) in one ``vmap``, so the classifier's own variability is
    in the error bars. Folds, initializations and resamples all derive from ``key``: same key, same
    result.

    Args:
      source_x: ``(n_P, d)`` source features (what the domain classifier sees).
      source_correct: ``(n_P,)`` per-example performance on source (1/0 correctness, or a loss).
      target_x: ``(n_Q, d)`` target features.
      target_correct: ``(n_Q,)`` per-example performance on target.
      key: PRNG key (typed, raw or int).
      num_folds: cross-fitting folds K >= 2.
      num_bootstrap: bootstrap resamples B (0: no standard errors).
      refit_bootstrap: refit the classifier per resample (else π is held fixed: cheaper, smaller SE).
      classifier: ``"logistic"`` or ``"mlp"`` (one tanh hidden layer of ``hidden`` units).
      hidden, num_steps, learning_rate, l2: classifier hyperparameters (see ``ClassifierSpec``).
      clip: π is clipped to ``[clip, 1 − clip]`` so no weight is 0/0.
      min_overlap: warn (:class:`EmptySharedRegionWarning`) when the estimated overlap
        ``2∫pq/(p+q)`` falls below it: S is (nearly) empty and the S-terms are not identified.

    Returns:
      :class:`DisdeResult`; ``result.terms.y_given_x`` etc., standard errors in ``result.se``.

    Raises:
      ValueError: non-2-D or non-finite features, mismatched feature dimensions, performance arrays
        of the wrong length, fewer than ``num_folds`` examples in a domain, bad hyperparameters.

    Example::

        r = disde(xp, correct_p, xq, correct_q, key=jax.random.key(0))
        r.terms.y_given_x, r.se.y_given_x, r.terms.yx_share
    """
    xp, xq = _as_2d("source_x", source_x), _as_2d("target_x", target_x)
    if xp.shape[1] != xq.shape[1]:
        raise ValueError(
            f"disde: source_x and target_x must have the same feature dimension, got {xp.shape[1]} and {xq.shape[1]}"
        )
    cp = _as_perf("source_correct", source_correct, xp.shape[0], "source_x")
    cq = _as_perf("target_correct", target_correct, xq.shape[0], "target_x")
    if num_folds < 2:
        raise ValueError(f"disde: num_folds must be >= 2 for cross-fitting, got {num_folds}")
    if min(xp.shape[0], xq.shape[0]) < num_folds:
        raise ValueError(
            f"disde: each domain needs at least num_folds={num_folds} examples, got {xp.shape[0]} and {xq.shape[0]}"
        )
    if num_bootstrap < 0 or num_bootstrap == 1:
        raise ValueError(f"disde: num_bootstrap must be 0 or >= 2, got {num_bootstrap}")
    if not 0 < clip < 0.5:
        raise ValueError(f"disde: clip must be in (0, 0.5), got {clip}")
    spec = ClassifierSpec(classifier, hidden, num_steps, learning_rate, l2).validate()

    n_p, n_q = xp.shape[0], xq.shape[0]
    x = jnp.concatenate([xp, xq])
    c = jnp.concatenate([cp, cq])
    t = jnp.concatenate([jnp.zeros(n_p), jnp.ones(n_q)])
    k_fold, k_init, k_boot = jax.random.split(as_key(key), 3)
    folds = fold_ids(k_fold, t, num_folds)
    terms, w, pi, boot = _disde_all(
        x, t, c, folds, k_init, k_boot, jnp.float32(clip),
        n_p=n_p, spec=spec, num_folds=num_folds, num_bootstrap=num_bootstrap, refit=refit_bootstrap,
    )
    terms = DisdeTerms(*(float(v) for v in terms))
    se = None
    if num_bootstrap:
        boot = DisdeTerms(*(np.asarray(v, np.float64) for v in boot))
        se = DisdeTerms(*(float(np.nanstd(v, ddof=1)) for v in boot))
    else:
        boot = None

    if not terms.overlap >= min_overlap:
        warnings.warn(
            f"disde: the shared region S is empty: the domain classifier separates source and target "
            f"(estimated overlap 2∫pq/(p+q) = {terms.overlap:.2e} < min_overlap = {min_overlap}); the X-shift and "
            "Y|X-shift terms on S are not identified (only the total is meaningful)",
            EmptySharedRegionWarning,
            stacklevel=2,
        )
    w, pi = np.asarray(w), np.asarray(pi)
    return DisdeResult(terms, se, boot, w[:n_p], w[n_p:], pi[:n_p], pi[n_p:])
