"""A small decoder-only Transformer LM in flax.linen, shared by every reproduction.

Token embedding + learned positions, ``num_layers`` pre-norm blocks (causal multi-head attention
written with einops, GELU MLP), a final norm and a tied or untied head. Every Dense layer is built
by the ``dense`` factory, so LoRA or NF4 layers replace them without forking the model: the
factory is called as ``dense(features=..., dtype=..., param_dtype=..., name=...)`` (flax's default bias)
with the names ``query``, ``key``, ``value``, ``out`` (attention), ``fc1``, ``fc2`` (MLP) and
``head`` (untied output layer).

Parameter paths (for regex rules): ``block_{i}/attn/{query,key,value,out}/kernel``,
``block_{i}/mlp/{fc1,fc2}/kernel``, ``embed/embedding``, ``pos_embed``, ``head/kernel``.

Example::

    cfg = TransformerConfig(vocab_size=32, d_model=64, num_heads=4, num_layers=2, max_len=32)
    model = TransformerLM(cfg)
    params = model.init(jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    logits = model.apply({"params": params}, tokens)            # (B, T, vocab) float32
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
from einops import einsum, rearrange

from nips23jax.models.lm import ids_out_of_range

DenseFactory = Callable[..., nn.Module]

__all__ = ["CausalSelfAttention", "DenseFactory", "MLP", "TransformerBlock", "TransformerConfig", "TransformerLM"]


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
    """Size and numerics of :class:`TransformerLM`.

    Attributes:
      vocab_size: number of token ids.
      d_model: residual width; must be divisible by ``num_heads``.
      num_heads: attention heads.
      num_layers: Transformer blocks.
      d_ff: MLP hidden width (default ``4 * d_model``).
      max_len: longest sequence (size of the learned position table).
      tied_head: output logits use the token embedding matrix (``embed.attend``).
      dropout: dropout rate on attention weights and residual branches (training only).
      dtype: computation dtype (e.g. ``jnp.bfloat16`` on TPU); logits are always float32.
      param_dtype: parameter dtype.
    """

    vocab_size: int
    d_model: int = 128
    num_heads: int = 4
    num_layers: int = 2
    d_ff: int | None = None
    max_len: int = 128
    tied_head: bool = True
    dropout: float = 0.0
    dtype: Any = jnp.float32
    param_dtype: Any = jnp.float32

    def __post_init__(self):
        for name in ("vocab_size", "d_model", "num_heads", "num_layers", "max_len"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"TransformerConfig.{name} must be a positive int, got {v!r}")
        if self.d_model % self.num_heads:
            raise ValueError(
                f"TransformerConfig.d_model ({self.d_model}) must be divisible by num_heads ({self.num_heads})"
            )
        if self.d_ff is not None and (not isinstance(self.d_ff, int) or self.d_ff < 1):
            raise ValueError(f"TransformerConfig.d_ff must be a positive int or None, got {self.d_ff!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"TransformerConfig.dropout must be in [0, 1), got {self.dropout!r}")

    @property
    def hidden(self) -> int:
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    def num_params(self) -> int:
        """Parameter count (closed form, matches ``init``)."""
        d, f, v = self.d_model, self.hidden, self.vocab_size
        attn = 4 * (d * d + d)
        mlp = d * f + f + f * d + d
        norms = 2 * 2 * d
        per_block = attn + mlp + norms
        head = 0 if self.tied_head else d * v + v
        return v * d + self.max_len * d + self.num_layers * per_block + 2 * d + head


def _dense(factory: DenseFactory, features: int, name: str, cfg: TransformerConfig, **kw) -> nn.Module:
    return factory(features=features, dtype=cfg.dtype, param_dtype=cfg.param_dtype, name=name, **kw)


class CausalSelfAttention(nn.Module):
    """Causal multi-head self-attention.

    ``softmax(q kᵀ / √d_head + causal & key mask) v`` with the softmax in float32. Masked scores
    are set to the dtype's most negative finite value, so a fully masked row is uniform rather
    than NaN.

    Call args:
      x: ``(B, T, d_model)``.
      mask: optional ``(B, T)`` bool, True for real tokens (keys that may be attended to).
      deterministic: disables dropout.
    """

    config: TransformerConfig
    dense: DenseFactory = nn.Dense

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None, deterministic: bool = True) -> jax.Array:
        cfg = self.config
        t = x.shape[1]
        q, k, v = (
            rearrange(_dense(self.dense, cfg.d_model, n, cfg)(x), "b t (h d) -> b h t d", h=cfg.num_heads)
            for n in ("query", "key", "value")
        )
        scores = einsum(q, k, "b h q d, b h s d -> b h q s").astype(jnp.float32)
        scores = scores / jnp.sqrt(jnp.float32(q.shape[-1]))
        allowed = jnp.tril(jnp.ones((t, t), bool))[None, None]
        if mask is not None:
            allowed = allowed & mask.astype(bool)[:, None, None, :]
        scores = jnp.where(allowed, scores, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(scores, axis=-1).astype(cfg.dtype)
        weights = nn.Dropout(cfg.dropout)(weights, deterministic=deterministic)
        out = einsum(weights, v, "b h q s, b h s d -> b h q d")
        return _dense(self.dense, cfg.d_model, "out", cfg)(rearrange(out, "b h t d -> b t (h d)"))


class MLP(nn.Module):
    """``fc2(gelu(fc1(x)))`` with hidden width ``config.hidden``."""

    config: TransformerConfig
    dense: DenseFactory = nn.Dense

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        cfg = self.config
        h = nn.gelu(_dense(self.dense, cfg.hidden, "fc1", cfg)(x))
        return _dense(self.dense, cfg.d_model, "fc2", cfg)(h)


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + attn(ln1(x))``, then ``x + mlp(ln2(x))``."""

    config: TransformerConfig
    dense: DenseFactory = nn.Dense

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None = None, deterministic: bool = True) -> jax.Array:
        cfg = self.config
        norm = lambda name: nn.LayerNorm(dtype=cfg.dtype, param_dtype=cfg.param_dtype, name=name)  # noqa: E731
        drop = nn.Dropout(cfg.dropout)
        h = CausalSelfAttention(cfg, self.dense, name="attn")(norm("ln1")(x), mask, deterministic)
        x = x + drop(h, deterministic=deterministic)
        h = MLP(cfg, self.dense, name="mlp")(norm("ln2")(x))
        return x + drop(h, deterministic=deterministic)


