"""distribution-shift: accuracy on the line, and X-shift vs Y|X-shift (NeurIPS 2023 tutorial).

Synthetic Gaussian populations with probit labels (``nips23jax.shift.synthetic``), where every
quantity is known: a family of logistic regressions of different capacity (number of features)
and training size, trained in one ``vmap``, is evaluated under a pure X-shift (accuracy on the
line, ``nips23jax.shift.accuracy_on_the_line``) and a Y|X-shift (the line breaks, more source data
does not help); DISDE (``nips23jax.shift.disde``) is checked term by term against the exact-density
truth in four cases, including P = Q. Config: ``configs/distribution_shift.py``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from nips23jax.core import reproduce
from nips23jax.core.train import MetricsLog
from nips23jax.shift import (
    Population,
    accuracy_on_the_line,
    conditional_accuracy,
    disde,
    disde_ground_truth,
    plot_accuracy_on_the_line,
    sample_population,
)

NAME = "distribution-shift"
CASES = ("null", "x_shift", "yx_shift", "both")
CASE_TITLES = {"null": "P = Q", "x_shift": "X-shift", "yx_shift": "Y|X-shift", "both": "X + Y|X-shift"}
TERMS = ("x_shift_p_to_s", "y_given_x", "x_shift_s_to_q")
TERM_LABELS = {"x_shift_p_to_s": "X-shift P→S", "y_given_x": "Y|X-shift on S", "x_shift_s_to_q": "X-shift S→Q"}

CLAIMS = (
    reproduce.Claim(
        "line",
        "Under a pure X-shift, models of different capacity and data lie on a line in probit space",
        "accuracy on the line (high R²)",
        "probit-fit R² >= {config.criteria.line_r2_above}",
    ),
    reproduce.Claim(
        "breaks",
        "Under a Y|X-shift the line breaks down, and more source data does not fix it",
        "no line; OOD gap persists",
        "probit-fit R² < {config.criteria.broken_r2_below}; the largest model at the most data is "
        "> {config.criteria.ood_gap_above} below the target's Bayes accuracy while < "
        "{config.criteria.id_gap_below} below the source's",
    ),
    reproduce.Claim(
        "disde",
        "DISDE recovers the known X-shift and Y|X-shift terms, and all ≈ 0 when P = Q",
        "terms match the exact-density truth",
        "every term of 4 cases within {config.criteria.within_se}·SE + {config.criteria.abs_tol} of the truth",
    ),
)


def populations(config: ml_collections.ConfigDict) -> dict[str, Population]:
    """Source ``P`` and the targets of the four cases (``"null"`` is ``P`` itself)."""
    d = config.data
    beta = d.beta_scale * d.beta_decay ** np.arange(d.dim)
    flipped = np.where(np.arange(d.dim) >= d.flip_from, -beta, beta)
    source = Population.create(0.0, 1.0, beta, noise=d.noise)
    return {
        "source": source,
        "null": source,
        "x_shift": Population.create(d.x_shift_mean, d.x_shift_std, beta, noise=d.noise),
        "yx_shift": Population.create(0.0, 1.0, flipped, noise=d.noise),
        "both": Population.create(d.x_shift_mean, d.x_shift_std, flipped, noise=d.noise),
    }


def train_model_family(
    x: jax.Array, y: jax.Array, feature_mask: jax.Array, sample_mask: jax.Array, *, steps: int, lr: float, l2: float
) -> dict:
    """Logistic regressions, one per row of the masks, trained full-batch with Adam in one ``vmap``.

    Args:
      x: ``(n, d)`` source inputs; y: ``(n,)`` labels in {0, 1}.
      feature_mask: ``(m, d)`` 1 for the features model ``i`` sees.
      sample_mask: ``(m, n)`` 1 for the training examples of model ``i``.

    Returns:
      ``{"w": (m, d), "b": (m,)}`` (masked features have weight 0).
    """
    opt = optax.adam(optax.cosine_decay_schedule(lr, steps))

    def one(fm, sm):
        params = {"w": jnp.zeros(x.shape[1]), "b": jnp.zeros(())}

        def loss(p):
            ce = optax.sigmoid_binary_cross_entropy((x * fm) @ p["w"] + p["b"], y)
            return jnp.sum(sm * ce) / jnp.sum(sm) + l2 * jnp.sum(p["w"] ** 2)

        def step(carry, _):
            p, s = carry
            u, s = opt.update(jax.grad(loss)(p), s, p)
            return (optax.apply_updates(p, u), s), None

        (params, _), _ = jax.lax.scan(step, (params, opt.init(params)), None, length=steps)
        return {"w": params["w"] * fm, "b": params["b"]}

    return jax.jit(jax.vmap(one))(feature_mask, sample_mask)


def predict(params: dict, x: jax.Array) -> jax.Array:
    """Hard predictions ``(n, m)`` of every model of the family (``(n,)`` for a single model)."""
    return ((x @ params["w"].T + params["b"]) > 0).astype(jnp.int32)


@functools.partial(jax.jit, static_argnums=3)
def _evaluate(params: dict, key: jax.Array, pop: Population, num: int) -> tuple[jax.Array, jax.Array]:
    """Test accuracy ``(m,)`` of every model on ``num`` fresh draws, and the Bayes accuracy E[max(η, 1−η)]."""
    x, y = sample_population(key, pop, num)
    eta = conditional_accuracy(pop, x, jnp.ones(num))
    return jnp.mean(predict(params, x) == y[:, None], axis=0), jnp.mean(jnp.maximum(eta, 1 - eta))


def _features(x: jax.Array, kind: str) -> jax.Array:
    if kind == "linear":
        return x
    if kind == "quadratic":
        return jnp.concatenate([x, x**2], axis=1)
    raise ValueError(f"distribution-shift: disde.features must be 'linear' or 'quadratic', got {kind!r}")


def run(config: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True) -> reproduce.Result:
    """Trains the model family, fits the probit lines, runs DISDE on four cases, plots, and judges."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "metrics.jsonl"
    log_path.unlink(missing_ok=True)  # cheap to recompute: a rerun writes a fresh log
    log = MetricsLog(log_path)
    pops = populations(config)
    key = jax.random.key(config.seed)
    k_train, k_test, k_disde, k_fit = jax.random.split(key, 4)
    stages = tqdm(total=3 + len(CASES), desc=NAME, disable=not progress)

    # (a, b) the model family: capacity = first k features, trained on the first n source examples.
    m = config.models
    ks, ns = np.meshgrid(np.asarray(m.num_features), np.asarray(m.train_sizes), indexing="ij")
    ks, ns = ks.ravel(), ns.ravel()
    n_max, dim = int(ns.max()), config.data.dim
    if ks.max() > dim:
        raise ValueError(f"distribution-shift: models.num_features {tuple(m.num_features)} exceeds data.dim {dim}")
    x, y = sample_population(k_train, pops["source"], n_max)
    params = train_model_family(
        x, y,
        jnp.asarray(np.arange(dim)[None, :] < ks[:, None], jnp.float32),
        jnp.asarray(np.arange(n_max)[None, :] < ns[:, None], jnp.float32),
        steps=m.steps, lr=m.lr, l2=m.l2,
    )
    stages.update()
    acc, bayes = {}, {}
    for i, name in enumerate(("source", "x_shift", "yx_shift")):
        a, b = _evaluate(params, jax.random.fold_in(k_test, i), pops[name], m.num_test)
        acc[name], bayes[name] = np.asarray(a, np.float64), float(b)
    for i in range(len(ks)):
        log.write(i, "models", {"num_features": int(ks[i]), "train_size": int(ns[i]), "id_acc": acc["source"][i],
                                "ood_acc_x_shift": acc["x_shift"][i], "ood_acc_yx_shift": acc["yx_shift"][i]})
    k1, k2 = jax.random.split(k_fit)
    fits = {
        "x_shift": accuracy_on_the_line(acc["source"], acc["x_shift"], num_id=m.num_test, num_ood=m.num_test,
                                        key=k1, num_bootstrap=m.num_bootstrap),
        "yx_shift": accuracy_on_the_line(acc["source"], acc["yx_shift"], num_id=m.num_test, num_ood=m.num_test,
                                         key=k2, num_bootstrap=m.num_bootstrap),
    }
    stages.update()

    # (b) more data: the largest model at the largest training size.
    big = np.flatnonzero((ks == ks.max()) & (ns == n_max))[0]
    ood_gap = bayes["yx_shift"] - acc["yx_shift"][big]
    id_gap = bayes["source"] - acc["source"][big]

    # (c) DISDE of the largest model, most data, in four cases against the exact-density truth.
    model = jax.tree.map(lambda v: v[big], params)
    predict_one = lambda z: predict(model, z)  # noqa: E731
    d = config.disde
    estimates, truths, errors = {}, {}, {}
    for i, case in enumerate(CASES):
        kc = jax.random.fold_in(k_disde, i)
        kp, kq, kd, kt = jax.random.split(kc, 4)
        xp, yp = sample_population(kp, pops["source"], d.num_eval)
        xq, yq = sample_population(kq, pops[case], d.num_eval)
        r = disde(
            _features(xp, d.features), predict_one(xp) == yp, _features(xq, d.features), predict_one(xq) == yq,
            key=kd, num_folds=d.num_folds, num_bootstrap=d.num_bootstrap, classifier=d.classifier,
        )
        truth = disde_ground_truth(kt, pops["source"], pops[case], predict_one, num=d.truth_samples)
        estimates[case] = r
        truths[case] = {k: float(v) for k, v in truth._asdict().items()}
        errors[case] = {t: abs(getattr(r.terms, t) - truths[case][t]) / getattr(r.se, t) for t in TERMS + ("total",)}
        log.write(i, "disde", {"case": case, **{f"est_{t}": getattr(r.terms, t) for t in TERMS + ("total",)},
                               **{f"se_{t}": getattr(r.se, t) for t in TERMS + ("total",)},
                               **{f"truth_{t}": truths[case][t] for t in TERMS + ("total",)},
                               "overlap": r.terms.overlap, "yx_share": r.terms.yx_share})
        stages.update()
    crit = config.criteria
    disde_ok = all(
        abs(getattr(estimates[c].terms, t) - truths[c][t]) <= crit.within_se * getattr(estimates[c].se, t) + crit.abs_tol
        for c in CASES for t in TERMS
    )
    worst = max((errors[c][t], c, t) for c in CASES for t in TERMS)

    figures = [
        _plot_lines(fits, ks, workdir / "accuracy_on_the_line.png").name,
        _plot_more_data(acc, bayes, ks, ns, workdir / "more_data.png").name,
        _plot_disde(estimates, truths, workdir / "disde.png").name,
    ]
    stages.update()
    stages.close()

    fx, fy = fits["x_shift"], fits["yx_shift"]
    findings = [
        reproduce.Finding(
            "line", f"R² {fx.r2:.3f} (slope {fx.slope:.2f}, intercept {fx.intercept:.2f})",
            fx.r2 >= crit.line_r2_above,
            f"{len(ks)} models (k = {tuple(m.num_features)} features x n = {tuple(m.train_sizes)}); "
            f"bootstrap 95% slope interval [{np.nanquantile(fx.bootstrap_slope, 0.025):.2f}, "
            f"{np.nanquantile(fx.bootstrap_slope, 0.975):.2f}]",
        ),
        reproduce.Finding(
            "breaks",
            f"R² {fy.r2:.3f}; OOD gap {ood_gap:.3f} at n = {n_max} (ID gap {id_gap:.3f})",
            fy.r2 < crit.broken_r2_below and ood_gap > crit.ood_gap_above and id_gap < crit.id_gap_below,
            f"Y|X-shift fit slope {fy.slope:.2f}, intercept {fy.intercept:.2f}; {ks.max()}-feature model OOD accuracy "
            f"by n: " + ", ".join(f"{int(n)}: {acc['yx_shift'][j]:.3f}" for j, n in zip(np.flatnonzero(ks == ks.max()),
                                                                                    ns[ks == ks.max()]))
            + f" (target Bayes {bayes['yx_shift']:.3f}, source Bayes {bayes['source']:.3f})",
        ),
        reproduce.Finding(
            "disde",
            f"worst |est − truth| = {worst[0]:.1f} SE ({worst[1]}, {worst[2]})",
            disde_ok,
            "; ".join(
                f"{c}: " + ", ".join(f"{t} {getattr(estimates[c].terms, t):+.3f}±{getattr(estimates[c].se, t):.3f} "
                                     f"(truth {truths[c][t]:+.3f})" for t in TERMS)
                + (f", Y|X share {estimates[c].terms.yx_share:.2f} (truth {truths[c]['yx_share']:.2f})"
                   if abs(truths[c]["total"]) > 1e-6 else "")
                for c in CASES
            ),
        ),
    ]
    metrics = {
        "lines": {s: {"slope": f.slope, "intercept": f.intercept, "r2": f.r2} for s, f in fits.items()},
        "bayes": bayes,
        "ood_gap": float(ood_gap),
        "id_gap": float(id_gap),
        "disde": {c: {"estimate": estimates[c].terms._asdict(), "se": estimates[c].se._asdict(), "truth": truths[c]}
                  for c in CASES},
    }
    return reproduce.Result(findings=findings, metrics=metrics, figures=figures)


