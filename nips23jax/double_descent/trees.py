"""Regression trees, forests and L2 gradient boosting as linear smoothers (Curth et al., Sec. 4.1).

Given how a tree partitioned the inputs (its leaves), its prediction is the (weighted) mean of the
training outcomes in the query's leaf, so the smoother row is

    s_i(x) = w_i · 1[x_i ∈ leaf(x)] / Σ_k w_k · 1[x_k ∈ leaf(x)]                  (leaf membership)

(``w`` = 1, or bootstrap counts). A forest averages its trees' smoothers. L2 boosting with
learning rate ``η`` fits tree ``b`` to the current residuals ``(I − Ŝ⁽ᵇ⁻¹⁾_train) y``, so

    Ŝ⁽ᵇ⁾(x)ᵀ = Ŝ⁽ᵇ⁻¹⁾(x)ᵀ + η · s_b(x)ᵀ (I − Ŝ⁽ᵇ⁻¹⁾_train),     Ŝ⁽⁰⁾ = 0 (or the mean, 1/n)

(the paper's recursion; ``Ŝ_train`` stacks the rows of the training inputs). The trees themselves
are grown by scikit-learn (their partitions depend on ``y``; given the partitions the predictor is
linear in ``y``); the smoother algebra here is JAX. :func:`fit_l2_boosting` is a plain boosting
loop over scikit-learn trees that also handles multi-output targets (e.g. one-hot classes).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nips23jax.core.checks import ids_out_of_range

__all__ = [
    "BoostedTrees",
    "boosting_smoother",
    "boosting_update",
    "fit_l2_boosting",
    "forest_smoother",
    "leaf_boosting_smoother",
    "leaf_smoother",
    "tree_leaves",
    "tree_smoother",
]


def _leaves(name: str, v: ArrayLike, fn: str, ndim: int) -> jax.Array:
    a = jnp.asarray(v)
    if a.ndim != ndim or not jnp.issubdtype(a.dtype, jnp.integer):
        raise ValueError(f"{fn}: {name} must be an integer array of leaf ids with {ndim} axes, got {a.dtype} {a.shape}")
    return a


def _weights(w: ArrayLike | None, shape: tuple[int, ...], fn: str, name: str) -> jax.Array:
    if w is None:
        return jnp.ones(shape, jnp.result_type(float))
    w = jnp.asarray(w)
    if w.shape != shape:
        raise ValueError(f"{fn}: {name} must have shape {shape}, got {w.shape}")
    if not isinstance(w, jax.core.Tracer) and bool(jnp.any(w < 0)):
        raise ValueError(f"{fn}: {name} must be non-negative (sample weights / bootstrap counts)")
    return w.astype(jnp.result_type(w.dtype, float))


@jax.jit
def _leaf_smoother(train_leaves, query_leaves, w):
    member = (query_leaves[:, None] == train_leaves[None, :]).astype(w.dtype) * w[None, :]
    mass = jnp.sum(member, axis=1, keepdims=True)
    return member / jnp.where(mass > 0, mass, 1.0)


def leaf_smoother(train_leaves: ArrayLike, query_leaves: ArrayLike, train_weights: ArrayLike | None = None) -> jax.Array:
    """Smoother rows of a partition: ``s_i(x) = w_i 1[leaf_i = leaf(x)] / Σ_k w_k 1[leaf_k = leaf(x)]``.

    Args:
      train_leaves: ``(n,)`` leaf id of each training input.
      query_leaves: ``(m,)`` leaf id of each query input.
      train_weights: ``(n,)`` non-negative weights (bootstrap counts, sample weights); default 1.

    Returns:
      ``(m, n)`` smoother rows; a query leaf holding no training weight gets a zero row.
    """
    fn = "leaf_smoother"
    tl, ql = _leaves("train_leaves", train_leaves, fn, 1), _leaves("query_leaves", query_leaves, fn, 1)
    return _leaf_smoother(tl, ql, _weights(train_weights, tl.shape, fn, "train_weights"))


def _check_tree(tree: Any, x: np.ndarray, fn: str, name: str) -> None:
    if not hasattr(tree, "apply") or not hasattr(tree, "tree_"):
        raise TypeError(f"{fn}: expected a fitted scikit-learn decision tree, got {type(tree).__name__}")
    if x.ndim != 2 or x.shape[1] != tree.n_features_in_:
        raise ValueError(f"{fn}: {name} must have shape (num, {tree.n_features_in_}) (the tree's features), got {x.shape}")
    criterion = getattr(tree, "criterion", "squared_error")
    if criterion not in _MEAN_LEAF_CRITERIA:
        raise ValueError(f"{fn}: the tree's criterion {criterion!r} does not predict the mean of its leaf (only "
                         f"{sorted(_MEAN_LEAF_CRITERIA)} make a tree the leaf-mean smoother)")


# split criteria whose leaves predict the (weighted) mean of their training targets
_MEAN_LEAF_CRITERIA = frozenset({"squared_error", "friedman_mse", "poisson"})


def tree_leaves(tree: Any, x: ArrayLike) -> np.ndarray:
    """Leaf (node) id of each row of ``x`` in a fitted scikit-learn tree: ``(num,)`` int32."""
    x = np.asarray(x, np.float32)
    _check_tree(tree, x, "tree_leaves", "x")
    return tree.apply(x).astype(np.int32)


def tree_smoother(tree: Any, x_train: ArrayLike, x_query: ArrayLike, *, sample_weight: ArrayLike | None = None) -> jax.Array:
    """Smoother rows of a fitted regression tree (leaf-membership smoother).

    Args:
      tree: fitted ``sklearn.tree.DecisionTreeRegressor`` (or any estimator with ``apply``/``tree_``).
      x_train: ``(n, d)`` the inputs the tree was fitted on.
      x_query: ``(m, d)`` inputs to predict at.
      sample_weight: ``(n,)`` the weights it was fitted with (bootstrap counts), if any.

    Returns:
      ``(m, n)`` rows; ``S @ y_train`` equals ``tree.predict(x_query)``.
    """
    xt, xq = np.asarray(x_train, np.float32), np.asarray(x_query, np.float32)
    _check_tree(tree, xt, "tree_smoother", "x_train")
    _check_tree(tree, xq, "tree_smoother", "x_query")
    return leaf_smoother(tree.apply(xt).astype(np.int32), tree.apply(xq).astype(np.int32), sample_weight)


def _forest_trees(forest: Any, sample_weights, fn: str) -> list:
    trees = list(getattr(forest, "estimators_", forest))
    if not trees:
        raise ValueError(f"{fn}: the forest has no trees")
    if getattr(forest, "bootstrap", False) and sample_weights is None:
        raise ValueError(
            f"{fn}: this forest was fitted with bootstrap=True, whose per-tree bootstrap counts are not "
            "public; pass sample_weights=(num_trees, n) counts, or fit with bootstrap=False"
        )
    return trees


def forest_smoother(
    forest: Any, x_train: ArrayLike, x_query: ArrayLike, *, sample_weights: ArrayLike | None = None
) -> jax.Array:
    """Smoother rows of a forest: the average of its trees' leaf-membership smoothers.

    Args:
      forest: fitted ``RandomForestRegressor``/``ExtraTreesRegressor`` (``bootstrap=False``, or
        pass ``sample_weights``) or a sequence of fitted trees.
      x_train: ``(n, d)`` training inputs.
      x_query: ``(m, d)`` query inputs.
      sample_weights: ``(num_trees, n)`` per-tree training weights (bootstrap counts); default 1.

    Returns:
      ``(m, n)`` rows; ``S @ y_train`` equals ``forest.predict(x_query)``.
    """
    fn = "forest_smoother"
    trees = _forest_trees(forest, sample_weights, fn)
    xt, xq = np.asarray(x_train, np.float32), np.asarray(x_query, np.float32)
    tl = np.stack([tree_leaves(t, xt) for t in trees])
    ql = np.stack([tree_leaves(t, xq) for t in trees])
    w = _weights(sample_weights, tl.shape, fn, "sample_weights")
    return _mean_leaf_smoother(jnp.asarray(tl), jnp.asarray(ql), w)


@jax.jit
def _mean_leaf_smoother(tl, ql, w):
    def add(acc, args):
        return acc + _leaf_smoother(*args), None

    total, _ = jax.lax.scan(add, jnp.zeros((ql.shape[1], tl.shape[1]), w.dtype), (tl, ql, w))
    return total / tl.shape[0]


def boosting_update(
    s_train: jax.Array,
    s_query: jax.Array,
    train_leaves: jax.Array,
    query_leaves: jax.Array,
    learning_rate: float | jax.Array,
    num_leaves: int,
    train_weights: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """One round of the boosting smoother: ``Ŝ⁽ᵇ⁾(x)ᵀ = Ŝ⁽ᵇ⁻¹⁾(x)ᵀ + η s_b(x)ᵀ (I − Ŝ⁽ᵇ⁻¹⁾_train)``.

    ``s_b(x)ᵀ M`` is computed as the (weighted) mean of ``M``'s rows over the training inputs in
    ``x``'s leaf: ``O((n + m) n)`` per round, never forming ``s_b``. Traceable (use under ``jit``).

    Args:
      s_train: ``(n, n)`` ``Ŝ⁽ᵇ⁻¹⁾`` at the training inputs.
      s_query: ``(m, n)`` ``Ŝ⁽ᵇ⁻¹⁾`` at the query inputs.
      train_leaves: ``(n,)`` int leaf ids of tree ``b`` (in ``[0, num_leaves)``).
      query_leaves: ``(m,)`` int leaf ids.
      learning_rate: ``η``.
      num_leaves: static bound on the leaf ids (a tree's node count).
      train_weights: ``(n,)`` weights tree ``b`` was fitted with; default 1.

    Returns:
      ``(Ŝ⁽ᵇ⁾_train, Ŝ⁽ᵇ⁾_query)``.
    """
    n = s_train.shape[0]
    if s_train.shape != (n, n) or s_query.ndim != 2 or s_query.shape[1] != n:
        raise ValueError(f"boosting_update: s_train must be (n, n) and s_query (m, n), got {s_train.shape}, {s_query.shape}")
    for name, ids in (("train_leaves", train_leaves), ("query_leaves", query_leaves)):
        bad = ids_out_of_range(ids, num_leaves)  # segment_sum drops ids out of range silently
        if bad is not None:
            raise ValueError(f"boosting_update: {name} must be leaf ids in [0, num_leaves={num_leaves}), got min "
                             f"{bad[0]}, max {bad[1]}")
    if not isinstance(learning_rate, jax.core.Tracer) and not 0 < float(learning_rate) <= 1:
        raise ValueError(f"boosting_update: learning_rate must be in (0, 1], got {float(learning_rate)}")
    w = jnp.ones((n,), s_train.dtype) if train_weights is None else train_weights.astype(s_train.dtype)
    residual_map = jnp.eye(n, dtype=s_train.dtype) - s_train
    total = jax.ops.segment_sum(w[:, None] * residual_map, train_leaves, num_segments=num_leaves)
    mass = jax.ops.segment_sum(w, train_leaves, num_segments=num_leaves)
    leaf_mean = total / jnp.where(mass > 0, mass, 1.0)[:, None]
    return s_train + learning_rate * leaf_mean[train_leaves], s_query + learning_rate * leaf_mean[query_leaves]


@functools.partial(jax.jit, static_argnames=("num_leaves", "init", "per_round"))
def _boost_scan(tl, ql, w, learning_rate, per_round_args, *, num_leaves, init, per_round):
    n, m = tl.shape[1], ql.shape[1]
    dtype = w.dtype
    if init == "mean":
        s0 = (jnp.full((n, n), 1.0 / n, dtype), jnp.full((m, n), 1.0 / n, dtype))
    else:
        s0 = (jnp.zeros((n, n), dtype), jnp.zeros((m, n), dtype))

    def body(carry, args):
        new = boosting_update(*carry, *args[:2], learning_rate, num_leaves, args[2])
        return new, (per_round(*new, *per_round_args) if per_round is not None else None)

    (s_train, s_query), path = jax.lax.scan(body, s0, (tl, ql, w))
    return s_train, s_query, path


def leaf_boosting_smoother(
    train_leaves: ArrayLike,
    query_leaves: ArrayLike,
    learning_rate: float,
    *,
    train_weights: ArrayLike | None = None,
    init: str = "zero",
    per_round: Callable[..., Any] | None = None,
    per_round_args: tuple = (),
) -> tuple[jax.Array, jax.Array, Any]:
    """The boosting smoother after ``B`` rounds, from each round's leaf ids (one ``lax.scan``).

    Args:
      train_leaves: ``(B, n)`` leaf ids of the training inputs in each round's tree.
      query_leaves: ``(B, m)`` leaf ids of the query inputs.
      learning_rate: ``η`` in ``(0, 1]``.
      train_weights: ``(B, n)`` per-round training weights (subsampling); default 1.
      init: ``"zero"`` (``Ŝ⁽⁰⁾ = 0``, the paper's recursion) or ``"mean"`` (``Ŝ⁽⁰⁾ = 1/n``, scikit-learn's
        ``GradientBoostingRegressor`` starting from the mean).
      per_round: optional hashable function ``(Ŝ⁽ᵇ⁾_train, Ŝ⁽ᵇ⁾_query, *per_round_args) -> pytree``
        evaluated after each round (e.g. effective parameters, test error), stacked over rounds.
        Pass data it needs through ``per_round_args`` (traced), not as closed-over constants.
      per_round_args: arrays passed to ``per_round`` after the two smoothers.

    Returns:
      ``(Ŝ_train (n, n), Ŝ_query (m, n), stacked per_round outputs or None)``.
    """
    fn = "leaf_boosting_smoother"
    tl, ql = _leaves("train_leaves", train_leaves, fn, 2), _leaves("query_leaves", query_leaves, fn, 2)
    if tl.shape[0] != ql.shape[0] or tl.shape[0] == 0:
        raise ValueError(f"{fn}: train_leaves and query_leaves need the same number B >= 1 of rounds, got {tl.shape}, {ql.shape}")
    if not 0 < float(learning_rate) <= 1:
        raise ValueError(f"{fn}: learning_rate must be in (0, 1], got {learning_rate!r}")
    if init not in ("zero", "mean"):
        raise ValueError(f"{fn}: init must be 'zero' or 'mean', got {init!r}")
    w = _weights(train_weights, tl.shape, fn, "train_weights")
    # a static bound on the leaf ids, rounded up to a power of two so that similar trees share one compile
    num_leaves = 1 << int(max(int(jnp.max(tl)), int(jnp.max(ql)))).bit_length()
    return _boost_scan(tl, ql, w, jnp.asarray(learning_rate, w.dtype), tuple(per_round_args),
                       num_leaves=num_leaves, init=init, per_round=per_round)


class BoostedTrees(NamedTuple):
    """An L2-boosted ensemble fitted by :func:`fit_l2_boosting`: ``f(x) = f₀ + η Σ_b tree_b(x)``.

    Attributes:
      trees: the fitted scikit-learn trees, one per round.
      learning_rate: ``η``.
      init: ``"zero"`` or ``"mean"`` (``f₀`` = 0 or the training mean).
      offset: ``f₀`` (``(k,)`` or scalar).
    """

    trees: tuple
    learning_rate: float
    init: str
    offset: np.ndarray

    def predict(self, x: ArrayLike) -> np.ndarray:
        x = np.asarray(x, np.float32)
        return self.offset + self.learning_rate * sum(t.predict(x) for t in self.trees)


def fit_l2_boosting(
    x: ArrayLike,
    y: ArrayLike,
    *,
    num_rounds: int,
    learning_rate: float,
    max_leaf_nodes: int | None = 10,
    max_features: int | float | str | None = None,
    init: str = "zero",
    random_state: int = 0,
) -> BoostedTrees:
    """L2 gradient boosting with scikit-learn regression trees (multi-output ``y`` allowed).

    Round ``b`` fits a tree to the residuals ``y − f_{b−1}(X)`` and adds ``η·tree_b``.

    Args:
      x: ``(n, d)`` inputs.
      y: ``(n,)`` or ``(n, k)`` outcomes.
      num_rounds: ``B ≥ 1``.
      learning_rate: ``η`` in ``(0, 1]``.
      max_leaf_nodes: leaves per tree (scikit-learn's ``max_leaf_nodes``).
      max_features: features considered per split (randomizes the trees).
      init: ``"zero"`` or ``"mean"``.
      random_state: seed of the trees' feature sampling (round ``b`` uses ``random_state + b``).

    Returns:
      :class:`BoostedTrees`.
    """
    from sklearn.tree import DecisionTreeRegressor

    x, y = np.asarray(x, np.float32), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim not in (1, 2) or y.shape[0] != x.shape[0]:
        raise ValueError(f"fit_l2_boosting: x must be (n, d) and y (n,) or (n, k) with the same n, got {x.shape}, {y.shape}")
    if isinstance(num_rounds, bool) or not isinstance(num_rounds, int) or num_rounds < 1:
        raise ValueError(f"fit_l2_boosting: num_rounds must be an int >= 1, got {num_rounds!r}")
    if not 0 < learning_rate <= 1:
        raise ValueError(f"fit_l2_boosting: learning_rate must be in (0, 1], got {learning_rate!r}")
    if init not in ("zero", "mean"):
        raise ValueError(f"fit_l2_boosting: init must be 'zero' or 'mean', got {init!r}")
    offset = y.mean(axis=0) if init == "mean" else np.zeros(y.shape[1:])
    fitted = np.broadcast_to(offset, y.shape).copy()
    trees = []
    for b in range(num_rounds):
        tree = DecisionTreeRegressor(max_leaf_nodes=max_leaf_nodes, max_features=max_features,
                                     random_state=random_state + b)
        tree.fit(x, y - fitted)
        fitted += learning_rate * tree.predict(x)
        trees.append(tree)
    return BoostedTrees(tuple(trees), float(learning_rate), init, offset)


def boosting_smoother(
    boosted: Any, x_train: ArrayLike, x_query: ArrayLike
) -> tuple[jax.Array, jax.Array]:
    """Smoother rows of a boosted tree ensemble at the training and query inputs.

    Args:
      boosted: :class:`BoostedTrees`, or a fitted ``sklearn.ensemble.GradientBoostingRegressor``
        with ``loss="squared_error"``, ``subsample=1`` and the default (mean) ``init``.
      x_train: ``(n, d)`` training inputs.
      x_query: ``(m, d)`` query inputs.

    Returns:
      ``(Ŝ_train (n, n), Ŝ_query (m, n))``; ``Ŝ_query @ y_train`` equals ``boosted.predict(x_query)``.
    """
    fn = "boosting_smoother"
    if isinstance(boosted, BoostedTrees):
        trees, lr, init = boosted.trees, boosted.learning_rate, boosted.init
    elif hasattr(boosted, "estimators_") and hasattr(boosted, "learning_rate"):
        if getattr(boosted, "loss", None) != "squared_error" or getattr(boosted, "subsample", 1.0) != 1.0:
            raise ValueError(f"{fn}: only loss='squared_error' with subsample=1.0 is a linear smoother of known weights")
        if boosted.init not in (None,):
            raise ValueError(f"{fn}: only the default (mean) init is supported, got init={boosted.init!r}")
        trees, lr, init = [row[0] for row in boosted.estimators_], boosted.learning_rate, "mean"
    else:
        raise TypeError(f"{fn}: expected BoostedTrees or a fitted GradientBoostingRegressor, got {type(boosted).__name__}")
    xt, xq = np.asarray(x_train, np.float32), np.asarray(x_query, np.float32)
    tl = np.stack([tree_leaves(t, xt) for t in trees])
    ql = np.stack([tree_leaves(t, xq) for t in trees])
    s_train, s_query, _ = leaf_boosting_smoother(tl, ql, lr, init=init)
    return s_train, s_query

