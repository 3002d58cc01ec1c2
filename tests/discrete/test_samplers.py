"""Each sampler against exact enumeration on tiny state spaces.

For every Metropolis-corrected sampler (adaptation off), the exact transition matrix is built here
in NumPy from the sampler's equations (independently of the kernels): it must satisfy detailed
balance and leave the enumerated target invariant. The kernels themselves are then checked to
sample those exact rows (chi-square test from fixed start states). Gibbs-type samplers are checked
the same way against the exact conditional of their block.
"""

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats

import nips23jax.discrete as D
from nips23jax.core.compile import FAST_COMPILER_OPTIONS
from nips23jax.discrete.enumerate import state_index

NUM_DRAWS = 4000
# tiny state spaces: the tests' time is XLA compilation, which the cheapest backend level cuts by ~40%
FAST = dict(compiler_options=FAST_COMPILER_OPTIONS)


# The models are cached, so they are built with concrete arrays even when first asked for inside a
# jitted function (a cached model holding that trace's tracers would break every later test).
@functools.lru_cache(maxsize=None)
def binary_model():
    with jax.ensure_compile_time_eval():
        return D.ising((2, 4), inverse_temperature=0.35, key=jax.random.key(3))


@functools.lru_cache(maxsize=None)
def categorical_model():
    with jax.ensure_compile_time_eval():
        return D.potts((2, 2), num_colors=3, inverse_temperature=0.6, key=jax.random.key(4))


@functools.lru_cache(maxsize=None)
def tables(model):
    """All states, their normalized log-probabilities and D matrices, in float64."""
    states, lp = D.exact_log_probs(model)
    diffs = np.asarray(jax.jit(jax.vmap(lambda x: model.log_prob_and_diffs(x)[1]))(jnp.asarray(states)), np.float64)
    return states, lp, diffs


def _g(name, d):
    return {"sqrt": d / 2, "barker": -np.logaddexp(0, -d), "max": np.maximum(d, 0), "min": np.minimum(d, 0)}[name]


def _weights(diffs_x, x, balancing):
    w = _g(balancing, diffs_x)
    w[np.arange(len(x)), x] = -np.inf
    return w


def _independent_site_matrix(model, site_probs):
    """P[x, y] for proposals q(y|x) = Π_i site_probs(x)[i, y_i], MH-corrected."""
    states, lp, _ = tables(model)
    n, d = states.shape
    logq = np.zeros((n, n))
    for a in range(n):
        lq = np.log(np.clip(site_probs(a), 1e-300, None))
        logq[a] = lq[np.arange(d)[None, :], states].sum(1)
    logr = lp[None, :] + logq.T - lp[:, None] - logq
    p = np.exp(logq) * np.exp(np.minimum(logr, 0.0))
    np.fill_diagonal(p, 0.0)
    p[np.arange(n), np.arange(n)] = 1.0 - p.sum(1)
    return p, np.exp(logq).sum(1)


def _rwm_matrix(model, r):
    _, _, _ = tables(model)
    k, d = model.num_categories, model.num_sites
    pr = r / d

    def probs(a):
        x = tables(model)[0][a]
        q = np.full((d, k), pr / (k - 1))
        q[np.arange(d), x] = 1 - pr
        return q

    return _independent_site_matrix(model, probs)


def _dmala_matrix(model, balancing, log_tau):
    states, _, diffs = tables(model)

    def probs(a):
        w = _weights(diffs[a].copy(), states[a], balancing) + log_tau
        w[np.arange(len(states[a])), states[a]] = 0.0
        return np.exp(w - scipy.special.logsumexp(w, axis=1, keepdims=True))

    return _independent_site_matrix(model, probs)


def _dlmc_matrix(model, balancing, log_tau, solver):
    states, _, diffs = tables(model)
    k, tau = model.num_categories, np.exp(log_tau)

    if solver == "interpolate":  # every state's and site's generator at once: rates a -> b = exp(g(D_b - D_a))
        q = np.exp(_g(balancing, diffs[:, :, None, :] - diffs[:, :, :, None]))  # (n, d, K, K)
        q[..., np.arange(k), np.arange(k)] = 0.0
        q[..., np.arange(k), np.arange(k)] = -q.sum(-1)
        n, d = states.shape
        rows = scipy.linalg.expm(tau * q.reshape(-1, k, k)).reshape(n, d, k, k)
        rows = np.take_along_axis(rows, states[:, :, None, None], axis=2)[:, :, 0, :]  # (n, d, K): row x_i

    def probs(a):
        x, dx = states[a], diffs[a]
        if solver == "interpolate":
            return rows[a]
        out = np.zeros_like(dx)
        for i in range(len(x)):
            w = _g(balancing, dx[i])
            m = np.minimum(tau * np.exp(w), 1 / (1 + np.exp(-dx[i])))
            m[x[i]] = 0.0
            m = m / max(m.sum(), 1.0)
            m[x[i]] = 1 - m.sum()
            out[i] = m
        return out

    return _independent_site_matrix(model, probs)


