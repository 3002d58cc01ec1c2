"""The reproduction registry and its reports.

A :class:`Reproduction` names a paper's claims, points at its config (full and quick variants of
one ``get_config`` file) and measures with ``run(config, workdir) -> Result``. Each experiment module
in ``nips23jax.reproductions`` calls :func:`register` at import; ``nips23jax reproduce`` looks
them up here, runs them, and writes ``report.md``, ``results.json`` and the figures with
:func:`write_report`.

This module knows no paper: it only defines the shapes every reproduction fills in.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections

__all__ = [
    "Claim",
    "Finding",
    "Reproduction",
    "Result",
    "get",
    "names",
    "register",
    "summary_table",
    "write_report",
]


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of the paper, in one sentence.

    Attributes:
      key: short id used by :class:`Finding` (``"learns"``).
      statement: the claim, one sentence.
      paper_value: the paper's number for it as text (``"27.41"``), or ``None`` if it gives none.
      criterion: how our measurement is judged (``"exact match >= 0.95"``); may name config
        values as ``{config.eval.min_exact_match}``, filled in by the report.
    """

    key: str
    statement: str
    paper_value: str | None
    criterion: str


@dataclasses.dataclass(frozen=True)
class Finding:
    """Our measurement for one claim and the verdict under its criterion."""

    claim: str
    ours: str
    passed: bool
    detail: str = ""


@dataclasses.dataclass
class Result:
    """What a reproduction's ``run`` returns.

    Attributes:
      findings: one per claim (same keys).
      metrics: JSON-serializable numbers worth keeping.
      figures: file names (relative to the output directory) of the figures ``run`` wrote.
      notes: free text for the report (e.g. sample outputs).
    """

    findings: list[Finding]
    metrics: dict[str, Any] = dataclasses.field(default_factory=dict)
    figures: list[str] = dataclasses.field(default_factory=list)
    notes: str = ""

    @property
    def passed(self) -> bool:
        return all(f.passed for f in self.findings)


# run(config, workdir, *, progress=True) -> Result
RunFn = Callable[..., Result]


@dataclasses.dataclass(frozen=True)
class Reproduction:
    """A registered experiment.

    Attributes:
      name: CLI name (``"tiny-lm"``).
      title: one line.
      paper: citation (authors, title, venue) or ``"(framework check)"``.
      claims: the claims ``run`` judges.
      config: built-in config name (a module of ``nips23jax.configs``) with full and quick variants.
      run: ``run(config, workdir, *, progress=True) -> Result``; writes figures into ``workdir``
        and resumes from the checkpoints it left there.
      notebook: path of its notebook under ``colab/``.
      validate: ``validate(config)`` raising :class:`~nips23jax.core.config.ConfigError` (naming the key)
        for a value the type checks of :func:`~nips23jax.core.config.load_config` let through but the
        run cannot use; the CLI calls it before running anything.
    """

    name: str
    title: str
    paper: str
    claims: tuple[Claim, ...]
    config: str
    run: RunFn
    notebook: str | None = None
    validate: Callable[[Any], None] | None = None

    def claim(self, key: str) -> Claim:
        for c in self.claims:
            if c.key == key:
                return c
        raise KeyError(f"{self.name}: no claim {key!r}")


_REGISTRY: dict[str, Reproduction] = {}


def register(reproduction: Reproduction) -> Reproduction:
    """Adds ``reproduction`` to the registry (re-registering the same name replaces it)."""
    keys = [c.key for c in reproduction.claims]
    if len(set(keys)) != len(keys):
        raise ValueError(f"register: reproduction {reproduction.name!r} has duplicate claim keys {keys}")
    _REGISTRY[reproduction.name] = reproduction
    return reproduction


def names() -> list[str]:
    """Registered reproduction names, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> Reproduction:
    """The registered reproduction; ``KeyError`` listing the known names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown reproduction {name!r}; known: {', '.join(names()) or '(none)'}") from None


def _verdict(f: Finding) -> str:
    return "reproduced" if f.passed else "NOT reproduced"


def write_report(
    reproduction: Reproduction,
    result: Result,
    config: ml_collections.ConfigDict,
    outdir: str | os.PathLike,
    *,
    command: str = "",
    elapsed_s: float | None = None,
) -> Path:
    """Writes ``report.md`` and ``results.json`` for one run into ``outdir``; returns the report path."""
    outdir = Path(outdir)
    by_key = {f.claim: f for f in result.findings}
    missing = [c.key for c in reproduction.claims if c.key not in by_key]
    if missing:
        raise ValueError(f"write_report: {reproduction.name} returned no finding for claims {missing}")
    lines = [
        f"# {reproduction.name}: {reproduction.title}",
        "",
        f"Paper: {reproduction.paper}",
        "",
        f"Command: `{command}`" if command else "",
        f"Date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}; "
        f"JAX {jax.__version__} on {jax.default_backend()} ({jax.device_count()} device(s))"
        + (f"; {elapsed_s:.0f} s" if elapsed_s is not None else ""),
        "",
        "| claim | paper | ours | verdict | criterion |",
        "|---|---|---|---|---|",
    ]
    for c in reproduction.claims:
        f = by_key[c.key]
        criterion = c.criterion.format(config=config)
        lines.append(f"| {c.statement} | {c.paper_value or '-'} | {f.ours} | {_verdict(f)} | {criterion} |")
    for c in reproduction.claims:
        if by_key[c.key].detail:
            lines += ["", f"- **{c.key}**: {by_key[c.key].detail}"]
    if result.figures:
        lines += ["", "## Figures", ""] + [f"![{Path(p).stem}]({p})" for p in result.figures]
    if result.notes:
        lines += ["", "## Notes", "", result.notes]
    lines += ["", "## Config", "", "```", str(config).rstrip(), "```", ""]
    report = outdir / "report.md"
    report.write_text("\n".join(lines))
    payload = {
        "name": reproduction.name,
        "title": reproduction.title,
        "paper": reproduction.paper,
        "passed": result.passed,
        "claims": [
            {
                **dataclasses.asdict(c),
                "criterion": c.criterion.format(config=config),
                **{k: v for k, v in dataclasses.asdict(by_key[c.key]).items() if k != "claim"},
            }
            for c in reproduction.claims
        ],
        "metrics": result.metrics,
        "figures": result.figures,
        "config": config.to_dict(),
        "command": command,
        "elapsed_s": elapsed_s,
        "environment": {
            "jax": jax.__version__,
            "backend": jax.default_backend(),
            "devices": jax.device_count(),
            "python": platform.python_version(),
        },
    }
    (outdir / "results.json").write_text(json.dumps(payload, indent=2, default=repr) + "\n")
    return report


def summary_table(rows: Sequence[tuple[Reproduction, Result]]) -> str:
    """A plain-text table: reproduction, claim, paper, ours, verdict."""
    table = [("reproduction", "claim", "paper", "ours", "verdict")]
    for repro, result in rows:
        for f in result.findings:
            c = repro.claim(f.claim)
            table.append((repro.name, c.key, c.paper_value or "-", f.ours, _verdict(f)))
    widths = [max(len(str(r[i])) for r in table) for i in range(5)]
    fmt = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(table[0]), fmt(tuple("-" * w for w in widths))] + [fmt(r) for r in table[1:]])
