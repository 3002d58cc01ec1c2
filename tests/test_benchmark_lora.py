"""benchmarks/lora.py end to end at tiny sizes, run as a user runs it (a subprocess, one device)."""

import pytest


@pytest.mark.slow
def test_lora_benchmark_runs_and_prints_its_tables(run_benchmark):
    args = ["--d-model", "32", "--layers", "1", "--seq", "8", "--batch", "2", "--rank", "2", "--vocab", "16",
            "--warmup", "1", "--repeats", "2"]
    # This checks that the script runs and reports, not its timings: XLA's cheapest code generation cuts
    # the three train steps' compile time and passes the same checks.
    text = run_benchmark("lora.py", args, xla_flags="--xla_backend_optimization_level=0")
    assert "(equal: B = 0)" in text and "**one training step" in text and "**memory" in text
    assert "| full fine-tune (baseline) |" in text and "| full fine-tune | 13,536 | 100.00% |" in text
    for name in ("LoRA", "QLoRA (NF4+DQ base)"):
        assert text.count(f"| {name} |") == 2, name  # a timing row and a memory row
    # LoRA rank 2 on q, k, v, out (32x32) and fc1, fc2 (32x128): 2·(4·64 + 2·160) adapter params
    assert "| LoRA | 1,152 |" in text
