"""Paged (host-offloaded) optimizers: bit-identical to the inner transform, state in host memory."""

import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nips23jax.qlora import paged_optimizer as paged_module
from nips23jax.qlora.paged_optimizer import (
    HOST_MEMORY_KINDS, HostOffloadUnavailableWarning, optimizer_state_bytes, paged, paged_adamw,
)

HOST = "pinned_host"
N_STEPS = 3


def _params():
    rng = np.random.default_rng(0)
    return {
        "w": jnp.asarray(rng.standard_normal((8, 4)), jnp.float32),
        "b": jnp.asarray(rng.standard_normal(4), jnp.float32),
    }


def _grads(step, params):
    """Deterministic, step-dependent gradients (no model needed to compare optimizers)."""
    rng = np.random.default_rng(step + 1)
    return {k: jnp.asarray(rng.standard_normal(v.shape), v.dtype) for k, v in sorted(params.items())}


def _run(opt, params, *, jit, n_steps=N_STEPS, **extra):
    """``n_steps`` optimizer steps; returns the per-step updates, final params and final state."""

    def step(params, state, grads):
        updates, state = opt.update(grads, state, params, **extra)
        return optax.apply_updates(params, updates), state, updates

    if jit:
        step = jax.jit(step)
    state = opt.init(params)
    history = []
    for t in range(n_steps):
        params, state, updates = step(params, state, _grads(t, params))
        history.append(updates)
    return history, params, state


def _assert_trees_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert jnp.shape(x) == jnp.shape(y) and jnp.result_type(x) == jnp.result_type(y)
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def _memory_kinds(tree):
    return {x.sharding.memory_kind for x in jax.tree.leaves(tree)}


def test_cpu_backend_offers_host_memory_kinds():
    """The finding the placement tests rely on: JAX 0.10's CPU client exposes all three kinds."""
    kinds = {m.kind for m in jax.devices()[0].addressable_memories()}
    assert {"device", "pinned_host", "unpinned_host"} <= kinds, kinds
    assert jax.devices()[0].default_memory().kind == "device"
    assert paged_module._backend_memory_kinds() >= set(HOST_MEMORY_KINDS)


@pytest.mark.parametrize("jit", [False, True], ids=["eager", "jit"])
def test_paged_adamw_bit_identical_to_optax_adamw(jit):
    params = _params()
    ref_hist, ref_params, ref_state = _run(optax.adamw(1e-2, weight_decay=1e-2), params, jit=jit)
    hist, new_params, state = _run(paged_adamw(1e-2, weight_decay=1e-2), params, jit=jit)
    _assert_trees_equal(hist, ref_hist)
    _assert_trees_equal(new_params, ref_params)
    _assert_trees_equal(state, ref_state)
    assert _memory_kinds(state) == {HOST}
    assert _memory_kinds(hist[-1]) == {"device"}  # updates stay in device memory
    assert _memory_kinds(new_params) == {"device"}


def test_state_placement_keeps_structure_and_moves_only_memory_kind():
    params = _params()
    opt, ref = paged(optax.adamw(1e-2)), optax.adamw(1e-2)
    state, ref_state = opt.init(params), ref.init(params)
    _assert_trees_equal(state, ref_state)  # same tree, shapes, dtypes, values
    assert type(state[0]) is type(ref_state[0])
    assert _memory_kinds(state) == {HOST}
    for x, y in zip(jax.tree.leaves(state), jax.tree.leaves(ref_state)):
        assert x.sharding.device_set == y.sharding.device_set
    # Abstract init (jax.eval_shape) agrees with the inner transform's too.
    assert jax.tree.structure(jax.eval_shape(opt.init, params)) == jax.tree.structure(ref_state)


def test_jitted_init_places_state_on_host():
    state = jax.jit(paged(optax.adam(1e-2)).init)(_params())
    assert _memory_kinds(state) == {HOST}


