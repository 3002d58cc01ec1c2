"""benchmarks/discs.py end to end at tiny sizes, run as a user runs it (a subprocess, one device)."""

import os
import subprocess
import sys

import pytest

# two samplers (each one more XLA compile); every sampler is checked against exact enumeration in tests/discrete
TINY = ["--sides", "3", "--chains", "4", "--steps", "20", "--samplers", "rwm", "dlmc"]


@pytest.mark.slow
def test_discs_benchmark_runs_and_prints_its_table(repo_root):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device, as a user has
    out = subprocess.run([sys.executable, str(repo_root / "benchmarks" / "discs.py"), *TINY],
                         capture_output=True, text=True, cwd=repo_root, env=env, timeout=600)
    assert out.returncode == 0, out.stderr[-4000:]
    text = out.stdout
    assert "**Ising 3x3 (d=9), λ=0.5, μ=0.5**" in text
    assert "| sampler | ESS/step | ESS/eval |" in text
    for name in ("rwm (baseline)", "dlmc"):
        assert f"| {name} |" in text, name
    assert "| rwm (baseline) |" in text and "| 1.00x |" in text
