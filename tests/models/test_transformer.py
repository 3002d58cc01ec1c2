import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.models.transformer import CausalSelfAttention, TransformerConfig, TransformerLM

CFG = TransformerConfig(vocab_size=11, d_model=16, num_heads=2, num_layers=2, max_len=10, d_ff=24)


def _init(cfg=CFG, dense=nn.Dense, t=7, b=3):
    """The model, parameters of ``model.init``'s structure, shapes and dtypes (traced, not run), and a
    token batch. The values come from NumPy: compiling the random initializers would cost more than
    the tests themselves (tests/models/test_lm.py runs the real ``init``)."""
    model = TransformerLM(cfg, dense)
    tokens = jnp.asarray(np.random.default_rng(1).integers(0, cfg.vocab_size, (b, t)), jnp.int32)
    shapes = jax.eval_shape(model.init, jax.random.key(0), tokens)["params"]
    rng = np.random.default_rng(0)

    def fill(path, s):
        name = str(path[-1].key)
        if name in ("scale", "bias"):
            return jnp.full(s.shape, 1.0 if name == "scale" else 0.0, s.dtype)
        return jnp.asarray((0.3 * rng.standard_normal(s.shape)).astype(s.dtype))

    return model, jax.tree_util.tree_map_with_path(fill, shapes), tokens


def _jit_apply(model):
    """``model.apply`` compiled once per input shape (and per ``deterministic``)."""
    return jax.jit(model.apply, static_argnames=("deterministic",))


@pytest.mark.parametrize("tied", [True, False])
def test_shapes_and_param_count(tied):
    cfg = TransformerConfig(**{**CFG.__dict__, "tied_head": tied})
    model, params, tokens = _init(cfg)
    logits = _jit_apply(model)({"params": params}, tokens)
    assert logits.shape == (3, 7, 11) and logits.dtype == jnp.float32
    assert sum(x.size for x in jax.tree.leaves(params)) == cfg.num_params()
    assert ("head" in params) != tied
    assert set(params["block_0"]["attn"]) == {"query", "key", "value", "out"}
    assert set(params["block_1"]["mlp"]) == {"fc1", "fc2"}


def _naive_attention(x, p, heads, allowed):
    """Multi-head causal attention in NumPy, from the Dense kernels/biases."""
    b, t, d = x.shape
    proj = {n: x @ np.asarray(p[n]["kernel"]) + np.asarray(p[n]["bias"]) for n in ("query", "key", "value")}
    dh = d // heads
    out = np.zeros((b, t, d))
    for h in range(heads):
        sl = slice(h * dh, (h + 1) * dh)
        s = proj["query"][..., sl] @ proj["key"][..., sl].transpose(0, 2, 1) / np.sqrt(dh)
        s = np.where(allowed, s, -np.inf)
        with np.errstate(invalid="ignore"):  # fully masked (padding-query) rows become NaN here
            w = np.exp(s - s.max(-1, keepdims=True))
            w /= w.sum(-1, keepdims=True)
        out[..., sl] = w @ proj["value"][..., sl]
    return out @ np.asarray(p["out"]["kernel"]) + np.asarray(p["out"]["bias"])


def test_attention_matches_naive_numpy():
    attn = CausalSelfAttention(CFG)
    x = jax.random.normal(jax.random.key(2), (2, 6, 16))
    mask = np.ones((2, 6), bool)
    mask[1, :2] = False  # left padding in the second sequence
    p = jax.jit(attn.init)(jax.random.key(3), x)["params"]
    got = jax.jit(attn.apply)({"params": p}, x, jnp.asarray(mask))
    allowed = np.tril(np.ones((6, 6), bool))[None] & mask[:, None, :]
    want = _naive_attention(np.asarray(x, np.float64), p, 2, allowed)
    # Rows whose query is padding (all keys masked) are arbitrary; compare the real ones.
    np.testing.assert_allclose(np.asarray(got)[0], want[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got)[1, 2:], want[1, 2:], rtol=1e-4, atol=1e-5)
    assert np.isfinite(np.asarray(got)).all()


