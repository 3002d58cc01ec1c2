import json

import numpy as np
import pytest

from nips23jax.core.config import load_config
from nips23jax.reproductions import discs as repro

TINY = [
    "sweep.side=4", "sweep.steps=60", "sweep.chains=4",
    "dimension.sides=[3,5]", "dimension.steps=60", "dimension.chains=4",
    "panels.ising_side=3", "panels.potts_side=3", "panels.bernoulli_sites=9", "panels.steps=60", "panels.chains=4",
    'panels.samplers=["dlmc"]',
    "combinatorial.num_nodes=12", 'combinatorial.samplers=["rwm","dlmc"]', "combinatorial.steps=40",
    "combinatorial.stages=4", "combinatorial.chains=4",
]


def test_quick_config_differs_from_full():
    quick, full = load_config("discs", quick=True), load_config("discs")
    assert quick.sweep.steps < full.sweep.steps and full.panels.ising_side == 50 and full.panels.chains == 100
    assert set(full.panels.samplers) == {"rwm", "gibbs", "block_gibbs", "hamming_ball", "gwg", "pas", "dmala", "dlmc"}
    assert min(full.sweep.inverse_temperatures) < repro.LAMBDA_C < max(full.sweep.inverse_temperatures)


@pytest.mark.slow
def test_run_writes_findings_figures_and_log(tmp_path):
    config = load_config("discs", quick=True, overrides=TINY)
    result = repro.run(config, tmp_path, progress=False)
    assert [f.claim for f in result.findings] == [c.key for c in repro.CLAIMS]
    for name in result.figures:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"sweep", "dimension", "panel", "combinatorial"}
    m = result.metrics
    # verdicts follow the numbers (nothing has converged at this size)
    s = m["sweep"]
    assert result.findings[0].passed == (s["sqrt"][0] >= s["barker"][0] and s["barker"][-1] > s["sqrt"][-1])
    mis = m["combinatorial"]["mis"]
    assert result.findings[3].passed == (mis["dlmc"] > mis["rwm"])
    assert np.isfinite(list(m["panels"]["ising"].values())).all()
    # the annealed MIS sizes are feasible-set sizes of a 12-node graph
    assert all(0 <= v <= 12 for v in mis.values())
