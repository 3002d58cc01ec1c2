import numpy as np
import pytest

from nips23jax.core import reproduce
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


def check_run(result, config, workdir):
    """End-to-end checks, run on the notebook's run by tests/test_notebooks.py (one run per session):
    the runs are what the config asked for, and each verdict follows its numbers."""
    runs = result.metrics["runs"]
    epochs_per_model = [repro._epochs_for(config, m) for m in config.models]
    assert len(runs) == len(config.budgets) * sum(map(len, epochs_per_model))
    assert sorted({r["epochs"] for r in runs if r["model"] == 0}) == sorted(epochs_per_model[0])
    assert all(np.isfinite(r["loss"]) and r["D"] == r["U_D"] * r["epochs"] for r in runs)
    assert [f.claim for f in result.findings] == [c.key for c in reproduce.get("data-constrained").claims]
    code = result.metrics["code_filling"]
    assert result.findings[-1].passed == (code["code50"] / code["repeat"] <= 1 + config.criteria.code_tolerance)
    assert result.findings[0].passed and result.findings[1].passed  # the published law's claims
    assert result.findings[3].passed == (result.metrics["fit"]["r2"] >= config.criteria.min_r2)
    for name in result.figures:
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG", name


def test_full_grid_gives_the_most_epochs_to_the_smallest_model(tmp_path):
    config = load_config("data_constrained")
    assert [repro._epochs_for(config, m) for m in config.models] == [
        [1, 2, 4, 8, 16, 32], [1, 2, 4, 8, 16], [1, 2, 4, 8]]
    assert repro._epochs_for(load_config("data_constrained", quick=True), config.models[2]) == [1, 4]
    config.models[2].max_epochs = 2   # no 4-epoch run for the largest model: a clear error before training
    with pytest.raises(ValueError, match="1 and 4 epochs"):
        repro.run(config, tmp_path, progress=False)
    assert not any(tmp_path.iterdir())
