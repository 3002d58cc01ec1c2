"""benchmarks/gp.py end to end at tiny sizes, run as a user runs it (a subprocess, one device)."""

import pytest

TINY = ["--sizes", "150", "--dim", "2", "--num-test", "50", "--sgd-steps", "60", "--check-every", "20",
        "--batch-size", "32", "--samples", "4", "--samples-steps", "10", "--cg-max-iters", "50",
        "--cholesky-max-n", "200", "--slack", "10", "--no-peer"]


@pytest.mark.slow
def test_gp_benchmark_runs_and_prints_its_tables(run_benchmark):
    text = run_benchmark("gp.py", TINY, timeout=600)
    assert "**time to target test RMSE**" in text
    assert text.count("| 150 | ") == 2 and "| 150 | fitted (0.1) |" in text and "| 150 | low (1e-06) |" in text
    # with a 10x slack every solver reaches the target, so the SGD cell is a time, not "not reached"
    assert "not reached" not in text and "(reaches target)" in text
    assert "mean + 4 samples" in text and "goal <= 3.0x" in text
    assert "peer: gpytorch not importable (or --no-peer)" in text
