"""The ``nips23jax`` command: thin argument parsing over the library.

    nips23jax list
    nips23jax reproduce [NAME ...] [--quick | --full] [--config FILE] [--set KEY=VALUE ...] [--out DIR] [--fresh]
    nips23jax config NAME [--quick] [--set KEY=VALUE ...]
    nips23jax launch --num-processes N [--devices-per-process K] [--heartbeat-timeout S] [--timeout S] -- COMMAND

``launch`` runs COMMAND (a nips23jax command such as ``reproduce tiny-lm --quick``, or any program such
as ``python train.py``) as N processes of one ``jax.distributed`` job on this machine. Every other
command first joins a multi-process job when it runs in one (under ``launch``, ``srun``, ``mpirun`` or
on a TPU pod slice; see ``nips23jax.core.distributed.initialize``); only process 0 prints and writes
reports.

Errors a user can fix (unknown name or key, bad value, unwritable directory, a checkpoint that
cannot be resumed) print one line and exit with status 2; a failed claim exits 1 only with
``--strict``.
"""

from __future__ import annotations

import argparse
import os
import shlex
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

    from nips23jax.core.distributed import DEFAULT_HEARTBEAT_TIMEOUT_S

    lp = sub.add_parser(
        "launch", help="run a command as N local processes of one jax.distributed job",
        description="Runs COMMAND as N processes with a coordinator on 127.0.0.1, prefixes their output with "
        "[i], and stops them all as soon as one fails. COMMAND is a nips23jax command (reproduce ...) or a "
        "program (python train.py ...). Example: nips23jax launch -n 2 --devices-per-process 2 -- reproduce "
        "tiny-lm --quick",
    )
    lp.add_argument("-n", "--num-processes", type=int, required=True, metavar="N", help="processes to start")
    lp.add_argument("--devices-per-process", type=int, metavar="K",
                    help="simulated CPU devices per process (sets JAX_PLATFORMS=cpu); default: inherit the environment")
    lp.add_argument("--heartbeat-timeout", type=int, default=DEFAULT_HEARTBEAT_TIMEOUT_S, metavar="S",
                    help=f"seconds after which a hung process is declared dead and the job stops (default {DEFAULT_HEARTBEAT_TIMEOUT_S})")
    lp.add_argument("--timeout", type=float, metavar="S", help="wall-clock limit for the whole job (exit 124)")
    lp.add_argument("--port", type=int, help="coordinator port on 127.0.0.1 (default: a free one)")
    lp.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="what each process runs")
    return p


def _resolve_config(repro, args):
    from nips23jax.core.config import ConfigError, load_config

    config = load_config(args.config or repro.config, quick=args.quick, overrides=args.set)
    meant_for = config.get("reproduction", repro.name)
    if meant_for != repro.name:
        raise ConfigError(f"the config {args.config or repro.config!r} is for reproduction {meant_for!r}, not "
                          f"{repro.name!r}")
    if repro.validate is not None:
        repro.validate(config)
    return config


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
    from nips23jax.core.distributed import is_main_process, main_print, sync_processes

    main = is_main_process()  # in a multi-process job only process 0 prints and writes reports
    rows = []
    for repro, config in zip(repros, configs):
        outdir = out_root / repro.name
        _check_writable(outdir)
        workdir = outdir / "runs" / config_fingerprint(config)
        if args.fresh and workdir.exists() and main:
            shutil.rmtree(workdir)
        sync_processes(f"fresh:{repro.name}")
        _check_writable(workdir)
        main_print(f"== {repro.name}: {repro.title}", flush=True)
        t0 = time.perf_counter()
        result = repro.run(config, workdir, progress=not args.no_progress)
        elapsed = time.perf_counter() - t0
        command = shlex.join(  # quoted, so that the report's command line runs as written
            ["nips23jax", "reproduce", repro.name] + (["--quick"] if args.quick else [])
            + [a for s in args.set for a in ("--set", s)] + (["--config", args.config] if args.config else [])
        )
        if main:
            for fig in result.figures:  # figures next to the report
                shutil.copy2(workdir / fig, outdir / fig)
            report = reproduce.write_report(repro, result, config, outdir, command=command, elapsed_s=elapsed)
            print(f"   report: {report}  ({elapsed:.0f} s)", flush=True)
        sync_processes(f"report:{repro.name}")
        rows.append((repro, result))
    main_print()
    main_print(reproduce.summary_table(rows))
    return 1 if args.strict and not all(r.passed for _, r in rows) else 0


_COMMANDS = ("list", "reproduce", "config", "launch")


def _cmd_launch(args) -> int:
    from nips23jax.core import distributed

    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    if not cmd:
        raise UsageError("launch needs a command after --, e.g. nips23jax launch -n 2 -- reproduce tiny-lm --quick")
    if args.num_processes < 1:
        raise UsageError(f"--num-processes must be >= 1, got {args.num_processes}")
    if args.devices_per_process is not None and args.devices_per_process < 1:
        raise UsageError(f"--devices-per-process must be >= 1, got {args.devices_per_process}")
    if args.heartbeat_timeout < 1:
        raise UsageError(f"--heartbeat-timeout must be >= 1, got {args.heartbeat_timeout}")
    if cmd[0] == "launch" or cmd[:2] == ["nips23jax", "launch"]:
        raise UsageError("launch cannot launch itself")
    try:
        result = distributed.launch(
            distributed.command_for(cmd, _COMMANDS), args.num_processes, devices_per_process=args.devices_per_process,
            port=args.port, heartbeat_timeout=args.heartbeat_timeout, timeout=args.timeout,
        )
    except FileNotFoundError as e:
        raise UsageError(f"cannot run {cmd[0]!r}: {e.strerror}") from None
    return result.returncode


def _join_job() -> int | None:
    """Joins the multi-process job this process belongs to (if any); an exit status on failure."""
    from nips23jax.core import distributed

    try:
        distributed.initialize()
    except ValueError as e:
        raise UsageError(str(e)) from None
    except Exception as e:  # noqa: BLE001 - jax.distributed's start-up errors are runtime errors
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"nips23jax: error: could not join the multi-process job: {first}", file=sys.stderr)
        return 1
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nips23jax`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "launch":  # the launcher itself imports no JAX
        try:
            return _cmd_launch(args)
        except UsageError as e:
            print(f"nips23jax: error: {e}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("nips23jax: interrupted; stopped all processes", file=sys.stderr)
            return 130
    from nips23jax.core.checkpoint import CheckpointError  # importing JAX starts no backend
    from nips23jax.core.config import ConfigError

    try:
        failed = _join_job()  # first: before anything touches a device
        if failed is not None:
            return failed
        import nips23jax.reproductions  # noqa: F401 - registers the experiments

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
