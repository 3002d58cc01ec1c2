import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.models.lm import (
    LMApply, generate, heldout_lm_loss, lm_loss_fn, masked_lm_loss, next_token_logps, sequence_logps, token_logps,
)
from nips23jax.models.transformer import TransformerConfig, TransformerLM


def _log_softmax(x):
    x = np.asarray(x, np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def test_token_and_sequence_logps_match_numpy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype(np.float32) * 3
    labels = rng.integers(0, 7, (3, 5))
    mask = rng.random((3, 5)) > 0.3
    mask[2] = False
    ref = np.take_along_axis(_log_softmax(logits), labels[..., None], -1)[..., 0] * mask
    np.testing.assert_allclose(token_logps(logits, labels, mask), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sequence_logps(logits, labels, mask), ref.sum(-1), rtol=1e-5, atol=1e-5)
    avg = sequence_logps(logits, labels, mask, average=True)
    np.testing.assert_allclose(avg[:2], ref.sum(-1)[:2] / mask.sum(-1)[:2], rtol=1e-5)
    assert avg[2] == 0.0  # no counted tokens: 0, not NaN


def test_logps_ignore_placeholder_labels_and_huge_logits():
    logits = jnp.array([[[1e4, -1e4, 0.0], [0.0, 3e4, -3e4]]])
    labels = jnp.array([[1, -100]])
    lp = token_logps(logits, labels, jnp.array([[True, False]]))
    np.testing.assert_allclose(lp, [[-2e4, 0.0]], rtol=1e-6)
    assert np.isfinite(np.asarray(jax.grad(lambda l: token_logps(l, labels, labels >= 0).sum())(logits))).all()


def test_next_token_alignment_and_loss():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 6, 5)).astype(np.float32)
    tokens = rng.integers(0, 5, (2, 6))
    loss_mask = np.zeros((2, 6), bool)
    loss_mask[:, 3:] = True  # the "answer" is tokens 3..5
    lp = next_token_logps(logits, tokens, loss_mask)
    ref = _log_softmax(logits)
    for b in range(2):
        for t in range(5):
            want = ref[b, t, tokens[b, t + 1]] if t + 1 >= 3 else 0.0
            np.testing.assert_allclose(lp[b, t], want, rtol=1e-5, atol=1e-6)
    loss, aux = masked_lm_loss(logits, tokens, loss_mask)
    np.testing.assert_allclose(loss, -lp.sum() / 6, rtol=1e-5)
    acc = np.mean([np.argmax(logits[b, t]) == tokens[b, t + 1] for b in range(2) for t in range(2, 5)])
    np.testing.assert_allclose(aux["token_accuracy"], acc)


def test_shape_errors():
    with pytest.raises(ValueError, match="labels shape"):
        token_logps(jnp.zeros((2, 3, 4)), jnp.zeros((2, 4), jnp.int32))
    with pytest.raises(ValueError, match="mask shape"):
        token_logps(jnp.zeros((2, 3, 4)), jnp.zeros((2, 3), jnp.int32), jnp.ones((3,), bool))
    with pytest.raises(ValueError, match=r"labels must be ids in \[0, 4\) where scored .* min -100, max 4"):
        token_logps(jnp.zeros((2, 4)), jnp.array([-100, 4]))  # was NaN
    masked = token_logps(jnp.zeros((2, 4)), jnp.array([-100, 3]), jnp.array([False, True]))  # placeholders masked: fine
    np.testing.assert_allclose(masked, [0.0, np.log(0.25)], rtol=1e-6)


@pytest.fixture(scope="module")
def lm():
    cfg = TransformerConfig(vocab_size=9, d_model=16, num_heads=2, num_layers=1, max_len=12)
    model = TransformerLM(cfg)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]
    return model, params


def test_heldout_lm_loss_is_the_masked_cross_entropy(lm):
    model, params = lm
    tokens = jnp.array([[1, 4, 5, 2, 7], [2, 3, 8, 8, 0]])
    mask = np.array([[0, 0, 1, 1, 1], [0, 1, 1, 1, 0]], bool)
    logits = np.asarray(model.apply({"params": params}, tokens), np.float64)
    # position t scores tokens[t] from the logits at t - 1 (mask[:, 0] is never a target)
    lp = np.take_along_axis(_log_softmax(logits[:, :-1]), np.asarray(tokens)[:, 1:, None], -1)[..., 0]
    expect = -(lp * mask[:, 1:]).sum() / mask[:, 1:].sum()
    loss, aux = heldout_lm_loss(LMApply(model), params, tokens, jnp.asarray(mask))
    np.testing.assert_allclose(float(loss), expect, rtol=1e-5)
    variables = heldout_lm_loss(LMApply(model, variables=True), {"params": params}, tokens, jnp.asarray(mask))[0]
    assert float(variables) == float(loss)
    assert set(aux) == set(masked_lm_loss(jnp.asarray(logits, jnp.float32), tokens, jnp.asarray(mask))[1])


