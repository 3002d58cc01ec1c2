"""Compiling one-off programs cheaply: XLA's backend optimization level 0 on CPU.

A reproduction of tiny models spends most of a one-off program's cost (building an initial state,
one evaluation pass) compiling it, not running it. On the CPU backend, level 0 compiles such
programs about 2.5x faster and runs them about as fast. A program that runs thousands of times can
run up to ~2x slower at level 0: measure before using it there.

Three ways in, by what is known when:
- :func:`compile_fast` / :func:`compiled_on_first_call`: ahead of time, for one shape (a training
  run's init and evaluation programs);
- :class:`dual_jit`: both compilations of one function, picked per call by the work it does (a
  library function whose inputs may be tiny or huge);
- :func:`jit_per_function`: not level 0, but ``jit`` keyed on a user's function, with an inline
  fallback when the function is unhashable.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax

__all__ = ["FAST_COMPILER_OPTIONS", "SMALL_WORK", "compile_fast", "compiled_on_first_call", "dual", "dual_jit",
           "jit_per_function"]

# ``compiler_options`` for ``jax.jit`` / ``.compile``: XLA's cheapest backend optimization level.
FAST_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}

# The work (elementwise operations) below which :class:`dual_jit` takes the level-0 compilation:
# ~67M operations run ~0.3 s longer at level 0, below the ~2 s its compile saves (measured on gp's
# programs: drawing and evaluating 8 prior samples at n = 300, compile 3.7 -> 1.8 s, run 0.07 -> 0.12 s).
SMALL_WORK = 2**26


def compile_fast(jitted: Any, *args: Any, fast: bool = True) -> Callable[..., Any]:
    """``jitted`` compiled ahead of time for ``args`` at XLA optimization level 0 on CPU.

    Args:
      jitted: a ``jax.jit``-wrapped function.
      *args: example arguments (arrays or ``jax.ShapeDtypeStruct``s; pytrees of them) fixing the
        shapes and dtypes the executable accepts.
      fast: if False, or when the default backend is not the CPU, ``jitted`` is returned unchanged.

    Returns:
      The compiled executable (accepts only ``args``' shapes and dtypes), or ``jitted``.
    """
    if not fast or jax.default_backend() != "cpu":
        return jitted
    return jitted.lower(*args).compile(compiler_options=FAST_COMPILER_OPTIONS)


def compiled_on_first_call(jitted: Any, fast: bool = True) -> Callable[..., Any]:
    """``compile_fast`` deferred to the first call.

    A run that never calls the program (one restored from a finished checkpoint) compiles
    nothing. After the first call the function accepts only that call's shapes and dtypes.

    Args:
      jitted: a ``jax.jit``-wrapped function.
      fast: as in ``compile_fast``.

    Returns:
      A callable with ``jitted``'s positional signature.
    """
    if not fast or jax.default_backend() != "cpu":
        return jitted
    compiled: list[Callable[..., Any]] = []

    def call(*args: Any) -> Any:
        if not compiled:
            compiled.append(compile_fast(jitted, *args))
        return compiled[0](*args)

    return call


def jit_per_function(fun: Callable[..., Any], static_argnums: int | tuple[int, ...]) -> Callable[..., Any]:
    """``jax.jit(fun, static_argnums=...)`` that runs ``fun`` traced inline when a static argument is unhashable.

    For library functions that take a user's function (a loss, a model) as a static argument: called
    eagerly, each call then compiles once per (function, static values, shapes) instead of
    dispatching every primitive separately. An unhashable static argument (a ``functools.partial``
    over arrays, say) cannot key jit's cache, so ``fun`` runs without ``jit`` (op by op when eager,
    inlined when already under a trace); the result is the same.

    Args:
      fun: the function to compile.
      static_argnums: its positional arguments that are static (hashable, compared by ``==``).

    Returns:
      A callable with ``fun``'s positional signature.
    """
    static = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)
    jitted = jax.jit(fun, static_argnums=static)

    @functools.wraps(fun)
    def call(*args: Any) -> Any:
        try:
            hash(tuple(args[i] for i in static))
        except TypeError:
            return fun(*args)
        return jitted(*args)

    return call


class dual_jit:  # noqa: N801 - used as a decorator, like jax.jit
    """``jax.jit(fun)`` plus the same program compiled with :data:`FAST_COMPILER_OPTIONS`.

    For one-off programs whose size varies by call: small ones (milliseconds to run, seconds to
    compile) take level 0, large ones the default. Calling it runs the default compilation (inside
    another ``jit`` it is traced inline, as a ``jax.jit`` function is); ``.at(work)(*args)`` picks the
    fast one when ``work <= SMALL_WORK`` on the CPU backend. The two agree to float rounding (they fuse
    the same operations differently), so iterative solvers, which amplify rounding, should not switch.

    Args:
      fun: the function.
      static_argnums: as in ``jax.jit``.
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
        except ValueError as err:  # a JAX or backend that rejects the option: the default compilation
            if "compiler_options" not in str(err):
                raise
            return self.default(*args)


def dual(static_argnums: int | Sequence[int] = ()) -> Callable[[Callable[..., Any]], dual_jit]:
    """Decorator form of :class:`dual_jit`: ``@dual(static_argnums=(0,))``."""
    return lambda fun: dual_jit(fun, static_argnums)