def test_train_step_donating_params_and_state():
    """The usual ``jit(step, donate_argnums=(0, 1))`` with outputs in the same order as the inputs.

    (Other orders can make JAX alias a donated host leaf to a device output: see ``paged``'s docstring.)
    """

    def make_step(opt):
        def loss(p, x):
            return jnp.sum((x @ p["w"] + p["b"]) ** 2)

        def step(params, state, x):
            value, grads = jax.value_and_grad(loss)(params, x)
            updates, state = opt.update(grads, state, params)
            return optax.apply_updates(params, updates), state, value

        return jax.jit(step, donate_argnums=(0, 1))

    x = jnp.asarray(np.random.default_rng(2).standard_normal((3, 8)), jnp.float32)
    results = []
    for opt in (optax.adamw(1e-2), paged_adamw(1e-2)):
        params = jax.tree.map(jnp.copy, _params())
        state, step = opt.init(params), make_step(opt)
        for _ in range(3):
            params, state, value = step(params, state, x)
        results.append((params, state, value))
    _assert_trees_equal(results[1], results[0])
    assert _memory_kinds(results[1][1]) == {HOST}


def test_inside_and_around_optax_chain():
    params, jit = _params(), True  # eager is covered by the adamw test; jit is the typical use

    def chain(adam):
        return optax.chain(optax.clip_by_global_norm(0.5), adam, optax.scale(0.5))

    ref_hist, _, ref_state = _run(chain(optax.adam(1e-2)), params, jit=jit)
    inside_hist, _, inside_state = _run(chain(paged(optax.adam(1e-2))), params, jit=jit)
    around_hist, _, around_state = _run(paged(chain(optax.adam(1e-2))), params, jit=jit)
    _assert_trees_equal(inside_hist, ref_hist)
    _assert_trees_equal(around_hist, ref_hist)
    _assert_trees_equal(inside_state, ref_state)
    _assert_trees_equal(around_state, ref_state)
    assert _memory_kinds(around_state) == {HOST}
    assert _memory_kinds(inside_state[1]) == {HOST}  # only the wrapped adam's state is offloaded


def test_extra_args_reach_the_inner_transform():
    """Keyword arguments of ``update`` go to the inner transform (as ``optax.contrib``'s ``value=``)."""

    def scale_by_factor():
        def init_fn(params):
            return {"factor_sum": jnp.zeros((), jnp.float32)}

        def update_fn(updates, state, params=None, *, factor):
            return jax.tree.map(lambda u: factor * u, updates), {"factor_sum": state["factor_sum"] + factor}

        return optax.GradientTransformationExtraArgs(init_fn, update_fn)

    params = _params()
    opt = paged(optax.chain(optax.adam(1e-2), scale_by_factor()))
    hist, _, state = _run(opt, params, jit=True, factor=jnp.float32(0.5))
    ref = optax.chain(optax.adam(1e-2), scale_by_factor())
    ref_hist, _, ref_state = _run(ref, params, jit=True, factor=jnp.float32(0.5))
    _assert_trees_equal(hist, ref_hist)
    _assert_trees_equal(state, ref_state)
    assert float(state[1]["factor_sum"]) == 0.5 * N_STEPS
    assert _memory_kinds(state) == {HOST}


def test_sharded_params_on_mesh_equal_unsharded():
    mesh = jax.make_mesh((4, 2), ("data", "model"))
    params = _params()
    specs = {"w": P("data", "model"), "b": P("model")}
    sharded = {k: jax.device_put(v, NamedSharding(mesh, specs[k])) for k, v in params.items()}

    ref_hist, ref_params, ref_state = _run(optax.adamw(1e-2), params, jit=True)
    hist, new_params, state = _run(paged_adamw(1e-2), sharded, jit=True)
    _assert_trees_equal(hist, ref_hist)
    _assert_trees_equal(new_params, ref_params)
    _assert_trees_equal(state, ref_state)

    adam_state = state[0]
    for moment in (adam_state.mu, adam_state.nu):
        for k, x in moment.items():
            assert isinstance(x.sharding, NamedSharding)
            assert x.sharding.mesh == mesh and x.sharding.spec == specs[k], (k, x.sharding)
            assert x.sharding.memory_kind == HOST
    # The step count is replicated on the same mesh (not left on device 0), in host memory.
    assert adam_state.count.sharding.device_set == set(mesh.devices.flat)
    assert adam_state.count.sharding.memory_kind == HOST


