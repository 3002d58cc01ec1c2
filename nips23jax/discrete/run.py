"""Many chains at once: ``vmap`` over chains, ``lax.scan`` over steps, optionally sharded.

:func:`run_chains` is DISCS' experiment loop: random initial states, a random reference state,
and per step the Hamming distance of every chain to it (the ESS statistic) — or the states.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from nips23jax.core.train import as_key
from nips23jax.discrete.ess import hamming_distance
from nips23jax.discrete.models import DiscreteModel
from nips23jax.discrete.samplers import SamplingAlgorithm, get_sampler

__all__ = ["RunInfo", "run_chains", "sample_chains"]


class RunInfo(NamedTuple):
    """What :func:`run_chains` returns besides the trace.

    Attributes:
      final_state: the samplers' states after the last step (leading axis: chains).
      acceptance_rate: ``(num_steps, num_chains)`` MH acceptance probabilities.
      num_changed: ``(num_steps, num_chains)`` Hamming distance of each proposal.
      reference: the reference state ``int32[d]`` of the Hamming statistic.
      evals_per_step: model evaluations per step per chain.
    """

    final_state: Any
    acceptance_rate: jax.Array
    num_changed: jax.Array
    reference: jax.Array
    evals_per_step: float


def sample_chains(
    sampler: SamplingAlgorithm,
    x0: jax.Array,
    reference: jax.Array,
    chain_keys: jax.Array,
    num_steps: int,
    keep: str = "hamming",
) -> tuple[jax.Array, Any, jax.Array, jax.Array]:
    """The traceable loop under :func:`run_chains` (usable inside ``jit``/``vmap``, e.g. over a
    model parameter): ``vmap(init)``, then ``num_steps`` of ``vmap(step)`` in ``lax.scan``.

    Args:
      sampler: built for the model.
      x0: ``(C, d)`` initial states; reference: ``int[d]``; chain_keys: ``(C,)`` keys.
      num_steps: static int.
      keep: ``"hamming"`` or ``"states"``.

    Returns:
      ``(trace, final_states, acceptance_rate, num_changed)``, time-major.
    """
    states = jax.vmap(sampler.init)(x0)

    def body(states, t):
        keys = jax.vmap(lambda k: jax.random.fold_in(k, t))(chain_keys)
        states, info = jax.vmap(sampler.step)(keys, states)
        out = hamming_distance(states.x, reference) if keep == "hamming" else states.x
        return states, (out, info.acceptance_rate, info.num_changed)

    states, (trace, acc, changed) = jax.lax.scan(body, states, jnp.arange(num_steps))
    return trace, states, acc, changed


@functools.lru_cache(maxsize=64)
def _runner(sampler: SamplingAlgorithm, num_steps: int, keep: str, mesh: Mesh | None, options: tuple | None):
    run = functools.partial(sample_chains, sampler, num_steps=num_steps, keep=keep)
    options = None if options is None else dict(options)
    if mesh is None:
        return jax.jit(run, compiler_options=options)
    chains = NamedSharding(mesh, P("data"))
    steps_chains = NamedSharding(mesh, P(None, "data"))
    return jax.jit(run, in_shardings=(chains, NamedSharding(mesh, P()), chains),
                   out_shardings=(steps_chains, chains, steps_chains, steps_chains), compiler_options=options)


def run_chains(
    key: jax.Array | int,
    model: DiscreteModel,
    sampler: SamplingAlgorithm | str,
    num_chains: int,
    num_steps: int,
    *,
    keep: str = "hamming",
    init: jax.Array | None = None,
    reference: jax.Array | None = None,
    mesh: Mesh | None = None,
    compiler_options: dict | None = None,
) -> tuple[jax.Array, RunInfo]:
    """Runs ``num_chains`` independent chains for ``num_steps`` steps.

    Args:
      key: PRNG key (typed, raw, or int seed); split into initial states, the reference state and
        one key per chain (step ``t`` uses ``fold_in(chain_key, t)``), so results do not depend
        on sharding.
      model: the target.
      sampler: a :class:`SamplingAlgorithm` built for ``model``, or a sampler name (built with
        defaults). Reuse one object across calls to reuse its compiled loop.
      num_chains, num_steps: positive ints.
      keep: ``"hamming"`` (trace of Hamming distances to ``reference``, ``(num_steps,
        num_chains)`` int32) or ``"states"`` (``(num_steps, num_chains, d)`` int32).
      init: initial states ``(num_chains, d)``; default uniform.
      reference: ``int[d]``; default uniform.
      mesh: shard the chain axis over the mesh's ``data`` axis (``num_chains`` divisible by its size).
      compiler_options: XLA options for the compiled loop (e.g. ``{"xla_backend_optimization_level": 0}``
        compiles faster for tiny models, as :func:`~nips23jax.discrete.anneal` takes them).

    Returns:
      ``(trace, RunInfo)``.
    """
    if isinstance(sampler, str):
        sampler = get_sampler(sampler, model)
    if not isinstance(sampler, SamplingAlgorithm):
        raise TypeError(f"run_chains: sampler must be a SamplingAlgorithm or a sampler name, got {type(sampler).__name__}")
    for arg, v in (("num_chains", num_chains), ("num_steps", num_steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"run_chains: {arg} must be a positive int, got {v!r}")
    if keep not in ("hamming", "states"):
        raise ValueError(f"run_chains: keep must be 'hamming' or 'states', got {keep!r}")
    if mesh is not None and num_chains % mesh.shape["data"]:
        raise ValueError(f"run_chains: num_chains={num_chains} must be divisible by the mesh's data axis ({mesh.shape['data']})")
    d, k = model.num_sites, model.num_categories
    k_init, k_ref, k_run = jax.random.split(as_key(key), 3)
    x0 = jax.random.randint(k_init, (num_chains, d), 0, k) if init is None else jnp.asarray(init)
    if x0.shape != (num_chains, d):
        raise ValueError(f"run_chains: init must have shape ({num_chains}, {d}), got {x0.shape}")
    model.check_state(x0[0], "init[0]")  # shape and dtype, as one state
    if init is not None and not isinstance(x0, jax.core.Tracer):  # values, over every chain
        bad = np.argwhere((np.asarray(x0) < 0) | (np.asarray(x0) >= k))
        if bad.size:
            i, j = bad[0]
            raise ValueError(f"run_chains: init has values outside 0..{k - 1} ({bad.shape[0]} entries; first "
                             f"init[{i}, {j}] = {np.asarray(x0)[i, j]})")
    ref = jax.random.randint(k_ref, (d,), 0, k) if reference is None else model.check_state(reference, "reference")
    if compiler_options is not None and not isinstance(compiler_options, dict):
        raise TypeError(f"run_chains: compiler_options must be a dict or None, got {type(compiler_options).__name__}")
    options = None if compiler_options is None else tuple(sorted(compiler_options.items()))
    trace, states, acc, changed = _runner(sampler, num_steps, keep, mesh, options)(
        x0.astype(jnp.int32), ref, jax.random.split(k_run, num_chains))
    return trace, RunInfo(states, acc, changed, ref, sampler.evals_per_step)
