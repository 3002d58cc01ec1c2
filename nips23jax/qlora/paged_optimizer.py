"""Paged optimizers (QLoRA §3, "Paged Optimizers") as explicit host offload of optimizer state.

QLoRA trains with bitsandbytes' *paged* AdamW: the optimizer state is allocated with
``cudaMallocManaged`` (CUDA unified memory), so when the GPU runs short — typically in the
activation-memory spikes of a long sequence with gradient checkpointing — the driver evicts the
state's pages to CPU RAM and pages them back in (with ``cudaMemPrefetchAsync``) when the optimizer
step touches them. Paging is automatic, on demand, at page granularity, and costs nothing while
memory suffices.

XLA has no unified memory. The analogue here is explicit: :func:`paged` keeps the *whole*
optimizer state of any Optax transform in host memory (a sharding with
``memory_kind="pinned_host"``, same devices and partition spec as before) between steps, moves it
to device memory for the update only, and writes the new state back to host memory::

    state (host) --H2D--> inner.update on device --D2H--> new state (host)

Consequences, compared with bitsandbytes:

* The transfer happens every step, whether or not memory is short: ``2 x state bytes`` over the
  host link (PCIe / NVLink-C2C) per step — for AdamW that is ``2 x 8`` bytes per trainable
  parameter (``mu`` and ``nu`` in float32). With LoRA adapters this is small; for full
  fine-tuning it can dominate the step time.
* It helps when the optimizer state would not fit in device memory beside the activations (the
  long-sequence spikes QLoRA pages for), or for rarely updated parameters whose state need not
  occupy device memory at all. Under ``jax.jit`` XLA schedules the transfers (and may overlap
  them with compute); the state needs device memory only around the update, not during the
  forward and backward passes.
* On CPU, host and "device" memory are the same RAM: the placement is honoured (JAX 0.10's CPU
  client exposes ``device``, ``pinned_host`` and ``unpinned_host`` memories) but saves nothing.

Where the backend has no memory of the requested kind, :func:`paged` warns once (per call of
:func:`paged`, i.e. per wrapper) with :class:`HostOffloadUnavailableWarning` and returns the plain
inner transform, so the same training script runs everywhere.

:func:`optimizer_state_bytes` reports the state's bytes per memory kind for the QLoRA memory
accounting.

Example::

    opt = paged_adamw(1e-4, weight_decay=0.0)
    state = opt.init(params)                       # leaves: memory_kind="pinned_host"

    @jax.jit
    def train_step(params, state, batch):
        grads = jax.grad(loss)(params, batch)
        updates, state = opt.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    optimizer_state_bytes(state)                   # {"pinned_host": 8 * n_params + 4}
"""

from __future__ import annotations

import warnings
from typing import Any

import jax
import numpy as np
import optax

PyTree = Any

__all__ = [
    "HOST_MEMORY_KINDS",
    "HostOffloadUnavailableWarning",
    "optimizer_state_bytes",
    "paged",
    "paged_adamw",
]

#: Memory kinds :func:`paged` can offload to (``jax.memory.Space.Host`` inside ``jit``).
#: ``"unpinned_host"`` is deliberately absent: inside ``jax.jit`` JAX 0.10 tracks only
#: ``pinned_host`` as host memory (``core.mem_kind_to_space`` maps every other kind to device
#: memory), so a state placed in ``unpinned_host`` would come back from a jitted step in device
#: memory without any error.
HOST_MEMORY_KINDS = ("pinned_host",)


class HostOffloadUnavailableWarning(UserWarning):
    """The backend has no memory of the requested kind; :func:`paged` fell back to the inner transform."""


def _backend_memory_kinds() -> frozenset[str]:
    """Memory kinds addressable from the default backend's first device (e.g. ``device``, ``pinned_host``)."""
    try:
        return frozenset(m.kind for m in jax.devices()[0].addressable_memories())
    except Exception:  # backends without the memories API
        return frozenset()


def _check_memory_kind(where: str, memory_kind: Any) -> None:
    if not isinstance(memory_kind, str):
        raise TypeError(
            f"{where}: memory_kind must be a string such as 'pinned_host', got {type(memory_kind).__name__}"
        )
    if memory_kind in HOST_MEMORY_KINDS:
        return
    if memory_kind == "device":
        why = "'device' is where the update runs; offloading to it would be a no-op (use the inner transform)"
    elif memory_kind == "unpinned_host":
        why = "inside jax.jit JAX tracks only 'pinned_host' as host memory; 'unpinned_host' would not survive jit"
    else:
        why = "not a host memory kind"
    raise ValueError(f"{where}: memory_kind must be one of {HOST_MEMORY_KINDS}, got {memory_kind!r} ({why})")


