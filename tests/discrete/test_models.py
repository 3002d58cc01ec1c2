import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import nips23jax.discrete as D
from nips23jax.core.compile import FAST_COMPILER_OPTIONS

FAST = FAST_COMPILER_OPTIONS  # these tests are all XLA compilation


def _naive_ising(x, lam, b, h, w):
    s = (2 * np.asarray(x, float) - 1).reshape(h, w)
    e = sum(s[i, j] * s[i, j + 1] for i in range(h) for j in range(w - 1))
    e += sum(s[i, j] * s[i + 1, j] for i in range(h - 1) for j in range(w))
    return lam * e - s.ravel() @ np.asarray(b, float)


def _naive_potts(x, lam, f, h, w):
    g = np.asarray(x).reshape(h, w)
    e = sum(g[i, j] == g[i, j + 1] for i in range(h) for j in range(w - 1))
    e += sum(g[i, j] == g[i + 1, j] for i in range(h - 1) for j in range(w))
    return lam * e + np.asarray(f, float)[np.arange(h * w), np.asarray(x)].sum()


def _changed_states(model, x):
    """``x`` with site ``i`` set to ``c``, for every ``(i, c)`` in order: ``(d·K, d)``."""
    d, k = model.num_sites, model.num_categories
    i, c = np.divmod(np.arange(d * k), k)
    return jnp.broadcast_to(x, (d * k, d)).at[np.arange(d * k), i].set(c)


def _extreme_model():
    return D.ising(3, inverse_temperature=50.0, field=jnp.full(9, 1e3))


EXTREME_SAMPLERS = ("dlmc", "gwg", "pas", "dmala")
_rng = np.random.default_rng(0)
NAIVE_STATES = {"ising": _rng.integers(0, 2, (3, 12)), "potts": _rng.integers(0, 3, (3, 6)),
                "potts2": np.array([[0, 1, 1, 0, 1, 0]])}  # checked against naive loops


@functools.lru_cache(maxsize=None)
def _one_program():
    """ONE compiled program for this file's jitted checks (compiling is their time, much of it XLA's
    per-program overhead): per model, ``(log π(x), D)``, ``log π(x)`` and ``log π`` of every
    single-site change of ``x``; ``log π`` of :data:`NAIVE_STATES`; and one step of each gradient sampler
    on the extreme-field model."""
    models = _models()
    xs = {n: jax.random.randint(jax.random.key(1), (m.num_sites,), 0, m.num_categories) for n, m in models.items()}
    extreme = _extreme_model()
    algs = [D.get_sampler(name, extreme) for name in EXTREME_SAMPLERS]
    x_extreme = jnp.zeros(9, jnp.int32)

    @functools.partial(jax.jit, compiler_options=FAST)
    def run(xs, key):
        diffs = {n: (m.log_prob_and_diffs(xs[n]), m.log_prob(xs[n]), jax.vmap(m.log_prob)(_changed_states(m, xs[n])),
                     m.log_prob_and_flip_diffs(xs[n]) if m.is_binary else None)
                 for n, m in models.items()}
        naive = {n: jax.vmap(models[n].log_prob)(jnp.asarray(x, jnp.int32)) for n, x in NAIVE_STATES.items()}
        return (diffs, extreme.log_prob_and_diffs(x_extreme), [alg.step(key, alg.init(x_extreme)) for alg in algs],
                naive)

    return xs, run(xs, jax.random.key(0))


@functools.lru_cache(maxsize=None)
def _exact_single_site_diffs():
    """Per model: its ``(log π(x), D)``, ``log π(x)`` and the exact ``log π(x with x_i = c) − log π(x)``
    from evaluating every changed state."""
    models = _models()
    out = {}
    for n, ((lp, diffs), lp_direct, lps, flip) in _one_program()[1][0].items():
        m = models[n]
        out[n] = lp, diffs, lp_direct, np.asarray(lps - lp_direct).reshape(m.num_sites, m.num_categories), flip
    return out


@functools.lru_cache(maxsize=None)
def _models():
    key = jax.random.key(0)
    return {
        "bernoulli": D.bernoulli(jax.random.normal(key, (6,))),
        "categorical": D.categorical(jax.random.normal(key, (4, 3))),
        "categorical2": D.categorical(jax.random.normal(key, (4, 2))),
        "ising": D.ising((3, 4), inverse_temperature=0.7, key=key),
        "potts": D.potts((2, 3), num_colors=3, inverse_temperature=1.2, key=key),
        "potts2": D.potts((2, 3), num_colors=2, key=key),
        "fhmm": D.fhmm(key, 5, 3, switch_prob=0.2, noise_std=1.0),
    }


@pytest.mark.parametrize("name", ["bernoulli", "categorical", "categorical2", "ising", "potts", "potts2", "fhmm"])
def test_multilinear_diffs_are_exact_single_site_changes(name):
    """For multilinear relaxations the first-order difference IS the change of log π."""
    lp, diffs, lp_direct, exact, flip = _exact_single_site_diffs()[name]
    assert float(lp) == pytest.approx(float(lp_direct))
    np.testing.assert_allclose(diffs, exact, atol=2e-4)
    if flip is not None:  # binary: the flip column alone, as the gradient samplers' states hold it
        x = np.asarray(_one_program()[0][name])
        assert float(flip[0]) == pytest.approx(float(lp_direct))
        np.testing.assert_allclose(flip[1], exact[np.arange(x.size), 1 - x], atol=2e-4)


