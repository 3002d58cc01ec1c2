import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nips23jax.core.train import TrainState, fit, make_train_step
from nips23jax.dpo import concatenated_logps, frozen_reference, make_dpo_loss_fn, reference_logps, sequence_logps
from nips23jax.models.lm import LMApply
from nips23jax.models.transformer import TransformerConfig, TransformerLM


def _log_softmax(x):
    x = np.asarray(x, np.float64)
    return x - x.max(-1, keepdims=True) - np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True))


def test_sequence_logps_against_a_loop():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 6, 5)).astype(np.float32)
    ids = rng.integers(0, 5, (3, 6))
    labels = ids.copy()
    labels[:, :2] = -100  # prompt
    labels[1, 5] = -100  # padding
    lp = _log_softmax(logits)
    want = [sum(lp[b, t - 1, labels[b, t]] for t in range(1, 6) if labels[b, t] != -100) for b in range(3)]
    counts = [(labels[b, 1:] != -100).sum() for b in range(3)]
    np.testing.assert_allclose(sequence_logps(logits, labels), want, rtol=1e-5)
    np.testing.assert_allclose(sequence_logps(logits, labels, average=True), np.array(want) / counts, rtol=1e-5)
    extra = np.ones((3, 6), bool)
    extra[0, 5] = False
    np.testing.assert_allclose(sequence_logps(logits, labels, extra)[0], want[0] - lp[0, 4, labels[0, 5]], rtol=1e-5)


def test_sequence_logps_errors():
    logits = jnp.zeros((2, 4, 3))
    labels = jnp.array([[1, 2, 0, 1], [1, -100, -100, -100]])
    with pytest.raises(ValueError, match=r"sequences \[1\] have no scored token"):
        sequence_logps(logits, labels)
    with pytest.raises(ValueError, match="labels \\(B, T\\) expected"):
        sequence_logps(logits, labels[:, :3])
    traced = jax.jit(sequence_logps)(logits, labels)  # under jit: NaN for the empty row, so a loss over it is NaN
    assert np.isfinite(traced[0]) and np.isnan(traced[1])
    other = jnp.array([[1, 2, 0, 1], [1, -1, -1, 2]])  # ignore_index given positionally
    np.testing.assert_allclose(sequence_logps(logits, other, None, -1), [3 * np.log(1 / 3), np.log(1 / 3)], rtol=1e-6)


@pytest.fixture(scope="module")
def lm():
    cfg = TransformerConfig(vocab_size=12, d_model=32, num_heads=2, num_layers=1, max_len=16)
    model = TransformerLM(cfg)
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 4), jnp.int32))["params"]
    return model, params


def _pairs(b=4, seed=0):
    rng = np.random.default_rng(seed)
    prompt = rng.integers(3, 12, (b, 3))
    chosen = np.concatenate([prompt, rng.integers(3, 12, (b, 4))], 1)
    rejected = np.concatenate([prompt, rng.integers(3, 12, (b, 6))], 1)
    cl, rl = chosen.copy(), rejected.copy()
    cl[:, :3] = -100
    rl[:, :3] = -100
    rl[0, -2:] = -100  # a padded rejected completion
    rejected[0, -2:] = 0
    return {"chosen_ids": chosen, "chosen_labels": cl, "rejected_ids": rejected, "rejected_labels": rl}


def test_concatenated_equals_separate_forwards(lm):
    model, params = lm
    batch = _pairs()

    @jax.jit  # both sides in one compiled program (eager Flax compiles every op separately)
    def both(params, batch):
        pc, pr = concatenated_logps(LMApply(model), params, *(batch[k] for k in
                                    ("chosen_ids", "chosen_labels", "rejected_ids", "rejected_labels")))
        apply = lambda ids: model.apply({"params": params}, ids)  # noqa: E731
        separate = (sequence_logps(apply(batch["chosen_ids"]), batch["chosen_labels"]),
                    sequence_logps(apply(batch["rejected_ids"]), batch["rejected_labels"]))
        return (pc, pr), separate

    (pc, pr), (want_c, want_r) = both(params, batch)
    np.testing.assert_allclose(pc, want_c, rtol=1e-5)
    np.testing.assert_allclose(pr, want_r, rtol=1e-5)


def test_policy_equal_to_reference_gives_log2_and_zero_rewards(lm):
    model, params = lm
    loss_fn = jax.jit(make_dpo_loss_fn(LMApply(model), beta=0.5))
    loss, metrics = loss_fn(params, {**_pairs(), "ref_params": params}, None)
    np.testing.assert_allclose(loss, np.log(2.0), rtol=1e-6)
    assert float(metrics["rewards/margins"]) == 0.0 and float(metrics["rewards/accuracies"]) == 0.0
    pre = jax.jit(reference_logps, static_argnums=0)(LMApply(model), params, _pairs())
    loss2, _ = loss_fn(params, {**_pairs(), **pre}, None)
    np.testing.assert_allclose(loss2, loss, rtol=1e-6)