def _path_matrix(model, balancing, r, replacement):
    """GWG (r i.i.d. moves) or PAS (r distinct sites): P[x, y] summed over every path, vectorized."""
    states, lp, diffs = tables(model)
    n, d = states.shape
    k = model.num_categories
    w_all = np.stack([_weights(diffs[a].copy(), states[a], balancing) for a in range(n)])  # (n, d, K)
    lse_all = scipy.special.logsumexp(w_all.reshape(n, -1), axis=1)
    site_lse = scipy.special.logsumexp(w_all, axis=2)  # (n, d)
    moves = np.array(list(itertools.product(range(d * k), repeat=r)))  # (M, r) flat (site, value)
    sites, vals = moves // k, moves % k
    if not replacement:
        keep = np.array([len(set(s)) == r for s in sites])
        sites, vals = sites[keep], vals[keep]
    m = len(sites)

    def seq_logprob(a_idx, s, v):
        """log q of ordered moves (s, v) (M, r) under the weights of states a_idx (M,)."""
        w = w_all[a_idx[:, None], s, v]
        if replacement:
            return (w - lse_all[a_idx][:, None]).sum(1)
        out = np.zeros(len(s))
        visited = np.zeros((len(s), d), bool)
        for j in range(r):
            masked = np.where(visited, -np.inf, site_lse[a_idx])
            out += w[:, j] - scipy.special.logsumexp(masked, axis=1)
            visited[np.arange(len(s)), s[:, j]] = True
        return out

    p = np.zeros((n, n))
    total = np.zeros(n)
    for a in range(n):
        a_idx = np.full(m, a)
        fwd = seq_logprob(a_idx, sites, vals)
        y = np.tile(states[a], (m, 1))
        prev = np.zeros_like(vals)
        for j in range(r):
            prev[:, j] = y[np.arange(m), sites[:, j]]
            y[np.arange(m), sites[:, j]] = vals[:, j]
        b = state_index(y, k)
        with np.errstate(divide="ignore", invalid="ignore"):
            rev = seq_logprob(b, sites[:, ::-1], prev[:, ::-1])
            ok = np.isfinite(fwd)
            total[a] = np.exp(fwd[ok]).sum()
            acc = np.exp(np.minimum(0.0, lp[b] + rev - lp[a] - fwd))
        np.add.at(p[a], b[ok], (np.exp(fwd) * np.nan_to_num(acc))[ok])
    np.fill_diagonal(p, 0.0)
    p[np.arange(n), np.arange(n)] = 1.0 - p.sum(1)
    return p, total


def _check_matrix(model, p, q_total):
    _, lp, _ = tables(model)
    pi = np.exp(lp)
    np.testing.assert_allclose(q_total, 1.0, atol=1e-6)  # the proposal is a distribution
    assert p.min() > -1e-9
    flow = pi[:, None] * p
    np.testing.assert_allclose(flow, flow.T, atol=1e-9)  # detailed balance
    np.testing.assert_allclose(pi @ p, pi, atol=1e-9)  # invariance


def _check_rows(p, starts, draws, name):
    """The kernel's draws from fixed states follow the exact rows (chi-square, merged small bins)."""
    k = round(len(p) ** (1 / draws.shape[-1]))  # K^d rows
    for a, ys in zip(starts, draws):
        counts = np.bincount(state_index(ys, k), minlength=len(p))
        expected = p[a] * NUM_DRAWS
        assert counts[expected == 0].sum() == 0, (name, "the kernel reached a state the exact row forbids")
        big = expected >= 5
        obs = np.append(counts[big], counts[~big].sum())
        exp = np.append(expected[big], expected[~big].sum())
        obs, exp = obs[exp > 0], exp[exp > 0]
        stat = ((obs - exp) ** 2 / exp).sum()
        pval = scipy.stats.chi2.sf(stat, len(obs) - 1)
        assert pval > 1e-4, (name, a, pval)


