import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nips23jax.models import TransformerConfig, TransformerLM
from nips23jax.qlora import NF4Tensor, dequantize_4bit, quantize_4bit
from nips23jax.qlora import lora

CFG = TransformerConfig(vocab_size=16, d_model=32, num_heads=2, num_layers=1, max_len=8, tied_head=False)
TOKENS = jnp.array([[1, 3, 5, 7, 2, 4, 6, 8], [2, 2, 3, 3, 9, 9, 1, 0]])
ADAPTED = {"query", "key", "value", "out", "fc1", "fc2"}


def _base_params():
    return TransformerLM(CFG).init(jax.random.key(0), TOKENS)["params"]


def _randomize_b(params, key):
    """Nonzero B so adapters change the output (as after some training)."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    leaves = [0.1 * jax.random.normal(jax.random.fold_in(key, i), x.shape) if str(p[-1].key) == "lora_b" else x
              for i, (p, x) in enumerate(flat)]
    return jax.tree_util.tree_unflatten(treedef, leaves)


def test_config_scaling_and_errors():
    assert lora.LoRAConfig(rank=64, alpha=16).scaling == 0.25
    assert lora.LoRAConfig(rank=64, alpha=16, rslora=True).scaling == 2.0
    with pytest.raises(ValueError, match="rank must be an int >= 1"):
        lora.LoRAConfig(rank=0)
    with pytest.raises(ValueError, match="dropout must be in"):
        lora.LoRAConfig(dropout=1.0)
    with pytest.raises(ValueError, match="targets is not a valid regex"):
        lora.LoRAConfig(targets="(")
    for bad in (float("nan"), "16", True):
        with pytest.raises(ValueError, match="alpha must be a finite number"):
            lora.LoRAConfig(alpha=bad)
    with pytest.raises(ValueError, match="rank must be an int"):
        lora.LoRAConfig(rank=True)


def test_default_targets_are_dense_kernels_but_not_the_head():
    paths = lora.target_paths(_base_params())
    assert {p.split("/")[-2] for p in paths} == ADAPTED
    assert all(p.endswith("kernel") and "head" not in p and "embed" not in p for p in paths)
    with pytest.raises(ValueError, match="matches no 2-D kernel"):
        lora.target_paths(_base_params(), "nothing_like_this")
    with pytest.raises(ValueError, match="matches no 2-D kernel"):
        lora.target_paths(_base_params(), "embed")  # the embedding table is 2-D but not a kernel
    with_adapters = lora.add_adapters(jax.random.key(0), _base_params(), lora.LoRAConfig(rank=2, targets="attn/query"))
    queries = lora.target_paths(with_adapters, "attn/query")
    assert queries and all(p.endswith("attn/query/kernel") for p in queries)  # not its lora_a / lora_b
    off = lora.disable_adapters({"a": {"lora_b": jnp.ones(2), "not_lora_b": jnp.ones(2)}})
    np.testing.assert_array_equal(off["a"]["lora_b"], 0)
    np.testing.assert_array_equal(off["a"]["not_lora_b"], 1)  # exact leaf names only


def test_lora_model_layout_init_and_peft_conventions():
    cfg = lora.LoRAConfig(rank=4, alpha=8)
    params = TransformerLM(CFG, dense=lora.lora_dense(cfg)).init(jax.random.key(0), TOKENS)["params"]
    mods = {"/".join(m) for m in lora._adapted_modules(params)}
    assert {m.split("/")[-1] for m in mods} == ADAPTED and "head" not in params or "lora_a" not in params["head"]
    q = params["block_0"]["attn"]["query"]
    assert q["lora_a"].shape == (32, 4) and q["lora_b"].shape == (4, 32)
    np.testing.assert_array_equal(q["lora_b"], 0)
    fc2 = params["block_0"]["mlp"]["fc2"]["lora_a"]  # in = hidden = 128: U(-1/sqrt(128), 1/sqrt(128))
    bound = 1 / math.sqrt(fc2.shape[0])
    assert float(jnp.max(jnp.abs(fc2))) <= bound and float(jnp.std(fc2)) == pytest.approx(bound / math.sqrt(3), rel=0.15)
    # add_adapters on the plain model's params gives the same layout: pretrained weights plug straight in
    added = lora.add_adapters(jax.random.key(1), _base_params(), cfg)
    assert jax.tree.structure(added) == jax.tree.structure(jax.tree.map(lambda x: x, dict(params)))
    jax.tree.map(lambda a, b: np.testing.assert_equal(a.shape, b.shape), added, dict(params))
    # B = 0: the adapted model computes exactly the base model
    base = TransformerLM(CFG).apply({"params": _base_params()}, TOKENS)
    lora_out = TransformerLM(CFG, dense=lora.lora_dense(cfg)).apply({"params": added}, TOKENS)
    np.testing.assert_allclose(lora_out, base, atol=1e-6)


def test_lora_dense_against_the_formula():
    cfg = lora.LoRAConfig(rank=3, alpha=6, targets="kernel")
    layer = lora.LoRADense(5, config=cfg)
    x = jax.random.normal(jax.random.key(2), (4, 7))
    p = layer.init(jax.random.key(3), x)["params"]
    p = {**p, "lora_b": jax.random.normal(jax.random.key(4), (3, 5)), "bias": jnp.arange(5.0)}
    want = np.asarray(x) @ np.asarray(p["kernel"]) + np.arange(5.0) + (
        np.asarray(x) @ np.asarray(p["lora_a"]) @ np.asarray(p["lora_b"])) * 2.0
    np.testing.assert_allclose(layer.apply({"params": p}, x), want, rtol=1e-5, atol=1e-5)


def test_dropout_only_on_the_adapter_input_and_only_with_a_dropout_rng():
    cfg = lora.LoRAConfig(rank=2, alpha=2, dropout=0.5, targets="kernel")
    layer = lora.LoRADense(6, config=cfg)
    x = jax.random.normal(jax.random.key(5), (3, 8))
    p = layer.init(jax.random.key(6), x)["params"]
    base = x @ p["kernel"] + p["bias"]
    # B = 0: dropout cannot touch the base path
    np.testing.assert_allclose(layer.apply({"params": p}, x, rngs={"dropout": jax.random.key(7)}), base, atol=1e-6)
    p = {**p, "lora_b": jnp.ones((2, 6))}
    det = layer.apply({"params": p}, x)
    np.testing.assert_allclose(det, base + x @ p["lora_a"] @ p["lora_b"], rtol=1e-5, atol=1e-5)
    drop = layer.apply({"params": p}, x, rngs={"dropout": jax.random.key(7)})
    assert not np.allclose(drop, det) and np.isfinite(np.asarray(drop)).all()
    # Only the adapter path changed: with lora_b all ones the change is (dropped x - x)·A·1·s, the same
    # in every output column; and the same key gives the same mask.
    resid = np.asarray(drop - det)
    np.testing.assert_allclose(resid, np.repeat(resid[:, :1], 6, axis=1), atol=1e-5)
    np.testing.assert_array_equal(drop, layer.apply({"params": p}, x, rngs={"dropout": jax.random.key(7)}))


def test_rank_larger_than_layer_is_an_error():
    with pytest.raises(ValueError, match="rank 9 is larger than min"):
        lora.LoRADense(8, config=lora.LoRAConfig(rank=9, targets="kernel")).init(jax.random.key(0), jnp.ones((1, 4)))
    with pytest.raises(ValueError, match="rank 40 is larger than min"):
        lora.add_adapters(jax.random.key(0), _base_params(), lora.LoRAConfig(rank=40))


def test_optimizer_trains_only_adapters_and_keeps_no_state_for_frozen():
    cfg = lora.LoRAConfig(rank=4, alpha=8)
    model = TransformerLM(CFG, dense=lora.lora_dense(cfg))
    params = lora.add_adapters(jax.random.key(1), _base_params(), cfg)
    opt = lora.lora_optimizer(optax.adam(1e-2), params)
    state = opt.init(params)

    def loss(p):
        return jnp.mean(model.apply({"params": p}, TOKENS) ** 2)

    @jax.jit
    def step(p, s):
        u, s = opt.update(jax.grad(loss)(p), s, p)
        return optax.apply_updates(p, u), s

    new = params
    for _ in range(3):
        new, state = step(new, state)
    mask = lora.adapter_mask(params)
    for m, a, b in zip(jax.tree.leaves(mask), jax.tree.leaves(params), jax.tree.leaves(new)):
        if m:
            assert not np.array_equal(a, b) or a.shape[0] <= 4  # every lora_b moved off zero
        else:
            np.testing.assert_array_equal(a, b)
    assert float(loss(new)) < float(loss(params))
    counts = lora.count_params(params)
    state_floats = sum(x.size for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating))
    assert state_floats == 2 * counts["adapter"]  # adam's mu and nu for adapters only
    assert counts["total"] == CFG.num_params() + counts["adapter"]
    with pytest.raises(ValueError, match="nothing to train"):
        lora.lora_optimizer(optax.adam(1e-3), _base_params())
    with pytest.raises(TypeError, match="optax.GradientTransformation"):
        lora.lora_optimizer(lambda g: g, params)


def test_merge_unmerge_and_disable():
    cfg = lora.LoRAConfig(rank=4, alpha=8)
    params = _randomize_b(lora.add_adapters(jax.random.key(1), _base_params(), cfg), jax.random.key(2))
    lora_out = TransformerLM(CFG, dense=lora.lora_dense(cfg)).apply({"params": params}, TOKENS)
    merged = lora.merge(params, cfg)
    assert not lora._adapted_modules(merged)
    np.testing.assert_allclose(TransformerLM(CFG).apply({"params": merged}, TOKENS), lora_out, atol=2e-5)
    back = lora.unmerge(merged, lora.adapter_params(params), cfg)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), back, dict(params))
    off = TransformerLM(CFG, dense=lora.lora_dense(cfg)).apply({"params": lora.disable_adapters(params)}, TOKENS)
    np.testing.assert_allclose(off, TransformerLM(CFG).apply({"params": _base_params()}, TOKENS), atol=1e-6)
    with pytest.raises(ValueError, match="no lora_a / lora_b"):
        lora.merge(_base_params(), cfg)


def _qlora_variables(cfg, key=1):
    with_adapters = lora.add_adapters(jax.random.key(key), _base_params(), cfg)
    rest, quant = lora.quantize_base(with_adapters, cfg)
    return {"params": _randomize_b(rest, jax.random.key(2)), "quant": quant}


def test_qlora_model_equals_lora_on_the_dequantized_base_and_grads_reach_adapters_only():
    cfg = lora.LoRAConfig(rank=4, alpha=8)
    variables = _qlora_variables(cfg)
    q = variables["quant"]["block_0"]["attn"]["query"]["kernel"]
    assert isinstance(q, NF4Tensor) and q.quant_type == "nf4" and q.double_quant
    assert "kernel" not in variables["params"]["block_0"]["attn"]["query"]
    assert "kernel" in variables["params"]["head"]  # the head stays dense and trainable
    model = TransformerLM(CFG, dense=lora.qlora_dense(cfg))
    out = model.apply(variables, TOKENS)
    # reference: the LoRA model whose dense kernels are the dequantized NF4 weights
    dense = lora.dequantize_base(variables["params"], variables["quant"])
    np.testing.assert_array_equal(dense["block_0"]["mlp"]["fc1"]["kernel"], dequantize_4bit(
        variables["quant"]["block_0"]["mlp"]["fc1"]["kernel"]))
    ref = TransformerLM(CFG, dense=lora.lora_dense(cfg)).apply({"params": dense}, TOKENS)
    np.testing.assert_allclose(out, ref, atol=1e-4)

    def loss(p):
        return jnp.mean(model.apply({"params": p, "quant": variables["quant"]}, TOKENS) ** 2)

    g = jax.grad(loss)(variables["params"])
    ga = g["block_0"]["mlp"]["fc1"]
    assert float(jnp.abs(ga["lora_a"]).sum()) > 0 and float(jnp.abs(ga["lora_b"]).sum()) > 0
    # a model built directly with qlora_dense inits the same layout
    fresh = model.init(jax.random.key(0), TOKENS)
    assert jax.tree.structure(fresh["params"]) == jax.tree.structure(variables["params"])
    assert isinstance(fresh["quant"]["block_0"]["mlp"]["fc2"]["kernel"], NF4Tensor)


def test_merge_into_nf4_reports_the_rounding_it_adds():
    cfg = lora.LoRAConfig(rank=4, alpha=8)
    variables = _qlora_variables(cfg)
    params, quant, report = lora.merge_into_nf4(variables["params"], variables["quant"], cfg)
    assert set(report) == {f"block_0/attn/{n}" for n in ("query", "key", "value", "out")} | {
        f"block_0/mlp/{n}" for n in ("fc1", "fc2")}
    m = ("block_0", "mlp", "fc1")
    old = lora._get(variables["quant"], m)["kernel"]
    ad = lora._get(variables["params"], m)
    exact = dequantize_4bit(old) + ad["lora_a"] @ ad["lora_b"] * cfg.scaling
    err = dequantize_4bit(lora._get(quant, m)["kernel"]) - exact
    r = report["block_0/mlp/fc1"]
    np.testing.assert_allclose(r.rms_error, jnp.sqrt(jnp.mean(err**2)), rtol=1e-5)
    np.testing.assert_allclose(r.max_error, jnp.max(jnp.abs(err)), rtol=1e-5)
    # NF4 rounding of ~N(0, s) weights: RMS error about a tenth of the weights' RMS
    assert 0 < float(r.rms_error) < 0.2 * float(jnp.sqrt(jnp.mean(exact**2)))
    # The merged NF4 model (adapters zero) keeps the adapters' effect: it is far closer to the QLoRA
    # model than the base is.
    model = TransformerLM(CFG, dense=lora.qlora_dense(cfg))
    zero = lora._to_dict(params)
    for name in report:
        shape = lora._get(quant, name.split("/"))["kernel"].shape
        node = lora._get(zero, name.split("/"))
        node["lora_a"], node["lora_b"] = jnp.zeros((shape[0], 4)), jnp.zeros((4, shape[1]))
    before = model.apply(variables, TOKENS)
    merged_out = model.apply({"params": zero, "quant": quant}, TOKENS)
    base_out = model.apply({"params": lora.disable_adapters(variables["params"]), "quant": variables["quant"]}, TOKENS)
    assert float(jnp.abs(merged_out - before).mean()) < 0.5 * float(jnp.abs(base_out - before).mean())


# orbax leaves one read coroutine unawaited when a restore is refused for a shape mismatch (the
# error case below); the refusal is what is tested, the leftover coroutine is orbax's.
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_adapter_checkpoints_round_trip_exactly_and_nf4_checkpoints_packed(tmp_path):
    import orbax.checkpoint as ocp

    cfg = lora.LoRAConfig(rank=4, alpha=8)
    variables = _qlora_variables(cfg)
    lora.save_adapters(tmp_path / "adapters", variables["params"])
    zeroed = jax.tree.map(jnp.zeros_like, variables["params"])
    loaded = lora.load_adapters(tmp_path / "adapters", zeroed)
    jax.tree.map(np.testing.assert_array_equal, lora.adapter_params(loaded), lora.adapter_params(variables["params"]))
    np.testing.assert_array_equal(loaded["head"]["kernel"], 0)  # only adapters were written
    bad = lora.add_adapters(jax.random.key(0), _base_params(), lora.LoRAConfig(rank=2))
    with pytest.raises(ValueError, match="does not fit params"):
        lora.load_adapters(tmp_path / "adapters", bad)
    # The NF4 base is a pytree of its packed arrays: orbax stores uint8 codes and restores the tensor
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckpt:
        ckpt.save((tmp_path / "quant").absolute(), args=ocp.args.StandardSave(variables["quant"]))
        abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), variables["quant"])
        restored = ckpt.restore((tmp_path / "quant").absolute(), args=ocp.args.StandardRestore(abstract))
    q0, q1 = (v["block_0"]["attn"]["value"]["kernel"] for v in (variables["quant"], restored))
    assert isinstance(q1, NF4Tensor) and q1.packed.dtype == jnp.uint8 and q1.shape == q0.shape
    jax.tree.map(np.testing.assert_array_equal, restored, variables["quant"])
