"""benchmarks/nf4_matmul.py end to end at tiny sizes, run as a user runs it (a subprocess, one device)."""

import pytest

# 40 x 48: blocks of 64 straddle rows, so the general path is timed too.
TINY = ["--in", "40", "--out", "48", "--batches", "1", "3", "--warmup", "1", "--repeats", "2"]


@pytest.mark.slow
def test_nf4_matmul_benchmark_runs_and_prints_its_tables(run_benchmark):
    # The script runs and reports (its timings are not checked): XLA's cheapest code generation compiles faster.
    text = run_benchmark("nf4_matmul.py", TINY, xla_flags="--xla_backend_optimization_level=0")
    assert "x (batch, 40) @ W (40, 48); W stored as nf4 with double quantization" in text
    for title in ("**batch 1: x (1, 40) @ W (40, 48), nf4_matmul tile 40 rows**",
                  "**batch 3: x (3, 40) @ W (40, 48), nf4_matmul tile 40 rows**",
                  "**ratio vs dense fp32, W (40, 48)**"):
        assert title in text, text
    for row in ("| dense fp32 (baseline) |", "| dense bf16 |", "| dequantize then matmul (fp32) |",
                "| nf4_matmul fp32 |", "| nf4_matmul bf16 |"):
        assert text.count(row) >= 2, row  # one row per batch table (and the summary header)
    assert ("| batch | tile | dense fp32 ms | nf4_matmul fp32 | dense bf16 | nf4_matmul bf16 "
            "| dequantize then matmul (fp32) |") in text
    assert "| 1 | 40 | " in text and "<= 3.0x: " in text and "| 3 | 40 | " in text and "no goal stated" in text
    assert "Scratch memory of the compiled program at batch 3" in text
    assert "Goals for nf4_matmul fp32 / dense fp32" in text
