"""The discs reproduction: configs and the verdicts (``judge``) on given numbers, and ``check_run``, the
end-to-end checks that ``tests/test_notebooks.py`` runs on the notebook's run (``pytest
tests/test_notebooks.py -k discs``): the reproduction runs once per test session, in its notebook.
"""

import json
import math

import numpy as np
import pytest

from nips23jax.core.config import load_config
from nips23jax.reproductions import discs as repro


def test_quick_config_differs_from_full():
    quick, full = load_config("discs", quick=True), load_config("discs")
    assert quick.sweep.steps < full.sweep.steps and quick.panels.ising_side < full.panels.ising_side
    assert set(full.panels.samplers) == {"rwm", "gibbs", "block_gibbs", "hamming_ball", "gwg", "pas", "dmala", "dlmc"}
    for c in (quick, full):
        assert min(c.sweep.inverse_temperatures) < repro.LAMBDA_C < max(c.sweep.inverse_temperatures)
        assert "rwm" in c.dimension.samplers and len(c.dimension.sides) >= 2
        assert 2 ** c.combinatorial.ratio_nodes <= 2**20  # brute-forceable


def _metrics(config, sqrt_lo=1.2, sqrt_hi=0.8, rwm_slope=-1.0, se=0.002):
    """Synthetic measurements: ESS per step with the given sqrt/barker ratios (each arm's s.e. ``se``
    on ESS 0.1) and RWM slope."""
    lams, sides = config.sweep.inverse_temperatures, config.dimension.sides
    n = len(lams)
    ratio = [sqrt_lo + (sqrt_hi - sqrt_lo) * i / (n - 1) for i in range(n)]
    sweep = {s: {"sqrt": [0.1 * r for r in ratio], "barker": [0.1] * n, "sqrt_se": [se] * n, "barker_se": [se] * n}
             for s in config.sweep.samplers}
    dim = {}
    for s in config.dimension.samplers:
        slope = rwm_slope if s == "rwm" else -0.5
        dim[s] = [0.5 * (side * side) ** slope for side in sides]
        dim[s + "_se"] = [0.0] * len(sides)
    panels = {"ising": {"rwm": 0.01, "dlmc": 0.1}, "potts": {"rwm": 0.02, "dlmc": 0.09}}
    table = {"mis": {"rwm": 10.0, "hamming_ball": 11.0, "gwg": 12.0, "dlmc": 12.5}}
    return {"sweep": sweep, "dimension": dim, "panels": panels, "combinatorial": table,
            "approximation_ratio": {"mis": {"rwm": 0.9, "gwg": 1.0}}, "brute_force_optimum": {"mis": 6.0}}


def test_judge_follows_the_numbers():
    config = load_config("discs")
    assert [f.passed for f in repro.judge(config, _metrics(config))] == [True] * 4
    verdicts = lambda **kw: {f.claim: f.passed for f in repro.judge(config, _metrics(config, **kw))}  # noqa: E731
    # no crossover: sqrt better everywhere, or t/(t+1) better everywhere
    assert not verdicts(sqrt_lo=1.2, sqrt_hi=1.1)["crossover"]
    assert not verdicts(sqrt_lo=0.9, sqrt_hi=0.8)["crossover"]
    # each half must be resolved: a ratio within noise of 1 is no win
    assert not verdicts(sqrt_lo=1.02, sqrt_hi=0.8)["crossover"]
    assert not verdicts(sqrt_lo=1.2, sqrt_hi=0.98)["crossover"]
    # ratios 1.2 and 0.8 with each arm's s.e. 20% of its ESS: 1.2 standard errors, not resolved
    assert not verdicts(se=0.02)["crossover"] and verdicts(se=0.001)["crossover"]
    # RWM decays slower than the others' -0.5
    assert not verdicts(rwm_slope=-0.4)["dimension"]
    m = _metrics(config)
    m["panels"]["potts"]["gwg"] = 0.2  # DLMC 0.09 < 85% of the best
    m["combinatorial"]["mis"]["rwm"] = 20.0  # the non-gradient mean now exceeds the gradient one
    v = {f.claim: f.passed for f in repro.judge(config, m)}
    assert not v["dlmc_best"] and not v["mis"] and v["crossover"] and v["dimension"]


def test_judge_reports_the_ratios_and_slopes():
    config = load_config("discs", quick=True)
    f = {f.claim: f for f in repro.judge(config, _metrics(config, rwm_slope=-1.0))}
    ours = f["crossover"].ours
    # two samplers, each ratio's log s.e. sqrt((0.002/0.12)² + (0.002/0.1)²) = 0.026, their mean's 0.018
    assert "1.200 ± 0.022 at λ=0.3214 (high T, +9.9 s.e.: sqrt(t) better)" in ours, ours
    assert "0.800 ± 0.018 at λ=0.7607 (low T, -9.9 s.e.: t/(t+1) better)" in ours, ours
    f = {f.claim: f for f in repro.judge(config, _metrics(config, sqrt_lo=1.01))}
    assert "not resolved" in f["crossover"].ours and not f["crossover"].passed
    assert "rwm -1.00" in f["dimension"].ours and "dlmc -0.50" in f["dimension"].ours
    assert "best/optimum" in f["mis"].detail
    assert repro._slope([5, 10], [1.0, 0.25]) == pytest.approx(-1.0)
    assert repro._ess_per_step([10.0, float("nan")], 40) == pytest.approx((0.25, 0.25 / math.sqrt(2)))


def check_run(result, config, workdir):
    """End-to-end checks of a run (the notebook's, at tests/notebook_overrides/discs.txt sizes): every
    measurement is there, finite and logged, the figures were written, the verdicts are ``judge`` of the
    measured numbers, and the annealed objectives are feasible."""
    assert [f.claim for f in result.findings] == [c.key for c in repro.CLAIMS]
    assert [f.passed for f in result.findings] == [f.passed for f in repro.judge(config, result.metrics)]
    for name in result.figures:
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG", name
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    split = lambda s: [r for r in rows if r["split"] == s]  # noqa: E731
    sw, dm, pn, cb = config.sweep, config.dimension, config.panels, config.combinatorial
    assert len(split("sweep")) == 2 * len(sw.samplers) * len(sw.inverse_temperatures)
    assert len(split("dimension")) == len(dm.samplers) * len(dm.sides)
    assert len(split("panel")) == 3 * len(pn.samplers)
    assert len(split("combinatorial")) == len(cb.problems) * len(cb.samplers)
    m = result.metrics
    for name in sw.samplers:
        for key in ("sqrt", "barker", "sqrt_se", "barker_se"):
            v = np.asarray(m["sweep"][name][key])
            assert v.shape == (len(sw.inverse_temperatures),) and np.all(np.isfinite(v) & (v >= 0)), (name, key, v)
    for name in dm.samplers:
        assert len(m["dimension"][name]) == len(dm.sides) and np.all(np.isfinite(m["dimension"][name]))
    assert set(m["panels"]) == {"ising", "potts", "bernoulli"}
    for panel in m["panels"].values():
        assert set(panel) == set(pn.samplers) and all(np.isfinite(v) and v >= 0 for v in panel.values())
    for problem, best in m["combinatorial"].items():
        assert set(best) == set(cb.samplers)
        if problem == "mis":  # set sizes
            assert all(0 <= v <= cb.num_nodes for v in best.values()), best
    for problem, ratios in m["approximation_ratio"].items():  # best found on the small graph: at most its optimum
        assert all(0 < r <= 1 + 1e-6 for r in ratios.values()), (problem, ratios)
    assert "| problem |" in result.notes
