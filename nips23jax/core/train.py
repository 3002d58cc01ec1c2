"""The shared training loop: a pure step builder and a resumable ``fit``.

Pieces, bottom up:

* :class:`TrainState` -- ``(step, params, opt_state, frozen)``, a pytree; ``frozen`` holds
  variables that are not trained (e.g. QLoRA's 4-bit base weights), or None.
* :func:`make_train_step` -- ``loss_fn`` + an Optax transform -> a jitted, sharded,
  state-donating ``step(state, batch) -> (state, metrics)``. The per-step PRNG key is
  ``fold_in(key, state.step)``, so the step is a pure function of ``(state, batch)``.
* :func:`fit` -- runs steps ``state.step .. num_steps`` with a tqdm bar, periodic eval, metrics
  appended to ``<workdir>/metrics.jsonl`` and orbax checkpoints. Run it again with the same
  arguments after a crash and it resumes from the newest intact checkpoint; because batches are
  a function of the step (``batch_fn(step)``) and keys are folded from the step, the resumed run
  ends with exactly the parameters of an uninterrupted one.

Example::

    state = TrainState.create(params, optax.adam(1e-3))
    step = make_train_step(loss_fn, optax.adam(1e-3), key=jax.random.key(0))
    out = fit(state, step, batch_fn, num_steps=1000, workdir="runs/a", checkpoint_every=100)
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from nips23jax.core.checkpoint import Checkpointer
from nips23jax.core.sharding import sharded_jit

PyTree = Any
Metrics = dict[str, float]
LossFn = Callable[[PyTree, PyTree, jax.Array], tuple[jax.Array, Mapping[str, jax.Array]]]

__all__ = ["FitResult", "MetricsLog", "TrainState", "as_key", "fit", "global_norm", "make_eval_step", "make_train_step",
           "warmup_cosine"]


def as_key(key: jax.Array | int) -> jax.Array:
    """Accepts an int seed, a raw ``uint32[2]`` key or a typed ``jax.random.key``; returns a typed key."""
    if isinstance(key, (int, np.integer)):
        return jax.random.key(int(key))
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if key.dtype == jnp.uint32 and key.shape[-1:] == (2,):
        return jax.random.wrap_key_data(key)
    raise TypeError(f"key: expected an int seed or a PRNG key, got dtype {key.dtype} shape {key.shape}")


@flax.struct.dataclass
class TrainState:
    """Training state pytree.

    Attributes:
      step: int32 scalar, number of updates applied.
      params: model parameters (any pytree of arrays).
      opt_state: the Optax transform's state.
      frozen: variables the loss reads but nothing differentiates or updates (QLoRA's NF4 base
        weights, whose uint8 codes ``jax.grad`` would reject), or None. Sharded and checkpointed
        with the rest of the state.
    """

    step: jax.Array
    params: PyTree
    opt_state: PyTree
    frozen: PyTree = None

    @classmethod
    def create(cls, params: PyTree, optimizer: optax.GradientTransformation, frozen: PyTree = None) -> "TrainState":
        """State at step 0 with ``optimizer.init(params)`` (and ``frozen`` carried along unchanged)."""
        return cls(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params), frozen=frozen)


def make_train_step(
    loss_fn: LossFn,
    optimizer: optax.GradientTransformation,
    *,
    key: jax.Array | int = 0,
    extra_args_fn: Callable[[PyTree, PyTree, jax.Array], Mapping[str, Any]] | None = None,
    state_shardings: PyTree | None = None,
    batch_shardings: PyTree | None = None,
    trainable: PyTree | None = None,
    donate: bool = True,
    jit: bool = True,
) -> Callable[[TrainState, PyTree], tuple[TrainState, Metrics]]:
    """Builds ``step(state, batch) -> (new_state, metrics)``.

    Args:
      loss_fn: ``loss_fn(params, batch, key) -> (scalar loss, {name: scalar})``; for a state with
        ``frozen`` variables it is called ``loss_fn(params, batch, key, frozen)`` (gradients are
        taken with respect to ``params`` only).
      optimizer: any Optax transform. A ``GradientTransformationExtraArgs`` (e.g. SAM, which needs
        a ``grad_fn``) receives ``**extra_args_fn(params, batch, key)``.
      key: base PRNG key (int seed, raw or typed); step ``t`` uses ``fold_in(key, t)``.
      extra_args_fn: builds the extra keyword arguments of ``optimizer.update``.
      state_shardings: ``NamedSharding`` pytree (or prefix) for the state; with
        ``batch_shardings`` it pins the jit's in/out shardings (data x fsdp training).
      batch_shardings: sharding (pytree prefix) for the batch.
      trainable: optional pytree of bools with the structure of ``params`` (e.g. LoRA's
        ``adapter_mask``): gradients are taken with respect to the True leaves only (the others get
        zero gradients and should get zero updates, e.g. from ``optax.set_to_zero``), and
        ``grad_norm`` covers the True leaves. Saves the backward pass of frozen weights.
      donate: donate the incoming state's buffers (in-place update).
      jit: set False to get the pure Python function (for composing inside your own jit).

    Returns:
      The step function. ``metrics`` holds ``loss``, ``grad_norm`` and ``loss_fn``'s metrics.
    """
    base_key = as_key(key)

    def step(state: TrainState, batch: PyTree) -> tuple[TrainState, Metrics]:
        k = jax.random.fold_in(base_key, state.step)
        args = (batch, k) if state.frozen is None else (batch, k, state.frozen)
        if trainable is None:
            (loss, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params, *args)
            grad_norm = global_norm(grads)
        else:
            leaves, treedef = jax.tree.flatten(state.params)
            mask = _trainable_flags(trainable, treedef)

            def loss_of_trainable(train_leaves):
                it = iter(train_leaves)
                merged = [next(it) if m else x for x, m in zip(leaves, mask)]
                return loss_fn(jax.tree.unflatten(treedef, merged), *args)

            (loss, aux), train_grads = jax.value_and_grad(loss_of_trainable, has_aux=True)(
                [x for x, m in zip(leaves, mask) if m])
            it = iter(train_grads)
            grads = jax.tree.unflatten(treedef, [next(it) if m else jnp.zeros_like(x) for x, m in zip(leaves, mask)])
            grad_norm = global_norm(train_grads)
        extra = {} if extra_args_fn is None else dict(extra_args_fn(state.params, batch, k))
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params, **extra)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, "grad_norm": grad_norm, **aux}
        return state.replace(step=state.step + 1, params=params, opt_state=opt_state), metrics

    if not jit:
        return step
    in_sh = None if state_shardings is None else (state_shardings, batch_shardings)
    out_sh = None if state_shardings is None else (state_shardings, None)
    return sharded_jit(step, in_shardings=in_sh, out_shardings=out_sh, donate_argnums=(0,) if donate else ())


def _trainable_flags(trainable: PyTree, treedef) -> list[bool]:
    try:
        flags = treedef.flatten_up_to(trainable)
    except (ValueError, TypeError) as e:
        raise ValueError(f"trainable: must be a pytree of bools with the structure of params ({e})") from None
    flags = [bool(f) for f in flags]
    if not any(flags):
        raise ValueError("trainable: no leaf is True; nothing would be trained")
    return flags


def warmup_cosine(peak_lr: float, num_steps: int, warmup_steps: int) -> optax.Schedule:
    """Linear warmup from 0 to ``peak_lr`` over ``warmup_steps``, then cosine decay to 0 at ``num_steps``.

    ``lr(t) = peak_lr · t / w`` for ``t < w``, then ``peak_lr · ½(1 + cos(π (t − w) / (num_steps − w)))``,
    with ``w = min(warmup_steps, num_steps − 1)``: the schedule spans the run however long the warmup is.

    Raises:
      ValueError: ``num_steps < 1``, ``warmup_steps < 0`` or ``peak_lr < 0``.
    """
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)) or num_steps < 1:
        raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
    if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, (int, np.integer)) or warmup_steps < 0:
        raise ValueError(f"warmup_steps must be an int >= 0, got {warmup_steps!r}")
    if not np.isfinite(peak_lr) or peak_lr < 0:
        raise ValueError(f"peak_lr must be finite and >= 0, got {peak_lr!r}")
    return optax.warmup_cosine_decay_schedule(0.0, peak_lr, min(int(warmup_steps), int(num_steps) - 1), int(num_steps))


def global_norm(tree: PyTree) -> jax.Array:
    """L2 norm over every leaf of ``tree``: ``sqrt(Σ_leaves Σ x²)``.

    Accumulates in at least float32 (bfloat16/float16 leaves are upcast; float64 stays float64).
    Returns a scalar.
    """
    return jnp.sqrt(
        sum(jnp.sum(jnp.square(x.astype(jnp.promote_types(x.dtype, jnp.float32)))) for x in jax.tree.leaves(tree))
    )


def make_eval_step(metric_fn: Callable[[PyTree, PyTree], Mapping[str, jax.Array]]):
    """Jits ``metric_fn(params, batch) -> {name: scalar}`` into ``eval_step(state, batch)``."""
    return jax.jit(lambda state, batch: dict(metric_fn(state.params, batch)))


class MetricsLog:
    """Append-only JSONL log of ``{"step": int, "split": str, **metrics}`` rows.

    ``truncate_after(step)`` drops rows newer than a restored checkpoint so a resumed run's
    log has each step once.
    """

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else Path(path)
        self._rows: list[dict[str, Any]] = []
        if self.path is not None and self.path.exists():
            self._rows = [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    @property
    def rows(self) -> list[dict[str, Any]]:
        return list(self._rows)

    def truncate_after(self, step: int) -> None:
        self._rows = [r for r in self._rows if r["step"] <= step]
        if self.path is not None and jax.process_index() == 0:
            self.path.write_text("".join(json.dumps(r) + "\n" for r in self._rows))

    def write(self, step: int, split: str, metrics: Mapping[str, Any]) -> dict[str, Any]:
        row = {"step": int(step), "split": split, **{k: _to_py(v) for k, v in metrics.items()}}
        self._rows.append(row)
        if self.path is not None and jax.process_index() == 0:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
        return row

    def series(self, name: str, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """``(steps, values)`` of one metric, for plotting."""
        rows = [r for r in self._rows if r["split"] == split and name in r]
        return np.array([r["step"] for r in rows]), np.array([r[name] for r in rows], dtype=float)


def _to_py(v: Any) -> Any:
    if isinstance(v, jax.Array) and not v.is_fully_addressable and not v.is_fully_replicated:
        from jax.experimental import multihost_utils  # a metric split over several processes

        v = multihost_utils.process_allgather(v, tiled=True)
    v = np.asarray(jax.device_get(v))
    return v.item() if v.ndim == 0 else v.tolist()


class FitResult(NamedTuple):
    """What :func:`fit` returns: the final state, the metrics log, and the step it resumed from."""

    state: TrainState
    log: MetricsLog
    resumed_from: int | None


def _due(period: int, step: int, last: int) -> bool:
    """Every ``period`` steps (0: never) and always at the last step."""
    return step == last or (period > 0 and step % period == 0)


def fit(
    state: TrainState,
    train_step: Callable[[TrainState, PyTree], tuple[TrainState, Metrics]],
    batch_fn: Callable[[int], PyTree],
    *,
    num_steps: int,
    workdir: str | os.PathLike | None = None,
    checkpoint_every: int = 0,
    keep_checkpoints: int = 3,
    fingerprint: str | None = None,
    eval_fn: Callable[[TrainState], Mapping[str, Any]] | None = None,
    eval_every: int = 0,
    log_every: int = 10,
    progress: bool = True,
    callbacks: Iterable[Callable[[int, TrainState, Metrics], None]] = (),
    desc: str = "train",
) -> FitResult:
    """Trains ``state`` to ``num_steps`` updates, resuming from ``workdir`` if it holds a run.

    Args:
      state: the initial state (its shardings are the restore target on resume).
      train_step: from :func:`make_train_step`.
      batch_fn: ``batch_fn(step) -> batch``; must be a deterministic function of ``step`` for
        bit-exact resume (derive randomness with ``fold_in(key, step)``).
      num_steps: total updates (including those done before a resume).
      workdir: directory for ``metrics.jsonl`` and ``checkpoints/``; ``None`` keeps all in memory.
      checkpoint_every: save every this many steps (and at the end); 0 saves only at the end.
      keep_checkpoints: newest checkpoints kept on disk.
      fingerprint: identifies the run; resuming a directory written with another raises.
      eval_fn: ``eval_fn(state) -> {name: value}``, run at step 0 (when ``eval_every > 0``), every
        ``eval_every`` steps, and at the end.
      log_every: write train metrics every this many steps (each write syncs with the device).
      progress: show a tqdm bar (process 0 only).
      callbacks: ``cb(step, state, metrics)`` after every step (``step`` = updates done).

    Multi-process jobs (``jax.distributed``, see :mod:`nips23jax.core.distributed`): every process
    calls ``fit`` with the same arguments and a shared ``workdir``. ``batch_fn(step)`` returns the
    global batch as global arrays; each process can load only its own rows and assemble them with
    :func:`nips23jax.core.distributed.global_batch`. Metrics, ``metrics.jsonl`` and the progress
    bar come from process 0; checkpoints are written by all processes together (each saves its
    shards) and restore under any process count.

    Returns:
      :class:`FitResult`.

    Raises:
      nips23jax.core.checkpoint.CheckpointError: ``workdir`` holds checkpoints that cannot be
        resumed (damaged beyond the oldest step, or another run's).
    """
    if num_steps < 0:
        raise ValueError(f"fit: num_steps must be >= 0, got {num_steps}")
    workdir = None if workdir is None else Path(workdir)
    ckpt = None
    resumed_from = None
    if workdir is not None:
        ckpt = Checkpointer(workdir / "checkpoints", keep=keep_checkpoints, fingerprint=fingerprint)
        restored = ckpt.restore_latest(state)
        if restored is not None:
            resumed_from, state = restored
    log = MetricsLog(None if workdir is None else workdir / "metrics.jsonl")
    start = int(jax.device_get(state.step))
    log.truncate_after(start)
    if start > num_steps:
        raise ValueError(f"fit: the state is already at step {start}, past num_steps={num_steps}")

    callbacks = tuple(callbacks)
    bar = tqdm(
        total=num_steps, initial=start, desc=desc, disable=not progress or jax.process_index() != 0,
        dynamic_ncols=True, leave=False,
    )
    try:
        if eval_fn is not None and start == 0 and eval_every > 0:
            log.write(0, "eval", eval_fn(state))
        for t in range(start, num_steps):
            state, metrics = train_step(state, batch_fn(t))
            done = t + 1
            if _due(log_every, done, num_steps):
                row = log.write(done, "train", metrics)
                if not math.isfinite(row["loss"]):
                    raise FloatingPointError(f"fit: training loss became {row['loss']} at step {done}")
                bar.set_postfix(loss=f"{row['loss']:.4g}", refresh=False)
            if eval_fn is not None and _due(eval_every, done, num_steps):
                log.write(done, "eval", eval_fn(state))
            if ckpt is not None and _due(checkpoint_every, done, num_steps):
                ckpt.save(done, state)
            for cb in callbacks:
                cb(done, state, metrics)
            bar.update(1)
        if ckpt is not None and start == num_steps and not ckpt.all_steps():
            ckpt.save(start, state)
    finally:
        bar.close()
        if ckpt is not None:
            ckpt.close()
    return FitResult(state=state, log=log, resumed_from=resumed_from)
