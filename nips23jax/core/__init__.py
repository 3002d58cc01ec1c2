"""Shared machinery: sharding, training loop, checkpoints, configs, benchmarks, reproduce registry.

``core`` knows no paper; capability packages and reproductions import from it.

The names below are re-exported lazily (PEP 562): ``from nips23jax.core import make_mesh`` imports
``nips23jax.core.sharding`` on first use, so ``import nips23jax.core.distributed`` (what the
``nips23jax launch`` process and ``nips23jax --version`` need) does not pull in JAX, Orbax and
Matplotlib. The import-time cost is paid once, by whoever uses a name that needs them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "benchmark": ("Row", "Timing", "benchmark_parser", "compare", "format_table", "time_fn"),
    "checkpoint": ("CheckpointError", "Checkpointer"),
    "checks": ("ids_out_of_range",),
    "compile": ("FAST_COMPILER_OPTIONS", "SMALL_WORK", "compile_fast", "compiled_on_first_call", "dual_jit",
                "jit_per_function"),
    "config": ("ConfigError", "apply_overrides", "config_fingerprint", "load_config"),
    "sharding": ("batch_sharding", "make_mesh", "param_shardings", "replicated", "shard_batch", "sharded_jit"),
    "train": ("FitResult", "MetricsLog", "TrainState", "as_key", "fit", "global_norm", "make_eval_step",
              "make_train_step", "warmup_cosine"),
    "distributed": ("ProcessInfo", "gather", "global_batch", "initialize", "is_main_process", "launch",
                    "local_batch", "main_print", "process_rows", "sync_processes"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'nips23jax.core' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"nips23jax.core.{module}"), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # the same names, spelled out for type checkers and IDEs
    from nips23jax.core.benchmark import Row as Row
    from nips23jax.core.benchmark import Timing as Timing
    from nips23jax.core.benchmark import benchmark_parser as benchmark_parser
    from nips23jax.core.benchmark import compare as compare
    from nips23jax.core.benchmark import format_table as format_table
    from nips23jax.core.benchmark import time_fn as time_fn
    from nips23jax.core.checkpoint import CheckpointError as CheckpointError
    from nips23jax.core.checkpoint import Checkpointer as Checkpointer
    from nips23jax.core.compile import FAST_COMPILER_OPTIONS as FAST_COMPILER_OPTIONS
    from nips23jax.core.compile import SMALL_WORK as SMALL_WORK
    from nips23jax.core.compile import compile_fast as compile_fast
    from nips23jax.core.compile import compiled_on_first_call as compiled_on_first_call
    from nips23jax.core.compile import dual_jit as dual_jit
    from nips23jax.core.compile import jit_per_function as jit_per_function
    from nips23jax.core.config import ConfigError as ConfigError
    from nips23jax.core.config import apply_overrides as apply_overrides
    from nips23jax.core.config import config_fingerprint as config_fingerprint
    from nips23jax.core.config import load_config as load_config
    from nips23jax.core.distributed import ProcessInfo as ProcessInfo
    from nips23jax.core.distributed import gather as gather
    from nips23jax.core.distributed import global_batch as global_batch
    from nips23jax.core.distributed import initialize as initialize
    from nips23jax.core.distributed import is_main_process as is_main_process
    from nips23jax.core.distributed import launch as launch
    from nips23jax.core.distributed import local_batch as local_batch
    from nips23jax.core.distributed import main_print as main_print
    from nips23jax.core.distributed import process_rows as process_rows
    from nips23jax.core.distributed import sync_processes as sync_processes
    from nips23jax.core.sharding import batch_sharding as batch_sharding
    from nips23jax.core.sharding import make_mesh as make_mesh
    from nips23jax.core.sharding import param_shardings as param_shardings
    from nips23jax.core.sharding import replicated as replicated
    from nips23jax.core.sharding import shard_batch as shard_batch
    from nips23jax.core.sharding import sharded_jit as sharded_jit
    from nips23jax.core.train import FitResult as FitResult
    from nips23jax.core.train import MetricsLog as MetricsLog
    from nips23jax.core.train import TrainState as TrainState
    from nips23jax.core.train import as_key as as_key
    from nips23jax.core.train import fit as fit
    from nips23jax.core.train import global_norm as global_norm
    from nips23jax.core.train import make_eval_step as make_eval_step
    from nips23jax.core.train import make_train_step as make_train_step
    from nips23jax.core.train import warmup_cosine as warmup_cosine
