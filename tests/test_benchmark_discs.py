"""benchmarks/discs.py end to end at tiny sizes: its main() with a user's command line, its printed table."""

import importlib.util

import pytest


@pytest.mark.slow
def test_discs_benchmark_runs_and_prints_its_table(repo_root, capsys):
    spec = importlib.util.spec_from_file_location("bench_discs", repo_root / "benchmarks" / "discs.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    # gwg on the 3x3 DISCS Ising with 8 chains is the program tests/discrete/test_run.py compiles (the
    # run-wide compilation cache shares it); every sampler is checked against exact enumeration there
    bench.main(["--sides", "3", "--chains", "8", "--steps", "20", "--samplers", "rwm", "gwg"])
    text = capsys.readouterr().out
    assert "**Ising 3x3 (d=9), λ=0.5, μ=0.5**" in text
    assert "| sampler | ESS/step | ESS/eval |" in text
    for name in ("rwm (baseline)", "gwg"):
        assert f"| {name} |" in text, name
    assert "| 1.00x |" in text
