"""A table of training runs (parameters, tokens, unique tokens, final loss) from CSV or JSON.

Accepted layouts:

* CSV with a header naming the columns (case-insensitive; aliases in brackets): ``N``
  [``params``, ``parameters``], ``D`` [``tokens``], ``U_D`` [``unique_tokens``, ``unique``],
  ``loss`` [``final_loss``, ``val_loss``], and optionally ``name``.
* JSON: a list of objects with those keys, or a list of ``[name, N, D, U_D, loss]`` rows (the
  layout of the datablations final-fit runs), or an object of column lists.

Validation: every value must be a finite number > 0; a NaN loss, a non-positive or missing value
raises ``ValueError`` naming the row and the column. ``D < U_D`` is valid (the run stopped before
one epoch; the law treats it as ``D`` unique tokens).

Example::

    runs = load_runs("runs.csv")
    params, r2 = fit_data_constrained(runs.N, runs.D, runs.U_D, runs.loss)
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

__all__ = ["RunsTable", "load_runs", "runs_from_records"]

_COLUMNS = {
    "N": ("n", "params", "parameters"),
    "D": ("d", "tokens"),
    "U_D": ("u_d", "unique_tokens", "unique"),
    "loss": ("loss", "final_loss", "val_loss"),
}


class RunsTable(NamedTuple):
    """Runs as float64 ``(R,)`` columns plus their names."""

    name: tuple[str, ...]
    N: np.ndarray
    D: np.ndarray
    U_D: np.ndarray
    loss: np.ndarray

    def __len__(self) -> int:  # number of runs, not of fields
        return int(self.N.shape[0])


def _column_map(keys: Sequence[str]) -> dict[str, str]:
    lower = {k.strip().lower(): k for k in keys}
    out = {}
    for col, aliases in _COLUMNS.items():
        found = [lower[a] for a in aliases if a in lower]
        if not found:
            raise ValueError(f"runs table: no column for {col!r} (accepted names: {', '.join(aliases)}); got {list(keys)}")
        out[col] = found[0]
    if "name" in lower:
        out["name"] = lower["name"]
    return out


def _number(value: Any, row: int, col: str) -> float:
    if isinstance(value, bool) or value is None or (isinstance(value, str) and not value.strip()):
        raise ValueError(f"runs table: row {row} column {col!r} is missing or not a number: {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"runs table: row {row} column {col!r} is not a number: {value!r}") from None
    if math.isnan(x):
        raise ValueError(f"runs table: row {row} column {col!r} is NaN")
    if not math.isfinite(x) or x <= 0:
        raise ValueError(f"runs table: row {row} column {col!r} must be finite and > 0, got {x}")
    return x


def runs_from_records(records: Sequence[Mapping[str, Any] | Sequence[Any]]) -> RunsTable:
    """Validated :class:`RunsTable` from dicts (column names as in the module docstring) or
    ``[name, N, D, U_D, loss]`` rows.

    Raises:
      ValueError: empty table, unknown layout, missing column, NaN / non-positive / non-finite value.
    """
    if len(records) == 0:
        raise ValueError("runs table: no runs")
    names, cols = [], {c: [] for c in _COLUMNS}
    first = records[0]
    mapping = _column_map(list(first)) if isinstance(first, Mapping) else None
    for i, rec in enumerate(records):
        if mapping is not None:
            if not isinstance(rec, Mapping):
                raise ValueError(f"runs table: row {i} is not an object like row 0")
            missing = [mapping[c] for c in _COLUMNS if mapping[c] not in rec]
            if missing:
                raise ValueError(f"runs table: row {i} lacks {missing}")
            values = [rec[mapping[c]] for c in _COLUMNS]
            names.append(str(rec[mapping["name"]]) if "name" in mapping else f"run{i}")
        else:
            if isinstance(rec, (str, bytes)) or not isinstance(rec, Sequence) or len(rec) not in (4, 5):
                raise ValueError(f"runs table: row {i} must be [name, N, D, U_D, loss] or [N, D, U_D, loss], got {rec!r}")
            values = list(rec[-4:])
            names.append(str(rec[0]) if len(rec) == 5 else f"run{i}")
        for c, v in zip(_COLUMNS, values):
            cols[c].append(_number(v, i, c))
    return RunsTable(tuple(names), *(np.asarray(cols[c], np.float64) for c in _COLUMNS))


def load_runs(path: str | os.PathLike) -> RunsTable:
    """Reads and validates a runs table from a ``.csv`` or ``.json`` file (see module docstring).

    Args:
      path: the file; the format is chosen by its suffix.

    Returns:
      :class:`RunsTable`.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"load_runs: {str(path)!r} is not a file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with path.open(newline="") as f:
            return runs_from_records(list(csv.DictReader(f)))
    if suffix == ".json":
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"load_runs: {str(path)!r} is not valid JSON ({e})") from None
        if isinstance(data, Mapping):
            keys = list(data)
            not_lists = [k for k, v in data.items() if not isinstance(v, list)]
            if not_lists:
                raise ValueError(f"load_runs: a JSON object must map column names to lists; {not_lists} are not lists")
            lengths = {len(v) for v in data.values()}
            if len(lengths) != 1:
                raise ValueError(f"load_runs: a JSON object must map column names to equal-length lists, got lengths "
                                 f"{ {k: len(v) for k, v in data.items()} }")
            n = lengths.pop()
            data = [{k: data[k][i] for k in keys} for i in range(n)]
        if not isinstance(data, list):
            raise ValueError(f"load_runs: JSON must be a list of runs or an object of columns, got {type(data).__name__}")
        return runs_from_records(data)
    raise ValueError(f"load_runs: unsupported file type {suffix!r}; use .csv or .json")