def test_batch_beta_replaces_the_option_in_one_compiled_loss(lm):
    model, params = lm
    pairs = {**_pairs(seed=2), "ref_params": jax.tree.map(lambda p: p * 0.9, params)}
    per_batch = jax.jit(make_dpo_loss_fn(LMApply(model), beta=123.0))
    for beta in (0.1, 2.0):
        want, want_m = jax.jit(make_dpo_loss_fn(LMApply(model), beta=beta))(params, pairs, None)
        got, got_m = per_batch(params, {**pairs, "beta": np.float32(beta)}, None)
        np.testing.assert_allclose(got, want, rtol=1e-6)
        np.testing.assert_allclose(got_m["rewards/margins"], want_m["rewards/margins"], rtol=1e-6)
    assert per_batch._cache_size() == 1  # both betas ran the one compiled program
    assert not np.isclose(float(want), float(per_batch(params, pairs, None)[0]))  # no entry: the option's 123


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_training_prefers_chosen_and_checkpoints(lm, tmp_path, loss_type):
    model, sft_params = lm
    ref_params = frozen_reference(sft_params)
    batch = {**_pairs(8, seed=1), "ref_params": ref_params}
    opt = optax.adam(3e-3)
    step = make_train_step(make_dpo_loss_fn(LMApply(model), beta=0.1, loss_type=loss_type), opt)
    # the shared step donates the state: train a copy, so the fixture's arrays stay alive
    out = fit(TrainState.create(frozen_reference(sft_params), opt), step, lambda t: batch, num_steps=30, workdir=tmp_path,
              checkpoint_every=15, log_every=5, progress=False)
    rows = [r for r in out.log.rows if r["split"] == "train"]
    assert rows[-1]["loss"] < rows[0]["loss"]
    assert rows[-1]["rewards/accuracies"] == 1.0 and rows[-1]["rewards/margins"] > 0
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == ["15", "30"]
    # the reference stayed frozen: still the SFT weights, while the policy moved
    fc1 = lambda p: np.asarray(p["block_0"]["mlp"]["fc1"]["kernel"])  # noqa: E731
    np.testing.assert_array_equal(fc1(ref_params), fc1(sft_params))
    assert not np.allclose(fc1(out.state.params), fc1(ref_params))


def test_missing_batch_keys(lm):
    model, params = lm
    loss_fn = make_dpo_loss_fn(LMApply(model))
    with pytest.raises(KeyError, match="ref_chosen_logps/ref_rejected_logps or ref_params"):
        loss_fn(params, _pairs(), None)
    with pytest.raises(KeyError, match="missing \\['rejected_labels'\\]"):
        loss_fn(params, {k: v for k, v in _pairs().items() if k != "rejected_labels"}, None)
    with pytest.raises(ValueError, match="unknown loss_type"):
        make_dpo_loss_fn(LMApply(model), loss_type="kto")


def test_lora_policy_with_adapters_off_reference(lm):
    """DPO with a LoRA policy whose reference is the same model with adapters off (no copy): equals DPO
    against the base model's precomputed log-probs, and training moves only the adapters."""
    from nips23jax.qlora import lora

    model, base = lm
    cfg = lora.LoRAConfig(rank=2, alpha=4)
    lmodel = TransformerLM(model.config, dense=lora.lora_dense(cfg))
    params = lora.add_adapters(jax.random.key(1), base, cfg)
    params = jax.tree_util.tree_map_with_path(
        lambda p, x: 0.05 * jnp.ones_like(x) if str(p[-1].key) == "lora_b" else x, params)
    loss_fn = jax.jit(make_dpo_loss_fn(LMApply(lmodel), beta=0.5, reference_fn=lora.disable_adapters))
    loss, _ = loss_fn(params, _pairs(), None)
    ref = jax.jit(reference_logps, static_argnums=0)(LMApply(model), base, _pairs())
    want, _ = jax.jit(make_dpo_loss_fn(LMApply(lmodel), beta=0.5))(params, {**_pairs(), **ref}, None)
    np.testing.assert_allclose(loss, want, rtol=1e-5)
    assert abs(float(loss) - np.log(2)) > 1e-3  # the adapters moved the policy off the reference

    opt = lora.lora_optimizer(optax.adam(1e-2), params)
    step = make_train_step(make_dpo_loss_fn(LMApply(lmodel), beta=0.1, reference_fn=lora.disable_adapters), opt)
    state = TrainState.create(lora.add_adapters(jax.random.key(1), frozen_reference(base), cfg), opt)  # donated
    batch = _pairs(8, seed=1)
    losses = []
    for _ in range(10):
        state, metrics = step(state, batch)
        losses.append(float(metrics["loss"]))
    assert losses[0] == pytest.approx(np.log(2), abs=1e-5) and losses[-1] < losses[0] - 0.05
    np.testing.assert_array_equal(state.params["block_0"]["mlp"]["fc1"]["kernel"], base["block_0"]["mlp"]["fc1"]["kernel"])
    with pytest.raises(ValueError, match="exclude each other"):
        make_dpo_loss_fn(LMApply(lmodel), reference_fn=lora.disable_adapters, reference_free=True)


