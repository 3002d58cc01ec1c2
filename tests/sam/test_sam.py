import jax
import jax.numpy as jnp
import numpy as np
import optax
import optax.contrib
import pytest

from nips23jax.core import sharding
from nips23jax.sam import sam, sam_gradient, sam_perturbation


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _problem(n=12, d=5, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    y = np.tanh(x @ rng.normal(size=d)) + 0.1 * rng.normal(size=n)
    params = {"w": jnp.asarray(rng.normal(size=(d,)) * 0.5), "b": jnp.asarray(0.3)}

    def loss_fn(p, batch):
        pred = jnp.tanh(batch["x"] @ p["w"] + p["b"])
        return jnp.mean((pred - batch["y"]) ** 2)

    return params, loss_fn, {"x": jnp.asarray(x), "y": jnp.asarray(y)}


def _np_grad(p, x, y):
    """∇ of mean((tanh(xw+b) − y)²), by hand in float64 NumPy."""
    z = x @ p["w"] + p["b"]
    r = np.tanh(z) - y
    dz = 2 * r * (1 - np.tanh(z) ** 2) / len(y)
    return {"w": x.T @ dz, "b": dz.sum()}


def _np_sam_grad(p, x, y, rho, adaptive=False, eta=0.01):
    g = _np_grad(p, x, y)
    if adaptive:
        t = {k: np.abs(p[k]) + eta for k in p}
        norm = np.sqrt(sum(np.sum((t[k] * g[k]) ** 2) for k in p))
        e = {k: rho * t[k] ** 2 * g[k] / norm for k in p}
    else:
        norm = np.sqrt(sum(np.sum(g[k] ** 2) for k in p))
        e = {k: rho * g[k] / norm for k in p}
    return _np_grad({k: p[k] + e[k] for k in p}, x, y)


@pytest.mark.parametrize("adaptive", [False, True])
def test_sam_step_matches_hand_written_float64(adaptive):
    params, loss_fn, batch = _problem()
    opt = sam(optax.sgd(0.1), rho=0.05, adaptive=adaptive, eta=0.01)
    state = opt.init(params)
    p_np = {k: np.asarray(v) for k, v in params.items()}
    x, y = np.asarray(batch["x"]), np.asarray(batch["y"])
    for _ in range(3):
        grads = jax.grad(loss_fn)(params, batch)
        updates, state = opt.update(grads, state, params, grad_fn=lambda p: jax.grad(loss_fn)(p, batch))
        params = optax.apply_updates(params, updates)
        g = _np_sam_grad(p_np, x, y, 0.05, adaptive)
        p_np = {k: p_np[k] - 0.1 * g[k] for k in p_np}
    for k in p_np:
        assert params[k].dtype == jnp.float64
        np.testing.assert_allclose(params[k], p_np[k], rtol=1e-12, atol=1e-14)


def test_asam_perturbation_scaling():
    params = {"a": jnp.array([1.0, -2.0]), "b": jnp.array([0.0])}
    grads = {"a": jnp.array([3.0, 1.0]), "b": jnp.array([2.0])}
    e = sam_perturbation(grads, params, 0.5, adaptive=True, eta=0.1)
    t = {"a": np.array([1.1, 2.1]), "b": np.array([0.1])}
    tg = {k: t[k] * np.asarray(grads[k]) for k in t}
    norm = np.sqrt(sum(np.sum(v**2) for v in tg.values()))
    for k in t:
        np.testing.assert_allclose(e[k], 0.5 * t[k] * tg[k] / norm, rtol=1e-12)
    # ‖T⁻¹ e‖ = ρ: the perturbation lies on the ρ-sphere of the rescaled geometry
    np.testing.assert_allclose(np.sqrt(sum(np.sum((np.asarray(e[k]) / t[k]) ** 2) for k in t)), 0.5, rtol=1e-12)
    plain = sam_perturbation(grads, params, 0.5)
    np.testing.assert_allclose(np.sqrt(sum(np.sum(np.asarray(v) ** 2) for v in plain.values())), 0.5, rtol=1e-12)


def test_zero_gradient_is_finite_and_a_plain_step():
    params = {"w": jnp.ones(3)}
    zero = {"w": jnp.zeros(3)}
    for adaptive in (False, True):
        e = sam_perturbation(zero, params, 0.05, adaptive=adaptive)
        assert np.array_equal(e["w"], np.zeros(3))
        g = jax.grad(lambda p: jnp.sum(sam_perturbation(p, params, 0.05, adaptive=adaptive)["w"]))(zero)
        assert np.isfinite(np.asarray(g["w"])).all()
    opt = sam(optax.sgd(1.0))
    updates, _ = opt.update(zero, opt.init(params), params, grad_fn=lambda p: zero)
    assert np.array_equal(updates["w"], np.zeros(3))


def test_m_sharpness_is_mean_of_per_sub_batch_sam_gradients():
    params, loss_fn, batch = _problem(n=12)
    x, y = np.asarray(batch["x"]), np.asarray(batch["y"])
    p_np = {k: np.asarray(v) for k, v in params.items()}
    # chunk_size: sub-batches vmapped together, chunks summed in a scan (5 of 12: a remainder chunk)
    for m, chunk_size in ((1, None), (1, 5), (3, None), (3, 1), (12, None)):
        want = [_np_sam_grad(p_np, x[i : i + m], y[i : i + m], 0.1) for i in range(0, 12, m)]
        want = {k: np.mean([w[k] for w in want], axis=0) for k in p_np}
        _, got = sam_gradient(loss_fn, params, batch, 0.1, m_sharpness=m, chunk_size=chunk_size)
        opt = sam(optax.sgd(1.0), rho=0.1, m_sharpness=m, chunk_size=chunk_size)
        updates = jax.jit(lambda p: opt.update(p, opt.init(p), p, grad_fn=jax.grad(loss_fn), batch=batch)[0])(params)
        for k in p_np:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-11, atol=1e-14)
            np.testing.assert_allclose(-updates[k], want[k], rtol=1e-11, atol=1e-14)
    # m equal to the batch is plain SAM
    _, full = sam_gradient(loss_fn, params, batch, 0.1)
    np.testing.assert_allclose(full["w"], sam_gradient(loss_fn, params, batch, 0.1, m_sharpness=12)[1]["w"], rtol=1e-12)


