"""Combinatorial optimization as annealed sampling (DISCS' max-cut, MIS, max-clique, normalized cut).

A problem has an objective ``f`` to maximize over binary (or, for normalized cut, categorical)
states, written multilinearly so that the gradient samplers see it; sampling
``π_T(x) ∝ exp(f(x)/T)`` while the temperature ``T`` falls (:func:`anneal`) concentrates on good
solutions. Graphs: :func:`erdos_renyi` and :func:`barabasi_albert`. :func:`brute_force_optimum`
gives the exact optimum of a small instance (for the approximation ratio).

Objectives (edges ``E``, weights ``w``; MIS penalty ``λ = 1.0001`` as DISCS):

* max-cut: ``f(x) = Σ_{(i,j)∈E} w_ij (x_i + x_j − 2 x_i x_j)`` (edges cut by the 0/1 partition);
* maximum independent set: ``f(x) = Σ_i x_i − λ Σ_{(i,j)∈E} x_i x_j``;
* max-clique: the MIS objective on the complement graph;
* normalized cut into ``K`` parts (minimize ``Σ_k cut(S_k)/vol(S_k)``): ``f = −ncut``.

``score(x)`` reports a lower bound on a feasible objective: for MIS / clique ``Σ x_i − (#violated
pairs)``. Dropping one endpoint of each violated pair leaves a feasible set at least that large (the
bound can be negative, e.g. a selected 4-clique in MIS scores 4 − 6); it equals the set's size when
no pair is violated.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from nips23jax.core.train import as_key
from nips23jax.discrete.enumerate import MAX_STATES
from nips23jax.discrete.models import DiscreteModel
from nips23jax.discrete.samplers import SamplingAlgorithm, get_sampler

__all__ = [
    "Graph",
    "Problem",
    "anneal",
    "barabasi_albert",
    "brute_force_optimum",
    "erdos_renyi",
    "max_clique",
    "maxcut",
    "mis",
    "normalized_cut",
]

MIS_PENALTY = 1.0001


class Graph(NamedTuple):
    """Undirected graph: ``num_nodes``, ``edges`` ``(E, 2)`` int32 with ``i < j``, ``weights`` ``(E,)``."""

    num_nodes: int
    edges: np.ndarray
    weights: np.ndarray


def _rng(key) -> np.random.Generator:
    return np.random.default_rng(np.asarray(jax.random.key_data(as_key(key))).astype(np.uint32))


def erdos_renyi(key: jax.Array | int, num_nodes: int, edge_prob: float) -> Graph:
    """G(n, p): each of the ``n(n−1)/2`` pairs is an edge with probability ``p``; unit weights."""
    if not isinstance(num_nodes, int) or num_nodes < 2:
        raise ValueError(f"erdos_renyi: num_nodes must be an int >= 2, got {num_nodes!r}")
    if not 0.0 <= edge_prob <= 1.0:
        raise ValueError(f"erdos_renyi: edge_prob must be in [0, 1], got {edge_prob!r}")
    iu = np.triu_indices(num_nodes, 1)
    keep = _rng(key).random(iu[0].size) < edge_prob
    edges = np.stack([iu[0][keep], iu[1][keep]], 1).astype(np.int32)
    return Graph(num_nodes, edges, np.ones(len(edges), np.float32))


def barabasi_albert(key: jax.Array | int, num_nodes: int, num_edges_per_node: int) -> Graph:
    """Barabási–Albert preferential attachment: each new node links to ``m`` existing nodes drawn
    with probability proportional to their degree (the first ``m + 1`` nodes form a star seed)."""
    m = num_edges_per_node
    if not isinstance(m, int) or m < 1 or not isinstance(num_nodes, int) or num_nodes <= m:
        raise ValueError(f"barabasi_albert: need ints 1 <= num_edges_per_node < num_nodes, got {m!r}, {num_nodes!r}")
    rng = _rng(key)
    edges = [(0, j) for j in range(1, m + 1)]
    ends = [e for pair in edges for e in pair]
    for v in range(m + 1, num_nodes):
        targets: set[int] = set()
        while len(targets) < m:
            targets.add(int(ends[rng.integers(len(ends))]))
        for u in targets:
            edges.append((u, v))
            ends += [u, v]
    e = np.array(sorted(edges), np.int32)
    return Graph(num_nodes, e, np.ones(len(e), np.float32))


def _complement(g: Graph) -> Graph:
    adj = np.zeros((g.num_nodes, g.num_nodes), bool)
    adj[g.edges[:, 0], g.edges[:, 1]] = True
    iu = np.triu_indices(g.num_nodes, 1)
    keep = ~adj[iu]
    e = np.stack([iu[0][keep], iu[1][keep]], 1).astype(np.int32)
    return Graph(g.num_nodes, e, np.ones(len(e), np.float32))


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """An optimization problem: maximize ``objective``; sample ``exp(objective/T)``.

    Attributes:
      name: ``"maxcut"``, ``"mis"``, ``"max_clique"`` or ``"normalized_cut"``.
      graph: the instance.
      num_categories: 2, or ``K`` parts for normalized cut.
      objective: relaxed objective (input as :meth:`DiscreteModel.relax` gives it).
      score_fn: a lower bound on the feasible objective of an integer state ``int[d]`` (see above).
    """

    name: str
    graph: Graph
    num_categories: int
    objective: Callable[[jax.Array], jax.Array]
    score_fn: Callable[[jax.Array], jax.Array]

    def model(self, temperature: Any) -> DiscreteModel:
        """``π_T(x) ∝ exp(objective(x)/T)``; ``T`` may be traced (checked when concrete)."""
        if not isinstance(temperature, jax.core.Tracer) and not float(temperature) > 0:
            raise ValueError(f"{self.name}: temperature must be > 0, got {temperature!r}")
        f = self.objective
        return DiscreteModel(self.name, self.graph.num_nodes, self.num_categories, lambda x: f(x) / temperature,
                             {"temperature": temperature})

    def score(self, x: jax.Array) -> jax.Array:
        """Feasible objective of ``x`` (``(..., d)`` → ``(...)``)."""
        x = jnp.asarray(x)
        return jnp.vectorize(self.score_fn, signature="(d)->()")(x)


def maxcut(graph: Graph) -> Problem:
    """Max-cut: ``f(x) = Σ_{(i,j)} w_ij (x_i + x_j − 2 x_i x_j)``."""
    i, j = jnp.asarray(graph.edges[:, 0]), jnp.asarray(graph.edges[:, 1])
    w = jnp.asarray(graph.weights)

    def f(x):
        return jnp.sum(w * (x[i] + x[j] - 2 * x[i] * x[j]))

    return Problem("maxcut", graph, 2, f, lambda x: f(x.astype(jnp.float32)))


def _set_problem(name, graph, penalty):
    i, j = jnp.asarray(graph.edges[:, 0]), jnp.asarray(graph.edges[:, 1])

    def f(x):
        return jnp.sum(x) - penalty * jnp.sum(x[i] * x[j])

    def score(x):
        x = x.astype(jnp.float32)
        return jnp.sum(x) - jnp.sum(x[i] * x[j])

    return Problem(name, graph, 2, f, score)


def mis(graph: Graph, *, penalty: float = MIS_PENALTY) -> Problem:
    """Maximum independent set: ``f(x) = Σ x_i − λ Σ_{(i,j)∈E} x_i x_j`` (``λ > 1`` makes optima feasible)."""
    return _set_problem("mis", graph, penalty)


def max_clique(graph: Graph, *, penalty: float = MIS_PENALTY) -> Problem:
    """Max-clique: ``f(x) = Σ x_i − λ Σ_{(i,j)∉E} x_i x_j`` (MIS on the complement graph)."""
    p = _set_problem("max_clique", _complement(graph), penalty)
    return dataclasses.replace(p, graph=Graph(graph.num_nodes, p.graph.edges, p.graph.weights))


def normalized_cut(graph: Graph, num_parts: int = 2) -> Problem:
    """Normalized cut into ``K`` parts: ``f = −Σ_k cut(S_k)/vol(S_k)`` (empty parts cost 1)."""
    if not isinstance(num_parts, int) or num_parts < 2:
        raise ValueError(f"normalized_cut: num_parts must be an int >= 2, got {num_parts!r}")
    i, j = jnp.asarray(graph.edges[:, 0]), jnp.asarray(graph.edges[:, 1])
    w = jnp.asarray(graph.weights)
    deg = jnp.zeros(graph.num_nodes).at[i].add(w).at[j].add(w)

    def f(o):
        if num_parts == 2:
            o = jnp.stack([1.0 - o, o], 1)
        cut = jnp.sum(w[:, None] * (o[i] + o[j] - 2 * o[i] * o[j]), 0)
        vol = deg @ o
        return -jnp.sum(jnp.where(vol > 0, cut / jnp.maximum(vol, 1e-9), 1.0))

    def score(x):
        o = jax.nn.one_hot(x, num_parts)
        return f(o[:, 1] if num_parts == 2 else o)

    return Problem("normalized_cut", graph, num_parts, f, score)


def brute_force_optimum(problem: Problem, *, chunk: int = 1 << 14) -> tuple[float, np.ndarray]:
    """Exact ``max_x score(x)`` by enumeration (``K^n <= 2^20``): ``(best, argmax state)``."""
    n, k = problem.graph.num_nodes, problem.num_categories
    if k**n > MAX_STATES:
        raise ValueError(f"brute_force_optimum: {k}^{n} states exceed {MAX_STATES}")
    score = jax.jit(jax.vmap(problem.score_fn))
    powers = k ** np.arange(n - 1, -1, -1)
    best, arg = -np.inf, None
    for start in range(0, k**n, chunk):
        idx = np.arange(start, min(start + chunk, k**n))
        states = (idx[:, None] // powers) % k
        s = np.asarray(score(jnp.asarray(states, jnp.int32)))
        if s.max() > best:
            best, arg = float(s.max()), states[int(s.argmax())].astype(np.int32)
    return best, arg


def anneal(
    key: jax.Array | int,
    problem: Problem,
    sampler: str | Callable[[DiscreteModel], SamplingAlgorithm],
    *,
    num_chains: int,
    num_steps: int,
    t_start: float = 1.0,
    t_end: float = 0.01,
    num_stages: int = 20,
    compiler_options: dict | None = None,
    **sampler_kwargs,
) -> tuple[jax.Array, jax.Array]:
    """Simulated annealing with a DISCS sampler: ``T`` falls geometrically from ``t_start`` to
    ``t_end`` in ``num_stages`` equal stages (``num_steps`` in all); the sampler's cached
    log-probability and gradient are refreshed at each stage, its adaptive parameters kept.

    Args:
      key: PRNG key.
      problem: from :func:`maxcut`, :func:`mis`, :func:`max_clique`, :func:`normalized_cut`.
      sampler: a sampler name or ``factory(model) -> SamplingAlgorithm``.
      num_chains, num_steps: chains and total steps (``num_steps`` a multiple of ``num_stages``).
      t_start, t_end: positive temperatures.
      compiler_options: XLA options for the one compiled loop (e.g. ``{"xla_backend_optimization_level":
        0}`` compiles faster for tiny problems).
      sampler_kwargs: passed to the sampler factory.

    Returns:
      ``(best_score (num_chains,), best_trace (num_stages, num_chains))``: the best feasible score
      each chain has visited at the end of each stage.
    """
    if not (t_start > 0 and t_end > 0):
        raise ValueError(f"anneal: temperatures must be > 0, got t_start={t_start!r}, t_end={t_end!r}")
    if num_steps % num_stages:
        raise ValueError(f"anneal: num_steps={num_steps} must be a multiple of num_stages={num_stages}")
    factory = (lambda m: get_sampler(sampler, m, **sampler_kwargs)) if isinstance(sampler, str) else sampler
    factory(problem.model(t_start))  # validates the name and kwargs eagerly
    temps = jnp.asarray(np.geomspace(t_start, t_end, num_stages), jnp.float32)
    per_stage = num_steps // num_stages
    n, k = problem.graph.num_nodes, problem.num_categories
    k_init, k_run = jax.random.split(as_key(key))
    chain_keys = jax.random.split(k_run, num_chains)

    @functools.partial(jax.jit, compiler_options=compiler_options)
    def run(x0):
        s0 = jax.vmap(factory(problem.model(temps[0])).init)(x0)
        best0 = jax.vmap(problem.score_fn)(x0)

        def stage(carry, inp):
            states, best = carry
            t, temp = inp
            alg = factory(problem.model(temp))
            states = jax.vmap(lambda x, s: alg.init(x, previous=s))(states.x, states)

            def body(c, j):
                states, best = c
                keys = jax.vmap(lambda kk: jax.random.fold_in(kk, t * per_stage + j))(chain_keys)
                states, _ = jax.vmap(alg.step)(keys, states)
                return (states, jnp.maximum(best, jax.vmap(problem.score_fn)(states.x))), None

            (states, best), _ = jax.lax.scan(body, (states, best), jnp.arange(per_stage))
            return (states, best), best

        (_, best), trace = jax.lax.scan(stage, (s0, best0), (jnp.arange(num_stages), temps))
        return best, trace

    return run(jax.random.randint(k_init, (num_chains, n), 0, k))
