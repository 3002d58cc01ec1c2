"""benchmarks/dpo.py end to end at tiny sizes, run as a user runs it (a subprocess, one device)."""

import pytest

TINY = [
    "--batch", "2", "--prompt", "3", "--completion", "4", "--d-model", "16", "--heads", "2", "--layers", "1",
    "--vocab", "11", "--warmup", "1", "--repeats", "2",
]


@pytest.mark.slow
def test_dpo_benchmark_runs_and_prints_its_table(run_benchmark):
    # This checks that the script runs and reports, not its timings: XLA's cheapest code generation
    # halves the four train steps' compile time (~20 s to ~10 s on 2 cores) and passes the same checks.
    text = run_benchmark("dpo.py", TINY, xla_flags="--xla_backend_optimization_level=0")
    # The checks ran (the header line reports them) ...
    assert "DPO with policy == reference gives loss log 2 in both reference modes" in text
    assert "both modes take the same gradient" in text and "the SFT losses match the reference" in text
    # ... and the table is there with every row, the SFT step as the baseline.
    assert "**one training step, 2 pairs, prompt 3 + completion 4 tokens, d_model 16" in text, text
    assert "| case | median ms | IQR ms | ratio vs SFT step |" in text
    for row in ("| SFT step (baseline) | ", "| DPO step, frozen-copy reference | ",
                "| DPO step, precomputed reference logps | ", "| SFT step on chosen + rejected (2B sequences) | "):
        assert text.count(row) == 1, row
    assert text.split("| SFT step (baseline) | ")[1].split("\n")[0].endswith("| 1.00 |")
    assert "DPO/SFT: " in text and "Goal <= 2.1x" in text
