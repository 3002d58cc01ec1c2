"""benchmarks/attention.py and benchmarks/train_step.py end to end at tiny sizes, run as a user runs
them (a subprocess, one device): their equality checks pass and every table row is printed."""

import os
import subprocess
import sys

import pytest


def _run(repo_root, script, args):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device, as a user has
    out = subprocess.run([sys.executable, str(repo_root / "benchmarks" / script), *args],
                         capture_output=True, text=True, cwd=repo_root, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    return out.stdout


@pytest.mark.slow
def test_attention_benchmark_checks_agreement_and_prints_both_tables(repo_root):
    text = _run(repo_root, "attention.py",
                ["--batch", "2", "--seq", "8", "--d-model", "16", "--heads", "2", "--warmup", "1", "--repeats", "2"])
    assert "outputs and gradients agree" in text, text
    for title in ("**forward, batch 2, seq 8, d_model 16, 2 heads**",
                  "**forward+backward, batch 2, seq 8, d_model 16, 2 heads**"):
        assert title in text, text
    for row in ("| flax MHA (baseline) |", "| nips23jax CausalSelfAttention |", "| jax.nn.dot_product_attention |"):
        assert text.count(row) == 2, text


@pytest.mark.slow
def test_train_step_benchmark_prints_its_table(repo_root):
    text = _run(repo_root, "train_step.py", ["--batch", "2", "--seq", "8", "--d-model", "16", "--heads", "2",
                                             "--layers", "1", "--vocab", "32", "--warmup", "1", "--repeats", "2"])
    for row in ("| plain jax.jit (baseline) |", "| make_train_step (donate) |", "| make_train_step (no donate) |"):
        assert row in text, text
