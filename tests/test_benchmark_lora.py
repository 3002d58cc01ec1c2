"""benchmarks/lora.py end to end at tiny sizes, run as a user runs it (a subprocess, one device)."""

import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_lora_benchmark_runs_and_prints_its_tables(repo_root):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    args = ["--d-model", "32", "--layers", "1", "--seq", "8", "--batch", "2", "--rank", "2", "--vocab", "16",
            "--warmup", "1", "--repeats", "2"]
    out = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "lora.py"), *args],
                         capture_output=True, text=True, cwd=repo_root, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    text = out.stdout
    assert "(equal: B = 0)" in text and "**one training step" in text and "**memory" in text
    assert "| full fine-tune (baseline) |" in text and "| full fine-tune | 13,536 | 100.00% |" in text
    for name in ("LoRA", "QLoRA (NF4+DQ base)"):
        assert text.count(f"| {name} |") == 2, name  # a timing row and a memory row
    # LoRA rank 2 on q, k, v, out (32x32) and fc1, fc2 (32x128): 2·(4·64 + 2·160) adapter params
    assert "| LoRA | 1,152 |" in text
