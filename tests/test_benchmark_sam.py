"""benchmarks/sam.py end to end at tiny sizes, run as a user runs it (a subprocess, one device)."""

import pytest

TINY = [
    "--input", "4", "--width", "16", "--batch", "8",
    "--hess-input", "3", "--hess-width", "4", "--hess-batch", "8", "--samples", "3", "--keys", "2",
    "--warmup", "1", "--repeats", "2", "--number", "1", "--steps-per-call", "2",
]


@pytest.mark.slow
def test_sam_benchmark_runs_and_prints_its_tables(run_benchmark):
    text = run_benchmark("sam.py", TINY)
    # The equality checks ran (they print their result in the header line) ...
    assert "one step of nips23jax sam equals one step of optax.contrib.sam" in text
    assert "the exact trace" in text and "matches (2/n)" in text
    # ... and every table is there with its rows.
    for title in ("**one optimizer step per jitted call", "**per step, 2 steps in a lax.fori_loop",
                  "**hessian_trace, input 3, width 4, batch 8", "**relative error vs exact, over 2 keys**"):
        assert title in text, text
    for row in ("| base sgd step (baseline) |", "| nips23jax sam (rho=0.05) |", "| optax.contrib.sam |",
                "| nips23jax sam m_sharpness=1 (1-SAM) |", "| exact (baseline) |", "| hutchinson (3 probes) |"):
        assert text.count(row) >= 1, row
    assert text.count("| optax.contrib.sam |") == 2
    assert "SAM/base: " in text and "goal <= 2.1x" in text
