import functools
import itertools

import jax
import numpy as np
import pytest

import nips23jax.discrete as D


def _naive_best(n, edges, kind):
    best = -np.inf
    e = set(map(tuple, edges))
    for bits in itertools.product([0, 1], repeat=n):
        x = np.array(bits)
        if kind == "maxcut":
            v = sum(x[i] != x[j] for i, j in edges)
        else:
            chosen = np.where(x)[0]
            pairs = list(itertools.combinations(chosen, 2))
            if kind == "mis" and any(p in e for p in pairs):
                continue
            if kind == "clique" and any(p not in e for p in pairs):
                continue
            v = len(chosen)
        best = max(best, v)
    return best


def test_graph_generators():
    g = D.erdos_renyi(0, 60, 0.2)
    assert g.edges.shape[1] == 2 and (g.edges[:, 0] < g.edges[:, 1]).all()
    assert abs(len(g.edges) / (60 * 59 / 2) - 0.2) < 0.04
    ba = D.barabasi_albert(1, 30, 2)
    assert len(ba.edges) == 2 + (30 - 3) * 2
    assert len({tuple(e) for e in ba.edges}) == len(ba.edges)
    deg = np.bincount(ba.edges.ravel(), minlength=30)
    assert deg.min() >= 2 and deg.max() >= 6  # hubs appear
    np.testing.assert_array_equal(D.erdos_renyi(7, 10, 0.5).edges, D.erdos_renyi(7, 10, 0.5).edges)


def test_brute_force_optima_match_naive_search():
    g = D.erdos_renyi(3, 10, 0.35)
    assert D.brute_force_optimum(D.maxcut(g))[0] == _naive_best(10, g.edges, "maxcut")
    assert D.brute_force_optimum(D.mis(g))[0] == _naive_best(10, g.edges, "mis")
    assert D.brute_force_optimum(D.max_clique(g))[0] == _naive_best(10, g.edges, "clique")
    best, x = D.brute_force_optimum(D.mis(g))
    assert not any(x[i] and x[j] for i, j in g.edges)


def test_normalized_cut_of_two_cliques():
    edges = [(i, j) for i in range(4) for j in range(i + 1, 4)] + [(i, j) for i in range(4, 8) for j in range(i + 1, 8)] + [(3, 4)]
    g = D.Graph(8, np.array(edges, np.int32), np.ones(len(edges), np.float32))
    best, x = D.brute_force_optimum(D.normalized_cut(g, 2))
    assert best == pytest.approx(-2 * 1 / 13)  # cut 1 over volume 13 on each side
    assert len(set(x[:4])) == 1 and len(set(x[4:])) == 1 and x[0] != x[4]


@pytest.mark.slow
def test_annealing_finds_small_optima():
    g = D.erdos_renyi(3, 14, 0.3)
    problems = (D.mis(g), D.maxcut(g))

    # both anneals in one compiled program (their jits inline; compiling is this test's time)
    @functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
    def both():
        return [D.anneal(0, p, "gwg", num_chains=8, num_steps=400, t_start=2.0, t_end=0.05, num_stages=10)
                for p in problems]

    for problem, (best, trace) in zip(problems, both()):
        opt, _ = D.brute_force_optimum(problem)
        assert trace.shape == (10, 8)
        assert np.all(np.diff(np.asarray(trace), axis=0) >= 0)
        assert float(best.max()) == opt
        assert float(best.mean()) >= 0.9 * opt


def test_combinatorial_bad_input():
    g = D.erdos_renyi(0, 5, 0.5)
    with pytest.raises(ValueError, match="temperature"):
        D.mis(g).model(0.0)
    with pytest.raises(ValueError, match="temperatures"):
        D.anneal(0, D.mis(g), "gwg", num_chains=2, num_steps=10, t_start=-1.0, num_stages=2)
    with pytest.raises(ValueError, match="unknown sampler"):
        D.anneal(0, D.mis(g), "sgd", num_chains=2, num_steps=10, num_stages=2)
    with pytest.raises(ValueError, match="edge_prob"):
        D.erdos_renyi(0, 5, 1.5)
