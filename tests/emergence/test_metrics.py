import math
from collections import Counter

import numpy as np
import pytest

from nips23jax.emergence import (
    bleu,
    brier_score,
    corpus_bleu,
    exact_match,
    multiple_choice_grade,
    per_token_cross_entropy,
    rouge_l,
    sequence_log_likelihood,
)


def test_exact_match_hand_worked():
    pred = np.array([[1, 2, 3], [1, 2, 4], [1, 2, 0], [1, 2, 3]])
    target = np.array([[1, 2, 3], [1, 2, 3], [1, 2, 9], [1, 2, 3]])
    lengths_p = np.array([3, 3, 2, 2])
    lengths_t = np.array([3, 3, 2, 3])
    # equal; last token wrong; equal up to the lengths (padding differs); prediction too short
    np.testing.assert_array_equal(exact_match(pred, target, lengths_p, lengths_t), [1, 0, 1, 0])
    np.testing.assert_array_equal(exact_match(pred[:2], target[:2]), [1, 0])
    # different padded widths
    np.testing.assert_array_equal(exact_match([[7, 8, 0, 0]], [[7, 8]], [2]), [1])
    with pytest.raises(ValueError, match="same batch size"):
        exact_match(pred, target[:2])


def test_multiple_choice_grade_and_brier_hand_worked():
    scores = np.log(np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.25, 0.25, 0.5]], np.float32))
    correct = np.array([0, 2, 2])
    np.testing.assert_array_equal(multiple_choice_grade(scores, correct), [1, 0, 1])
    # (0.7-1)^2 + 0.2^2 + 0.1^2 = 0.14; 0.2^2 + 0.5^2 + 0.7^2 = 0.78; 2 * 0.25^2 + 0.5^2 = 0.375
    np.testing.assert_allclose(brier_score(scores, correct), [0.14, 0.78, 0.375], rtol=1e-5)
    np.testing.assert_allclose(brier_score(np.exp(scores), correct, from_logits=False), [0.14, 0.78, 0.375], rtol=1e-5)
    # extreme scores: a certain right answer scores 0, a certain wrong one 2, no NaN
    extreme = np.array([[1e30, -1e30], [-1e30, 1e30]], np.float32)
    np.testing.assert_allclose(brier_score(extreme, np.array([0, 0])), [0.0, 2.0])
    with pytest.raises(TypeError, match="correct must be integer"):
        brier_score(scores, correct.astype(float))
    with pytest.raises(ValueError, match="correct must have shape \\(3,\\)"):
        multiple_choice_grade(scores, correct[:2])
    for fn in (multiple_choice_grade, brier_score):  # were a grade of 0 / a plausible Brier score
        with pytest.raises(ValueError, match=r"correct must be choice indices in \[0, 2\)"):
            fn(np.array([[0.1, 0.9]], np.float32), np.array([5]))
    with pytest.raises(ValueError, match="must be probabilities"):  # was 8, outside [0, 2]
        brier_score(np.array([[3.0, -2.0]], np.float32), np.array([0]), from_logits=False)
    np.testing.assert_allclose(brier_score(np.array([[0.25, 0.75]], np.float32), np.array([1]), from_logits=False),
                               [0.125], rtol=1e-6)


def test_log_likelihood_and_cross_entropy_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype(np.float32) * 3
    targets = rng.integers(0, 7, (3, 5))
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [0, 0, 0, 0, 0]], bool)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    per_tok = np.take_along_axis(logp, targets[..., None], -1)[..., 0] * mask
    np.testing.assert_allclose(sequence_log_likelihood(logits, targets, mask), per_tok.sum(-1), rtol=1e-5)
    want = -per_tok.sum(-1) / np.maximum(mask.sum(-1), 1)
    np.testing.assert_allclose(per_token_cross_entropy(logits, targets, mask), want, rtol=1e-5)
    assert float(per_token_cross_entropy(logits, targets, mask)[2]) == 0.0  # no counted tokens
    big = np.zeros((1, 1, 3), np.float32)
    big[0, 0, 1] = 1e4
    assert float(per_token_cross_entropy(big, np.array([[0]]))[0]) == pytest.approx(1e4)
    with pytest.raises(ValueError, match="aligned"):
        per_token_cross_entropy(logits, targets[:, :4])
    with pytest.raises(ValueError, match=r"targets must be token ids in \[0, 3\) where scored"):
        per_token_cross_entropy(np.zeros((1, 2, 3), np.float32), np.array([[0, 5]]))  # was NaN
    with pytest.raises(ValueError, match="targets must be token ids"):
        sequence_log_likelihood(np.zeros((1, 2, 3), np.float32), np.array([[0, -1]]))  # wrapped to the last id


def naive_bleu(pairs, max_order=4, smooth=False):
    """(matches, totals, len_pred, len_ref) pooled over ``pairs``, then BLEU, with Counters."""
    m, t = [0] * max_order, [0] * max_order
    lp = lr = 0
    for p, r in pairs:
        lp, lr = lp + len(p), lr + len(r)
        for n in range(1, max_order + 1):
            cp = Counter(tuple(p[i : i + n]) for i in range(len(p) - n + 1))
            cr = Counter(tuple(r[i : i + n]) for i in range(len(r) - n + 1))
            m[n - 1] += sum(min(c, cr[g]) for g, c in cp.items())
            t[n - 1] += max(len(p) - n + 1, 0)
    if smooth:
        m = [m[0]] + [x + 1 for x in m[1:]]
        t = [t[0]] + [x + 1 for x in t[1:]]
    if lp == 0 or min(m) == 0:
        return 0.0
    geo = math.exp(sum(math.log(a / b) for a, b in zip(m, t)) / max_order)
    return geo * (1.0 if lp >= lr else math.exp(1 - lr / lp))


def naive_rouge_l(p, r):
    prev = [0] * (len(r) + 1)
    for x in p:
        cur = [0]
        for j, y in enumerate(r, 1):
            cur.append(prev[j - 1] + 1 if x == y else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    prec, rec = lcs / len(p), lcs / len(r)
    return 2 * prec * rec / (prec + rec)


def test_bleu_and_rouge_l_match_naive_implementations():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, (40, 9)).astype(np.int32)
    target = rng.integers(0, 3, (40, 8)).astype(np.int32)
    lp = rng.integers(0, 10, 40)
    lt = rng.integers(1, 9, 40)
    lp[0] = 0
    pairs = [(pred[i, : lp[i]].tolist(), target[i, : lt[i]].tolist()) for i in range(40)]
    for smooth in (False, True):
        np.testing.assert_allclose(
            bleu(pred, target, lp, lt, smooth=smooth), [naive_bleu([pr], smooth=smooth) for pr in pairs], atol=1e-6
        )
        assert float(corpus_bleu(pred, target, lp, lt, smooth=smooth)) == pytest.approx(
            naive_bleu(pairs, smooth=smooth), rel=1e-5
        )
    np.testing.assert_allclose(rouge_l(pred, target, lp, lt), [naive_rouge_l(*pr) for pr in pairs], atol=1e-6)
    # identical sequences: BLEU 1 and ROUGE-L 1; disjoint: both 0
    same = np.array([[1, 2, 3, 4, 5]])
    assert float(bleu(same, same)[0]) == pytest.approx(1.0)
    assert float(rouge_l(same, same)[0]) == pytest.approx(1.0)
    assert float(rouge_l(same, same + 10)[0]) == 0.0
    with pytest.raises(ValueError, match="max_order"):
        bleu(same, same, max_order=0)
