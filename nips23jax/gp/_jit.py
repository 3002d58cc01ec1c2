"""One program, two compilations: XLA's default, and its cheapest backend level for small problems on the CPU.

A posterior's one-off programs (drawing the prior samples and evaluating them at ``X``, the exact
solve, predictions) compile in seconds and, on small data, run in milliseconds. On the CPU backend
:data:`nips23jax.core.compile.FAST_COMPILER_OPTIONS` (optimization level 0) halves their compile time
(measured: drawing and evaluating 8 prior samples at n = 300, 3.7 -> 1.8 s of CPU) and runs them 2-4x
slower (there 0.07 -> 0.12 s); so a call whose work is below :data:`SMALL_WORK` elementwise operations
takes that compilation, and a larger one the default. Their results agree to float rounding (the two
compilations fuse the same operations differently). The iterative solvers (CG, SGD), which run a
program many times and amplify rounding differences, always use the default.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax

from nips23jax.core.compile import FAST_COMPILER_OPTIONS

__all__ = ["SMALL_WORK", "dual_jit"]

SMALL_WORK = 2**26  # ~67M elementwise operations: ~0.3 s more run time at level 0, below the ~2 s its compile saves


class dual_jit:  # noqa: N801 - used as a decorator, like jax.jit
    """``jax.jit(fun)`` plus the same program compiled with the fast options.

    Calling it runs the default compilation (and inside another ``jit`` it is traced inline, as a
    ``jax.jit`` function is); ``.at(work)(*args)`` picks the fast one when ``work <= SMALL_WORK`` on
    the CPU backend.
    """

    def __init__(self, fun: Callable[..., Any], static_argnums: int | Sequence[int] = ()):
        functools.update_wrapper(self, fun)
        self.default = jax.jit(fun, static_argnums=static_argnums)
        self.fast = jax.jit(fun, static_argnums=static_argnums, compiler_options=FAST_COMPILER_OPTIONS)

    def __call__(self, *args: Any) -> Any:
        return self.default(*args)

    def at(self, work: float) -> Callable[..., Any]:
        """The compilation for a call doing about ``work`` elementwise operations."""
        return self._fast if work <= SMALL_WORK and jax.default_backend() == "cpu" else self.default

    def _fast(self, *args: Any) -> Any:
        # Compiler options are only for a top-level jit: inside another trace (traced arguments, or
        # constants closed over by an outer jit) the call is traced inline, as the default one is.
        if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(args)):
            return self.default(*args)
        try:
            return self.fast(*args)
        except ValueError as err:
            if "compiler_options" not in str(err):
                raise
            return self.default(*args)


def dual(static_argnums: int | Sequence[int] = ()) -> Callable[[Callable[..., Any]], dual_jit]:
    """Decorator form: ``@dual(static_argnums=(0,))``."""
    return lambda fun: dual_jit(fun, static_argnums)