def test_ising_and_potts_match_naive_loops():
    lps = _one_program()[1][3]
    models = _models()
    naive = {"ising": lambda x, m: _naive_ising(x, 0.7, np.asarray(m.params["field"]), 3, 4),
             "potts": lambda x, m: _naive_potts(x, 1.2, np.asarray(m.params["field"]), 2, 3),
             # binary Potts equals its one-hot form
             "potts2": lambda x, m: _naive_potts(x, 1.0, np.asarray(m.params["field"]), 2, 3)}
    for name, states in NAIVE_STATES.items():
        for x, lp in zip(states, np.asarray(lps[name])):
            assert float(lp) == pytest.approx(naive[name](x, models[name]), abs=1e-4), name


def test_ising_discs_field_and_lattice():
    assert D.lattice_edges((3, 4)).shape == (3 * 3 + 2 * 4, 2)
    m = D.ising(20, mu=0.5, key=jax.random.key(0))
    b = np.asarray(m.params["field"]).reshape(20, 20)
    assert -2.0 <= b.min() and b.max() <= 2.0
    assert b[8:12, 8:12].mean() - b[:3, :3].mean() > 0.5  # +μ inside the central disc, −μ outside
    assert float(D.ising(4).log_prob(jnp.ones(16, jnp.int32))) == pytest.approx(0.5 * 24)


def test_bernoulli_and_categorical_exact_marginals():
    theta = jnp.array([-2.0, 0.0, 0.5, 3.0])
    np.testing.assert_allclose(D.exact_marginals(D.bernoulli(theta))[:, 1], jax.nn.sigmoid(theta), rtol=1e-5)
    logits = jax.random.normal(jax.random.key(2), (3, 4))
    np.testing.assert_allclose(D.exact_marginals(D.categorical(logits)), jax.nn.softmax(logits, -1), rtol=1e-5)
    assert D.all_states(3, 3).shape == (27, 3)


def test_rbm_log_prob_and_diffs_match_numpy():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    w, b, c = jax.random.normal(k1, (5, 3)), jax.random.normal(k2, (5,)), jax.random.normal(k3, (3,))
    m = D.rbm(w, b, c)
    v = jnp.array([1, 0, 1, 1, 0])
    wn, bn, cn, vn = (np.asarray(a, np.float64) for a in (w, b, c, v))
    assert float(m.log_prob(v)) == pytest.approx(vn @ bn + np.logaddexp(0, cn + vn @ wn).sum(), rel=1e-5)
    grad = bn + wn @ (1 / (1 + np.exp(-(cn + vn @ wn))))
    np.testing.assert_allclose(m.log_prob_and_diffs(v)[1][np.arange(5), 1 - vn.astype(int)], (1 - 2 * vn) * grad, rtol=1e-4)


def test_rbm_trained_by_cd_on_digits_improves_exact_likelihood():
    from sklearn.datasets import load_digits

    data = (load_digits().data[:400] > 7).astype(np.float32)
    m = D.train_rbm(jax.random.key(0), data, num_hidden=8, num_epochs=40, batch_size=50, learning_rate=0.1)

    def avg_loglik(model):
        # log Z by enumerating the 2^8 hidden states: Z = Σ_h e^{cᵀh} Π_i (1 + e^{b_i + W_i h})
        w, b, c = (np.asarray(model.params[k], np.float64) for k in ("W", "b", "c"))
        hs = D.all_states(w.shape[1], 2).astype(np.float64)
        log_z = np.logaddexp.reduce(hs @ c + np.logaddexp(0, hs @ w.T + b).sum(1))
        lp = np.asarray(jax.vmap(model.log_prob)(jnp.asarray(data, jnp.int32)), np.float64)
        return lp.mean() - log_z

    p = np.clip(data.mean(0), 1e-3, 1 - 1e-3)
    independent = (data * np.log(p) + (1 - data) * np.log1p(-p)).sum(1).mean()  # the initialization's fit
    assert avg_loglik(m) > independent + 2.0


def test_model_bad_input():
    with pytest.raises(ValueError, match="inverse_temperature"):
        D.ising(4, inverse_temperature=0.0)
    with pytest.raises(ValueError, match="inverse_temperature"):
        D.potts(4, inverse_temperature=-1.0)
    with pytest.raises(ValueError, match="num_colors"):
        D.potts(4, num_colors=1)
    with pytest.raises(ValueError, match="shape"):
        D.ising((2, 0))
    with pytest.raises(ValueError, match="logits"):
        D.bernoulli(jnp.zeros((2, 2)))
    with pytest.raises(ValueError, match="field"):
        D.ising(3, field=jnp.zeros(4))
    with pytest.raises(ValueError, match="mu offsets the random field drawn with key"):
        D.ising(3, mu=1.0)  # no key: there is no random field for mu to offset
    with pytest.raises(ValueError, match="either field .* or key"):
        D.ising(3, key=jax.random.key(0), field=jnp.zeros(9))
    m = D.potts(2, num_colors=3)
    with pytest.raises(ValueError, match="binary model .* K = 3"):
        m.log_prob_and_flip_diffs(jnp.zeros(4, jnp.int32))
    with pytest.raises(ValueError, match="shape"):
        m.log_prob(jnp.zeros((2, 2), jnp.int32))
    with pytest.raises(TypeError, match="integer"):
        m.log_prob(jnp.zeros(4))
    with pytest.raises(ValueError, match="outside 0..2"):
        m.log_prob(jnp.array([0, 1, 3, 0]))
    with pytest.raises(ValueError, match="outside"):
        m.log_prob(jnp.array([0, -1, 0, 0]))


def test_extreme_fields_stay_finite():
    (lp, diffs), steps = _one_program()[1][1:3]
    assert np.isfinite(float(lp)) and np.isfinite(np.asarray(diffs)).all()
    for name, (st, info) in zip(EXTREME_SAMPLERS, steps):
        assert np.isfinite(float(st.log_prob)) and 0.0 <= float(info.acceptance_rate) <= 1.0, name