def test_causal_future_tokens_do_not_change_past_logits():
    model, params, tokens = _init()
    changed = tokens.at[:, 4:].set((tokens[:, 4:] + 1) % 11)
    apply = _jit_apply(model)
    a = apply({"params": params}, tokens)
    b = apply({"params": params}, changed)
    np.testing.assert_allclose(a[:, :4], b[:, :4], rtol=1e-6, atol=1e-6)
    assert not np.allclose(a[:, 4:], b[:, 4:])


def test_left_padding_with_mask_matches_unpadded():
    model, params, tokens = _init(t=5, b=1)
    padded = jnp.concatenate([jnp.zeros((1, 3), tokens.dtype), tokens], 1)
    mask = jnp.arange(8)[None] >= 3
    apply = _jit_apply(model)
    a = apply({"params": params}, tokens)
    b = apply({"params": params}, padded, mask=mask)
    np.testing.assert_allclose(a, b[:, 3:], rtol=1e-5, atol=1e-5)


def test_dense_factory_replaces_every_linear_layer():
    calls = []

    class ScaledDense(nn.Module):
        """A stand-in for LoRA/NF4 layers: bias-free Dense with an extra learned scalar."""

        features: int
        dtype: object = None
        param_dtype: object = jnp.float32

        @nn.compact
        def __call__(self, x):
            calls.append(self.name)
            k = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features))
            return (x @ k) * self.param("scale", nn.initializers.ones, ())

    cfg = TransformerConfig(**{**CFG.__dict__, "tied_head": False})
    model, params, tokens = _init(cfg, dense=ScaledDense)
    assert set(calls) == {"query", "key", "value", "out", "fc1", "fc2", "head"}
    assert set(params["block_0"]["attn"]["query"]) == {"kernel", "scale"}
    assert _jit_apply(model)({"params": params}, tokens).shape == (3, 7, 11)


def test_bfloat16_compute_and_dropout_rng():
    cfg = TransformerConfig(**{**CFG.__dict__, "dtype": jnp.bfloat16, "dropout": 0.5, "num_layers": 1})
    model, params, tokens = _init(cfg)
    assert jax.tree.leaves(params)[0].dtype == jnp.float32
    apply = _jit_apply(model)
    out = apply({"params": params}, tokens)
    assert out.dtype == jnp.float32 and np.isfinite(np.asarray(out)).all()
    d1 = apply({"params": params}, tokens, deterministic=False, rngs={"dropout": jax.random.key(1)})
    d2 = apply({"params": params}, tokens, deterministic=False, rngs={"dropout": jax.random.key(1)})
    np.testing.assert_array_equal(d1, d2)
    assert not np.allclose(d1, out)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(d_model=10, num_heads=3), "divisible by num_heads"),
        (dict(vocab_size=0), "vocab_size must be a positive int"),
        (dict(dropout=1.0), "dropout"),
        (dict(d_ff=0), "d_ff"),
    ],
)
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TransformerConfig(**{**CFG.__dict__, **kwargs})


def test_call_errors():
    model, params, tokens = _init()
    apply = functools.partial(model.apply, {"params": params})
    with pytest.raises(ValueError, match="exceeds max_len=10"):
        apply(jnp.zeros((1, 11), jnp.int32))
    with pytest.raises(ValueError, match="tokens must be \\(batch, length\\)"):
        apply(jnp.zeros((11,), jnp.int32))
    with pytest.raises(TypeError, match="integer ids"):
        apply(jnp.zeros((1, 4)))
    with pytest.raises(ValueError, match=r"token ids must be in \[0, vocab_size=.*max 9999"):
        apply(jnp.array([[1, 9999]]))  # was NaN logits (or, for -1, silently the last token's)
    with pytest.raises(ValueError, match="mask shape"):
        apply(tokens, mask=jnp.ones((3, 2), bool))
