"""Every solver against the exact posterior (NumPy, float64), sharded == unsharded, bad input."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from nips23jax import gp
from nips23jax.core import make_mesh
from nips23jax.gp import solvers


def numpy_posterior(x, y, xt, ls, s, noise):
    """Exact GP regression in float64 (Rasmussen & Williams eq. 2.25-2.26), Matérn-3/2."""
    def k(a, b):
        r = np.sqrt(np.sum(((a[:, None] - b[None]) / ls) ** 2, -1))
        return s * (1 + np.sqrt(3) * r) * np.exp(-np.sqrt(3) * r)
    kxx = k(x, x) + noise * np.eye(len(x))
    kt = k(xt, x)
    mean = kt @ np.linalg.solve(kxx, y)
    cov = k(xt, xt) - kt @ np.linalg.solve(kxx, kt.T)
    return mean, cov


def problem(n=40, noise=0.1, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2, 2, size=(n, 2))
    y = np.sin(2 * x[:, 0]) + np.cos(x[:, 1]) + np.sqrt(noise) * rng.normal(size=n)
    xt = rng.uniform(-2.5, 2.5, size=(15, 2))
    return x, y, xt


LS, S = np.array([0.8, 1.2]), 1.0


def test_cholesky_posterior_mean_variance_and_samples_are_exact():
    x, y, xt = problem()
    mean, cov = numpy_posterior(x, y, xt, LS, S, 0.1)
    with jax.enable_x64(True):
        params = gp.init_params(2, lengthscale=LS, signal_variance=S, noise_variance=0.1, dtype=jnp.float64)
        post = gp.posterior(x, y, params, kernel=gp.matern32, solver="cholesky", key=jax.random.key(0),
                            num_samples=2000, num_features=200)
        mu, var = post.predict(xt)
        np.testing.assert_allclose(mu, mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(var, np.diag(cov), rtol=1e-7, atol=1e-9)
        samples = np.asarray(post.sample(None, xt))
        mc_mu, mc_var = post.predict(xt, exact=False)
    assert samples.shape == (2000, 15)
    # pathwise samples: mean and covariance of the exact posterior (up to MC and RFF error)
    np.testing.assert_allclose(samples.mean(0), mean, atol=0.08)
    np.testing.assert_allclose(np.cov(samples.T), cov, atol=0.08)
    np.testing.assert_allclose(mc_var, np.diag(cov), atol=0.08)
    np.testing.assert_allclose(mc_mu, mean, rtol=1e-9, atol=1e-9)


# One set of options per solver, shared by every test that runs it (and the same problem shapes), so
# each solver compiles once for the module.
CG_OPTS = dict(tol=1e-6, sample_tol=1e-6, preconditioner_rank=5, block_size=7)
SGD_OPTS = dict(batch_size=16, learning_rate=0.1, sample_learning_rate=0.1, grad_clip=None, sgd_num_features=100)


@pytest.fixture(scope="module")
def reference():
    """Cholesky posterior (float32, 8 samples) on a well-conditioned problem; every solver shares
    its key, so its prior samples f₀ and noise ε are the same functions."""
    x, y, xt = problem(n=48, noise=0.3, seed=1)
    params = gp.init_params(2, lengthscale=LS, signal_variance=S, noise_variance=0.3)
    post = gp.posterior(x, y, params, solver="cholesky", key=jax.random.key(5), num_samples=8, num_features=256)
    return x, y, xt, params, post, np.asarray(post.mean(xt)), np.asarray(post.sample(None, xt))


def test_cg_matches_cholesky_held_and_blockwise(reference):
    x, y, xt, params, _, mean, samples = reference
    for held in (True, False):
        post = gp.posterior(x, y, params, solver="cg", key=jax.random.key(5), num_samples=8, num_features=256,
                            max_matrix_bytes=2**40 if held else 0, **CG_OPTS)
        assert bool(post.info["held_matrix"]) == held
        assert int(post.info["iterations"]) < 48
        np.testing.assert_allclose(post.mean(xt), mean, atol=2e-4)
        np.testing.assert_allclose(post.sample(None, xt), samples, atol=2e-4)


def test_inducing_with_all_points_is_exact_and_with_fewer_is_the_projected_solution(reference):
    x, y, xt, params, _, mean, samples = reference
    post = gp.posterior(x, y, params, solver="inducing", key=jax.random.key(5), num_samples=8, num_features=256,
                        inducing_points=x, solver_jitter=0.0)
    np.testing.assert_allclose(post.mean(xt), mean, atol=5e-3)
    np.testing.assert_allclose(post.sample(None, xt), samples, atol=5e-3)
    # M < n: α = (K_ZX K_XZ + σ² K_ZZ)⁻¹ K_ZX y, in NumPy float64
    z = x[::3]
    sub = gp.posterior(x, y, params, solver="inducing", inducing_points=z, block_size=10)
    kern = lambda a, b: np.asarray(gp.matern32(params, a, b), np.float64)  # noqa: E731
    alpha = np.linalg.solve(kern(z, x) @ kern(x, z) + 0.3 * kern(z, z), kern(z, x) @ y)
    np.testing.assert_allclose(sub.mean(xt), kern(xt, z) @ alpha, atol=5e-3)


def test_sgd_converges_to_the_cg_solution_mean_and_samples(reference):
    x, y, xt, params, _, mean, samples = reference
    post = gp.posterior(x, y, params, solver="sgd", key=jax.random.key(5), num_samples=8, num_features=256,
                        num_steps=3000, **SGD_OPTS)
    scale = np.std(samples)
    # measured 0.042 and 0.075 of the scale (RFF noise in the regularizer, slow small-eigenvalue directions)
    assert np.sqrt(np.mean((np.asarray(post.mean(xt)) - mean) ** 2)) < 0.07 * scale
    assert np.sqrt(np.mean((np.asarray(post.sample(None, xt)) - samples) ** 2)) < 0.12 * scale
    # and the same key gives the same result
    again = gp.posterior(x, y, params, solver="sgd", key=jax.random.key(5), num_samples=8, num_features=256,
                         num_steps=3000, **SGD_OPTS)
    np.testing.assert_array_equal(again.mean_weights, post.mean_weights)


def test_fresh_samples_with_a_key_differ_and_match_the_stored_ones_of_that_key(reference):
    x, y, xt, params, post, _, samples = reference
    fresh = np.asarray(post.sample(jax.random.key(9), xt, 8))  # 8: the fixture's compiled shapes
    assert fresh.shape == (8, 15) and not np.allclose(fresh, samples)
    np.testing.assert_allclose(post.sample(jax.random.key(5), xt, 8), samples, atol=1e-5)
    with pytest.raises(ValueError, match="num_samples"):
        post.sample(None, xt, 9)


def test_sharded_solvers_equal_unsharded(reference):
    # the reference problem and the solver options of the tests above: the unsharded solves reuse their
    # compiled programs (n = 48 splits over the 8 devices)
    x, y, _, params, _, _, _ = reference
    mesh = make_mesh()
    xs = jax.device_put(jnp.asarray(x, jnp.float32), NamedSharding(mesh, P("data")))
    ys = jax.device_put(jnp.asarray(y, jnp.float32), NamedSharding(mesh, P("data")))
    assert len(xs.sharding.device_set) == 8
    for solver, opts in (("cg", CG_OPTS | dict(max_matrix_bytes=0)), ("sgd", SGD_OPTS | dict(num_steps=50))):
        a = gp.posterior(x, y, params, solver=solver, key=jax.random.key(1), num_samples=8, num_features=256, **opts)
        b = gp.posterior(xs, ys, params, solver=solver, key=jax.random.key(1), num_samples=8, num_features=256, **opts)
        np.testing.assert_allclose(b.mean_weights, a.mean_weights, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(b.sample_weights, a.sample_weights, rtol=1e-4, atol=1e-4)


def test_sgd_minibatch_rows_in_blocks_give_the_unblocked_steps(reference):
    # 16 rows in blocks of 5: three full blocks and one with a single row plus four weight-0 padding rows
    x, y, _, params, _, _, _ = reference
    a = gp.posterior(x, y, params, solver="sgd", key=jax.random.key(1), num_samples=8, num_features=256,
                     num_steps=50, **SGD_OPTS)  # the sharded test's compiled program
    b = gp.posterior(x, y, params, solver="sgd", key=jax.random.key(1), num_samples=8, num_features=256,
                     num_steps=50, row_block=5, **SGD_OPTS)
    np.testing.assert_allclose(b.mean_weights, a.mean_weights, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(b.sample_weights, a.sample_weights, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="row_block"):
        gp.posterior(x, y, params, solver="sgd", key=jax.random.key(1), row_block=0)


def test_cg_monitor_records_each_iterate_of_a_plain_numpy_cg():
    rng = np.random.default_rng(3)
    m = rng.normal(size=(12, 12))
    a = m @ m.T + 0.5 * np.eye(12)
    b = rng.normal(size=(12, 2))
    probe = rng.normal(size=12)
    _, info = solvers.preconditioned_cg(lambda v: jnp.asarray(a, jnp.float32) @ v, jnp.asarray(b, jnp.float32),
                                        tol=1e-4, max_iters=40, monitor=lambda w: jnp.asarray(probe, jnp.float32) @ w)
    its = int(info["iterations"])
    trace = np.asarray(info["monitor"])
    assert trace.shape == (40, 2) and 3 < its < 40
    assert np.all(np.isnan(trace[its:])) and np.all(np.isfinite(trace[:its]))
    # textbook CG (Hestenes-Stiefel) per column in float64, x0 = 0
    expected = np.zeros((its, 2))
    for j in range(2):
        x, r = np.zeros(12), b[:, j].copy()
        p = r.copy()
        for k in range(its):
            alpha = (r @ r) / (p @ a @ p)
            x = x + alpha * p
            r_new = r - alpha * (a @ p)
            p = r_new + (r_new @ r_new) / (r @ r) * p
            r = r_new
            expected[k, j] = probe @ x
    # float32 and float64 CG drift apart as orthogonality is lost: compare the first 8 iterates (both columns
    # still iterating; measured max deviation 6e-7 of the largest value there, 7e-3 by iteration 15)
    assert its > 8
    np.testing.assert_allclose(trace[:8], expected[:8], rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_bad_input_is_rejected_with_the_argument_named():
    x, y, _ = problem(n=10)
    p = gp.init_params(2, noise_variance=0.1)
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="x_train has 10 rows but y_train has 9"):
        gp.posterior(x, y[:9], p)
    with pytest.raises(ValueError, match="x_train contains NaN"):
        gp.posterior(np.where(np.arange(20).reshape(10, 2) == 3, np.nan, x), y, p)
    with pytest.raises(ValueError, match="y_train contains NaN"):
        gp.posterior(x, np.where(np.arange(10) == 3, np.inf, y), p)
    with pytest.raises(ValueError, match="lengthscale"):
        gp.posterior(x, y, {**p, "lengthscale": np.array([1.0, -1.0])})
    with pytest.raises(ValueError, match="signal_variance"):
        gp.posterior(x, y, {**p, "signal_variance": 0.0})
    with pytest.raises(ValueError, match="num_features"):
        gp.posterior(x, y, p, key=key, num_samples=2, num_features=0)
    with pytest.raises(ValueError, match="solver"):
        gp.posterior(x, y, p, solver="lanczos")
    with pytest.raises(ValueError, match="key"):
        gp.posterior(x, y, p, solver="sgd")
    with pytest.raises(ValueError, match="shape"):
        gp.posterior(x, y, p).mean(np.zeros((3, 5)))
    with pytest.raises(ValueError, match=r"key is required for samples \(num_samples=2\)"):
        gp.posterior(x, y, p, solver="inducing", inducing_points=x[:4], num_samples=2)
    with pytest.raises(ValueError, match="solver_jitter is an option of the cholesky and inducing solvers"):
        gp.posterior(x, y, p, solver="cg", solver_jitter=1e-3)
    with pytest.raises(ValueError, match=r"targets must have shape \(10, s\)"):
        solvers.sgd(gp.matern32, p, x, y, key=key, num_steps=1)


def test_options_reach_the_solvers():
    """``solver_jitter`` and ``block_size`` get to the solver (they are also posterior's own keywords)."""
    x, y, xt = problem(n=30, noise=0.3, seed=4)
    p = gp.init_params(2, lengthscale=LS, signal_variance=S, noise_variance=0.3)
    mean, _ = numpy_posterior(x, y, xt, LS, S, 0.3 + 0.2)  # cholesky's jitter is extra noise
    got = gp.posterior(x, y, p, solver="cholesky", solver_jitter=0.2)
    np.testing.assert_allclose(got.mean(xt), mean, rtol=1e-4, atol=1e-4)
    calls = []
    real = solvers.conjugate_gradients

    def spy(*args, **kwargs):
        calls.append(kwargs.get("block_size"))
        return real(*args, **kwargs)

    solvers.conjugate_gradients = spy
    try:
        gp.posterior(x, y, p, solver="cg", max_matrix_bytes=0, block_size=7, tol=1e-6)
    finally:
        solvers.conjugate_gradients = real
    assert calls == [7]


def test_integer_inputs_far_from_the_origin_and_tiny_noise():
    """Integer JAX inputs are cast (an int lengthscale would be 0); inputs at 1e4 keep their distances;
    σ² = 1e-6 in float32 makes K + σ²I indefinite, which Cholesky reports instead of returning NaN."""
    xi = np.arange(20)[:, None]
    y = np.sin(xi[:, 0] / 3.0).astype(np.float32)
    p = gp.init_params(1, lengthscale=2.0, noise_variance=0.1)
    want = np.asarray(gp.posterior(xi.astype(np.float32), y, p).mean(np.array([[0.5], [1.0]])))
    got = np.asarray(gp.posterior(jnp.asarray(xi), jnp.asarray(y), p).mean(jnp.asarray([[0.5], [1.0]])))
    np.testing.assert_allclose(got, want, rtol=1e-5)
    far = np.array([[1e4], [1e4 + 0.5], [1e4 + 1.0]], np.float32)
    k = np.asarray(gp.rbf(gp.init_params(1), far, far))
    np.testing.assert_allclose(k[0], np.exp(-0.5 * np.array([0.0, 0.25, 1.0])), rtol=1e-5)
    dense = np.linspace(0, 1, 200, dtype=np.float32)[:, None]
    low = gp.init_params(1, lengthscale=1.0, noise_variance=1e-6)
    with pytest.raises(ValueError, match="not positive definite in float32 .*solver_jitter"):
        gp.posterior(dense, np.sin(dense[:, 0]), low)
    ok = gp.posterior(dense, np.sin(dense[:, 0]), low, solver_jitter=1e-3)
    assert np.all(np.isfinite(np.asarray(ok.mean(dense[:5]))))


def test_duplicate_inputs_with_zero_noise_warn_and_get_jitter():
    x, y, xt = problem(n=10)
    x = np.concatenate([x, x[:3]])
    y = np.concatenate([y, y[:3]])
    p = gp.init_params(2, lengthscale=LS, noise_variance=0.0)
    with pytest.warns(RuntimeWarning, match="duplicate rows"):
        post = gp.posterior(x, y, p, jitter=1e-4)
    assert float(post.params["noise_variance"]) == pytest.approx(1e-4)
    assert np.all(np.isfinite(np.asarray(post.mean(xt))))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gp.posterior(x[:10], y[:10], p)  # zero noise without duplicates: no warning
