import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from nips23jax.core.config import load_config
from nips23jax.reproductions import distribution_shift as repro

def test_model_family_matches_sklearn_logistic_regression():
    x = jax.random.normal(jax.random.key(0), (200, 3))
    y = (x @ jnp.array([1.0, -1.0, 0.5]) + 0.5 * jax.random.normal(jax.random.key(1), (200,)) > 0).astype(jnp.int32)
    fm = jnp.array([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    sm = jnp.stack([jnp.arange(200) < 100, jnp.ones(200, bool)]).astype(jnp.float32)
    l2 = 1e-2
    params = repro.train_model_family(x, y, fm, sm, steps=500, lr=0.1, l2=l2)
    for i, (k, n) in enumerate(((2, 100), (3, 200))):
        ref = LogisticRegression(C=1 / (2 * l2 * n), tol=1e-10, max_iter=1000).fit(np.asarray(x[:n, :k]), np.asarray(y[:n]))
        np.testing.assert_allclose(params["w"][i, :k], ref.coef_[0], atol=2e-3)
        np.testing.assert_allclose(params["b"][i], ref.intercept_[0], atol=2e-3)
    assert float(params["w"][0, 2]) == 0.0  # the masked feature stays unused
    assert repro.predict(params, x).shape == (200, 2)


def test_run_rejects_more_features_than_dimensions(tmp_path):
    config = load_config("distribution_shift", quick=True, overrides=["models.num_features=(1,5)", "data.dim=4"])
    with pytest.raises(ValueError, match="exceeds data.dim"):
        repro.run(config, tmp_path, progress=False)


def check_run(result, config, workdir):
    """End-to-end checks, run on the notebook's run by tests/test_notebooks.py (one run per session)."""
    assert [f.claim for f in result.findings] == ["line", "breaks", "disde"]
    for name in ("accuracy_on_the_line.png", "more_data.png", "disde.png"):
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    num_models = len(config.models.num_features) * len(config.models.train_sizes)
    assert sum(r["split"] == "models" for r in rows) == num_models
    assert sum(r["split"] == "disde" for r in rows) == len(repro.CASES)
    m = result.metrics
    # the verdicts follow the numbers (notebook-test runs may or may not meet the criteria)
    assert result.findings[0].passed == (m["lines"]["x_shift"]["r2"] >= config.criteria.line_r2_above)
    d = m["disde"]
    for case in repro.CASES:
        for t in repro.TERMS:
            assert np.isfinite(d[case]["estimate"][t]) and d[case]["se"][t] > 0
        truth = d[case]["truth"]
        assert abs(truth["x_shift_p_to_s"] + truth["y_given_x"] + truth["x_shift_s_to_q"] - truth["total"]) < 1e-5
    # P = Q: the truth is exactly zero
    assert all(abs(d["null"]["truth"][t]) < 1e-6 for t in repro.TERMS)