def test_same_trajectory_as_optax_contrib_sam():
    params, loss_fn, batch = _problem()
    ours = sam(optax.sgd(0.2, momentum=0.9), rho=0.05)
    theirs = optax.contrib.sam(
        optax.sgd(0.2, momentum=0.9), optax.chain(optax.contrib.normalize(), optax.sgd(0.05)),
        sync_period=2, opaque_mode=True,
    )
    p1, p2 = params, params
    s1, s2 = ours.init(p1), theirs.init(p2)
    for _ in range(5):
        g1 = jax.grad(loss_fn)(p1, batch)
        u1, s1 = ours.update(g1, s1, p1, grad_fn=lambda p: jax.grad(loss_fn)(p, batch))
        p1 = optax.apply_updates(p1, u1)
        g2 = jax.grad(loss_fn)(p2, batch)
        u2, s2 = theirs.update(g2, s2, p2, grad_fn=lambda p, _: jax.grad(loss_fn)(p, batch))
        p2 = optax.apply_updates(p2, u2)
    for k in p1:
        np.testing.assert_allclose(p1[k], p2[k], rtol=1e-12, atol=1e-14)


def test_works_in_chain_under_jit_with_extra_args():
    params, loss_fn, batch = _problem()
    opt = optax.chain(sam(optax.sgd(0.1), rho=0.05), optax.scale(1.0))

    @jax.jit
    def step(params, state):
        g = jax.grad(loss_fn)(params, batch)
        u, state = opt.update(g, state, params, grad_fn=lambda p: jax.grad(loss_fn)(p, batch))
        return optax.apply_updates(params, u), state

    p, s = step(params, opt.init(params))
    want = _np_sam_grad({k: np.asarray(v) for k, v in params.items()}, np.asarray(batch["x"]), np.asarray(batch["y"]), 0.05)
    np.testing.assert_allclose(p["w"], np.asarray(params["w"]) - 0.1 * want["w"], rtol=1e-12)
    # init from abstract shapes, dtypes kept
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
    assert jax.tree.structure(jax.eval_shape(opt.init, abstract)) == jax.tree.structure(s)


