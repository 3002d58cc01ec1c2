"""benchmarks/attention.py and benchmarks/train_step.py end to end at tiny sizes, run as a user runs
them (a subprocess, one device): their equality checks pass and every table row is printed.

Low XLA optimization: these check that the scripts run, agree and print, not their speed."""

import pytest

FAST_XLA = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"


@pytest.mark.slow
def test_attention_benchmark_checks_agreement_and_prints_both_tables(run_benchmark):
    text = run_benchmark("attention.py", ["--batch", "2", "--seq", "8", "--d-model", "16", "--heads", "2",
                                          "--warmup", "1", "--repeats", "2"], xla_flags=FAST_XLA)
    assert "outputs and gradients agree" in text, text
    for title in ("**forward, batch 2, seq 8, d_model 16, 2 heads**",
                  "**forward+backward, batch 2, seq 8, d_model 16, 2 heads**"):
        assert title in text, text
    for row in ("| flax MHA (baseline) |", "| nips23jax CausalSelfAttention |", "| jax.nn.dot_product_attention |"):
        assert text.count(row) == 2, text


@pytest.mark.slow
def test_train_step_benchmark_prints_its_table(run_benchmark):
    text = run_benchmark("train_step.py", ["--batch", "2", "--seq", "8", "--d-model", "16", "--heads", "2",
                                           "--layers", "1", "--vocab", "32", "--warmup", "1", "--repeats", "2"],
                         xla_flags=FAST_XLA)
    for row in ("| plain jax.jit (baseline) |", "| make_train_step (donate) |", "| make_train_step (no donate) |"):
        assert row in text, text
