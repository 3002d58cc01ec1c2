"""benchmarks/discs.py: its DISCS reference (recorded results, sampler mapping, DISCS' Ising) and a
user's command line end to end at tiny sizes."""

import importlib.util
import itertools
import json

import jax
import numpy as np
import pytest


@pytest.fixture(scope="module")
def bench(repo_root):
    spec = importlib.util.spec_from_file_location("bench_discs", repo_root / "benchmarks" / "discs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_discs_recorded_results_load_and_every_row_maps_to_our_variant(bench):
    raw = json.loads(bench.DISCS_RESULTS.read_text())
    ref = bench.load_discs_results()
    assert sorted(r["sampler"] for r in raw["rows"]) == sorted(bench.DISCS_TO_OURS)  # 12 runs, each mapped once
    assert ref["config"]["model"] == {"name": "ising", "shape": [50, 50], "lambdaa": 0.5, "mu": 0.5, "init_sigma": 1.5,
                                      "external_field_type": 1, "num_categories": 2}
    exp = ref["config"]["experiment"]
    for variant, row in ref["rows"].items():
        name, kw = bench.parse_variant(variant)
        cfg = row["sampler_config"]
        assert kw.get("balancing", "sqrt") == {"SQRT": "sqrt", "RATIO": "barker"}.get(cfg.get("balancing_fn_type"), "sqrt")
        assert kw.get("solver", "interpolate") == {"euler_forward": "euler"}.get(cfg.get("solver"), "interpolate")
        assert name in row["run"] or (name, row["run"].split("name='")[1].split("'")[0]) in {
            ("rwm", "randomwalk"), ("block_gibbs", "blockgibbs"), ("pas", "path_auxiliary")}
        # DISCS' ESS_M-H is its mean ESS over chain_length * ess_ratio (the 50,000 kept steps)
        np.testing.assert_allclose(row["ESS_M-H"], row["ESS"] / (exp["chain_length"] * exp["ess_ratio"]), rtol=1e-6)
    assert ref["rows"]["gwg"]["ESS_M-H"] == pytest.approx(0.0029079411)


def test_discs_reference_only_for_the_recorded_model(bench):
    args = bench.parse_args(["--samplers", "discs"])
    assert sorted(args.samplers) == sorted(bench.DISCS_TO_OURS.values())
    assert len(bench.discs_reference(args, 50)) == 12
    assert bench.discs_reference(args, 20) == {}
    assert bench.discs_reference(bench.parse_args(["--model", "nips23jax"]), 50) == {}
    assert bench.discs_reference(bench.parse_args(["--mu", "1.0"]), 50) == {}
    with pytest.raises(ValueError, match="barker"):
        bench.parse_variant("rwm:barker")
    with pytest.raises(ValueError, match="unknown sampler"):
        bench.parse_variant("gwgg")


def test_discs_ising_matches_discs_definition_naively(bench):
    # DISCS' forward pass: every site adds λ s_i s_j for each lattice neighbour j (so each edge twice)
    # and w_i s_i with w = -(U(-1.5, 1.5) + μ (+1 inside the disc (i/h-½)²+(j/w-½)² < 1/(2π), else -1))
    side, lam, mu, key = 6, 0.5, 0.5, jax.random.key(3)
    model = bench.discs_ising(side, lam, mu, key)
    u = np.asarray(jax.random.uniform(key, (side, side), minval=-1.5, maxval=1.5), float)
    x = np.random.default_rng(0).integers(0, 2, (side, side))
    s = 2 * x - 1
    total = 0.0
    for i, j in itertools.product(range(side), range(side)):
        for a, b in ((i - 1, j), (i + 1, j), (i, j - 1), (i, j + 1)):
            if 0 <= a < side and 0 <= b < side:
                total += lam * s[i, j] * s[a, b]
        inside = (i / side - 0.5) ** 2 + (j / side - 0.5) ** 2 < 0.5 / np.pi
        total += -(u[i, j] + mu * (1 if inside else -1)) * s[i, j]
    assert float(model.log_prob(x.reshape(-1))) == pytest.approx(total, rel=1e-5)


@pytest.mark.slow
def test_discs_benchmark_runs_and_prints_its_table(run_benchmark):
    # --time-steps == --steps: the timed runs reuse the compiled loop of the ESS run
    text = run_benchmark("discs.py", ["--sides", "3", "--chains", "8", "--steps", "20", "--time-steps", "20",
                                      "--warmup", "1", "--repeats", "1", "--samplers", "rwm", "gwg:barker"])
    assert "**Ising 3x3 (d=9), discs model, λ=0.5, μ=0.5**" in text
    assert "| sampler | ESS/step (± s.e.) | ESS/eval |" in text
    for name in ("rwm (baseline)", "gwg:barker"):
        assert f"| {name} |" in text, name
    assert "| 1.00x |" in text