class TransformerLM(nn.Module):
    """Decoder-only Transformer language model.

    Call args:
      tokens: ``(B, T)`` int token ids, ``T <= config.max_len``.
      mask: optional ``(B, T)`` bool, True for real tokens; padded keys are not attended to.
        Positions default to ``cumsum(mask) - 1`` so left-padded prompts line up.
      positions: optional ``(B, T)`` int positions (overrides the default).
      deterministic: False enables dropout (needs a ``"dropout"`` rng).

    Returns:
      ``(B, T, vocab_size)`` float32 logits; ``logits[:, t]`` predicts ``tokens[:, t + 1]``.
    """

    config: TransformerConfig
    dense: DenseFactory = nn.Dense

    @nn.compact
    def __call__(
        self,
        tokens: jax.Array,
        *,
        mask: jax.Array | None = None,
        positions: jax.Array | None = None,
        deterministic: bool = True,
    ) -> jax.Array:
        cfg = self.config
        if tokens.ndim != 2:
            raise ValueError(f"TransformerLM: tokens must be (batch, length), got shape {tokens.shape}")
        if not jnp.issubdtype(tokens.dtype, jnp.integer):
            raise TypeError(f"TransformerLM: tokens must be integer ids, got dtype {tokens.dtype}")
        if tokens.shape[1] > cfg.max_len:
            raise ValueError(f"TransformerLM: sequence length {tokens.shape[1]} exceeds max_len={cfg.max_len}")
        bad = ids_out_of_range(tokens, cfg.vocab_size)  # under jit ids are not checked
        if bad is not None:
            raise ValueError(f"TransformerLM: token ids must be in [0, vocab_size={cfg.vocab_size}), got min {bad[0]}, "
                             f"max {bad[1]}")
        if mask is not None and mask.shape != tokens.shape:
            raise ValueError(f"TransformerLM: mask shape {mask.shape} must equal tokens shape {tokens.shape}")
        if positions is None:
            if mask is None:
                positions = jnp.broadcast_to(jnp.arange(tokens.shape[1]), tokens.shape)
            else:
                positions = jnp.maximum(jnp.cumsum(mask.astype(jnp.int32), axis=1) - 1, 0)
        embed = nn.Embed(cfg.vocab_size, cfg.d_model, dtype=cfg.dtype, param_dtype=cfg.param_dtype, name="embed")
        pos_table = self.param(
            "pos_embed", nn.initializers.normal(0.02), (cfg.max_len, cfg.d_model), cfg.param_dtype
        )
        x = embed(tokens) + jnp.take(pos_table, positions, axis=0).astype(cfg.dtype)
        x = nn.Dropout(cfg.dropout)(x, deterministic=deterministic)
        for i in range(cfg.num_layers):
            x = TransformerBlock(cfg, self.dense, name=f"block_{i}")(x, mask, deterministic)
        x = nn.LayerNorm(dtype=cfg.dtype, param_dtype=cfg.param_dtype, name="ln_f")(x)
        if cfg.tied_head:
            logits = embed.attend(x)
        else:
            logits = _dense(self.dense, cfg.vocab_size, "head", cfg)(x)
        return logits.astype(jnp.float32)
