import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec as P

from nips23jax.core import sharding
from nips23jax.core.train import TrainState, make_train_step
from nips23jax.models.lm import masked_lm_loss
from nips23jax.models.transformer import TransformerConfig, TransformerLM


def test_make_mesh_shapes_and_free_axis():
    mesh = sharding.make_mesh({"data": 2, "fsdp": -1})
    assert dict(mesh.shape) == {"data": 2, "fsdp": 4, "tensor": 1}
    assert sharding.make_mesh().shape["data"] == 8
    assert dict(sharding.make_mesh({"fsdp": 2, "tensor": 4}).shape) == {"data": 1, "fsdp": 2, "tensor": 4}


@pytest.mark.parametrize(
    "sizes, match",
    [
        ({"model": 2}, "unknown axes"),
        ({"data": 3}, "need 3 devices"),
        ({"data": -1, "fsdp": -1}, "at most one axis"),
        ({"data": 0, "fsdp": -1}, "positive int"),
        ({"data": 3, "fsdp": -1}, "not divisible"),
    ],
)
def test_make_mesh_errors(sizes, match):
    with pytest.raises(ValueError, match=match):
        sharding.make_mesh(sizes)


def test_param_shardings_rules_and_fsdp_default():
    mesh = sharding.make_mesh({"data": 2, "fsdp": 4})
    params = {
        "block_0": {"attn": {"query": {"kernel": jnp.zeros((64, 48)), "bias": jnp.zeros((48,))}}},
        "embed": {"embedding": jnp.zeros((30, 64))},
        "odd": jnp.zeros((7, 9, 3, 11)),
    }
    rules = [(r"embed/embedding$", P()), (r"attn/.*/kernel", P(None, "fsdp"))]
    sh = sharding.param_shardings(params, mesh, rules, fsdp_min_size=16)
    assert sh["embed"]["embedding"].spec == P()
    assert sh["block_0"]["attn"]["query"]["kernel"].spec == P(None, "fsdp")
    # fsdp default: largest divisible dimension (48 % 4 == 0), small/indivisible leaves replicated.
    assert sh["block_0"]["attn"]["query"]["bias"].spec == P("fsdp")
    assert sh["odd"].spec == P()
    assert sharding.param_shardings({"w": jnp.zeros((8, 8))}, mesh)["w"].spec == P()  # below min size


def test_param_shardings_rejects_indivisible_rule():
    mesh = sharding.make_mesh({"data": 2, "fsdp": 4})
    with pytest.raises(ValueError, match="'w' dim 0 .*not divisible"):
        sharding.param_shardings({"w": jnp.zeros((6, 8))}, mesh, [("w", P("fsdp"))])
    with pytest.raises(ValueError, match="unknown mesh axis 'model'"):
        sharding.param_shardings({"w": jnp.zeros((8, 8))}, mesh, [("w", P("model"))])


def test_shard_batch_places_and_validates():
    mesh = sharding.make_mesh({"data": 2, "fsdp": 4})
    out = sharding.shard_batch({"x": np.arange(16.0).reshape(8, 2)}, mesh)
    assert out["x"].sharding.spec == P(("data", "fsdp"))
    np.testing.assert_array_equal(np.asarray(out["x"]), np.arange(16.0).reshape(8, 2))
    with pytest.raises(ValueError, match="leaf 'y' has shape \\(6,\\)"):
        sharding.shard_batch({"y": np.zeros(6)}, mesh)


def _setup():
    cfg = TransformerConfig(vocab_size=17, d_model=32, num_heads=4, num_layers=1, max_len=12, d_ff=64)
    model = TransformerLM(cfg)
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 17, (16, 12)).astype(np.int32)
    mask = np.ones_like(tokens, bool)
    mask[:, :4] = False
    # init's structure and shapes (traced, not compiled); values from NumPy, placed by each run itself.
    shapes = jax.eval_shape(model.init, jax.random.key(0), tokens)["params"]
    params = jax.tree.map(lambda s: (0.3 * rng.standard_normal(s.shape)).astype(s.dtype), shapes)
    # SGD with momentum is linear in the gradients, so sharded and unsharded runs differ only by
    # float reordering. (Adam would amplify the roundoff of gradients that are exactly zero in
    # exact arithmetic, e.g. the attention key bias, to full-size updates of either sign.)
    opt = optax.sgd(0.1, momentum=0.9)

    def loss_fn(p, batch, key):
        return masked_lm_loss(model.apply({"params": p}, batch["tokens"]), batch["tokens"], batch["mask"])

    return params, opt, loss_fn, {"tokens": tokens, "mask": mask}


def test_sharded_train_step_equals_unsharded():
    params, opt, loss_fn, batch = _setup()
    ref_state = TrainState.create(params, opt)
    ref_step = make_train_step(loss_fn, opt, donate=False)
    for _ in range(3):
        ref_state, ref_metrics = ref_step(ref_state, batch)

    mesh = sharding.make_mesh({"data": 2, "fsdp": 4})
    state = TrainState.create(params, opt)
    state_sh = sharding.param_shardings(state, mesh, fsdp_min_size=64)
    state = jax.device_put(state, state_sh)
    step = make_train_step(
        loss_fn, opt, state_shardings=state_sh, batch_shardings=sharding.batch_sharding(mesh)
    )
    sbatch = sharding.shard_batch(batch, mesh)
    for _ in range(3):
        state, metrics = step(state, sbatch)

    kernel = state.params["block_0"]["mlp"]["fc1"]["kernel"]
    assert "fsdp" in jax.tree.leaves(tuple(kernel.sharding.spec)), kernel.sharding.spec
    assert len(kernel.addressable_shards) == 8 and kernel.addressable_shards[0].data.shape != kernel.shape
    np.testing.assert_allclose(float(metrics["loss"]), float(ref_metrics["loss"]), rtol=1e-5)
    for a, b in zip(jax.tree.leaves(state.params), jax.tree.leaves(ref_state.params)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=2e-5, atol=2e-6)
    assert int(state.step) == 3
