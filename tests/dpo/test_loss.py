import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.dpo import LOSS_TYPES, dpo_loss, dpo_metrics

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "trl_dpo_losses.json").read_text())


@pytest.fixture(autouse=True)
def _x64():
    with jax.enable_x64(True):
        yield


def _ls(x):  # log σ(x) in float64 NumPy, stable
    return -np.logaddexp(0.0, -x)


def _sig(x):
    return np.exp(_ls(x))


def _numpy_loss(t, beta, eps, pc, pr, rc, rr, lc=None, lrj=None, tau=0.05):
    """The formulas of ../shared/PAPERS.md, written independently in NumPy."""
    c, r = pc - rc, pr - rr
    d = c - r
    z = beta * d
    if t == "sigmoid":
        return -(1 - eps) * _ls(z) - eps * _ls(-z)
    if t == "hinge":
        return np.maximum(0, 1 - z)
    if t in ("ipo", "sigmoid_norm"):
        dbar = d if lc is None else c / lc - r / lrj
        return (dbar - 1 / (2 * beta)) ** 2 if t == "ipo" else -_ls(beta * dbar)
    if t == "exo_pair":
        return _sig(z) * (_ls(z) - np.log(1 - eps)) + _sig(-z) * (_ls(-z) - np.log(eps))
    if t == "nca_pair":
        return -_ls(beta * c) - 0.5 * _ls(-beta * c) - 0.5 * _ls(-beta * r)
    if t == "robust":
        return (-(1 - eps) * _ls(z) + eps * _ls(-z)) / (1 - 2 * eps)
    if t == "bco_pair":
        return -_ls(beta * c) - _ls(-beta * r)
    if t == "sppo_hard":
        return (c - 1 / (2 * beta)) ** 2 + (r + 1 / (2 * beta)) ** 2
    if t in ("aot", "aot_unpaired"):
        delta = (np.sort(pc - pr) - np.sort(rc - rr)) if t == "aot" else (np.sort(c) - np.sort(r))
        return -(1 - eps) * _ls(beta * delta) - eps * _ls(-beta * delta)
    if t == "apo_zero":
        return 1 - _sig(beta * c) + _sig(beta * r)
    if t == "apo_down":
        return _sig(beta * c) + 1 - _sig(z)
    if t == "discopop":
        m = _sig(z / tau)
        return -_ls(z) * (1 - m) + np.exp(-z) * m
    raise AssertionError(t)


