"""A small benchmark harness: wall-clock timings and side-by-side ratios against a baseline.

Timings on a shared machine drift by tens of percent from one minute to the next, so the number
worth reporting is a *ratio* of two cases measured in the same run, not an absolute time.
:func:`compare` therefore interleaves the repeats of all cases round-robin (and rotates which
case goes first in each round), so that a burst of machine noise hits every case alike, and
reports ``median / baseline median``.

* :func:`time_fn` -- warm up (compile), then time ``repeats`` samples of ``number`` calls each,
  waiting for every output with ``jax.block_until_ready`` (JAX dispatches asynchronously).
* :func:`compare` -- time several zero-argument cases and return :class:`Row` s with ratios.
* :func:`format_table` -- the rows as a markdown table, for a benchmark script to print.
* :func:`benchmark_parser` -- a script's command line with the shared timing knobs
  (``--warmup --repeats [--number] --seed``).

Example::

    f = jax.jit(lambda x: jnp.sin(x) @ x)
    g = jax.jit(lambda x: jnp.cos(x) @ x)
    x = jnp.ones((256, 256))
    print(time_fn(f, x).median)                      # seconds per call
    rows = compare({"sin": lambda: f(x), "cos": lambda: g(x)}, baseline="sin", repeats=20)
    print(format_table(rows, title="sin vs cos", baseline="sin"))
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import jax
import numpy as np

__all__ = ["Row", "Timing", "compare", "format_table", "time_fn"]


class Timing(NamedTuple):
    """Summary of repeated wall-clock measurements, all in seconds per call.

    Attributes:
      median: median of ``samples``.
      min: fastest sample.
      iqr: interquartile range (75th minus 25th percentile) of ``samples``, a noise gauge.
      samples: every sample, in the order measured (each the mean of ``number`` calls).
    """

    median: float
    min: float
    iqr: float
    samples: tuple[float, ...]


class Row(NamedTuple):
    """One case of :func:`compare`.

    Attributes:
      name: the case's key in ``cases``.
      median: median seconds per call.
      ratio: ``median / baseline median`` (exactly 1.0 on the baseline row).
      timing: the full :class:`Timing` of the case.
    """

    name: str
    median: float
    ratio: float
    timing: Timing


def _check_counts(where: str, warmup: int, repeats: int, number: int) -> None:
    for arg, value, least in (("warmup", warmup, 0), ("repeats", repeats, 1), ("number", number, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{where}: {arg} must be an int >= {least}, got {value!r}")


def _summarize(samples: Sequence[float]) -> Timing:
    q25, q75 = np.percentile(np.asarray(samples, dtype=float), [25.0, 75.0])
    return Timing(
        median=float(statistics.median(samples)),
        min=float(min(samples)),
        iqr=float(q75 - q25),
        samples=tuple(float(s) for s in samples),
    )


def _sample(fn: Callable[..., Any], args: tuple, kwargs: dict, number: int) -> float:
    """Seconds per call of ``number`` back-to-back calls, each waited for."""
    start = time.perf_counter()
    for _ in range(number):
        jax.block_until_ready(fn(*args, **kwargs))
    return (time.perf_counter() - start) / number


def time_fn(
    fn: Callable[..., Any],
    *args: Any,
    warmup: int = 2,
    repeats: int = 10,
    number: int = 1,
    **kwargs: Any,
) -> Timing:
    """Wall-clock time of ``fn(*args, **kwargs)``.

    ``fn`` is called ``warmup`` times untimed (this is where ``jax.jit`` compiles), then
    ``repeats`` samples are taken, each the mean over ``number`` calls. Every call's output is
    passed to ``jax.block_until_ready``, so the time covers the computation and not only its
    asynchronous dispatch.

    Args:
      fn: the function to time; its outputs may be any pytree (non-array leaves are fine).
      *args: positional arguments for ``fn``.
      warmup: untimed calls first (>= 0).
      repeats: number of samples (>= 1).
      number: calls per sample (>= 1); raise it for functions faster than ~100 µs.
      **kwargs: keyword arguments for ``fn`` (other than ``warmup``, ``repeats``, ``number``).

    Returns:
      A :class:`Timing` in seconds per call.

    Raises:
      TypeError: ``fn`` is not callable.
      ValueError: ``warmup < 0``, ``repeats < 1`` or ``number < 1``.

    Example::

        t = time_fn(jax.jit(jnp.linalg.inv), jnp.eye(512), repeats=20)
        print(f"{t.median * 1e3:.2f} ms (IQR {t.iqr * 1e3:.2f} ms)")
    """
    if not callable(fn):
        raise TypeError(f"time_fn: fn must be callable, got {type(fn).__name__}")
    _check_counts("time_fn", warmup, repeats, number)
    for _ in range(warmup):
        jax.block_until_ready(fn(*args, **kwargs))
    return _summarize([_sample(fn, args, kwargs, number) for _ in range(repeats)])


def compare(
    cases: Mapping[str, Callable[[], Any]],
    baseline: str,
    *,
    warmup: int = 2,
    repeats: int = 10,
    number: int = 1,
    interleave: bool = True,
) -> list[Row]:
    """Times every case and reports each median as a ratio to the baseline's.

    With ``interleave=True`` the samples are taken round-robin: round ``r`` takes one sample of
    every case, starting from case ``r mod len(cases)``, so slow drifts and noise bursts of the
    machine spread evenly over the cases instead of landing on whichever ran last. With
    ``interleave=False`` each case is timed to completion in turn (as :func:`time_fn` would).

    Args:
      cases: ``{name: zero-argument callable}``; bind inputs with a lambda or
        ``functools.partial``. A case may keep its own state between calls (e.g. a training
        step whose state is donated each call).
      baseline: the name of the case every ratio is relative to.
      warmup: untimed calls of each case before any timing (>= 0).
      repeats: samples per case (>= 1).
      number: calls per sample (>= 1).
      interleave: take samples round-robin across cases.

    Returns:
      One :class:`Row` per case, in the order of ``cases``; ``ratio`` is ``median / baseline
      median`` (exactly 1.0 on the baseline; > 1 means slower than the baseline).

    Raises:
      TypeError: a case is not callable.
      ValueError: ``cases`` is empty, ``baseline`` is not one of its names, or a count is out
        of range.

    Example::

        rows = compare({"flax": run_flax, "ours": run_ours}, baseline="flax", repeats=30)
        assert rows[0].ratio == 1.0
    """
    if not cases:
        raise ValueError("compare: cases is empty; pass {name: zero-argument callable}")
    if baseline not in cases:
        raise ValueError(f"compare: baseline {baseline!r} is not one of the cases {sorted(cases)}")
    for name, fn in cases.items():
        if not callable(fn):
            raise TypeError(f"compare: case {name!r} is not callable (got {type(fn).__name__})")
    _check_counts("compare", warmup, repeats, number)

    names = list(cases)
    for name in names:
        for _ in range(warmup):
            jax.block_until_ready(cases[name]())
    samples: dict[str, list[float]] = {name: [] for name in names}
    if interleave:
        for r in range(repeats):
            shift = r % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(_sample(cases[name], (), {}, number))
    else:
        for name in names:
            samples[name] = [_sample(cases[name], (), {}, number) for _ in range(repeats)]

    timings = {name: _summarize(samples[name]) for name in names}
    base = timings[baseline].median
    rows = []
    for name in names:
        if name == baseline:
            ratio = 1.0
        else:
            ratio = timings[name].median / base if base > 0 else math.inf
        rows.append(Row(name=name, median=timings[name].median, ratio=ratio, timing=timings[name]))
    return rows


def format_table(rows: Sequence[Row], title: str | None = None, *, baseline: str | None = None) -> str:
    """The rows of :func:`compare` as a markdown table.

    Columns: ``case | median ms | IQR ms | ratio vs <baseline>``; the IQR shows how noisy a
    median is, so a ratio within a few IQRs of 1 is no difference.

    Args:
      rows: from :func:`compare`.
      title: an optional line printed above the table (``**title**``).
      baseline: the baseline's name, used in the ratio column's header and marked in its row;
        defaults to a generic header.

    Returns:
      The table as one string (no trailing newline).

    Raises:
      ValueError: ``rows`` is empty, or ``baseline`` names no row.

    Example::

        print(format_table(compare(cases, "flax"), title="attention, forward", baseline="flax"))
    """
    rows = list(rows)
    if not rows:
        raise ValueError("format_table: rows is empty")
    if baseline is not None and baseline not in {r.name for r in rows}:
        raise ValueError(f"format_table: baseline {baseline!r} names no row ({[r.name for r in rows]})")
    header = f"ratio vs {baseline}" if baseline is not None else "ratio vs baseline"
    lines = [] if title is None else [f"**{title}**", ""]
    lines += [f"| case | median ms | IQR ms | {header} |", "|---|---:|---:|---:|"]
    for r in rows:
        name = f"{r.name} (baseline)" if r.name == baseline else r.name
        lines.append(f"| {name} | {r.median * 1e3:.3f} | {r.timing.iqr * 1e3:.3f} | {r.ratio:.2f} |")
    return "\n".join(lines)


def benchmark_parser(
    doc: str | None, *, warmup: int = 2, repeats: int = 30, number: int | None = None
) -> argparse.ArgumentParser:
    """A benchmark script's argument parser, with the timing knobs every script shares.

    Args:
      doc: the script's module docstring; its first paragraph becomes ``--help``'s description.
      warmup: default of ``--warmup`` (untimed calls that compile).
      repeats: default of ``--repeats`` (timed samples per case).
      number: default of ``--number`` (calls per timing sample); ``None`` leaves the option out.

    Returns:
      An ``argparse.ArgumentParser`` with ``--warmup``, ``--repeats``, ``--number`` (if asked for) and
      ``--seed`` (default 0); the script adds its sizes.
    """
    for name, value in (("warmup", warmup), ("repeats", repeats), ("number", number)):
        if value is not None and (not isinstance(value, int) or value < (0 if name == "warmup" else 1)):
            raise ValueError(f"benchmark_parser: {name} must be an int >= {0 if name == 'warmup' else 1}, got {value!r}")
    p = argparse.ArgumentParser(description=(doc or "").strip().split("\n\n")[0] or None)
    p.add_argument("--warmup", type=int, default=warmup, help="untimed calls per case (compilation)")
    p.add_argument("--repeats", type=int, default=repeats, help="timed samples per case")
    if number is not None:
        p.add_argument("--number", type=int, default=number, help="calls per timing sample")
    p.add_argument("--seed", type=int, default=0, help="PRNG seed of the inputs")
    return p
