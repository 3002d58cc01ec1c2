"""Per-example metrics over batches of padded token sequences (Schaeffer et al., Sec. 2-3).

The paper's point is that one set of model outputs can look "emergent" or smooth depending on the
metric: discontinuous / nonlinear ones (exact string match, multiple-choice grade) against
continuous / linear ones (token edit distance, Brier score, per-token cross-entropy). This module
holds them all, each a pure function of arrays (jittable, vmapped over the batch); the edit distance
and the LCS behind ROUGE-L are the dynamic programs of :mod:`nips23jax.emergence.edit_distance`.

Conventions: sequences are ``(B, T)`` int token ids, right-padded, with optional ``(B,)`` true
lengths (``None``: the full width). Every metric returns one value per example so that callers can
average, bootstrap (:func:`nips23jax.emergence.bootstrap_ci`) or plot per-example distributions.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nips23jax.emergence.edit_distance import as_device_array, longest_common_subsequence, prepare_pairs
from nips23jax.models.lm import ids_out_of_range, token_logps

__all__ = [
    "bleu",
    "brier_score",
    "corpus_bleu",
    "exact_match",
    "multiple_choice_grade",
    "per_token_cross_entropy",
    "rouge_l",
    "sequence_log_likelihood",
]


def exact_match(
    pred: ArrayLike,
    target: ArrayLike,
    pred_lengths: ArrayLike | None = None,
    target_lengths: ArrayLike | None = None,
) -> jax.Array:
    """Exact string match: 1 if the prediction equals the target token for token, else 0.

    ``EM = 1[len(pred) == len(target) and pred_t == target_t for all t < len(target)]``; padding
    past the lengths is ignored. With per-token accuracy ``p`` and independent errors, ``E[EM] = p^L``
    (the paper's Eq. 3, :func:`nips23jax.emergence.analytic_exact_match`).

    Args:
      pred: ``(B, Tp)`` int token ids.
      target: ``(B, Tt)`` int token ids.
      pred_lengths, target_lengths: ``(B,)`` int true lengths, or ``None`` for the full width.

    Returns:
      ``(B,)`` float32 in ``{0, 1}``.
    """
    return _exact_match(*prepare_pairs("exact_match", pred, target, pred_lengths, target_lengths))


@jax.jit
def _exact_match(pred, target, lp, lt):
    width = max(pred.shape[1], target.shape[1])
    p = jnp.pad(pred, ((0, 0), (0, width - pred.shape[1])))
    t = jnp.pad(target, ((0, 0), (0, width - target.shape[1])))
    inside = jnp.arange(width)[None, :] < lt[:, None]
    same = jnp.all((p == t) | ~inside, axis=1) & (lp == lt)
    return same.astype(jnp.float32)


def _choices(where: str, scores: ArrayLike, correct: ArrayLike) -> tuple[jax.Array, jax.Array]:
    scores = as_device_array(scores)
    correct = as_device_array(correct)
    if scores.ndim != 2 or scores.shape[1] < 1:
        raise ValueError(f"{where}: expected (batch, num_choices) scores, got shape {scores.shape}")
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        raise TypeError(f"{where}: scores must be floating point, got dtype {scores.dtype}")
    if not jnp.issubdtype(correct.dtype, jnp.integer):
        raise TypeError(f"{where}: correct must be integer choice indices, got dtype {correct.dtype}")
    if correct.shape != scores.shape[:1]:
        raise ValueError(f"{where}: correct must have shape ({scores.shape[0]},), got {correct.shape}")
    bad = ids_out_of_range(correct, scores.shape[1])
    if bad is not None:
        raise ValueError(f"{where}: correct must be choice indices in [0, {scores.shape[1]}), got min {bad[0]}, "
                         f"max {bad[1]}")
    return scores, correct


def multiple_choice_grade(choice_scores: ArrayLike, correct: ArrayLike) -> jax.Array:
    """Multiple-choice grade: 1 if the highest-scoring choice is the correct one (BIG-bench's metric).

    ``MCG = 1[argmax_k s_k = c]``, a discontinuous function of the scores: the paper finds that
    BIG-bench's emergent abilities appear almost only under this metric and exact string match.
    Ties go to the lowest index (``argmax``).

    Args:
      choice_scores: ``(B, K)`` float, e.g. each choice's log-likelihood under the model.
      correct: ``(B,)`` int index of the correct choice.

    Returns:
      ``(B,)`` float32 in ``{0, 1}``.
    """
    scores, correct = _choices("multiple_choice_grade", choice_scores, correct)
    return _grade(scores, correct)


@jax.jit
def _grade(scores, correct):
    return (jnp.argmax(scores, axis=1) == correct).astype(jnp.float32)


def brier_score(choice_scores: ArrayLike, correct: ArrayLike, *, from_logits: bool = True) -> jax.Array:
    """Multi-class Brier score: squared error of the choice probabilities against the one-hot answer.

    ``BS = sum_k (q_k - 1[k = c])^2`` with ``q = softmax(s)`` over the ``K`` choices (or ``q = s``
    given probabilities); in ``[0, 2]``, lower is better, and a continuous function of the scores:
    the metric under which the paper shows LaMDA's multiple-choice "emergent" abilities vanish.

    Args:
      choice_scores: ``(B, K)`` float: unnormalized log-scores (e.g. log-likelihoods) with
        ``from_logits=True``, else probabilities whose rows sum to 1.
      correct: ``(B,)`` int index of the correct choice.
      from_logits: normalize ``choice_scores`` with a softmax over the choices.

    Returns:
      ``(B,)`` float32.
    """
    scores, correct = _choices("brier_score", choice_scores, correct)
    if not from_logits and not isinstance(scores, jax.core.Tracer):
        q = np.asarray(scores, np.float64)
        if not (np.all((q >= 0) & (q <= 1)) and np.allclose(q.sum(1), 1.0, atol=1e-3)):
            raise ValueError("brier_score: with from_logits=False choice_scores must be probabilities (rows in [0, 1] "
                             f"summing to 1); got row sums {np.round(q.sum(1)[:5], 4).tolist()} and min {q.min():.3g}")
    return _brier(scores, correct, from_logits)


@partial(jax.jit, static_argnums=2)
def _brier(scores, correct, from_logits: bool):
    q = jax.nn.softmax(scores.astype(jnp.float32), axis=1) if from_logits else scores.astype(jnp.float32)
    onehot = jax.nn.one_hot(correct, scores.shape[1], dtype=jnp.float32)
    return jnp.sum((q - onehot) ** 2, axis=1)


def _logit_targets(where: str, logits: ArrayLike, targets: ArrayLike, mask: ArrayLike | None):
    logits = as_device_array(logits)
    targets = as_device_array(targets)
    if logits.ndim != 3 or logits.shape[:2] != targets.shape:
        raise ValueError(
            f"{where}: expected logits (B, T, V) aligned with targets (B, T), got {logits.shape} and {targets.shape}"
        )
    if not jnp.issubdtype(targets.dtype, jnp.integer):
        raise TypeError(f"{where}: targets must be integer token ids, got dtype {targets.dtype}")
    if mask is not None:
        mask = as_device_array(mask)
        if mask.shape != targets.shape:
            raise ValueError(f"{where}: mask must have the targets' shape {targets.shape}, got {mask.shape}")
    bad = ids_out_of_range(targets, logits.shape[2], mask)
    if bad is not None:
        raise ValueError(f"{where}: targets must be token ids in [0, {logits.shape[2]}) where scored, got min "
                         f"{bad[0]}, max {bad[1]}")
    return logits, targets, mask


def sequence_log_likelihood(logits: ArrayLike, targets: ArrayLike, mask: ArrayLike | None = None) -> jax.Array:
    """Log-likelihood of each target sequence: ``sum_t log softmax(logits_t)[target_t]`` over the mask.

    Args:
      logits: ``(B, T, V)`` float, aligned with ``targets`` (``logits[:, t]`` scores ``targets[:, t]``;
        for a causal LM's raw output on ``tokens`` pass ``logits[:, :-1]`` and ``tokens[:, 1:]``).
      targets: ``(B, T)`` int token ids.
      mask: ``(B, T)`` bool, the positions that count (``None``: all).

    Returns:
      ``(B,)`` float32 (``<= 0``).
    """
    logits, targets, mask = _logit_targets("sequence_log_likelihood", logits, targets, mask)
    return token_logps(logits, targets, mask).sum(-1)


def per_token_cross_entropy(logits: ArrayLike, targets: ArrayLike, mask: ArrayLike | None = None) -> jax.Array:
    """Mean per-token cross-entropy ``L_CE = -(1/L) sum_t log p(target_t)`` of each sequence.

    The quantity the paper models as a power law in parameters, ``L_CE(N) = (N/c)^alpha`` (Eq. 1);
    ``exp(-L_CE)`` is the geometric-mean probability of a correct token, the ``p`` of Eqs. 2-4.
    Sequences with no counted token give 0.

    Args:
      logits, targets, mask: as in :func:`sequence_log_likelihood`.

    Returns:
      ``(B,)`` float32 (``>= 0``).
    """
    logits, targets, mask = _logit_targets("per_token_cross_entropy", logits, targets, mask)
    return _cross_entropy(logits, targets, mask)


@jax.jit
def _cross_entropy(logits, targets, mask):
    lp = token_logps(logits, targets, mask)
    count = lp.shape[1] if mask is None else mask.astype(jnp.float32).sum(-1)
    return -lp.sum(-1) / jnp.maximum(count, 1.0)


@partial(jax.jit, static_argnums=4)
def _ngram_stats(pred, target, lp, lt, max_order: int) -> tuple[jax.Array, jax.Array]:
    """Clipped n-gram matches and candidate n-gram counts, ``(B, max_order)`` each.

    For each candidate n-gram position ``i``: ``min(c_pred(g_i), c_ref(g_i)) / c_pred(g_i)``;
    summed over positions this is ``sum_{distinct g} min(c_pred(g), c_ref(g))``, the clipped count.
    """

    def one(p, t, n_p, n_t):
        matches, totals = [], []
        for n in range(1, max_order + 1):
            if p.shape[0] < n:
                matches.append(jnp.float32(0))
                totals.append(jnp.float32(0))
                continue
            gp = jnp.stack([p[k : p.shape[0] - n + 1 + k] for k in range(n)], axis=1)  # (Np, n)
            vp = jnp.arange(gp.shape[0]) <= n_p - n
            if t.shape[0] >= n:
                gt = jnp.stack([t[k : t.shape[0] - n + 1 + k] for k in range(n)], axis=1)
                vt = jnp.arange(gt.shape[0]) <= n_t - n
                c_ref = jnp.sum(jnp.all(gp[:, None] == gt[None], -1) & vt[None], axis=1)
            else:
                c_ref = jnp.zeros(gp.shape[0], jnp.int32)
            c_pred = jnp.sum(jnp.all(gp[:, None] == gp[None], -1) & vp[None], axis=1)
            share = jnp.minimum(c_pred, c_ref) / jnp.maximum(c_pred, 1)
            matches.append(jnp.sum(jnp.where(vp, share, 0.0)))
            totals.append(jnp.sum(vp).astype(jnp.float32))
        return jnp.stack(matches), jnp.stack(totals)

    return jax.vmap(one)(pred, target, lp, lt)


@partial(jax.jit, static_argnums=4)
def _bleu_from_stats(matches, totals, len_pred, len_ref, smooth: bool) -> jax.Array:
    order = matches.shape[-1]
    if smooth:  # Lin & Och (2004): add one to numerator and denominator for n > 1
        add = jnp.concatenate([jnp.zeros((1,)), jnp.ones((order - 1,))])
        matches, totals = matches + add, totals + add
    precision = matches / jnp.maximum(totals, 1e-30)
    positive = jnp.all(matches > 0, axis=-1)
    log_p = jnp.where(positive[..., None], jnp.log(jnp.where(matches > 0, precision, 1.0)), 0.0)
    geo = jnp.where(positive, jnp.exp(log_p.mean(-1)), 0.0)
    ratio = len_pred / jnp.maximum(len_ref, 1e-30)
    bp = jnp.where(ratio >= 1.0, 1.0, jnp.exp(1.0 - 1.0 / jnp.maximum(ratio, 1e-30)))
    return jnp.where(len_pred > 0, geo * bp, 0.0)


def bleu(
    pred: ArrayLike,
    target: ArrayLike,
    pred_lengths: ArrayLike | None = None,
    target_lengths: ArrayLike | None = None,
    *,
    max_order: int = 4,
    smooth: bool = False,
) -> jax.Array:
    """Sentence-level BLEU of each prediction against its one reference (Papineni et al., 2002).

    ``BLEU = BP * exp((1/N) sum_{n<=N} log p_n)`` with ``p_n`` the clipped n-gram precision and
    ``BP = min(1, exp(1 - |ref| / |pred|))``; 0 if any ``p_n`` is 0 (``smooth=True`` adds one to the
    counts for ``n > 1``, Lin & Och 2004) or the prediction is empty.

    Args:
      pred, target, pred_lengths, target_lengths: as in :func:`token_edit_distance`.
      max_order: largest n-gram order ``N``.
      smooth: add-one smoothing for orders above one.

    Returns:
      ``(B,)`` float32 in ``[0, 1]``.
    """
    if not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"bleu: max_order must be a positive int, got {max_order!r}")
    pred, target, lp, lt = prepare_pairs("bleu", pred, target, pred_lengths, target_lengths)
    matches, totals = _ngram_stats(pred, target, lp, lt, max_order)
    return _bleu_from_stats(matches, totals, lp.astype(jnp.float32), lt.astype(jnp.float32), smooth)


def corpus_bleu(
    pred: ArrayLike,
    target: ArrayLike,
    pred_lengths: ArrayLike | None = None,
    target_lengths: ArrayLike | None = None,
    *,
    max_order: int = 4,
    smooth: bool = False,
) -> jax.Array:
    """Corpus-level BLEU: n-gram matches, totals and lengths summed over the batch before combining.

    Same formula as :func:`bleu` with every count pooled (the standard for reporting BLEU).

    Returns:
      Scalar float32.
    """
    if not isinstance(max_order, int) or max_order < 1:
        raise ValueError(f"corpus_bleu: max_order must be a positive int, got {max_order!r}")
    pred, target, lp, lt = prepare_pairs("corpus_bleu", pred, target, pred_lengths, target_lengths)
    matches, totals = _ngram_stats(pred, target, lp, lt, max_order)
    return _bleu_from_stats(
        matches.sum(0), totals.sum(0), lp.sum().astype(jnp.float32), lt.sum().astype(jnp.float32), smooth
    )


def rouge_l(
    pred: ArrayLike,
    target: ArrayLike,
    pred_lengths: ArrayLike | None = None,
    target_lengths: ArrayLike | None = None,
    *,
    beta: float = 1.0,
) -> jax.Array:
    """ROUGE-L F-measure (Lin, 2004) from the longest common subsequence.

    ``P = LCS / |pred|``, ``R = LCS / |target|``, ``F = (1 + beta^2) P R / (R + beta^2 P)``
    (``beta = 1``: the F1 that ``rouge-score`` reports); 0 when the LCS is empty.

    Args:
      pred, target, pred_lengths, target_lengths: as in :func:`token_edit_distance`.
      beta: weight of recall relative to precision.

    Returns:
      ``(B,)`` float32 in ``[0, 1]``.
    """
    if not beta > 0:
        raise ValueError(f"rouge_l: beta must be > 0, got {beta!r}")
    pred, target, lp, lt = prepare_pairs("rouge_l", pred, target, pred_lengths, target_lengths)
    return _rouge_from_lcs(longest_common_subsequence(pred, target, lp, lt), lp, lt, float(beta))


@partial(jax.jit, static_argnums=3)
def _rouge_from_lcs(lcs, lp, lt, beta: float):
    lcs = lcs.astype(jnp.float32)
    p = lcs / jnp.maximum(lp, 1)
    r = lcs / jnp.maximum(lt, 1)
    b2 = beta**2
    return jnp.where(lcs > 0, (1 + b2) * p * r / jnp.maximum(r + b2 * p, 1e-30), 0.0)