def _random_batch(seed=0, b=9):
    rng = np.random.default_rng(seed)
    pc, pr = rng.normal(-30, 6, b), rng.normal(-31, 6, b)
    return pc, pr, pc + rng.normal(0, 2, b), pr + rng.normal(0, 2, b), rng.integers(1, 20, b), rng.integers(1, 20, b)


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
@pytest.mark.parametrize("beta, eps", [(0.1, 0.0), (0.5, 0.1), (2.0, 0.3)])
def test_every_loss_type_matches_numpy_float64(loss_type, beta, eps):
    if loss_type == "exo_pair" and eps == 0.0:
        eps = 1e-3
    pc, pr, rc, rr, lc, lrj = _random_batch()
    kw = dict(beta=beta, loss_type=loss_type, label_smoothing=eps)
    losses, cr, rj = dpo_loss(pc, pr, rc, rr, **kw)
    assert losses.dtype == jnp.float64 and losses.shape == (9,)
    np.testing.assert_allclose(losses, _numpy_loss(loss_type, beta, eps, pc, pr, rc, rr), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(cr, beta * (pc - rc), rtol=1e-13)
    np.testing.assert_allclose(rj, beta * (pr - rr), rtol=1e-13)
    if loss_type in ("ipo", "sigmoid_norm"):
        normed, _, _ = dpo_loss(pc, pr, rc, rr, **kw, chosen_lengths=lc, rejected_lengths=lrj)
        np.testing.assert_allclose(normed, _numpy_loss(loss_type, beta, eps, pc, pr, rc, rr, lc, lrj), rtol=1e-12)
        assert not np.allclose(normed, losses)


@pytest.mark.parametrize("case", FIXTURE["cases"], ids=lambda c: f"{'+'.join(c['loss_type'])}-b{c['beta']}-e{c['label_smoothing']}")
def test_matches_trl_recorded_fixture(case):
    """TRL 1.16.0's own DPOTrainer._compute_loss on the same log-probs (see fixtures/make_trl_fixture.py)."""
    b = FIXTURE["batch"]
    normalize = any(t in ("ipo", "sigmoid_norm") for t in case["loss_type"])
    losses, cr, rj = dpo_loss(
        np.array(b["pc"]), np.array(b["pr"]), np.array(b["rc"]), np.array(b["rr"]),
        beta=case["beta"], loss_type=case["loss_type"], loss_weights=case["loss_weights"],
        label_smoothing=case["label_smoothing"],
        chosen_lengths=np.array(b["len_c"]) if normalize else None,
        rejected_lengths=np.array(b["len_r"]) if normalize else None,
    )
    # TRL builds EXO's epsilon as a float32 tensor, so its log(ε) terms carry float32 rounding.
    np.testing.assert_allclose(losses.mean(), case["loss"], rtol=2e-7 if "exo_pair" in case["loss_type"] else 1e-10)
    ours = dpo_metrics(cr, rj)
    for k, v in case["metrics"].items():
        rtol = 1e-7 if k == "rewards/accuracies" else 1e-10  # TRL casts the accuracy to float32
        np.testing.assert_allclose(ours[k], v, rtol=rtol, atol=1e-12)


def test_metrics_by_hand():
    m = dpo_metrics(jnp.array([1.0, -2.0, 0.5]), jnp.array([0.0, -1.0, 0.5]))
    np.testing.assert_allclose([m["rewards/chosen"], m["rewards/rejected"], m["rewards/accuracies"], m["rewards/margins"]],
                               [-1 / 6, -1 / 6, 1 / 3, 0.0], atol=1e-15)


def test_conservative_dpo_and_reference_free():
    pc, pr, rc, rr, _, _ = _random_batch(1)
    plain = dpo_loss(pc, pr, rc, rr)[0]
    smooth = dpo_loss(pc, pr, rc, rr, label_smoothing=0.1)[0]
    np.testing.assert_allclose(smooth, 0.9 * plain - 0.1 * _ls(-0.1 * ((pc - rc) - (pr - rr))), rtol=1e-12)
    free = dpo_loss(pc, pr, rc, rr, reference_free=True)
    np.testing.assert_allclose(free[0], -_ls(0.1 * (pc - pr)), rtol=1e-12)
    np.testing.assert_allclose(free[1], 0.1 * pc, rtol=1e-13)


@pytest.mark.parametrize("loss_type", sorted(set(LOSS_TYPES) - {"aot", "aot_unpaired"}))
def test_raising_the_chosen_logp_does_not_raise_the_loss(loss_type):
    pc, pr, rc, rr, _, _ = _random_batch(2)
    eps = 1e-3 if loss_type == "exo_pair" else 0.0
    grad = jax.grad(lambda p: dpo_loss(p, pr, rc, rr, loss_type=loss_type, label_smoothing=eps)[0].sum())(jnp.asarray(pc))
    if loss_type in ("apo_down", "sppo_hard", "discopop"):
        # Not monotone by design: APO-down lowers both log-ratios, SPPO pulls c towards 1/(2β), and
        # DiscoPOP's logistic/exponential blend has a region of positive slope in the margin.
        assert np.isfinite(np.asarray(grad)).all()
    else:
        assert (np.asarray(grad) <= 0).all(), grad


@pytest.mark.parametrize("loss_type", LOSS_TYPES)
def test_extreme_margins_are_finite_in_float32(loss_type):
    with jax.enable_x64(False):
        pc = jnp.array([1e4, -1e4, 0.0, 5e3], jnp.float32)
        zeros = jnp.zeros(4, jnp.float32)
        eps = 1e-3 if loss_type == "exo_pair" else 0.0
        f = lambda p: dpo_loss(p, -p, zeros, zeros, beta=1.0, loss_type=loss_type, label_smoothing=eps)[0]  # noqa: E731
        losses = f(pc)
        assert losses.dtype == jnp.float32
        assert np.isfinite(np.asarray(losses)).all(), losses
        g = jax.jacobian(lambda p: f(p).sum())(pc)
        assert np.isfinite(np.asarray(g)).all(), g


def test_jit_and_dtypes():
    pc, pr, rc, rr, _, _ = _random_batch(3)
    f = jax.jit(lambda *a: dpo_loss(*a, beta=0.2, loss_type=("ipo", "sigmoid"), loss_weights=(0.5, 0.5)))
    np.testing.assert_allclose(
        f(pc, pr, rc, rr)[0],
        0.5 * _numpy_loss("ipo", 0.2, 0, pc, pr, rc, rr) + 0.5 * _numpy_loss("sigmoid", 0.2, 0, pc, pr, rc, rr),
        rtol=1e-12,
    )
    with jax.enable_x64(False):
        out = dpo_loss(*(jnp.asarray(x, jnp.float32) for x in (pc, pr, rc, rr)))
        assert all(o.dtype == jnp.float32 for o in out)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(loss_type="dpo"), "unknown loss_type .*'dpo'.*valid: sigmoid, hinge, ipo"),
        (dict(loss_type=("sigmoid", "kto")), "unknown loss_type .*'kto'"),
        (dict(loss_type=("sigmoid", "ipo"), loss_weights=(1.0,)), "loss_weights has 1 entries for 2"),
        (dict(beta=0.0), "beta must be a number > 0"),
        (dict(beta=-1), "beta must be a number > 0"),
        (dict(beta=float("nan")), "beta must be a number > 0"),
        (dict(beta="0.1"), "beta must be a number > 0"),
        (dict(beta=np.float32(0.0)), "beta must be > 0, got 0.0"),
        (dict(beta=np.ones(2)), r"scalar float array, got shape \(2,\)"),
        (dict(label_smoothing=0.5), r"label_smoothing must be in \[0, 0.5\)"),
        (dict(label_smoothing=-0.1), "label_smoothing"),
        (dict(loss_type="exo_pair"), "needs label_smoothing > 0"),
        (dict(loss_type="ipo", chosen_lengths=np.array([3, 0, 1]), rejected_lengths=np.ones(3)), "chosen_lengths must be > 0"),
        (dict(loss_type="ipo", chosen_lengths=np.ones(3)), "both chosen_lengths and rejected_lengths"),
        (dict(loss_type="ipo", chosen_lengths=np.ones(2), rejected_lengths=np.ones(2)), "must have shape"),
    ],
)
def test_bad_input(kwargs, match):
    x = np.array([-1.0, -2.0, -3.0])
    with pytest.raises(ValueError, match=match):
        dpo_loss(x, x, x, x, **kwargs)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "hinge"])
