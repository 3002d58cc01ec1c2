import json

import numpy as np
import pytest

from nips23jax.core.config import load_config
from nips23jax.reproductions import double_descent as repro

TINY = [
    "num_train=60", "num_test=60", "rff.ratios=[0.5, 0.9, 1.0, 1.2, 3.0]", "unfold.excess_ratios=[1.0, 2.0]",
    "unfold.pc_ratios=[0.1, 0.5, 1.0]", "trees.ensemble_sizes=[1, 2, 3]", "boosting.num_rounds=6",
    "boosting.ensemble_sizes=[1, 2]",
]


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


@pytest.mark.slow
def test_run_writes_findings_figures_and_log(tmp_path):
    config = load_config("double_descent", quick=True, overrides=TINY)
    result = repro.run(config, tmp_path, progress=False)
    assert [f.claim for f in result.findings] == [c.key for c in repro.CLAIMS]
    for name in result.figures:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} >= {"rff", "trees", "boosting", "unfold_60", "unfold_120"}
    rff = result.metrics["rff"]
    assert [r["P"] for r in rff] == [30, 54, 60, 72, 180]
    # p_train = min(P, n) for min-norm least squares, at any scale
    np.testing.assert_allclose([r["p_train"] for r in rff], [30, 54, 60, 60, 60], rtol=1e-6)
    # verdicts follow the numbers (at this size the claims may or may not hold)
    mse = [r["test_mse"] for r in rff]
    peak = int(np.argmax(mse)) == 2 and mse[2] > config.criteria.peak_ratio * max(min(mse[:2]), mse[-1])
    assert result.findings[0].passed == peak
    trees = result.metrics["trees"]
    assert [r["axis"] for r in trees][-3:] == ["leaves", "trees", "trees"]
    assert [r["trees"] for r in trees][-3:] == [1, 2, 3]
