"""Sequence log-probabilities for preference pairs, TRL-style labels (prompt and padding = -100).

``labels`` is the input ids with every position that should not be scored (prompt, padding) set
to ``ignore_index``; a causal LM's ``logits[:, t]`` scores ``labels[:, t + 1]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from nips23jax.models.lm import sequence_logps as lm_sequence_logps

PyTree = Any

__all__ = ["concatenated_logps", "sequence_logps"]


def sequence_logps(
    logits: jax.Array,
    labels: jax.Array,
    mask: jax.Array | None = None,
    ignore_index: int = -100,
    average: bool = False,
) -> jax.Array:
    """Summed (or mean) log-probs of each sequence's completion under a causal LM.

    Args:
      logits: ``(B, T, V)`` model output on the input ids.
      labels: ``(B, T)`` input ids with prompt and padding set to ``ignore_index``.
      mask: optional ``(B, T)`` extra mask over ``labels`` (False excludes a position too).
      ignore_index: the label value that is not scored.
      average: mean over the scored tokens instead of the sum (the IPO / SimPO normalization).

    Returns:
      ``(B,)`` float32: ``Σ_t log p(labels[t+1] | ids[:t+1])`` over scored positions. Under ``jit`` a
      sequence with no scored token gets NaN (so a training loss over it is NaN and ``fit`` stops),
      where an eager call raises.

    Raises:
      ValueError: shape mismatch, or (for concrete inputs) a sequence with no scored token.
    """
    if logits.ndim != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"sequence_logps: logits (B, T, V) and labels (B, T) expected, got {logits.shape} and {labels.shape}")
    keep = labels[:, 1:] != ignore_index
    if mask is not None:
        if mask.shape != labels.shape:
            raise ValueError(f"sequence_logps: mask shape {mask.shape} must equal labels shape {labels.shape}")
        keep = keep & mask[:, 1:].astype(bool)
    if not isinstance(keep, jax.core.Tracer):
        empty = np.flatnonzero(~np.asarray(keep).any(axis=1))
        if empty.size:
            raise ValueError(
                f"sequence_logps: sequences {empty.tolist()} have no scored token (all labels after the first are "
                f"{ignore_index} or masked)"
            )
    out = lm_sequence_logps(logits[:, :-1], labels[:, 1:], keep, average=average)
    return jnp.where(keep.any(-1), out, jnp.nan)


def _pad_to(x: jax.Array, length: int, value: int) -> jax.Array:
    return jnp.pad(x, ((0, 0), (0, length - x.shape[1])), constant_values=value)


def concatenated_logps(
    apply_fn: Callable[..., jax.Array],
    params: PyTree,
    chosen_ids: jax.Array,
    chosen_labels: jax.Array,
    rejected_ids: jax.Array,
    rejected_labels: jax.Array,
    *,
    pad_id: int = 0,
    ignore_index: int = -100,
    average: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Chosen and rejected sequence log-probs from one forward pass over ``[chosen; rejected]``.

    Both halves are right-padded to a common length (``pad_id`` / ``ignore_index``) and stacked
    on the batch axis, so the model runs once on ``2B`` sequences (one compile, better
    utilization than two passes).

    Args:
      apply_fn: ``apply_fn(params, ids, mask) -> (2B, T, V)`` logits (e.g. ``LMApply(model)``).
      params: model parameters.
      chosen_ids, chosen_labels: ``(B, T_c)``; labels use ``ignore_index`` on prompt and padding.
      rejected_ids, rejected_labels: ``(B, T_r)``.

    Returns:
      ``(chosen_logps, rejected_logps)``, each ``(B,)``.
    """
    if chosen_ids.shape != chosen_labels.shape or rejected_ids.shape != rejected_labels.shape:
        raise ValueError("concatenated_logps: ids and labels must have the same shape for chosen and for rejected")
    if chosen_ids.shape[0] != rejected_ids.shape[0]:
        raise ValueError(f"concatenated_logps: {chosen_ids.shape[0]} chosen vs {rejected_ids.shape[0]} rejected sequences")
    length = max(chosen_ids.shape[1], rejected_ids.shape[1])
    ids = jnp.concatenate([_pad_to(chosen_ids, length, pad_id), _pad_to(rejected_ids, length, pad_id)])
    labels = jnp.concatenate(
        [_pad_to(chosen_labels, length, ignore_index), _pad_to(rejected_labels, length, ignore_index)]
    )
    mask = jnp.concatenate(
        [_pad_to(jnp.ones_like(chosen_ids, bool), length, 0), _pad_to(jnp.ones_like(rejected_ids, bool), length, 0)]
    )
    logps = sequence_logps(apply_fn(params, ids, mask), labels, ignore_index=ignore_index, average=average)
    b = chosen_ids.shape[0]
    return logps[:b], logps[b:]
