"""The discs reproduction without running it: configs and the verdicts (``judge``) on given numbers.

The end-to-end run (findings, figures, metrics.jsonl, verdicts equal to ``judge`` of the measured
numbers, feasible annealing results) is the notebook test's sanity-check cell
(``pytest tests/test_notebooks.py -k discs``), which runs the same code at the same tiny sizes.
"""

import math

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


def _metrics(config, sqrt_lo=1.2, sqrt_hi=0.8, rwm_slope=-1.0):
    """Synthetic measurements: ESS per step with the given sqrt/barker ratios and RWM slope."""
    lams, sides = config.sweep.inverse_temperatures, config.dimension.sides
    n = len(lams)
    ratio = [sqrt_lo + (sqrt_hi - sqrt_lo) * i / (n - 1) for i in range(n)]
    sweep = {s: {"sqrt": [0.1 * r for r in ratio], "barker": [0.1] * n, "sqrt_se": [0.01] * n, "barker_se": [0.01] * n}
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
    assert "1.200 at λ=0.1607" in f["crossover"].ours and "0.800 at λ=0.7607" in f["crossover"].ours
    assert "rwm -1.00" in f["dimension"].ours and "dlmc -0.50" in f["dimension"].ours
    assert "best/optimum" in f["mis"].detail
    assert repro._slope([5, 10], [1.0, 0.25]) == pytest.approx(-1.0)
    assert repro._ess_per_step([10.0, float("nan")], 40) == pytest.approx((0.25, 0.25 / math.sqrt(2)))
