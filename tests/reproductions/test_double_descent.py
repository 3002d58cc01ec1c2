import json

import numpy as np
import pytest

from nips23jax.reproductions import double_descent as repro

def test_digits_split_and_rank_correlation():
    from scipy.stats import spearmanr

    xt, yt, xq, yq, labels = repro.load_digits_split(0, 100, 50)
    assert xt.shape == (100, 64) and yq.shape == (50, 10) and 0 <= xt.min() and xt.max() <= 1
    np.testing.assert_array_equal(yq.argmax(1), labels)
    assert len(repro.load_digits_split(0, 100)[2]) == 1797 - 100
    with pytest.raises(ValueError, match="num_train"):
        repro.load_digits_split(0, 1797)
    a, b = np.random.default_rng(0).normal(size=(2, 12))
    np.testing.assert_allclose(repro._spearman(a, b), spearmanr(a, b).statistic, rtol=1e-12)


def check_run(result, config, workdir):
    """End-to-end checks, run on the notebook's run by tests/test_notebooks.py (one run per session)."""
    assert [f.claim for f in result.findings] == [c.key for c in repro.CLAIMS]
    for name in result.figures:
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG"
    n = config.num_train
    unfold = {f"unfold_{max(1, round(r * n))}" for r in config.unfold.excess_ratios}
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} >= {"rff", "trees", "boosting"} | unfold
    rff = result.metrics["rff"]
    grid = sorted({max(1, round(r * n)) for r in config.rff.ratios})
    assert [r["P"] for r in rff] == grid
    # p_train = min(P, n) for min-norm least squares, at any scale
    np.testing.assert_allclose([r["p_train"] for r in rff], np.minimum(grid, n), rtol=1e-6)
    # the verdict follows the numbers (at notebook-test size the claim may or may not hold)
    mse = np.array([r["test_mse"] for r in rff])
    at_n = grid.index(n)
    below = mse[: at_n] if at_n else np.array([np.nan])
    peak = int(np.argmax(mse)) == at_n and mse[at_n] > config.criteria.peak_ratio * max(below.min(), mse[-1])
    assert result.findings[0].passed == peak
    trees = result.metrics["trees"]
    sizes = list(config.trees.ensemble_sizes)
    assert [r["axis"] for r in trees][-len(sizes):] == ["leaves"] + ["trees"] * (len(sizes) - 1)
    assert [r["trees"] for r in trees][-len(sizes):] == sizes


def test_uturn_fails_when_an_arm_has_too_few_points_for_a_spearman():
    """Four P values leave the 'after P = n' arm with 2 points: its Spearman is NaN. min(1.0, nan) is 1.0,
    so the U-turn passed on the rising arm alone; a NaN arm now fails it."""
    from nips23jax.core.config import load_config

    config = load_config("double_descent", quick=True)
    n = 200
    rff = [{"P": P, "test_mse": m, "p_train": min(P, n), "p_test": t}
           for P, m, t in ((50, 0.5, 40.0), (100, 0.8, 90.0), (200, 40.0, 1e5), (2000, 0.3, 300.0))]
    findings = {f.claim: f for f in repro._judge_rff(config, rff, n)}
    assert "nan after" in findings["rff_uturn"].ours and not findings["rff_uturn"].passed
