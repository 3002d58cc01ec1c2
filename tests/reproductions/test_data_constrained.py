import numpy as np
import pytest

from nips23jax.core.config import load_config
from nips23jax.reproductions import data_constrained as repro
from nips23jax.scaling import PUBLISHED


def test_epoch_values_closed_form():
    v = repro.epoch_values(50)
    r = PUBLISHED.R_D_star
    k = np.arange(2, 51)
    # epoch k (k >= 2) adds U·R*·(e^{-(k-2)/R*} − e^{-(k-1)/R*})
    np.testing.assert_allclose(v[1:], r * (np.exp(-(k - 2) / r) - np.exp(-(k - 1) / r)), rtol=1e-10)
    assert v[0] == 1.0 and v[1] == pytest.approx(0.968, abs=1e-3)


def test_law_analysis_numbers():
    config = load_config("data_constrained", quick=True)
    law = repro.law_analysis(config)
    assert law["run_increase"][4.0] == pytest.approx(0.00675, abs=2e-4)   # 8.7B params, 178B tokens, 4 epochs
    inc = np.asarray(law["loss_increase"][4.0])
    assert np.all(inc > 0) and np.all(np.diff(inc) < 0)                    # repetition costs less at scale


@pytest.mark.slow
def test_run_writes_findings_and_figures(tmp_path):
    overrides = ["budgets=[12, 24]", "train.log_every=6", "eval.num_windows=32", "data.num_files=20",
                 "fit.max_iter=20", "law.max_epochs=40"]
    config = load_config("data_constrained", quick=True, overrides=overrides)
    result = repro.run(config, tmp_path, progress=False)
    assert [f.claim for f in result.findings] == [c.key for c in repro.CLAIMS]
    for name in ("law.png", "tiny_runs.png", "code_filling.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "metrics.jsonl").stat().st_size > 0
    runs = result.metrics["runs"]
    assert len(runs) == 6 and all(np.isfinite(r["loss"]) and r["D"] == r["U_D"] * r["epochs"] for r in runs)
    # verdicts follow the numbers
    code = result.metrics["code_filling"]
    assert result.findings[4].passed == (code["code50"] / code["repeat"] <= 1 + config.criteria.code_tolerance)
    assert result.findings[0].passed and result.findings[1].passed   # the published law's claims
