"""The ``nips23jax`` command: thin argument parsing over the library.

    nips23jax list
    nips23jax reproduce [NAME ...] [--quick | --full] [--config FILE] [--set KEY=VALUE ...] [--out DIR] [--fresh]
    nips23jax config NAME [--quick] [--set KEY=VALUE ...]

Errors a user can fix (unknown name or key, bad value, unwritable directory, a checkpoint that
cannot be resumed) print one line and exit with status 2; a failed claim exits 1 only with
``--strict``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path


class UsageError(Exception):
    """An error caused by the command line; printed as one line."""


def _parser() -> argparse.ArgumentParser:
    from nips23jax import __version__

    p = argparse.ArgumentParser(prog="nips23jax", description="JAX reproductions of NeurIPS 2023 results.")
    p.add_argument("--version", action="version", version=f"nips23jax {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list the registered reproductions")

    r = sub.add_parser("reproduce", help="run reproductions and write reports/<name>/report.md")
    r.add_argument("names", nargs="*", help="reproductions to run (default: all, quick variants)")
    size = r.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", default=None, help="the quick (CI-sized) config variants")
    size.add_argument("--full", dest="quick", action="store_false", help="the full configs (default when names are given)")
    r.add_argument("--config", help="a get_config() file to use instead of the built-in config")
    r.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value")
    r.add_argument("--out", default="reports", help="output root (default: ./reports)")
    r.add_argument("--fresh", action="store_true", help="discard this config's earlier checkpoints first")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--strict", action="store_true", help="exit 1 if any claim is not reproduced")

    c = sub.add_parser("config", help="print a reproduction's resolved config")
    c.add_argument("name")
    c.add_argument("--quick", action="store_true")
    c.add_argument("--config", help="a get_config() file to use instead of the built-in config")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    return p


def _resolve_config(repro, args):
    from nips23jax.core.config import load_config

    return load_config(args.config or repro.config, quick=args.quick, overrides=args.set)


def _check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create output directory {str(path)!r}: {e.strerror}") from None
    if not os.access(path, os.W_OK):
        raise UsageError(f"output directory {str(path)!r} is not writable")


def _cmd_list() -> int:
    from nips23jax.core import reproduce

    for name in reproduce.names():
        r = reproduce.get(name)
        print(f"{name:16s} {r.title}")
        print(f"{'':16s} paper: {r.paper}; config: configs/{r.config}.py; notebook: {r.notebook or '-'}")
    return 0


def _cmd_config(args) -> int:
    from nips23jax.core import reproduce

    print(_resolve_config(_get(reproduce, args.name), args))
    return 0


def _get(reproduce, name: str):
    try:
        return reproduce.get(name)
    except KeyError as e:
        raise UsageError(e.args[0]) from None


def _cmd_reproduce(args) -> int:
    from nips23jax.core import reproduce
    from nips23jax.core.config import config_fingerprint

    names = args.names or reproduce.names()
    if args.quick is None:  # no names: every quick reproduction; named ones: their full configs
        args.quick = not args.names
    if args.config and len(names) != 1:
        raise UsageError("--config needs exactly one reproduction name")
    repros = [_get(reproduce, n) for n in names]
    configs = [_resolve_config(r, args) for r in repros]  # validate all before running any
    out_root = Path(args.out)
    _check_writable(out_root)
    rows = []
    for repro, config in zip(repros, configs):
        outdir = out_root / repro.name
        _check_writable(outdir)
        workdir = outdir / "runs" / config_fingerprint(config)
        if args.fresh and workdir.exists():
            shutil.rmtree(workdir)
        _check_writable(workdir)
        print(f"== {repro.name}: {repro.title}", flush=True)
        t0 = time.perf_counter()
        result = repro.run(config, workdir, progress=not args.no_progress)
        elapsed = time.perf_counter() - t0
        for fig in result.figures:  # figures next to the report
            shutil.copy2(workdir / fig, outdir / fig)
        command = "nips23jax reproduce " + " ".join(
            [repro.name] + (["--quick"] if args.quick else []) + [f"--set {s}" for s in args.set]
            + ([f"--config {args.config}"] if args.config else [])
        )
        report = reproduce.write_report(repro, result, config, outdir, command=command, elapsed_s=elapsed)
        print(f"   report: {report}  ({elapsed:.0f} s)", flush=True)
        rows.append((repro, result))
    print()
    print(reproduce.summary_table(rows))
    return 1 if args.strict and not all(r.passed for _, r in rows) else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nips23jax`` console script."""
    args = _parser().parse_args(argv)
    try:
        import nips23jax.reproductions  # noqa: F401 - registers the experiments
        from nips23jax.core.checkpoint import CheckpointError
        from nips23jax.core.config import ConfigError

        if args.command == "list":
            return _cmd_list()
        if args.command == "config":
            return _cmd_config(args)
        return _cmd_reproduce(args)
    except (UsageError, ConfigError, CheckpointError) as e:
        print(f"nips23jax: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("nips23jax: interrupted; run the same command again to resume from the last checkpoint", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