def _plot_lines(fits, ks, path: Path) -> Path:
    fig = Figure(figsize=(11, 5))
    axes = fig.subplots(1, 2)
    for ax, (shift, color) in zip(axes, (("x_shift", "C0"), ("yx_shift", "C3"))):
        plot_accuracy_on_the_line(fits[shift], ax, color=color, label="logistic regressions")
        ax.set_title(f"{'pure X-shift' if shift == 'x_shift' else 'Y|X-shift'}: probit(OOD) vs probit(ID)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _plot_more_data(acc, bayes, ks, ns, path: Path) -> Path:
    fig = Figure(figsize=(11, 4.5))
    axes = fig.subplots(1, 2)
    for ax, shift in zip(axes, ("x_shift", "yx_shift")):
        for j, k in enumerate(np.unique(ks)):
            sel = ks == k
            ax.semilogx(ns[sel], acc[shift][sel], "o-", color=f"C{j % 10}", ms=3, label=f"k={k} OOD")
            ax.semilogx(ns[sel], acc["source"][sel], ":", color=f"C{j % 10}", lw=1)
        ax.axhline(bayes[shift], color="k", ls="--", lw=1, label="target Bayes")
        ax.axhline(bayes["source"], color="gray", ls=":", lw=1, label="source Bayes")
        ax.set(xlabel="source training examples n", ylabel="accuracy (solid OOD, dotted ID)",
               title=f"{'X-shift' if shift == 'x_shift' else 'Y|X-shift'}: more source data")
    axes[1].legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _plot_disde(estimates, truths, path: Path) -> Path:
    fig = Figure(figsize=(10, 4.5))
    ax = fig.subplots()
    width = 0.25
    for j, t in enumerate(TERMS):
        xs = np.arange(len(CASES)) + (j - 1) * width
        est = [getattr(estimates[c].terms, t) for c in CASES]
        se = [getattr(estimates[c].se, t) for c in CASES]
        ax.bar(xs, est, width, yerr=se, capsize=3, color=f"C{j}", alpha=0.7, label=f"{TERM_LABELS[t]} (estimate ± SE)")
        ax.scatter(xs, [truths[c][t] for c in CASES], marker="_", s=300, color="k", zorder=3,
                   label="exact-density truth" if j == 0 else None)
    ax.axhline(0, color="gray", lw=0.8)
    ax.set_xticks(np.arange(len(CASES)), [CASE_TITLES[c] for c in CASES])
    ax.set(ylabel="change in accuracy", title="DISDE: X-shift vs Y|X-shift decomposition of the accuracy change")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


REPRODUCTION = reproduce.register(
    reproduce.Reproduction(
        name=NAME,
        title="accuracy on the line and the X- vs Y|X-shift decomposition (DISDE) on synthetic shifts",
        paper="NeurIPS 2023 tutorial: Modeling and Exploiting Data Heterogeneity Under Distribution Shifts "
        "(Namkoong et al.); Miller et al., Accuracy on the Line, ICML 2021; Cai, Namkoong, Yadlowsky, "
        "Diagnosing Model Performance Under Distribution Shift (DISDE); Liu et al., WhyShift, NeurIPS 2023",
        claims=CLAIMS,
        config="distribution_shift",
        run=run,
        notebook="colab/distribution_shift.ipynb",
    )
)