def _is_array(x: Any) -> bool:
    # Tracers are virtual subclasses of jax.Array, so this holds eagerly and under jit.
    return isinstance(x, jax.Array)


def _is_concrete(x: Any) -> bool:
    return isinstance(x, jax.Array) and not isinstance(x, jax.core.Tracer)


def _replicated_like(tree: PyTree) -> jax.sharding.Sharding | None:
    """A replicated sharding over the devices of ``tree``'s first committed concrete leaf, if any."""
    for x in jax.tree.leaves(tree):
        if _is_concrete(x) and x.committed:
            s = x.sharding
            if isinstance(s, jax.sharding.NamedSharding):
                return jax.sharding.NamedSharding(s.mesh, jax.sharding.PartitionSpec())
            if len(s.device_set) == 1:
                return jax.sharding.SingleDeviceSharding(next(iter(s.device_set)))
    return None


def _to_host(tree: PyTree, memory_kind: str, like: PyTree) -> PyTree:
    """Move every array leaf of ``tree`` to ``memory_kind``, keeping its sharding.

    Uncommitted leaves (e.g. Optax's step ``count``, created with ``jnp.zeros``) are committed by
    the move; they are placed replicated on the devices of ``like`` (params or gradients) so that
    a jitted step does not see the state on device 0 and the params on a mesh. Non-array leaves
    (there are none in Optax's own states) are left as they are.
    """
    replicated = _replicated_like(like)

    def put(x):
        if not _is_array(x):
            return x
        if _is_concrete(x):
            if not x.committed and replicated is not None:
                return jax.device_put(x, replicated.with_memory_kind(memory_kind))
            return jax.device_put(x, x.sharding.with_memory_kind(memory_kind))
        return jax.device_put(x, jax.memory.Space.Host)  # traced: keep the (inferred) sharding

    return jax.tree.map(put, tree)


def _to_device(tree: PyTree) -> PyTree:
    """Move every array leaf of ``tree`` to device memory, keeping its sharding (eagerly or traced)."""
    return jax.tree.map(lambda x: jax.device_put(x, jax.memory.Space.Device) if _is_array(x) else x, tree)


def paged(
    inner: optax.GradientTransformation, *, memory_kind: str = "pinned_host"
) -> optax.GradientTransformationExtraArgs:
    """Keep ``inner``'s optimizer state in host memory between steps (QLoRA's paged optimizers).

    ``init(params)`` returns ``inner.init(params)`` with every array leaf moved to ``memory_kind``
    (same devices / mesh and partition spec; only the memory kind changes).
    ``update(grads, state, params=None, **extra)`` moves the state to device memory, runs
    ``inner.update`` there, and returns ``inner``'s updates (in device memory) and its new state
    moved back to ``memory_kind``. The state has exactly ``inner``'s pytree structure, shapes and
    dtypes, so checkpoints and ``optax.tree_utils`` helpers work unchanged, and the numbers are
    bit-identical to ``inner``'s.

    Works eagerly and under ``jax.jit`` (the placement is a ``jax.device_put`` to
    ``jax.memory.Space.Device`` / ``.Host``, which is traceable and keeps the sharding). A jitted
    step returns the state in host memory without ``out_shardings``; if you pass ``in_shardings``
    for the state, give them ``memory_kind=memory_kind`` too (``s.with_memory_kind(...)``), or the
    state is copied into device memory at the jit boundary before the update even starts.

    Donation: without ``out_shardings``, JAX 0.10 pairs donated inputs with outputs by shape and
    dtype only, ignoring memory kind (``jax._src.interpreters.mlir._set_up_aliases``), and on CPU
    the process aborts when a donated host-memory state leaf is aliased to a device-memory output
    of the same shape (e.g. the updates). The usual train step is safe: donate ``(params,
    state)`` and return ``(params, state, ...)`` in the same order, so each donated leaf pairs
    with its own successor; otherwise give ``out_shardings`` (with memory kinds) for every output.

    If the default backend has no ``memory_kind`` memory, warns once — at this call, with
    :class:`HostOffloadUnavailableWarning` — and returns ``inner`` unchanged (with extra-args
    support), so code using :func:`paged` runs on any backend.

    Args:
      inner: any Optax transform, e.g. ``optax.adamw(1e-4)`` or an ``optax.chain``.
      memory_kind: where the state lives between steps; one of :data:`HOST_MEMORY_KINDS`.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` whose state is ``inner``'s state.

    Raises:
      TypeError: ``inner`` is not an ``optax.GradientTransformation``, or ``memory_kind`` is not a
        string.
      ValueError: ``memory_kind`` is not one of :data:`HOST_MEMORY_KINDS`.
    """
    if not isinstance(inner, optax.GradientTransformation):
        raise TypeError(
            f"paged: inner must be an optax.GradientTransformation (e.g. optax.adamw(1e-4)), got {type(inner).__name__}"
        )
    _check_memory_kind("paged", memory_kind)
    inner = optax.with_extra_args_support(inner)
    available = _backend_memory_kinds()
    if memory_kind not in available:
        warnings.warn(
            f"paged: backend {jax.default_backend()!r} has no {memory_kind!r} memory (it has {sorted(available)}); "
            "the optimizer state stays in device memory (plain inner transform).",
            HostOffloadUnavailableWarning,
            stacklevel=2,
        )
        return inner

    def init_fn(params):
        return _to_host(inner.init(params), memory_kind, like=params)

    def update_fn(updates, state, params=None, **extra_args):
        grads = updates
        updates, state = inner.update(updates, _to_device(state), params, **extra_args)
        return updates, _to_host(state, memory_kind, like=grads)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def paged_adamw(
    learning_rate: optax.ScalarOrSchedule,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    eps_root: float = 0.0,
    mu_dtype: Any | None = None,
    weight_decay: optax.ScalarOrSchedule = 1e-4,
    mask: Any | None = None,
    *,
    nesterov: bool = False,
    memory_kind: str = "pinned_host",
) -> optax.GradientTransformationExtraArgs:
    """``paged(optax.adamw(...))``: AdamW with its ``mu``/``nu`` in host memory (bitsandbytes' ``PagedAdamW``).

    The positional and keyword arguments are ``optax.adamw``'s, with its defaults (note
    ``weight_decay=1e-4``; bitsandbytes / PyTorch default to ``1e-2``; QLoRA's runs use ``0.0``).
    ``memory_kind`` is :func:`paged`'s.

    Returns:
      An ``optax.GradientTransformationExtraArgs`` with ``optax.adamw``'s state.
    """
    return paged(
        optax.adamw(
            learning_rate, b1=b1, b2=b2, eps=eps, eps_root=eps_root, mu_dtype=mu_dtype,
            weight_decay=weight_decay, mask=mask, nesterov=nesterov,
        ),
        memory_kind=memory_kind,
    )