def test_fallback_warns_once_and_is_the_inner_transform(monkeypatch):
    monkeypatch.setattr(paged_module, "_backend_memory_kinds", lambda: frozenset({"device"}))
    with pytest.warns(HostOffloadUnavailableWarning, match="pinned_host") as record:
        opt = paged_adamw(1e-2)
    assert len(record) == 1
    params = _params()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no further warnings from init / update, eager or jitted
        for jit in (False, True):
            ref_hist, _, ref_state = _run(optax.adamw(1e-2), params, jit=jit)
            hist, _, state = _run(opt, params, jit=jit)
            _assert_trees_equal(hist, ref_hist)
            _assert_trees_equal(state, ref_state)
            assert _memory_kinds(state) == {"device"}
    with pytest.warns(HostOffloadUnavailableWarning) as record:  # once per wrapper
        paged(optax.sgd(0.1))
    assert len(record) == 1


def test_paged_adamw_is_paged_optax_adamw_with_its_signature():
    ours = inspect.signature(paged_adamw).parameters
    theirs = inspect.signature(optax.adamw).parameters
    assert list(ours)[: len(theirs)] == list(theirs)
    for name, p in theirs.items():
        assert ours[name].default == p.default and ours[name].kind == p.kind, name
    params = _params()
    mask = {"w": True, "b": False}  # decay the weight matrix only
    kw = dict(b1=0.8, b2=0.99, eps=1e-6, weight_decay=0.1, mask=mask, nesterov=True)
    ref_hist, _, ref_state = _run(optax.adamw(3e-2, **kw), params, jit=False)
    hist, _, state = _run(paged_adamw(3e-2, **kw), params, jit=False)
    _assert_trees_equal(hist, ref_hist)
    _assert_trees_equal(state, ref_state)


def test_optimizer_state_bytes_by_hand():
    params = _params()
    n = 8 * 4 + 4
    expected = 2 * 4 * n + 4  # mu and nu in float32, plus the int32 step count
    state = paged_adamw(1e-2).init(params)
    assert optimizer_state_bytes(state) == {HOST: expected}
    assert optimizer_state_bytes(optax.adamw(1e-2).init(params)) == {"device": expected}
    assert optimizer_state_bytes(jax.eval_shape(optax.adamw(1e-2).init, params)) == {"unplaced": expected}
    # bfloat16 first moment: 2 + 4 bytes per parameter.
    assert optimizer_state_bytes(paged_adamw(1e-2, mu_dtype=jnp.bfloat16).init(params)) == {HOST: 6 * n + 4}
    # Only the wrapped part of a chain moves: sgd momentum (4 n bytes) stays on device.
    mixed = optax.chain(optax.sgd(0.1, momentum=0.9), paged(optax.adam(1e-2))).init(params)
    assert optimizer_state_bytes(mixed) == {"device": 4 * n, HOST: expected}
    # Inside jit the memory kind comes from the traced memory space.
    seen = {}
    jax.jit(lambda s: seen.update(optimizer_state_bytes(s)))(state)
    assert seen == {HOST: expected}
    assert optimizer_state_bytes({"step": np.zeros((), np.int64), "x": np.ones(3, np.float32)}) == {"unplaced": 20}
    assert optimizer_state_bytes(optax.sgd(0.1).init(params)) == {}


def test_optimizer_state_bytes_rejects_non_arrays():
    with pytest.raises(TypeError, match="optimizer_state_bytes.*str"):
        optimizer_state_bytes({"a": jnp.ones(2), "b": "not an array"})


@pytest.mark.parametrize("kind", ["hbm", "unpinned_host", "device", "PINNED_HOST"])
def test_bad_memory_kind_is_a_value_error(kind):
    with pytest.raises(ValueError, match=r"memory_kind.*pinned_host"):
        paged(optax.adam(1e-2), memory_kind=kind)
    with pytest.raises(ValueError, match="memory_kind"):
        paged_adamw(1e-2, memory_kind=kind)


def test_bad_types_are_type_errors():
    with pytest.raises(TypeError, match="memory_kind"):
        paged(optax.adam(1e-2), memory_kind=None)
    with pytest.raises(TypeError, match="inner"):
        paged(optax.adamw)  # the factory, not a transform
    with pytest.raises(TypeError, match="inner"):
        paged(lambda g, s, p=None: (g, s))
    with pytest.raises(TypeError, match="inner"):
        paged((optax.adam(1e-2).init, optax.adam(1e-2).update))  # a bare tuple is not a transform
