import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.sharpness import hessian_trace, hvp, interpolation_hessian_trace, top_hessian_eigenvalue


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _quadratic(d=12, seed=0):
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(d, d))
    a = (m + m.T) / 2 + np.diag(np.linspace(0, 6, d))
    params = {"u": jnp.asarray(rng.normal(size=d - 4)), "v": jnp.asarray(rng.normal(size=(2, 2)))}

    def loss_fn(p, batch):
        w = jnp.concatenate([p["u"], p["v"].ravel()])
        return 0.5 * w @ batch @ w

    return params, loss_fn, jnp.asarray(a), a


def test_hvp_matches_dense_hessian():
    params, loss_fn, batch, a = _quadratic()
    rng = np.random.default_rng(1)
    v = {"u": jnp.asarray(rng.normal(size=8)), "v": jnp.asarray(rng.normal(size=(2, 2)))}
    got = hvp(loss_fn, params, batch, v)
    want = a @ np.concatenate([np.asarray(v["u"]), np.asarray(v["v"]).ravel()])
    np.testing.assert_allclose(np.concatenate([got["u"], np.ravel(got["v"])]), want, rtol=1e-12)


def test_exact_trace_is_the_closed_form():
    params, loss_fn, batch, a = _quadratic()
    for chunk in (1, 5, 256):
        np.testing.assert_allclose(hessian_trace(loss_fn, params, batch, chunk_size=chunk), np.trace(a), rtol=1e-12)


def test_hutchinson_is_within_its_variance():
    params, loss_fn, batch, a = _quadratic()
    n = 400
    off = a - np.diag(np.diag(a))
    stderr = np.sqrt(2 * np.sum(off**2) / n)  # Rademacher: Var(vᵀAv) = 2 Σ_{i≠j} A_ij²
    # chunk_size=20 (the probes are drawn before chunking): one small vmapped body per program
    est = hessian_trace(loss_fn, params, batch, method="hutchinson", key=jax.random.key(3), num_samples=n,
                        chunk_size=20)
    assert abs(float(est) - np.trace(a)) < 4 * stderr
    ests = [float(hessian_trace(loss_fn, params, batch, method="hutchinson", key=k, num_samples=20, chunk_size=20))
            for k in range(30)]
    np.testing.assert_allclose(np.std(ests), np.sqrt(2 * np.sum(off**2) / 20), rtol=0.4)
    # a diagonal Hessian makes the Rademacher estimate exact
    diag = jnp.diag(jnp.arange(1.0, 13.0))
    exact = hessian_trace(loss_fn, params, diag, method="hutchinson", key=0, num_samples=3)
    np.testing.assert_allclose(exact, 78.0, rtol=1e-12)


def test_top_eigenvalue_by_power_iteration():
    params, loss_fn, batch, a = _quadratic()
    out = top_hessian_eigenvalue(loss_fn, params, batch, key=1, max_iters=2000, tol=1e-12)
    evals, evecs = np.linalg.eigh(a)
    top = evals[np.argmax(np.abs(evals))]
    np.testing.assert_allclose(out.eigenvalue, top, rtol=1e-6)
    v = np.concatenate([np.asarray(out.eigenvector["u"]), np.ravel(out.eigenvector["v"])])
    np.testing.assert_allclose(abs(v @ evecs[:, np.argmax(np.abs(evals))]), 1.0, rtol=1e-5)


def _two_layer(seed, d=6, width=16, bias=True):
    rng = np.random.default_rng(seed)
    p = {"W": rng.normal(size=(width, d)) / np.sqrt(d), "a": rng.normal(size=width) / np.sqrt(width)}
    if bias:
        p["b"] = rng.normal(size=width) * 0.1
    return jax.tree.map(jnp.asarray, p)


def _relu_net(p, x):
    h = p["W"] @ x + p.get("b", 0.0)
    return p["a"] @ jax.nn.relu(h)


def test_interpolation_identity():
    rng = np.random.default_rng(0)
    xs = jnp.asarray(rng.normal(size=(10, 6)))
    p = _two_layer(1)
    # tanh net at an interpolating solution: labels are its own outputs, residuals are zero.
    tanh_net = lambda p, x: p["a"] @ jnp.tanh(p["W"] @ x + p["b"])  # noqa: E731
    ys = jax.vmap(lambda x: tanh_net(p, x))(xs)
    mse = lambda f: lambda q, b: jnp.mean((jax.vmap(lambda x: f(q, x))(b[0]) - b[1]) ** 2)  # noqa: E731
    tanh_mse = mse(tanh_net)  # one function object: its compiled trace is reused below
    np.testing.assert_allclose(
        interpolation_hessian_trace(tanh_net, p, xs), hessian_trace(tanh_mse, p, (xs, ys)), rtol=1e-10
    )
    # two-layer ReLU net: ∇²f has zero trace, so the identity holds at any labels
    ys = jnp.asarray(rng.normal(size=10))
    np.testing.assert_allclose(
        interpolation_hessian_trace(_relu_net, p, xs), hessian_trace(mse(_relu_net), p, (xs, ys)), rtol=1e-10
    )
    # ... while for tanh away from interpolation it does not
    assert not np.isclose(interpolation_hessian_trace(tanh_net, p, xs), hessian_trace(tanh_mse, p, (xs, ys)))


def test_bad_input():
    params, loss_fn, batch, _ = _quadratic()
    with pytest.raises(ValueError, match="unknown method 'lanczos'"):
        hessian_trace(loss_fn, params, batch, method="lanczos")
    with pytest.raises(ValueError, match="needs key"):
        hessian_trace(loss_fn, params, batch, method="hutchinson")
    with pytest.raises(ValueError, match="num_samples must be an int >= 1"):
        hessian_trace(loss_fn, params, batch, method="hutchinson", key=0, num_samples=0)
    with pytest.raises(ValueError, match="v has structure"):
        hvp(loss_fn, params, batch, {"u": params["u"]})
    with pytest.raises(ValueError, match="max_iters"):
        top_hessian_eigenvalue(loss_fn, params, batch, key=0, max_iters=0)
    with pytest.raises(TypeError, match="key"):  # the random start needs an explicit key
        top_hessian_eigenvalue(loss_fn, params, batch)
    with pytest.raises(ValueError, match="tol must be a finite number >= 0"):  # NaN stopped after 2 iterations
        top_hessian_eigenvalue(loss_fn, params, batch, key=0, tol=float("nan"))
    with pytest.raises(ValueError, match="chunk_size must be an int >= 1"):  # was a reshape error
        hessian_trace(loss_fn, params, batch, method="hutchinson", key=0, chunk_size=-2)
    with pytest.raises(ValueError, match="n >= 1 inputs"):  # was 0/0 = NaN
        interpolation_hessian_trace(lambda p, x: jnp.sum(x), params, jnp.zeros((0, 3)))
