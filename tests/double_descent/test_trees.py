"""Trees, forests and boosting as leaf-membership smoothers, against scikit-learn's predictions."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.tree import DecisionTreeRegressor

from nips23jax.double_descent import (
    boosting_smoother,
    boosting_update,
    effective_parameters,
    fit_l2_boosting,
    forest_smoother,
    leaf_boosting_smoother,
    leaf_smoother,
    tree_leaves,
    tree_smoother,
)


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _data(n=40, m=11, d=4, k=2, seed=0):
    rng = np.random.default_rng(seed)
    x, xq = rng.uniform(size=(n, d)), rng.uniform(size=(m, d))
    y = np.stack([np.sin(4 * x[:, 0]) + x[:, 1], x[:, 2] > 0.5], 1)[:, :k].astype(float)
    return x, xq, y


def test_leaf_smoother_matches_naive_loop():
    tl, ql = np.array([3, 3, 5, 7, 5, 5]), np.array([5, 7, 4, 3])
    w = np.array([1.0, 2.0, 0.0, 1.0, 3.0, 1.0])
    naive = np.zeros((4, 6))
    for j, leaf in enumerate(ql):
        members = (tl == leaf) * w
        naive[j] = members / members.sum() if members.sum() > 0 else 0.0
    np.testing.assert_allclose(leaf_smoother(tl, ql, w), naive)
    assert np.all(np.asarray(leaf_smoother(tl, ql, w))[2] == 0)  # an empty leaf: zero row, not NaN


def test_tree_smoother_equals_sklearn_predict_with_and_without_bootstrap_weights():
    x, xq, y = _data()
    tree = DecisionTreeRegressor(max_leaf_nodes=7, random_state=0).fit(x, y)
    np.testing.assert_allclose(tree_smoother(tree, x, xq) @ y, tree.predict(xq), rtol=1e-12)
    counts = np.bincount(np.random.default_rng(1).integers(0, 40, 40), minlength=40).astype(float)
    wtree = DecisionTreeRegressor(max_leaf_nodes=7, random_state=0).fit(x, y, sample_weight=counts)
    s = tree_smoother(wtree, x, xq, sample_weight=counts)
    np.testing.assert_allclose(s @ y, wtree.predict(xq), rtol=1e-12)
    # p_train of a tree is its number of leaves (each leaf: |leaf| rows of squared norm 1/|leaf|)
    np.testing.assert_allclose(effective_parameters(tree_smoother(tree, x, x)), tree.get_n_leaves(), rtol=1e-12)


def test_forest_smoother_equals_sklearn_forest():
    x, xq, y = _data()
    forest = RandomForestRegressor(n_estimators=5, bootstrap=False, max_features=2, random_state=0).fit(x, y)
    np.testing.assert_allclose(forest_smoother(forest, x, xq) @ y, forest.predict(xq), rtol=1e-10)
    with pytest.raises(ValueError, match="bootstrap=True"):
        forest_smoother(RandomForestRegressor(n_estimators=2, random_state=0).fit(x, y), x, xq)


def test_boosting_smoother_equals_sklearn_gradient_boosting():
    x, xq, y = _data(k=1)
    gbr = GradientBoostingRegressor(n_estimators=12, learning_rate=0.3, max_leaf_nodes=5, random_state=0)
    gbr.fit(x, y[:, 0])
    s_train, s_query = boosting_smoother(gbr, x, xq)
    np.testing.assert_allclose(s_query @ y[:, 0], gbr.predict(xq), rtol=1e-9)
    np.testing.assert_allclose(s_train @ y[:, 0], gbr.predict(x), rtol=1e-9)
    with pytest.raises(ValueError, match="subsample"):
        boosting_smoother(GradientBoostingRegressor(n_estimators=2, subsample=0.5).fit(x, y[:, 0]), x, xq)


def test_multi_output_l2_boosting_and_the_recursion_match_dense_numpy():
    x, xq, y = _data()
    lr = 0.5
    model = fit_l2_boosting(x, y, num_rounds=4, learning_rate=lr, max_leaf_nodes=4)
    s_train, s_query = boosting_smoother(model, x, xq)
    np.testing.assert_allclose(s_query @ y, model.predict(xq), rtol=1e-9)
    # the paper's recursion with dense leaf smoothers: S⁽ᵇ⁾ = S⁽ᵇ⁻¹⁾ + η s_b (I − S⁽ᵇ⁻¹⁾_train)
    st, sq = np.zeros((40, 40)), np.zeros((11, 40))
    for t in model.trees:
        tl, ql = tree_leaves(t, x), tree_leaves(t, xq)
        bt, bq = np.asarray(leaf_smoother(tl, tl)), np.asarray(leaf_smoother(tl, ql))
        st, sq = st + lr * bt @ (np.eye(40) - st), sq + lr * bq @ (np.eye(40) - st)
    np.testing.assert_allclose(s_train, st, atol=1e-12)
    np.testing.assert_allclose(s_query, sq, atol=1e-12)
    # one step from zero: Ŝ⁽¹⁾ = η s₁
    tl = tree_leaves(model.trees[0], x)
    one = boosting_update(jnp.zeros((40, 40)), jnp.zeros((40, 40)), jnp.asarray(tl), jnp.asarray(tl), lr, int(tl.max()) + 1)
    np.testing.assert_allclose(one[0], lr * np.asarray(leaf_smoother(tl, tl)), atol=1e-12)
    # per-round outputs follow the rounds
    _, _, path = leaf_boosting_smoother(
        np.stack([tree_leaves(t, x) for t in model.trees]), np.stack([tree_leaves(t, xq) for t in model.trees]), lr,
        per_round=effective_parameters_pair, per_round_args=(),
    )
    np.testing.assert_allclose(path[-1], [effective_parameters(s_train), effective_parameters(s_query)], rtol=1e-10)


def effective_parameters_pair(s_train, s_query):
    return jnp.stack([effective_parameters(s_train), effective_parameters(s_query)])


def test_bad_input():
    x, xq, y = _data()
    tree = DecisionTreeRegressor(max_leaf_nodes=3).fit(x, y)
    with pytest.raises(ValueError, match=r"x_query must have shape \(num, 4\)"):
        tree_smoother(tree, x, xq[:, :2])
    with pytest.raises(TypeError, match="fitted scikit-learn decision tree"):
        tree_smoother(object(), x, xq)
    median = DecisionTreeRegressor(max_leaf_nodes=4, criterion="absolute_error").fit(x, y)
    with pytest.raises(ValueError, match="criterion 'absolute_error' does not predict the mean"):
        tree_smoother(median, x, xq)  # its S @ y was 0.5 off the tree's predictions
    s = jnp.zeros((4, 4))
    with pytest.raises(ValueError, match=r"query_leaves must be leaf ids in \[0, num_leaves=2\)"):
        boosting_update(s, s[:2], jnp.array([0, 0, 1, 1]), jnp.array([0, 5]), 0.5, num_leaves=2)  # segment_sum dropped 5
    with pytest.raises(ValueError, match=r"learning_rate must be in \(0, 1\]"):
        boosting_update(s, s[:2], jnp.array([0, 0, 1, 1]), jnp.array([0, 1]), -0.5, num_leaves=2)
    with pytest.raises(ValueError, match="train_leaves must be an integer array"):
        leaf_smoother(np.ones(3), np.ones(2, int))
    with pytest.raises(ValueError, match="train_weights must be non-negative"):
        leaf_smoother(np.zeros(3, int), np.zeros(2, int), np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match="same number B >= 1 of rounds"):
        leaf_boosting_smoother(np.zeros((3, 5), int), np.zeros((2, 4), int), 0.5)
    with pytest.raises(ValueError, match=r"learning_rate must be in \(0, 1\]"):
        leaf_boosting_smoother(np.zeros((3, 5), int), np.zeros((3, 4), int), 1.5)
    with pytest.raises(ValueError, match="num_rounds must be an int >= 1"):
        fit_l2_boosting(x, y, num_rounds=0, learning_rate=0.5)
    with pytest.raises(ValueError, match="same n"):
        fit_l2_boosting(x, y[:5], num_rounds=1, learning_rate=0.5)
