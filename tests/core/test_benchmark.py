"""Tests of nips23jax.core.benchmark against independent references (sleeps, call logs)."""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import pytest

from nips23jax.core.benchmark import Row, Timing, benchmark_parser, compare, format_table, time_fn


def _sleeper(seconds):
    return lambda: time.sleep(seconds)


def test_time_fn_measures_a_known_sleep():
    t = time_fn(time.sleep, 0.010, warmup=1, repeats=5)
    assert isinstance(t, Timing)
    assert len(t.samples) == 5
    assert 0.009 <= t.median <= 0.040
    assert 0.009 <= t.min <= t.median
    assert t.iqr >= 0.0


def test_time_fn_call_count_and_arguments():
    calls = []
    t = time_fn(lambda a, *, b: calls.append((a, b)), 1, b=2, warmup=3, repeats=4, number=5)
    assert calls == [(1, 2)] * (3 + 4 * 5)
    assert len(t.samples) == 4


def test_time_fn_number_reports_seconds_per_call():
    t = time_fn(time.sleep, 0.005, warmup=0, repeats=2, number=3)
    assert 0.0045 <= t.median <= 0.025


def test_time_fn_waits_for_jax_outputs():
    f = jax.jit(lambda x: jnp.tanh(x @ x))
    x = jnp.ones((64, 64))
    t = time_fn(f, x, repeats=3)
    assert t.median > 0.0 and all(s > 0.0 for s in t.samples)


def test_summary_statistics_of_samples():
    # min <= 25th pct <= median <= 75th pct, and IQR bounded by the range.
    t = time_fn(time.sleep, 0.001, warmup=0, repeats=7)
    s = sorted(t.samples)
    assert t.min == s[0]
    assert t.median == s[3]
    assert 0.0 <= t.iqr <= s[-1] - s[0]


def test_compare_ratios_against_sleep_lengths():
    # 20 vs 40 ms: long enough that scheduling delays on a loaded machine (5 vs 10 ms once timed 1.0x) stay small
    rows = compare({"short": _sleeper(0.020), "long": _sleeper(0.040)}, "short", warmup=1, repeats=5)
    assert [r.name for r in rows] == ["short", "long"]
    assert all(isinstance(r, Row) for r in rows)
    by_name = {r.name: r for r in rows}
    assert by_name["short"].ratio == 1.0
    assert 1.4 <= by_name["long"].ratio <= 3.5
    assert by_name["long"].ratio == pytest.approx(by_name["long"].median / by_name["short"].median)
    assert by_name["long"].median == by_name["long"].timing.median


@pytest.mark.parametrize("interleave", [True, False])
def test_compare_sample_order(interleave):
    log = []
    cases = {n: (lambda n=n: log.append(n)) for n in "abc"}
    compare(cases, "a", warmup=1, repeats=4, interleave=interleave)
    warm, timed = log[:3], log[3:]
    assert warm == ["a", "b", "c"]
    if interleave:
        # One sample of each case per round, the first case rotating.
        assert timed == list("abc" "bca" "cab" "abc")
    else:
        assert timed == list("aaaabbbbcccc")


def test_compare_rejects_bad_inputs():
    cases = {"x": _sleeper(0.0)}
    with pytest.raises(ValueError, match="'nope'"):
        compare(cases, "nope", repeats=1)
    with pytest.raises(ValueError, match="repeats"):
        compare(cases, "x", repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        compare(cases, "x", warmup=-1)
    with pytest.raises(ValueError, match="number"):
        compare(cases, "x", number=0)
    with pytest.raises(ValueError, match="empty"):
        compare({}, "x")
    with pytest.raises(TypeError, match="'x'"):
        compare({"x": 3}, "x")


def test_time_fn_rejects_bad_inputs():
    with pytest.raises(ValueError, match="repeats"):
        time_fn(time.sleep, 0.0, repeats=0)
    with pytest.raises(ValueError, match="warmup"):
        time_fn(time.sleep, 0.0, warmup=-2)
    with pytest.raises(ValueError, match="number"):
        time_fn(time.sleep, 0.0, number=0)
    with pytest.raises(TypeError, match="callable"):
        time_fn("not a function")


def test_format_table_lists_every_case():
    rows = compare({"base": _sleeper(0.0), "other case": _sleeper(0.001)}, "base", warmup=0, repeats=2)
    table = format_table(rows, title="my title", baseline="base")
    lines = table.splitlines()
    assert lines[0] == "**my title**"
    assert "ratio vs base" in table and "median ms" in table
    assert "| base (baseline) |" in table and "| other case |" in table
    assert lines[-2].rstrip().endswith("| 1.00 |")
    assert len([ln for ln in lines if ln.startswith("|")]) == 2 + len(rows)
    assert "ratio vs baseline" in format_table(rows)
    with pytest.raises(ValueError, match="'zzz'"):
        format_table(rows, baseline="zzz")
    with pytest.raises(ValueError, match="empty"):
        format_table([])


def test_benchmark_parser_shared_knobs_and_description():
    p = benchmark_parser("Times X against Y.\n\nLonger text.", warmup=3, repeats=7)
    assert p.description == "Times X against Y."
    args = p.parse_args([])
    assert (args.warmup, args.repeats, args.seed) == (3, 7, 0) and not hasattr(args, "number")
    assert benchmark_parser(None, number=4).parse_args(["--number", "5", "--seed", "2"]).number == 5
    with pytest.raises(ValueError, match="repeats must be an int >= 1"):
        benchmark_parser("x", repeats=0)