def _leaf_bytes_and_kind(x: Any) -> tuple[int, str]:
    if isinstance(x, jax.core.Tracer):
        aval = x.aval
        kind = "pinned_host" if getattr(aval, "memory_space", None) == jax.memory.Space.Host else "device"
        return int(np.prod(aval.shape, dtype=np.int64)) * aval.dtype.itemsize, kind
    if isinstance(x, jax.Array):
        return int(x.nbytes), x.sharding.memory_kind or "device"
    if isinstance(x, jax.ShapeDtypeStruct):
        sharding = getattr(x, "sharding", None)
        kind = getattr(sharding, "memory_kind", None) or "unplaced"
        return int(np.prod(x.shape, dtype=np.int64)) * np.dtype(x.dtype).itemsize, kind
    if isinstance(x, (np.ndarray, np.generic, bool, int, float, complex)):
        return int(np.asarray(x).nbytes), "unplaced"
    raise TypeError(f"optimizer_state_bytes: opt_state has a leaf of type {type(x).__name__}, expected arrays")


def optimizer_state_bytes(opt_state: PyTree) -> dict[str, int]:
    """Bytes of an optimizer state per memory kind, counting every leaf once.

    Counts logical (global) bytes, ``size x itemsize`` per leaf: a leaf sharded over a mesh counts
    its full size once, and a replicated leaf counts one copy (per-device memory is the sharded
    share, or the whole leaf when replicated). Works on concrete states, inside ``jax.jit``
    (memory kind from the tracer's memory space), and on ``jax.eval_shape(opt.init, params)``.

    Args:
      opt_state: any optimizer state pytree.

    Returns:
      ``{memory_kind: bytes}`` for the kinds that hold at least one leaf, e.g.
      ``{"pinned_host": 8 * n + 4}`` for :func:`paged_adamw` on ``n`` float32 parameters (``mu``,
      ``nu`` and the int32 step count). Leaves with no placement (NumPy arrays, Python scalars,
      ``ShapeDtypeStruct`` without sharding) are reported under ``"unplaced"``.

    Raises:
      TypeError: a leaf is not an array, scalar or ``ShapeDtypeStruct``.
    """
    totals: dict[str, int] = {}
    for leaf in jax.tree.leaves(opt_state):
        nbytes, kind = _leaf_bytes_and_kind(leaf)
        totals[kind] = totals.get(kind, 0) + nbytes
    return totals
