"""Language-model utilities: token / sequence log-probs and sampling.

Alignment convention (causal LM): ``logits[:, t]`` is the distribution of ``tokens[:, t + 1]``.
:func:`token_logps` works on already-aligned ``(logits, labels)``; :func:`next_token_logps`
does the shift-by-one for a model's raw output.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from nips23jax.core.checks import ids_out_of_range

PyTree = Any

__all__ = ["LMApply", "generate", "heldout_lm_loss", "ids_out_of_range", "lm_loss_fn", "masked_lm_loss", "next_token_logps", "sequence_logps",
           "token_logps"]


def token_logps(logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None) -> jax.Array:
    """Log-probability of each label under its logits: ``log softmax(logits)[..., label]``.

    Args:
      logits: ``(..., V)`` float.
      labels: ``(...)`` int ids in ``[0, V)`` where ``mask`` is True (others are ignored, so
        placeholder values such as -100 are fine there).
      mask: ``(...)`` bool/0-1, positions that count; masked positions return exactly 0.

    Returns:
      ``(...)`` float32 log-probs.
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"token_logps: logits shape {logits.shape} must be labels shape {labels.shape} + (V,)")
    if mask is not None and mask.shape != labels.shape:
        raise ValueError(f"token_logps: mask shape {mask.shape} must equal labels shape {labels.shape}")
    bad = ids_out_of_range(labels, logits.shape[-1], mask)  # under jit labels are not checked
    if bad is not None:
        raise ValueError(f"token_logps: labels must be ids in [0, {logits.shape[-1]}) where scored (mask them "
                         f"otherwise), got min {bad[0]}, max {bad[1]}")
    logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
    safe = jnp.where(mask.astype(bool), labels, 0) if mask is not None else labels
    out = jnp.take_along_axis(logp, safe[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return out if mask is None else jnp.where(mask.astype(bool), out, 0.0)


def sequence_logps(
    logits: jax.Array, labels: jax.Array, mask: jax.Array | None = None, *, average: bool = False
) -> jax.Array:
    """Sum (or mean) of :func:`token_logps` over the last axis.

    Args:
      logits: ``(B, T, V)``; labels, mask: ``(B, T)``.
      average: divide by the number of counted tokens (0 tokens -> 0, not NaN).

    Returns:
      ``(B,)`` float32.
    """
    lp = token_logps(logits, labels, mask)
    total = lp.sum(-1)
    if not average:
        return total
    count = lp.shape[-1] if mask is None else mask.astype(jnp.float32).sum(-1)
    return total / jnp.maximum(count, 1.0)


def next_token_logps(logits: jax.Array, tokens: jax.Array, loss_mask: jax.Array | None = None) -> jax.Array:
    """Per-token log-probs of ``tokens[:, 1:]`` under a causal LM's ``logits[:, :-1]``.

    Args:
      logits: ``(B, T, V)`` model output on ``tokens``.
      tokens: ``(B, T)`` ids.
      loss_mask: ``(B, T)``, True at the positions of ``tokens`` whose probability counts (e.g.
        the answer, not the prompt or padding).

    Returns:
      ``(B, T - 1)``; entry ``t`` is ``log p(tokens[:, t+1] | tokens[:, :t+1])`` (0 if masked).
    """
    return token_logps(logits[:, :-1], tokens[:, 1:], None if loss_mask is None else loss_mask[:, 1:])


def _filter_top_k(logits: jax.Array, top_k: int) -> jax.Array:
    if top_k > logits.shape[-1]:
        raise ValueError(f"generate: top_k must be <= the vocabulary size {logits.shape[-1]}, got {top_k}")
    kth = jax.lax.top_k(logits, top_k)[0][..., -1:]
    return jnp.where(logits < kth, -jnp.inf, logits)


def generate(
    apply_fn: Callable[..., jax.Array],
    params: PyTree,
    prompt: jax.Array,
    key: jax.Array,
    *,
    max_new_tokens: int,
    temperature: float | jax.Array = 0.0,
    top_k: int | None = None,
    prompt_mask: jax.Array | None = None,
    eos_id: int | None = None,
    pad_id: int = 0,
) -> jax.Array:
    """Autoregressive sampling: greedy (``temperature == 0``), temperature, or top-k.

    The model reruns on a fixed ``(B, P + max_new_tokens)`` buffer each step (static shapes, one
    compiled loop); causal attention makes the unfilled tail irrelevant.

    Args:
      apply_fn: ``apply_fn(params, tokens, mask) -> (B, T, V)`` logits; must be hashable (a
        module-level function or ``functools.partial`` of ``model.apply``).
      params: model parameters.
      prompt: ``(B, P)`` int ids; left-pad ragged prompts and pass ``prompt_mask``.
      key: PRNG key (unused when greedy).
      max_new_tokens: tokens to generate.
      temperature: softmax temperature; 0 means argmax.
      top_k: sample among the k most likely tokens only.
      prompt_mask: ``(B, P)`` bool, False on left padding.
      eos_id: after this token a sequence emits ``pad_id``.
      pad_id: filler after EOS.

    Returns:
      ``(B, max_new_tokens)`` int32 generated ids.
    """
    if top_k is not None and top_k < 1:
        raise ValueError(f"generate: top_k must be >= 1, got {top_k}")
    if not isinstance(temperature, jax.core.Tracer) and not float(temperature) >= 0:
        raise ValueError(f"generate: temperature must be >= 0 (0: greedy), got {float(temperature)}")
    return _generate(apply_fn, params, prompt, key, max_new_tokens=max_new_tokens, temperature=temperature,
                     top_k=top_k, prompt_mask=prompt_mask, eos_id=eos_id, pad_id=pad_id)


@partial(jax.jit, static_argnames=("apply_fn", "max_new_tokens", "top_k", "eos_id", "pad_id"))
def _generate(apply_fn, params, prompt, key, *, max_new_tokens, temperature, top_k, prompt_mask, eos_id, pad_id):
    b, p = prompt.shape
    tokens = jnp.concatenate([prompt.astype(jnp.int32), jnp.full((b, max_new_tokens), pad_id, jnp.int32)], 1)
    pmask = jnp.ones((b, p), bool) if prompt_mask is None else prompt_mask.astype(bool)
    mask = jnp.concatenate([pmask, jnp.ones((b, max_new_tokens), bool)], 1)
    temperature = jnp.asarray(temperature, jnp.float32)

    def body(i, carry):
        tokens, done = carry
        logits = apply_fn(params, tokens, mask)[:, p - 1 + i].astype(jnp.float32)
        if top_k is not None:
            logits = _filter_top_k(logits, top_k)
        greedy = jnp.argmax(logits, -1)
        sampled = jax.random.categorical(
            jax.random.fold_in(key, i), logits / jnp.maximum(temperature, 1e-6), axis=-1
        )
        nxt = jnp.where(temperature > 0, sampled, greedy).astype(jnp.int32)
        nxt = jnp.where(done, pad_id, nxt)
        if eos_id is not None:
            done = done | (nxt == eos_id)
        return tokens.at[:, p + i].set(nxt), done

    tokens, _ = jax.lax.fori_loop(0, max_new_tokens, body, (tokens, jnp.zeros((b,), bool)))
    return tokens[:, p:]


class LMApply:
    """Hashable ``(params, tokens, mask) -> logits`` wrapper of a Flax LM, for :func:`generate`.

    Two wrappers of equal modules hash equal, so repeated ``generate`` calls reuse one compile.
    With ``variables=True`` the first argument is the whole variables dict (e.g. ``{"params": ...,
    "quant": ...}`` of a QLoRA model) instead of the ``"params"`` collection alone.
    """

    def __init__(self, model: Any, *, variables: bool = False):
        self.model = model
        self.variables = variables

    def __call__(self, params: PyTree, tokens: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        return self.model.apply(params if self.variables else {"params": params}, tokens, mask=mask)

    def __hash__(self) -> int:
        return hash((self.model, self.variables))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LMApply) and other.model == self.model and other.variables == self.variables


def masked_lm_loss(
    logits: jax.Array, tokens: jax.Array, loss_mask: jax.Array | None = None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Mean next-token cross-entropy over the positions in ``loss_mask``.

    Args:
      logits: ``(B, T, V)`` model output on ``tokens``.
      tokens: ``(B, T)``.
      loss_mask: ``(B, T)``, True at target positions (as in :func:`next_token_logps`).

    Returns:
      ``(loss, {"token_accuracy": ...})``: loss is ``-sum(logp) / max(#targets, 1)``.
    """
    target_mask = jnp.ones(tokens[:, 1:].shape, bool) if loss_mask is None else loss_mask[:, 1:].astype(bool)
    lp = token_logps(logits[:, :-1], tokens[:, 1:], target_mask)
    n = jnp.maximum(target_mask.sum(), 1)
    correct = (jnp.argmax(logits[:, :-1], -1) == tokens[:, 1:]) & target_mask
    return -lp.sum() / n, {"token_accuracy": correct.sum() / n}



@partial(jax.jit, static_argnums=0)
def heldout_lm_loss(
    apply_fn: LMApply, params: PyTree, tokens: jax.Array, loss_mask: jax.Array | None = None
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """:func:`masked_lm_loss` of ``apply_fn(params, tokens)``, as one jitted evaluation.

    ``apply_fn`` is static (an :class:`LMApply`: equal models share one compile); ``params`` is what
    it takes (the ``"params"`` collection, or the whole variables dict with ``variables=True``).
    ``tokens``: ``(B, T)`` ids; ``loss_mask``: ``(B, T)`` bool. Returns ``(loss, aux)`` as
    :func:`masked_lm_loss`.
    """
    return masked_lm_loss(apply_fn(params, tokens), tokens, loss_mask)


def lm_loss_fn(model: Any) -> Callable[..., tuple[jax.Array, dict[str, jax.Array]]]:
    """``loss_fn(params, batch, key, frozen=None)`` for ``core.make_train_step``: :func:`masked_lm_loss`
    of ``model`` on ``batch["tokens"]`` / ``batch["loss_mask"]``.

    ``frozen`` (the state's non-trained variables, e.g. QLoRA's ``{"quant": ...}``) is a dict of
    variable collections applied beside ``params``: ``model.apply({"params": params, **frozen}, ...)``.
    """

    def loss_fn(params: PyTree, batch: dict, key: jax.Array, frozen: dict | None = None):
        del key
        variables = {"params": params, **(frozen or {})}
        return masked_lm_loss(model.apply(variables, batch["tokens"]), batch["tokens"], batch["loss_mask"])

    return loss_fn