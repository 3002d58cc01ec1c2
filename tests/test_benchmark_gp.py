"""benchmarks/gp.py end to end at tiny sizes, run as a user runs it (a subprocess, one device)."""

import json

import pytest

TINY = ["--sizes", "150", "--dim", "2", "--num-test", "50", "--sgd-steps", "60", "--check-every", "20",
        "--batch-size", "32", "--samples", "4", "--samples-steps", "10", "--cg-max-iters", "50",
        "--cholesky-max-n", "200", "--slack", "10", "--no-peer", "--warmup", "0", "--repeats", "1"]


@pytest.mark.slow
def test_gp_benchmark_runs_and_prints_its_tables(run_benchmark, tmp_path):
    curves = tmp_path / "race.json"
    text = run_benchmark("gp.py", TINY + ["--json", str(curves)], timeout=600)
    assert "**time to target test RMSE**" in text
    assert text.count("| 150 | ") == 2 and "| 150 | fitted (0.1) |" in text and "| 150 | low (1e-06) |" in text
    # with a 10x slack every solver reaches the target (the exact RMSE's), so each cell is a time
    assert "not reached" not in text and text.count("(exact)") == 2
    assert "curve n=150 fitted: SGD" in text and "curve n=150 low: CG" in text
    rows = json.loads(curves.read_text())
    assert [r["noise"] for r in rows] == ["fitted", "low"]
    for r in rows:
        # CG's curve has one point per iteration; SGD's one per check, at increasing step counts
        assert len(r["cg_curve"]) == r["cg_iterations"] >= 1
        assert [p[1] for p in r["sgd_curve"]] == sorted(p[1] for p in r["sgd_curve"])
        assert r["target"] == pytest.approx(11 * r["reference"])
        assert r["cg_hit"] is not None and r["sgd_hit"] is not None
    assert "mean + 4 samples" in text and "goal <= 3.0x" in text
    assert "peer: gpytorch not importable (or --no-peer)" in text