def test_beta_as_an_array_and_traced_equals_the_number(loss_type):
    pc, pr, rc, rr, _, _ = _random_batch(3)
    want = dpo_loss(pc, pr, rc, rr, beta=0.7, loss_type=loss_type)
    got = dpo_loss(pc, pr, rc, rr, beta=np.float64(0.7), loss_type=loss_type)
    traced = jax.jit(lambda b: dpo_loss(pc, pr, rc, rr, beta=b, loss_type=loss_type))(jnp.asarray(0.7))
    for g, t, w in zip(got, traced, want):
        np.testing.assert_allclose(g, w, rtol=1e-12)
        np.testing.assert_allclose(t, w, rtol=1e-12)
    np.testing.assert_allclose(want[0], _numpy_loss(loss_type, 0.7, 0.0, pc, pr, rc, rr), rtol=1e-12)


def test_metrics_and_empty_batches_are_checked():
    with pytest.raises(ValueError, match=r"dpo_metrics: .*got \(3,\) and \(2, 1\)"):
        dpo_metrics(jnp.array([1.0, 2.0, 3.0]), jnp.array([[0.0], [5.0]]))  # would broadcast to (2, 3)
    with pytest.raises(ValueError, match="batch is empty"):
        dpo_loss(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0))


def test_mismatched_shapes():
    with pytest.raises(ValueError, match=r"equal-length vectors .*ref_rejected_logps \(2,\)"):
        dpo_loss(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(2))
    with pytest.raises(TypeError, match="floating point"):
        dpo_loss(np.zeros(3, int), np.zeros(3), np.zeros(3), np.zeros(3))