def test_greedy_generation_equals_python_loop(lm):
    model, params = lm
    prompt = jnp.array([[1, 4, 5], [2, 3, 8]])
    got = generate(LMApply(model), params, prompt, jax.random.key(0), max_new_tokens=5)
    # One token at a time in Python. The model is causal, so the logits at position t of a zero-padded
    # buffer are those of the sequence cut at t: one buffer shape, one compile.
    seq = np.zeros((2, 8), np.int32)
    seq[:, :3] = prompt
    apply = jax.jit(model.apply)
    for t in range(3, 8):
        logits = apply({"params": params}, jnp.asarray(seq))
        seq[:, t] = np.argmax(logits[:, t - 1], -1)
    np.testing.assert_array_equal(got, seq[:, 3:])
    # top_k=1 sampling at any temperature is greedy
    top1 = generate(LMApply(model), params, prompt, jax.random.key(3), max_new_tokens=5, temperature=2.0, top_k=1)
    np.testing.assert_array_equal(top1, got)


def test_sampling_is_reproducible_and_respects_top_k(lm):
    model, params = lm
    prompt = jnp.tile(jnp.array([[1, 4]]), (64, 1))
    a = generate(LMApply(model), params, prompt, jax.random.key(1), max_new_tokens=1, temperature=5.0, top_k=2)
    b = generate(LMApply(model), params, prompt, jax.random.key(1), max_new_tokens=1, temperature=5.0, top_k=2)
    np.testing.assert_array_equal(a, b)
    top2 = set(np.argsort(np.asarray(jax.jit(LMApply(model))(params, prompt[:1])[0, -1]))[-2:].tolist())
    assert set(np.asarray(a)[:, 0].tolist()) == top2  # 64 hot samples hit both and only the top 2


def test_generation_pads_after_eos(lm):
    model, params = lm
    prompt = jnp.array([[1, 4, 5]])
    free = np.asarray(generate(LMApply(model), params, prompt, jax.random.key(0), max_new_tokens=6))[0]
    eos = int(free[1])  # declare the 2nd generated token to be EOS
    out = np.asarray(generate(LMApply(model), params, prompt, jax.random.key(0), max_new_tokens=6, eos_id=eos, pad_id=0))[0]
    first = list(free).index(eos)
    np.testing.assert_array_equal(out[: first + 1], free[: first + 1])
    assert (out[first + 1 :] == 0).all()


def test_lm_apply_hash_reuses_compilation(lm):
    model, _ = lm
    assert LMApply(model) == LMApply(TransformerLM(model.config)) and hash(LMApply(model)) == hash(
        LMApply(TransformerLM(model.config))
    )
    with pytest.raises(ValueError, match="top_k"):
        generate(LMApply(model), lm[1], jnp.array([[1]]), jax.random.key(0), max_new_tokens=1, top_k=0)
    with pytest.raises(ValueError, match="temperature must be >= 0"):  # was greedy, silently
        generate(LMApply(model), lm[1], jnp.array([[1]]), jax.random.key(0), max_new_tokens=1, temperature=-1.0)
    with pytest.raises(ValueError, match="top_k must be <= the vocabulary size"):
        generate(LMApply(model), lm[1], jnp.array([[1]]), jax.random.key(0), max_new_tokens=1,
                 top_k=model.config.vocab_size + 1)


def test_lm_apply_with_whole_variables_dicts(lm):
    model, params = lm
    tokens = jnp.array([[1, 2, 3, 4, 5, 6]])
    np.testing.assert_array_equal(jax.jit(LMApply(model, variables=True))({"params": params}, tokens),
                                  jax.jit(LMApply(model))(params, tokens))
    assert LMApply(model) != LMApply(model, variables=True) and LMApply(model, variables=True) == LMApply(model, variables=True)


def test_lm_loss_fn_is_masked_lm_loss_with_frozen_collections(lm):
    model, params = lm
    batch = {"tokens": jnp.array([[1, 2, 3, 4, 5, 6]]), "loss_mask": jnp.array([[0, 0, 1, 1, 1, 1]], bool)}
    want = jax.jit(lambda p, b: masked_lm_loss(model.apply({"params": p}, b["tokens"]), b["tokens"], b["loss_mask"]))
    want = want(params, batch)
    loss_fn = jax.jit(lm_loss_fn(model))
    np.testing.assert_array_equal(loss_fn(params, batch, None)[0], want[0])
    np.testing.assert_array_equal(loss_fn(params, batch, None, {})[0], want[0])