def test_qlora_policy_dpo_step_with_the_base_in_frozen(lm):
    """QLoRA: the 4-bit base lives in TrainState.frozen ({"quant": ...}); the reference is the same
    base with adapters off. Step 1 starts at policy == reference (loss log 2); the base never moves."""
    from nips23jax.qlora import lora

    model, base = lm
    cfg = lora.LoRAConfig(rank=2, alpha=4)
    qmodel = TransformerLM(model.config, dense=lora.qlora_dense(cfg))
    params, quant = lora.quantize_base(lora.add_adapters(jax.random.key(1), frozen_reference(base), cfg), cfg)
    opt = lora.lora_optimizer(optax.adam(1e-2), params)
    loss_fn = make_dpo_loss_fn(LMApply(qmodel, variables=True), beta=0.1, reference_fn=lora.disable_adapters)
    step = make_train_step(loss_fn, opt)
    state = TrainState.create(params, opt, {"quant": frozen_reference(quant)})
    losses = []
    for _ in range(6):
        state, metrics = step(state, _pairs(8, seed=1))
        losses.append(float(metrics["loss"]))
    assert losses[0] == pytest.approx(np.log(2), abs=1e-5) and losses[-1] < losses[0]
    jax.tree.map(np.testing.assert_array_equal, state.frozen["quant"], quant)
    with pytest.raises(TypeError, match="frozen must be a dict"):
        loss_fn(params, _pairs(), None, quant["block_0"]["mlp"]["fc1"]["kernel"])


def test_custom_ignore_index_reaches_the_reference(lm):
    """With the reference equal to the policy the loss is log 2 and the rewards 0, for any ignore_index."""
    model, params = lm
    pairs = {k: np.where(v < 0, -1, v) if k.endswith("labels") else v for k, v in _pairs(seed=3).items()}
    loss_fn = jax.jit(make_dpo_loss_fn(LMApply(model), ignore_index=-1, reference_fn=lambda q: q))
    loss, metrics = loss_fn(params, pairs, None)
    np.testing.assert_allclose(loss, np.log(2.0), rtol=1e-6)
    assert abs(float(metrics["rewards/chosen"])) < 1e-6
    ref = jax.jit(reference_logps, static_argnums=0, static_argnames="ignore_index")(
        LMApply(model), params, pairs, ignore_index=-1)
    pc, _ = concatenated_logps(LMApply(model), params, *(pairs[k] for k in
                               ("chosen_ids", "chosen_labels", "rejected_ids", "rejected_labels")), ignore_index=-1)
    np.testing.assert_allclose(ref["ref_chosen_logps"], pc, rtol=1e-6)


def test_ipo_lengths_count_the_scored_labels(lm):
    """IPO normalizes by the completion length: the labels a causal LM scores, ``labels[:, 1:]``. With no
    prompt (``labels[:, 0]`` not ignored) counting the whole row was one token too many."""
    from nips23jax.dpo import dpo_loss

    model, params = lm
    pairs = _pairs(seed=5)
    pairs = {**pairs, "chosen_labels": pairs["chosen_ids"].copy()}  # no prompt on the chosen side
    ref = jax.jit(reference_logps, static_argnums=0)(LMApply(model), jax.tree.map(lambda p: p * 0.9, params), pairs)
    loss, _ = jax.jit(make_dpo_loss_fn(LMApply(model), beta=0.5, loss_type="ipo"))(params, {**pairs, **ref}, None)
    pc, pr = concatenated_logps(LMApply(model), params, *(pairs[k] for k in
                                ("chosen_ids", "chosen_labels", "rejected_ids", "rejected_labels")))
    lengths = {f"{s}_lengths": (pairs[f"{s}_labels"][:, 1:] != -100).sum(-1) for s in ("chosen", "rejected")}
    want, _, _ = dpo_loss(pc, pr, ref["ref_chosen_logps"], ref["ref_rejected_logps"], beta=0.5, loss_type="ipo",
                          **lengths)
    np.testing.assert_allclose(loss, np.mean(want), rtol=1e-5)
