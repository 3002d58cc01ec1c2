"""DPO training on the shared loop: a ``loss_fn`` for ``core.train.make_train_step``.

A preference batch is a dict of ``(B, T)`` arrays ``chosen_ids``, ``chosen_labels``,
``rejected_ids``, ``rejected_labels`` (labels = ids with prompt and padding set to -100) plus the
reference model's view, either

* precomputed: ``ref_chosen_logps`` and ``ref_rejected_logps`` (``(B,)``; see
  :func:`reference_logps`), as TRL's ``precompute_ref_log_probs`` does, or
* a frozen copy of the reference parameters under ``ref_params``: the reference forward then runs
  inside the same jitted step, under ``stop_gradient``, or
* nothing in the batch, with ``make_dpo_loss_fn(..., reference_fn=f)``: the reference parameters
  are ``f(params)``. With LoRA adapters, ``f = nips23jax.qlora.lora.disable_adapters`` makes the
  reference the frozen base with adapters off, sharing its buffers (no second copy of the model).

QLoRA: keep the 4-bit base in ``TrainState.frozen`` as a dict of variable collections
(``{"quant": quant}``); the shared step passes it to the loss, which applies the model to
``{"params": params, **frozen}``, so ``apply_fn`` must take whole variables dicts
(``LMApply(model, variables=True)``).

Example::

    loss_fn = make_dpo_loss_fn(LMApply(model), beta=0.1)
    step = make_train_step(loss_fn, optax.adam(1e-4))
    ref = frozen_reference(sft_params)                   # new buffers: the state is donated
    batch = {**pairs, "ref_params": ref}
    state, metrics = step(state, batch)                  # metrics: loss, rewards/*, logps/*
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from nips23jax.dpo.logps import concatenated_logps
from nips23jax.dpo.loss import dpo_loss, dpo_metrics

PyTree = Any

__all__ = ["frozen_reference", "make_dpo_loss_fn", "reference_logps"]

_PAIR_KEYS = ("chosen_ids", "chosen_labels", "rejected_ids", "rejected_labels")


def _pair(batch: dict) -> tuple:
    missing = [k for k in _PAIR_KEYS if k not in batch]
    if missing:
        raise KeyError(f"DPO batch is missing {missing}; it needs {list(_PAIR_KEYS)}")
    return tuple(batch[k] for k in _PAIR_KEYS)


def frozen_reference(params: PyTree) -> PyTree:
    """A copy of ``params`` in new buffers, to serve as the frozen DPO reference.

    The shared train step donates the training state's buffers; a reference that aliased them
    would be invalidated by the first update. Copy once, before training:
    ``batch["ref_params"] = frozen_reference(sft_params)``.
    """
    return jax.tree.map(lambda x: jnp.array(x, copy=True), params)


def reference_logps(
    apply_fn: Callable[..., jax.Array], ref_params: PyTree, batch: dict, *, pad_id: int = 0, ignore_index: int = -100
) -> dict[str, jax.Array]:
    """``{"ref_chosen_logps", "ref_rejected_logps"}`` (each ``(B,)``) of a batch under frozen reference parameters.

    ``pad_id`` and ``ignore_index`` must be those the policy's loss uses (:func:`make_dpo_loss_fn`).
    """
    chosen, rejected = concatenated_logps(apply_fn, jax.lax.stop_gradient(ref_params), *_pair(batch), pad_id=pad_id,
                                          ignore_index=ignore_index)
    return {"ref_chosen_logps": chosen, "ref_rejected_logps": rejected}


def make_dpo_loss_fn(
    apply_fn: Callable[..., jax.Array],
    *,
    beta: float = 0.1,
    loss_type: str | Sequence[str] = "sigmoid",
    loss_weights: Sequence[float] | None = None,
    label_smoothing: float = 0.0,
    reference_free: bool = False,
    reference_fn: Callable[[PyTree], PyTree] | None = None,
    pad_id: int = 0,
    ignore_index: int = -100,
) -> Callable[[PyTree, dict, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]:
    """``loss_fn(params, batch, key) -> (mean DPO loss, metrics)`` for the shared training loop.

    Args:
      apply_fn: ``apply_fn(params, ids, mask) -> logits`` of the policy (and reference).
      beta, loss_type, loss_weights, label_smoothing, reference_free: as in :func:`~nips23jax.dpo.dpo_loss`.
        ``ipo`` and ``sigmoid_norm`` get the completion lengths (labels != ``ignore_index``). A batch
        entry ``"beta"`` (a scalar) replaces ``beta`` for that batch: a β schedule or a β sweep then
        shares one compiled training step.
      reference_fn: derives the reference parameters from the policy's (under ``stop_gradient``),
        e.g. ``lora.disable_adapters`` for a LoRA policy; the batch then needs no reference entries.
      pad_id: token used to right-pad chosen and rejected to a common length.

    Returns:
      The loss function ``loss_fn(params, batch, key, frozen=None)``. Metrics: ``rewards/chosen``, ``rewards/rejected``,
      ``rewards/accuracies``, ``rewards/margins`` (as TRL logs them), ``logps/chosen``,
      ``logps/rejected``.
    """
    if reference_fn is not None and reference_free:
        raise ValueError("make_dpo_loss_fn: reference_fn and reference_free=True exclude each other")
    if reference_fn is not None and not callable(reference_fn):
        raise TypeError(f"make_dpo_loss_fn: reference_fn must be callable, got {type(reference_fn).__name__}")
    # Validate the options once with a dummy batch, traced abstractly (raises as an eager call would,
    # compiles nothing).
    one = jax.ShapeDtypeStruct((1,), jnp.float32)
    jax.eval_shape(
        lambda x: dpo_loss(x, x, x, x, beta=beta, loss_type=loss_type, loss_weights=loss_weights,
                           label_smoothing=label_smoothing, chosen_lengths=x + 1, rejected_lengths=x + 1),
        one,
    )

    def loss_fn(params, batch, key, frozen=None):
        del key
        if frozen is not None and not isinstance(frozen, dict):
            raise TypeError(f"DPO loss: frozen must be a dict of variable collections, got {type(frozen).__name__}")
        with_frozen = (lambda p: p) if frozen is None else (lambda p: {"params": p, **frozen})  # noqa: E731
        chosen_ids, chosen_labels, rejected_ids, rejected_labels = _pair(batch)
        pc, pr = concatenated_logps(apply_fn, with_frozen(params), *_pair(batch), pad_id=pad_id,
                                    ignore_index=ignore_index)
        if reference_free:
            rc, rr = jnp.zeros_like(pc), jnp.zeros_like(pr)
        elif reference_fn is not None:
            ref = reference_logps(apply_fn, with_frozen(reference_fn(params)), batch, pad_id=pad_id,
                                  ignore_index=ignore_index)
            rc, rr = ref["ref_chosen_logps"], ref["ref_rejected_logps"]
        elif "ref_chosen_logps" in batch:
            rc, rr = batch["ref_chosen_logps"], batch["ref_rejected_logps"]
        elif "ref_params" in batch:
            ref = reference_logps(apply_fn, batch["ref_params"], batch, pad_id=pad_id, ignore_index=ignore_index)
            rc, rr = ref["ref_chosen_logps"], ref["ref_rejected_logps"]
        else:
            raise KeyError("DPO batch needs ref_chosen_logps/ref_rejected_logps or ref_params (or reference_free=True)")
        lengths = {  # the scored tokens: labels[:, 1:] (a causal LM does not score the first position)
            "chosen_lengths": jnp.maximum((chosen_labels[:, 1:] != ignore_index).sum(-1), 1),
            "rejected_lengths": jnp.maximum((rejected_labels[:, 1:] != ignore_index).sum(-1), 1),
        }
        losses, chosen_rewards, rejected_rewards = dpo_loss(
            pc, pr, jax.lax.stop_gradient(rc), jax.lax.stop_gradient(rr), beta=batch.get("beta", beta),
            loss_type=loss_type,
            loss_weights=loss_weights, label_smoothing=label_smoothing, **lengths,
        )
        metrics = dpo_metrics(jax.lax.stop_gradient(chosen_rewards), jax.lax.stop_gradient(rejected_rewards))
        metrics["logps/chosen"] = jnp.mean(jax.lax.stop_gradient(pc))
        metrics["logps/rejected"] = jnp.mean(jax.lax.stop_gradient(pr))
        return losses.mean(), metrics

    return loss_fn
