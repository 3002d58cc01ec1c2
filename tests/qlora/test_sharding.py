"""QLoRA under shardings: NF4 weights split over their blocks (FSDP) and a sharded QLoRA train step
equal their single-device results (8 simulated CPU devices, see conftest)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nips23jax.core import sharding
from nips23jax.core.train import TrainState, make_train_step
from nips23jax.models import TransformerConfig, TransformerLM
from nips23jax.models.lm import lm_loss_fn
from nips23jax.qlora import lora, nf4_matmul, quantize_4bit


def test_nf4_weight_sharded_over_blocks_gives_the_unsharded_matmul():
    mesh = sharding.make_mesh({"data": 2, "fsdp": 4})
    q = quantize_4bit(jax.random.normal(jax.random.key(0), (256, 128)), "nf4")
    x = jax.random.normal(jax.random.key(1), (8, 256))
    sh = sharding.param_shardings(q, mesh, fsdp_min_size=64)
    assert sh.packed.spec == P("fsdp") and sh.absmax.spec == P("fsdp")  # codes and scales split by block
    qs = jax.device_put(q, sh)
    assert len(qs.packed.sharding.device_set) == 8 and qs.packed.addressable_shards[0].data.shape == (256 * 128 // 8,)
    xs = jax.device_put(x, NamedSharding(mesh, P(("data", "fsdp"))))
    got = jax.jit(nf4_matmul)(xs, qs)
    np.testing.assert_allclose(got, nf4_matmul(x, q), rtol=1e-5, atol=1e-5)
    g = jax.jit(jax.grad(lambda x, q: jnp.sum(nf4_matmul(x, q) ** 2)))(xs, qs)
    np.testing.assert_allclose(g, jax.grad(lambda x: jnp.sum(nf4_matmul(x, q) ** 2))(x), rtol=1e-4, atol=1e-4)


def test_sharded_qlora_train_step_equals_single_device():
    cfg = TransformerConfig(vocab_size=16, d_model=64, num_heads=2, num_layers=1, max_len=8)
    lcfg = lora.LoRAConfig(rank=4, alpha=8)
    model = TransformerLM(cfg, dense=lora.qlora_dense(lcfg))
    tokens = jax.random.randint(jax.random.key(2), (8, 8), 0, 16)
    batch = {"tokens": tokens, "loss_mask": jnp.ones_like(tokens, bool)}
    base = jax.jit(TransformerLM(cfg).init)(jax.random.key(0), tokens)["params"]
    params, quant = lora.quantize_base(lora.add_adapters(jax.random.key(1), base, lcfg), lcfg)
    # SGD: Adam's m/sqrt(v) would magnify float reassociation in near-zero gradients
    opt = lora.lora_optimizer(optax.sgd(0.5), params)

    loss_fn = lm_loss_fn(model)

    def run(state, step):
        for _ in range(2):
            state, metrics = step(state, batch)
        return state, metrics

    copy = lambda t: jax.tree.map(lambda x: jnp.array(x, copy=True), t)  # noqa: E731 - steps donate
    ref_state, ref_metrics = run(TrainState.create(copy(params), opt, {"quant": copy(quant)}), make_train_step(loss_fn, opt))

    mesh = sharding.make_mesh({"data": 2, "fsdp": 4})
    state = TrainState.create(copy(params), opt, {"quant": copy(quant)})
    shardings = sharding.param_shardings(state, mesh, fsdp_min_size=256)
    fc1 = shardings.frozen["quant"]["block_0"]["mlp"]["fc1"]["kernel"]
    assert fc1.packed.spec == P("fsdp")  # the 4-bit base is FSDP-sharded over its blocks
    step = make_train_step(loss_fn, opt, state_shardings=shardings, batch_shardings=sharding.batch_sharding(mesh))
    state, metrics = run(jax.device_put(state, shardings), step)
    np.testing.assert_allclose(metrics["loss"], ref_metrics["loss"], rtol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5), state.params, ref_state.params)
    jax.tree.map(np.testing.assert_array_equal, state.frozen["quant"], quant)  # the base never changes