MH_CASES = [  # (sampler, kwargs, kinds): the categorical variants of the per-site samplers differ in code
    ("rwm", dict(num_flips=2.0), ("binary", "categorical")),
    ("gwg", dict(num_flips=2.0, balancing="barker"), ("binary", "categorical")),
    ("pas", dict(num_flips=2.0), ("binary", "categorical")),
    ("dmala", dict(log_tau=0.3, balancing="max"), ("binary", "categorical")),
    ("dlmc", dict(log_tau=-0.3), ("binary", "categorical")),
    ("dlmc", dict(log_tau=0.0, solver="euler", balancing="barker"), ("binary",)),
]
MH_PARAMS = [(kind, name, kw) for name, kw, kinds in MH_CASES for kind in kinds]


def _case_id(name, kw):
    return f"{name}-{'-'.join(map(str, kw.values()))}"


def _model(kind):
    return binary_model() if kind == "binary" else categorical_model()


def _at(field, value):
    """Sets a Gibbs-type state's scan position (which site / block the next step updates)."""
    return lambda s: s._replace(**{field: jnp.asarray(value, jnp.int32)})


def _row_cases(kind):
    """Every exact-matrix case on the model of ``kind``: ``{id: (sampler, start rows, state_fn)}``."""
    model = _model(kind)
    n, d = len(tables(model)[0]), model.num_sites
    cases = {_case_id(name, kw): (D.get_sampler(name, model, adapt=False, **kw), [0, 37 % n], None)
             for name, kw, kinds in MH_CASES if kind in kinds}
    cases["gibbs"] = (D.gibbs(model), [5], _at("index", 1))
    cases["block_gibbs-2"] = (D.block_gibbs(model, block_size=2), [5], _at("block", 1))
    cases["block_gibbs-3"] = (D.block_gibbs(model, block_size=3), [5], _at("block", (d + 2) // 3 - 1))  # shifted last
    if kind == "binary":
        cases["hamming_ball"] = (D.hamming_ball(model, block_size=4, radius=1), [9, 200], _at("block", 1))
    return cases


@functools.lru_cache(maxsize=None)
def _all_kernel_draws():
    """``NUM_DRAWS`` one-step draws of every case's kernel from its start states, for both model kinds.

    ONE compiled program for all the exact-matrix cases of both kinds (compiling is what these tests
    spend their time on, much of it XLA's per-program overhead): ``{kind: {case id: (starts, draws
    (len(starts), NUM_DRAWS, d))}}``.
    """
    kinds = ("binary", "categorical")
    cases = {kind: _row_cases(kind) for kind in kinds}
    states = {kind: tables(_model(kind))[0] for kind in kinds}

    @functools.partial(jax.jit, **FAST)
    def draw(key):
        out = {}
        for kind in kinds:
            out[kind] = {}
            for i, (cid, (alg, starts, state_fn)) in enumerate(cases[kind].items()):
                keys = jax.random.split(jax.random.fold_in(key, i), (len(starts), NUM_DRAWS))  # the same keys for each kind

                def one(ks, x, alg=alg, state_fn=state_fn):
                    st = alg.init(x) if state_fn is None else state_fn(alg.init(x))
                    return jax.vmap(alg.step, in_axes=(0, None))(ks, st)[0].x

                out[kind][cid] = jax.vmap(one)(keys, jnp.asarray(states[kind][starts]))
                if i == 0:  # the same draws from raw (uint32) keys: kernels accept both key kinds
                    out[kind]["raw-keys"] = jax.vmap(one)(jax.random.key_data(keys), jnp.asarray(states[kind][starts]))
        return out

    draws = draw(jax.random.key(7))
    again = draw(jax.random.key(7))  # same key, same result
    result, repeats = {}, {}
    for kind in kinds:
        first = next(iter(cases[kind]))
        result[kind] = {cid: (cases[kind][cid][1], np.asarray(draws[kind][cid])) for cid in cases[kind]}
        repeats[kind] = tuple(np.asarray(a) for a in (draws[kind][first], again[kind][first], draws[kind]["raw-keys"]))
    return result, repeats


def kernel_draws(kind):
    """``{case id: (starts, draws)}`` of the model of ``kind`` (see :func:`_all_kernel_draws`)."""
    return _all_kernel_draws()[0][kind]


@pytest.mark.parametrize("kind,name,kw", MH_PARAMS, ids=[f"{k}-{_case_id(n, kw)}" for k, n, kw in MH_PARAMS])
def test_mh_sampler_exact_transition_matrix(kind, name, kw):
    model = _model(kind)
    bal = kw.get("balancing", "sqrt")
    if name == "rwm":
        p, tot = _rwm_matrix(model, kw["num_flips"])
    elif name in ("gwg", "pas"):
        p, tot = _path_matrix(model, bal, int(kw["num_flips"]), replacement=name == "gwg")
    elif name == "dmala":
        p, tot = _dmala_matrix(model, bal, kw["log_tau"])
    else:
        p, tot = _dlmc_matrix(model, bal, kw["log_tau"], kw.get("solver", "interpolate"))
    _check_matrix(model, p, tot)
    starts, draws = kernel_draws(kind)[_case_id(name, kw)]
    _check_rows(p, starts, draws, name)


def _gibbs_block_matrix(model, block):
    """Exact kernel that resamples the sites in `block` from their conditional."""
    states, lp, _ = tables(model)
    n = len(states)
    rest = [i for i in range(model.num_sites) if i not in block]
    p = np.zeros((n, n))
    for a in range(n):
        same = np.all(states[:, rest] == states[a, rest], axis=1)
        w = np.where(same, np.exp(lp - lp.max()), 0.0)
        p[a] = w / w.sum()
    return p


@pytest.mark.parametrize("kind", ["binary", "categorical"])
def test_gibbs_samplers_match_exact_conditionals(kind):
    model = _model(kind)
    d = model.num_sites
    draws = kernel_draws(kind)
    for cid, block in [("gibbs", [1]), ("block_gibbs-2", [2, 3]), ("block_gibbs-3", [d - 3, d - 2, d - 1])]:
        p = _gibbs_block_matrix(model, block)
        _check_matrix(model, p, np.ones(len(p)))
        _check_rows(p, *draws[cid], cid)


def test_hamming_ball_kernel_is_the_exact_two_stage_gibbs_move():
    model = binary_model()
    states, lp, _ = tables(model)
    n, b = len(states), 4
    block = [4, 5, 6, 7]
    # P(x -> y) = Σ_u U(u | ball(x)) π(y) 1[y ∈ ball(u)] / Z(u), radius 1, block sites 4..7
    rest = [0, 1, 2, 3]
    p = np.zeros((n, n))
    for a in range(n):
        same = np.all(states[:, rest] == states[a, rest], axis=1)
        dist_x = (states[:, block] != states[a, block]).sum(1)
        for u in np.where(same & (dist_x <= 1))[0]:
            dist_u = (states[:, block] != states[u, block]).sum(1)
            w = np.where(same & (dist_u <= 1), np.exp(lp), 0.0)
            p[a] += w / w.sum() / (b + 1)
    _check_matrix(model, p, np.ones(n))
    _check_rows(p, *kernel_draws("binary")["hamming_ball"], "hamming_ball")
    assert len(D.samplers.hamming_ball.__globals__["ball_shifts"](3, 2, 3)) == 1 + 3 * 2 + 3 * 4


@pytest.mark.slow
def test_long_run_marginals_match_enumeration_with_adaptation_on():
    """Adaptive samplers (their defaults) on the tiny models: per-site marginals within 5 standard
    errors of the enumerated ones, and the adaptation reaches its target acceptance rate. One sampler
    per adaptive rule and state type: rwm / gwg adapt the number of flips (binary / categorical),
    dlmc the step size (PAS and DMALA share these rules and are checked exactly above)."""
    chains, steps = 32, 800
    runs = [("binary", "rwm"), ("binary", "dlmc"), ("categorical", "gwg")]
    k1, k2 = jax.random.split(jax.random.key(11))

    @functools.partial(jax.jit, **FAST)
    def run_all():  # the three runs in one compiled program
        out = []
        for kind, name in runs:
            model = _model(kind)
            x0 = jax.random.randint(k1, (chains, model.num_sites), 0, model.num_categories)
            xs, _, acc, _ = D.sample_chains(D.get_sampler(name, model), x0, x0[0], jax.random.split(k2, chains), steps,
                                            keep="states")
            out.append((xs, acc))
        return out

    for (kind, name), (xs, acc) in zip(runs, run_all()):
        model = _model(kind)
        exact = D.exact_marginals(model)
        xs = np.asarray(xs)[steps // 4:]
        per_chain = np.stack([(xs == c).mean(0) for c in range(model.num_categories)], -1)  # (chains, d, K)
        est, se = per_chain.mean(0), per_chain.std(0) / np.sqrt(chains) + 1e-3
        z = np.abs(est - exact) / se
        assert z.max() < 5.0, (name, z.max(), est, exact)
        if name == "rwm":  # on 8 sites the other rules sit at their floor (one expected move)
            assert abs(float(np.asarray(acc)[steps // 2:].mean()) - 0.237) < 0.1, name


def test_same_key_same_result_and_key_types():
    """Checked inside the one compiled program of :func:`_all_kernel_draws` (raw keys give the typed keys'
    draws; the same key twice gives the same draws), for the binary and the categorical model."""
    for kind in ("binary", "categorical"):
        first, again, raw = _all_kernel_draws()[1][kind]
        assert first.size and len(np.unique(first.reshape(-1, first.shape[-1]), axis=0)) > 1  # the draws vary
        np.testing.assert_array_equal(again, first)
        np.testing.assert_array_equal(raw, first)


@pytest.mark.parametrize("solver", ["interpolate", "euler"])
def test_dlmc_binary_moves_match_float64_at_extreme_differences(solver):
    """|D| in the hundreds (annealed MIS at t = 0.01 reaches 200): ν = σ(D) underflows in float32, and
    the transition probabilities were NaN (interpolate) or 0 (Euler), freezing the chain."""
    from nips23jax.discrete.samplers.balancing import balancing_function
    from nips23jax.discrete.samplers.dlmc import dlmc_transition_log_probs

    d = np.array([300.0, -300.0, 0.0, 5.0, -80.0, 80.0, 1e-3])
    g = balancing_function("sqrt")
    got = np.asarray(dlmc_transition_log_probs(jnp.asarray(np.stack([np.zeros_like(d), d], 1), jnp.float32),
                                               jnp.zeros(len(d), jnp.int32), jnp.float32(0.3), g, solver))
    tau, nu = np.exp(0.3), 1.0 / (1.0 + np.exp(-d))  # float64
    rate = tau * np.exp(d / 2)  # τ e^{g(D)}, g = D/2 for sqrt
    move = nu * -np.expm1(-rate / nu) if solver == "interpolate" else np.minimum(rate, nu)
    with np.errstate(divide="ignore"):  # D = 300: the site moves surely, log P(stay) = −inf
        want = np.stack([np.log1p(-move), np.log(move)], 1)
    assert np.all(np.isfinite(got[:, 1]))
    np.testing.assert_allclose(got[:, 1], want[:, 1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.exp(got[:, 0]), np.exp(want[:, 0]), atol=1e-6)
    # the binary kernels' own form (log P(flip), log P(stay)) from D alone
    from nips23jax.discrete.samplers.dlmc import dlmc_flip_log_probs

    move, stay = (np.asarray(a) for a in dlmc_flip_log_probs(jnp.asarray(d, jnp.float32), jnp.float32(0.3), g, solver))
    assert np.all(np.isfinite(move)) and not np.any(np.isnan(stay))
    np.testing.assert_allclose(move, want[:, 1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.exp(stay), np.exp(want[:, 0]), atol=1e-6)
    finite = np.isfinite(want[:, 0]) & (want[:, 0] < -1e-3)  # log P(stay) away from 0: relative accuracy too
    np.testing.assert_allclose(stay[finite], want[finite, 0], rtol=1e-5)


@pytest.mark.parametrize("balancing", ["sqrt", "barker"])
def test_binary_flip_proposals_equal_the_two_column_tables(balancing):
    """The binary kernels draw from ``(log P(flip), log P(stay))`` alone: these must be the ``(d, 2)``
    tables' entries, at ordinary and at extreme differences, for DMALA and both DLMC solvers."""
    from nips23jax.discrete.samplers.balancing import balanced_weights, balancing_function
    from nips23jax.discrete.samplers.dlmc import dlmc_flip_log_probs, dlmc_transition_log_probs
    from nips23jax.discrete.samplers.dmala import dmala_flip_log_probs, dmala_proposal_logits

    g = balancing_function(balancing)
    rng = np.random.default_rng(0)
    dx = jnp.asarray(np.concatenate([rng.normal(0, 3, 40), [300.0, -300.0, 80.0, -80.0, 0.0]]), jnp.float32)
    x = jnp.asarray(rng.integers(0, 2, dx.shape[0]), jnp.int32)
    diffs = jnp.where(jax.nn.one_hot(x, 2, dtype=bool), 0.0, dx[:, None])  # D[i, x_i] = 0
    rows = np.arange(dx.shape[0])
    for log_tau in (-2.0, 0.3):
        tables = {"dmala": dmala_proposal_logits(balanced_weights(diffs, x, g), x, log_tau),
                  **{s: dlmc_transition_log_probs(diffs, x, jnp.float32(log_tau), g, s) for s in ("interpolate", "euler")}}
        flips = {"dmala": dmala_flip_log_probs(g(dx), log_tau),
                 **{s: dlmc_flip_log_probs(dx, jnp.float32(log_tau), g, s) for s in ("interpolate", "euler")}}
        for name, table in tables.items():
            table = np.asarray(table)
            move, stay = (np.asarray(a) for a in flips[name])
            np.testing.assert_allclose(move, table[rows, 1 - np.asarray(x)], rtol=1e-5, atol=1e-6, err_msg=name)
            np.testing.assert_allclose(np.exp(stay), np.exp(table[rows, np.asarray(x)]), atol=1e-6, err_msg=name)
            np.testing.assert_allclose(np.exp(move) + np.exp(stay), 1.0, atol=1e-6, err_msg=name)


def test_balancing_functions_in_log_space():
    d = jnp.linspace(-30.0, 30.0, 13)
    t = np.exp(np.asarray(d, np.float64))
    for name, g in [("sqrt", np.sqrt(t)), ("barker", t / (1 + t)), ("max", np.maximum(1, t)), ("min", np.minimum(1, t))]:
        np.testing.assert_allclose(np.exp(np.asarray(D.samplers.balancing_function(name)(d), np.float64)), g, rtol=1e-5)
        # locally balanced: g(t) = t g(1/t)
        np.testing.assert_allclose(D.samplers.balancing_function(name)(d), d + D.samplers.balancing_function(name)(-d),
                                   rtol=1e-5, atol=1e-5)
    assert D.samplers.balancing_function("t/(t+1)") is D.samplers.balancing_function("barker")


def test_adaptive_rules():
    r = D.samplers.adapt_num_flips(jnp.float32(3.0), jnp.float32(1.0), 0.574, 10)
    assert float(r) == pytest.approx(3.426)
    assert float(D.samplers.adapt_num_flips(jnp.float32(1.0), jnp.float32(0.0), 0.574, 10)) == 1.0
    log_z = jnp.log(jnp.float32(50.0))
    lt0 = D.samplers.init_log_tau(log_z)
    assert float(jnp.exp(lt0) * 50.0) == pytest.approx(3.0, rel=1e-5)
    # n = 3 + 3 (1 - 0.574) = 4.278 expected moves
    assert float(jnp.exp(D.samplers.adapt_log_tau(lt0, log_z, jnp.float32(1.0))) * 50) == pytest.approx(4.278, rel=1e-5)
    # never below one expected move
    assert float(jnp.exp(D.samplers.adapt_log_tau(jnp.log(0.01 / 50.0), log_z, jnp.float32(0.0))) * 50) == pytest.approx(1.0)


def test_bad_input():
    model = binary_model()
    with pytest.raises(ValueError, match="balancing function"):
        D.gwg(model, balancing="cubic")
    with pytest.raises(ValueError, match="unknown sampler"):
        D.get_sampler("hmc", model)
    with pytest.raises(ValueError, match="solver"):
        D.dlmc(model, solver="rk4")
    with pytest.raises(ValueError, match="num_flips"):
        D.rwm(model, num_flips=0.0)
    with pytest.raises(ValueError, match="block_size"):
        D.block_gibbs(model, block_size=20)
    alg = D.dmala(model)
    with pytest.raises(ValueError, match="shape"):
        alg.init(jnp.zeros(5, jnp.int32))
    with pytest.raises(TypeError, match="integer"):
        alg.init(jnp.zeros(8, jnp.float32))
    with pytest.raises(ValueError, match="outside"):
        alg.init(jnp.full(8, 2, jnp.int32))