def test_sharded_batch_gives_the_unsharded_result():
    with jax.enable_x64(False):
        params, loss_fn, batch = _problem(n=16)
        params = jax.tree.map(lambda x: x.astype(jnp.float32), params)
        batch = jax.tree.map(lambda x: x.astype(jnp.float32), batch)
        opt = sam(optax.sgd(0.1), rho=0.05)

        def step(params, state, batch):
            g = jax.grad(loss_fn)(params, batch)
            u, state = opt.update(g, state, params, grad_fn=lambda p: jax.grad(loss_fn)(p, batch))
            return optax.apply_updates(params, u)

        ref = jax.jit(step)(params, opt.init(params), batch)
        mesh = sharding.make_mesh({"data": 8})
        got = jax.jit(step)(params, opt.init(params), sharding.shard_batch(batch, mesh))
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6)
        m_opt = sam(optax.sgd(0.1), rho=0.05, m_sharpness=2)
        m_step = lambda p, s, b: optax.apply_updates(  # noqa: E731
            p, m_opt.update(p, s, p, grad_fn=jax.grad(loss_fn), batch=b)[0]
        )
        ref = jax.jit(m_step)(params, m_opt.init(params), batch)
        got = jax.jit(m_step)(params, m_opt.init(params), sharding.shard_batch(batch, mesh))
        for k in ref:
            np.testing.assert_allclose(got[k], ref[k], rtol=1e-5, atol=1e-6)


def test_bad_input():
    params, loss_fn, batch = _problem()
    g = jax.grad(loss_fn)(params, batch)
    with pytest.raises(ValueError, match="rho must be a scalar >= 0"):
        sam(optax.sgd(0.1), rho=-0.1)
    with pytest.raises(ValueError, match="rho must be a scalar >= 0"):  # a concrete array too (was unchecked)
        sam_gradient(loss_fn, params, batch, jnp.array(-0.5))
    with pytest.raises(ValueError, match="eta must be a scalar >= 0"):
        sam_perturbation(g, params, 0.1, adaptive=True, eta=jnp.array(-5.0))
    with pytest.raises(ValueError, match="m_sharpness must be a positive int"):
        sam(optax.sgd(0.1), m_sharpness=0)
    opt = sam(optax.sgd(0.1))
    s = opt.init(params)
    with pytest.raises(ValueError, match="needs grad_fn"):
        opt.update(g, s, params)
    with pytest.raises(ValueError, match="grad_fn returned a pytree of structure"):
        opt.update(g, s, params, grad_fn=lambda p: {"w": p["w"]})
    with pytest.raises(ValueError, match="grad_fn returned a leaf of shape"):
        opt.update(g, s, params, grad_fn=lambda p: {"w": p["w"][:2], "b": p["b"]})
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        sam(optax.sgd(0.1), m_sharpness=2, chunk_size=0)
    with pytest.raises(ValueError, match="sam_gradient: chunk_size must be a positive int"):
        sam_gradient(loss_fn, params, batch, m_sharpness=2, chunk_size=1.5)
    m_opt = sam(optax.sgd(0.1), m_sharpness=5)
    with pytest.raises(ValueError, match="needs batch"):
        m_opt.update(g, m_opt.init(params), params, grad_fn=jax.grad(loss_fn))
    with pytest.raises(ValueError, match="divisible by m=5"):
        m_opt.update(g, m_opt.init(params), params, grad_fn=jax.grad(loss_fn), batch=batch)


def test_rho_schedule():
    params, loss_fn, batch = _problem()
    sched = optax.piecewise_constant_schedule(0.05, {2: 2.0})  # 0.05, 0.05, then 0.1
    opt = sam(optax.sgd(0.1), rho=sched)
    state = opt.init(params)
    p_np = {k: np.asarray(v) for k, v in params.items()}
    x, y = np.asarray(batch["x"]), np.asarray(batch["y"])
    for t in range(4):
        g = jax.grad(loss_fn)(params, batch)
        u, state = opt.update(g, state, params, grad_fn=lambda p: jax.grad(loss_fn)(p, batch))
        params = optax.apply_updates(params, u)
        want = _np_sam_grad(p_np, x, y, 0.05 if t < 2 else 0.1)
        p_np = {k: p_np[k] - 0.1 * want[k] for k in p_np}
    np.testing.assert_allclose(params["w"], p_np["w"], rtol=1e-12)
    assert int(state.count) == 4
