"""double-descent: Curth, Jeffares & van der Schaar (NeurIPS 2023), the U-turn on double descent.

On scikit-learn's bundled digits (one-hot targets, squared loss): min-norm random-Fourier-feature
regression sweeps the raw parameter count ``P`` through ``n`` (double descent, peak at ``P = n``);
against the effective parameters on test inputs ``p̂_test`` (``nips23jax.double_descent``) the
same models trace a U whose second descent turns back (the U-turn). The RFF axis is unfolded into
principal components ``P^PC`` and raw features ``P^ex`` (two separate U-shapes); trees (leaves,
then ensemble size) and L2 boosting (rounds, then ensemble size) repeat the story. Config:
``configs/double_descent.py``.
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from nips23jax.core import reproduce
from nips23jax.core.train import MetricsLog
from nips23jax.double_descent import (
    effective_parameters,
    fit_l2_boosting,
    init_rff,
    kernel_pca_ols_smoother,
    kernel_ridge_smoother,
    leaf_boosting_smoother,
    leaf_smoother,
    rff_features,
    tree_leaves,
)

NAME = "double-descent"

CLAIMS = (
    reproduce.Claim(
        "rff_double_descent",
        "RFF regression: test error against the raw parameter count shows double descent, peaking at P = n",
        "peak at P = n (Fig. 1, Belkin et al.'s RFF)",
        "argmax of test MSE over the P grid is P = n, and test MSE at P = n is > {config.criteria.peak_ratio}x "
        "both the best P < n and the largest P",
    ),
    reproduce.Claim(
        "rff_uturn",
        "Against effective parameters on test inputs the RFF curve is a U-shape: p_train saturates at n, "
        "p_test peaks at P = n and falls after (the U-turn)",
        "U-shape vs p_test (Fig. 6)",
        "p_train within 1% of n for P >= n; p_test max at P = n and p_test(P_max) < {config.criteria.uturn_drop} "
        "x p_test(n); on both arms (best P < n to P = n, and P = n to P_max) Spearman(test MSE, p_test) >= "
        "{config.criteria.min_spearman}",
    ),
    reproduce.Claim(
        "rff_unfolded",
        "Unfolding RFF into principal components P^PC and raw features P^ex gives two separate U-shapes",
        "two U-shaped curves (Sec. 3.2, Fig. 4)",
        "for each P^ex in the config, test MSE along P^PC has an interior minimum with both ends > "
        "(1 + {config.criteria.u_rise}) x the minimum; the larger P^ex's U lies lower (smaller minimum) and "
        "left (smaller p_test at P^PC = n)",
    ),
    reproduce.Claim(
        "trees",
        "Trees: leaves then ensemble size gives double descent peaking at the switch; against p_test the "
        "ensemble axis turns back (U-turn)",
        "peak at the switch; U-turn (Figs. 2, 6)",
        "test MSE at the interpolating tree > (1 + {config.criteria.u_rise}) x both the best smaller tree and "
        "the largest forest; p_test(largest forest) < {config.criteria.uturn_drop} x p_test(full tree); "
        "Spearman(test MSE, p_test) >= {config.criteria.min_spearman} along the ensemble axis",
    ),
    reproduce.Claim(
        "boosting",
        "Boosting: rounds then ensemble size gives double descent peaking at the switch; against p_test the "
        "ensemble axis turns back (U-turn)",
        "peak at the switch; U-turn (Figs. 3, 6)",
        "test MSE after all rounds > (1 + {config.criteria.u_rise}) x both the best earlier round and the "
        "largest ensemble; p_test(largest ensemble) < {config.criteria.uturn_drop} x p_test(one model); "
        "Spearman(test MSE, p_test) >= {config.criteria.min_spearman} along the ensemble axis",
    ),
)


def load_digits_split(seed: int, num_train: int, num_test: int | None = None):
    """Digits scaled to [0, 1] (``(·, 64)`` float64) with one-hot targets (``(·, 10)``), split at random.

    Returns ``(x_train, y_train, x_test, y_test, test_labels)``; ``num_test=None`` (or negative) keeps
    every digit not used for training (1797 in all).
    """
    from sklearn.datasets import load_digits

    x, labels = load_digits(return_X_y=True)
    if not 1 <= num_train < len(x):
        raise ValueError(f"load_digits_split: num_train must be in [1, {len(x) - 1}], got {num_train}")
    perm = np.random.default_rng(seed).permutation(len(x))
    stop = len(x) if num_test is None or num_test < 0 else num_train + num_test
    tr, te = perm[:num_train], perm[num_train:stop]
    x = x / 16.0
    y = np.eye(10)[labels]
    return x[tr], y[tr], x[te], y[te], labels[te]


def _test_mse(pred, y):
    return float(np.mean(np.sum((np.asarray(pred) - y) ** 2, axis=1)))


def _spearman(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 3:
        return float("nan")
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@jax.jit
def _scores(s_train, s_test, y_train, y_test):
    pred = s_test @ y_train
    return {
        "test_mse": jnp.mean(jnp.sum((pred - y_test) ** 2, axis=1)),
        "test_error": jnp.mean(jnp.argmax(pred, 1) != jnp.argmax(y_test, 1)),
        "train_mse": jnp.mean(jnp.sum((s_train @ y_train - y_train) ** 2, axis=1)),
        "p_train": effective_parameters(s_train),
        "p_test": effective_parameters(s_test),
    }


def _to_float(d):
    return {k: float(v) for k, v in d.items()}


def _rff_sweep(config, data, log, progress):
    """Min-norm RFF regression over the P grid, averaged over feature draws (running Gram matrices)."""
    xt, yt, xq, yq = data
    n = len(xt)
    grid = sorted({max(1, int(round(r * n))) for r in config.rff.ratios})
    p_max = grid[-1]
    unfold_ex = sorted({max(1, int(round(r * n))) for r in config.unfold.excess_ratios})
    unfold_pc = sorted({min(n, max(1, int(round(r * n)))) for r in config.unfold.pc_ratios})
    p_max = max(p_max, unfold_ex[-1])
    checkpoints = sorted(set(grid) | set(unfold_ex))
    rows = {p: [] for p in grid}
    unfold = {(e, k): [] for e in unfold_ex for k in unfold_pc}
    steps = len(checkpoints) * config.rff.num_draws
    bar = tqdm(total=steps, desc="RFF sweep", disable=not progress)
    for draw in range(config.rff.num_draws):
        rff = init_rff(jax.random.fold_in(jax.random.key(config.seed), draw), xt.shape[1], p_max,
                       config.rff.bandwidth, dtype=jnp.float64)
        # running Gram matrices of the nested feature sets, in NumPy (no per-shape compilation)
        ft, fq = np.asarray(rff_features(rff, xt)), np.asarray(rff_features(rff, xq))
        gram, kq = np.zeros((n, n)), np.zeros((len(xq), n))
        done = 0
        for p in checkpoints:
            gram += ft[:, done:p] @ ft[:, done:p].T
            kq += fq[:, done:p] @ ft[:, done:p].T
            done = p
            both = np.concatenate([gram, kq])
            if p in rows:
                s = kernel_ridge_smoother(gram, both, ridge=0.0, rtol=config.rff.rtol)
                rows[p].append(_to_float(_scores(s[:n], s[n:], yt, yq)))
            if p in unfold_ex:
                path = kernel_pca_ols_smoother(gram, both, unfold_pc, rtol=config.rff.rtol)
                for k, s in zip(unfold_pc, path):
                    unfold[(p, k)].append(_to_float(_scores(s[:n], s[n:], yt, yq)))
            bar.update()
    bar.close()
    mean = lambda rs: {k: float(np.mean([r[k] for r in rs])) for k in rs[0]}  # noqa: E731
    rff = [{"P": p, **mean(rows[p])} for p in grid]
    for i, r in enumerate(rff):
        log.write(i, "rff", r)
    unfolded = {e: [{"P_pc": k, **mean(unfold[(e, k)])} for k in unfold_pc] for e in unfold_ex}
    for e, rs in unfolded.items():
        for i, r in enumerate(rs):
            log.write(i, f"unfold_{e}", r)
    return rff, unfolded


def _tree_sweep(config, data, log, progress):
    """One tree grown to more and more leaves (up to interpolation), then forests of such full trees."""
    from sklearn.tree import DecisionTreeRegressor

    xt, yt, xq, yq = data
    c = config.trees
    mf = c.max_features or None
    make = lambda seed, leaves=None: DecisionTreeRegressor(  # noqa: E731
        max_leaf_nodes=leaves, max_features=mf, random_state=seed).fit(xt, yt)
    sizes = sorted(set(c.ensemble_sizes) | {1})
    full = [make(config.seed + k) for k in tqdm(range(sizes[-1]), desc="trees", disable=not progress)]
    n_full = int(full[0].get_n_leaves())
    leaves_grid = sorted({int(v) for v in c.leaf_grid if 2 <= v < n_full})
    path = []
    for leaves in leaves_grid:
        t = make(config.seed, leaves)
        st = leaf_smoother(tree_leaves(t, xt), tree_leaves(t, xt))
        sq = leaf_smoother(tree_leaves(t, xt), tree_leaves(t, xq))
        path.append({"axis": "leaves", "leaves": leaves, "trees": 1, **_to_float(_scores(st, sq, yt, yq))})
    acc_t, acc_q = 0.0, 0.0
    for k, t in enumerate(full, start=1):
        acc_t = acc_t + leaf_smoother(tree_leaves(t, xt), tree_leaves(t, xt))
        acc_q = acc_q + leaf_smoother(tree_leaves(t, xt), tree_leaves(t, xq))
        if k in sizes:
            path.append({"axis": "leaves" if k == 1 else "trees", "leaves": int(t.get_n_leaves()), "trees": k,
                         **_to_float(_scores(acc_t / k, acc_q / k, yt, yq))})
    for i, r in enumerate(path):
        log.write(i, "trees", r)
    return path


def _boosting_sweep(config, data, log, progress):
    """L2 boosting over rounds (one model), then averages of independently boosted models."""
    xt, yt, xq, yq = data
    c = config.boosting
    sizes = sorted(set(c.ensemble_sizes) | {1})
    rounds = sorted({int(r) for r in c.round_grid if 1 <= r <= c.num_rounds} | {c.num_rounds})
    path, acc_t, acc_q = [], 0.0, 0.0
    for k in tqdm(range(sizes[-1]), desc="boosted models", disable=not progress):
        model = fit_l2_boosting(xt, yt, num_rounds=c.num_rounds, learning_rate=c.learning_rate,
                                max_leaf_nodes=c.max_leaf_nodes, max_features=c.max_features or None,
                                random_state=config.seed + 1000 * k)
        tl = np.stack([tree_leaves(t, xt) for t in model.trees])
        ql = np.stack([tree_leaves(t, xq) for t in model.trees])
        st, sq, scores = leaf_boosting_smoother(tl, ql, c.learning_rate, per_round=_scores if k == 0 else None,
                                                per_round_args=(yt, yq) if k == 0 else ())
        if k == 0:
            for r in rounds[:-1]:
                path.append({"axis": "rounds", "rounds": r, "models": 1,
                             **{name: float(v[r - 1]) for name, v in scores.items()}})
        acc_t, acc_q = acc_t + st, acc_q + sq
        if k + 1 in sizes:
            path.append({"axis": "rounds" if k == 0 else "models", "rounds": c.num_rounds, "models": k + 1,
                         **_to_float(_scores(acc_t / (k + 1), acc_q / (k + 1), yt, yq))})
    for i, r in enumerate(path):
        log.write(i, "boosting", r)
    return path


def _judge_rff(config, rff, n):
    crit = config.criteria
    p = np.array([r["P"] for r in rff])
    mse = np.array([r["test_mse"] for r in rff])
    at_n = int(np.argmin(np.abs(p - n)))
    below = p < n
    best_below = float(mse[below].min()) if below.any() else float("nan")
    peak_ok = (int(np.argmax(mse)) == at_n and p[at_n] == n and mse[at_n] > crit.peak_ratio * best_below
               and mse[at_n] > crit.peak_ratio * mse[-1])
    dd = reproduce.Finding(
        "rff_double_descent",
        f"peak at P = {int(p[np.argmax(mse)])} (n = {n}): test MSE {mse[at_n]:.3g} vs {best_below:.3f} (best P < n) "
        f"and {mse[-1]:.3f} (P = {int(p[-1])})",
        bool(peak_ok),
        "test MSE by P: " + ", ".join(f"{int(a)}: {b:.3g}" for a, b in zip(p, mse)),
    )
    p_train = np.array([r["p_train"] for r in rff])
    p_test = np.array([r["p_test"] for r in rff])
    start = int(np.argmin(np.where(below, mse, np.inf))) if below.any() else 0
    # both arms of the U: error rises with p_test from the best P < n up to P = n, and falls with it after
    rho_up = _spearman(mse[start:at_n + 1], p_test[start:at_n + 1])
    rho_back = _spearman(mse[at_n:], p_test[at_n:])
    saturated = bool(np.all(np.abs(p_train[p >= n] - n) <= 0.01 * n))
    uturn_ok = (saturated and int(np.argmax(p_test)) == at_n and p_test[-1] < crit.uturn_drop * p_test[at_n]
                and bool(np.isfinite([rho_up, rho_back]).all()) and min(rho_up, rho_back) >= crit.min_spearman)
    ut = reproduce.Finding(
        "rff_uturn",
        f"p_test {p_test[at_n]:.3g} at P = n -> {p_test[-1]:.0f} at P = {int(p[-1])}; p_train {p_train[-1]:.1f}; "
        f"Spearman(test MSE, p_test) {rho_up:.2f} up to P = n, {rho_back:.2f} after",
        bool(uturn_ok),
        "(P, p_train, p_test): " + ", ".join(f"({int(a)}, {b:.0f}, {c:.0f})" for a, b, c in zip(p, p_train, p_test)),
    )
    return dd, ut


def _judge_unfolded(config, unfolded):
    crit = config.criteria
    parts, ok, summary = [], True, []
    for e, rs in unfolded.items():
        mse = np.array([r["test_mse"] for r in rs])
        i = int(np.argmin(mse))
        u = 0 < i < len(mse) - 1 and mse[0] > (1 + crit.u_rise) * mse[i] and mse[-1] > (1 + crit.u_rise) * mse[i]
        ok = ok and bool(u)
        summary.append((e, float(mse[i]), float(rs[-1]["p_test"])))
        parts.append(f"P^ex={e}: min {mse[i]:.3f} at P^PC={rs[i]['P_pc']}, ends {mse[0]:.3f}/{mse[-1]:.3g}"
                     f"{'' if u else ' (no U)'}")
    ordered = all(a[1] > b[1] and a[2] > b[2] for a, b in zip(summary, summary[1:]))
    return reproduce.Finding(
        "rff_unfolded",
        "; ".join(parts),
        bool(ok and ordered and len(summary) >= 2),
        "(P^ex, min test MSE, p_test at P^PC = n): " + ", ".join(f"({e}, {m:.3f}, {pt:.0f})" for e, m, pt in summary),
    )


def _judge_two_axis(config, key, path, first, second):
    crit = config.criteria
    a1 = [r for r in path if r["axis"] == first]
    a2 = [r for r in path if r["axis"] == second]
    switch = a1[-1]
    best_before = min((r["test_mse"] for r in a1[:-1]), default=float("nan"))
    end = a2[-1] if a2 else switch
    along = [switch] + a2
    rho = _spearman([r["test_mse"] for r in along], [r["p_test"] for r in along])
    ok = (switch["test_mse"] > (1 + crit.u_rise) * best_before and switch["test_mse"] > (1 + crit.u_rise) * end["test_mse"]
          and end["p_test"] < crit.uturn_drop * switch["p_test"] and rho >= crit.min_spearman)
    return reproduce.Finding(
        key,
        f"test MSE {best_before:.3f} (best before switch) -> {switch['test_mse']:.3f} (switch) -> "
        f"{end['test_mse']:.3f}; p_test {switch['p_test']:.0f} -> {end['p_test']:.0f}; Spearman {rho:.2f}",
        bool(ok),
        "(axis, test MSE, p_train, p_test): " + ", ".join(
            f"({r['axis']} {r.get('leaves', r.get('rounds'))}/{r.get('trees', r.get('models'))}, "
            f"{r['test_mse']:.3f}, {r['p_train']:.0f}, {r['p_test']:.0f})" for r in path),
    )


def run(config: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True) -> reproduce.Result:
    """Runs the RFF, unfolded-RFF, tree and boosting sweeps on digits, plots, and judges the claims."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "metrics.jsonl"
    log_path.unlink(missing_ok=True)  # every run recomputes its sweeps (seconds to minutes)
    log = MetricsLog(log_path)
    xt, yt, xq, yq, _ = load_digits_split(config.seed, config.num_train, config.num_test)
    n = len(xt)
    from threadpoolctl import threadpool_limits  # a scikit-learn dependency

    # Small (n x n) eigendecompositions: BLAS threads only contend with each other on a shared CPU.
    with jax.enable_x64(True), threadpool_limits(config.blas_threads):
        data = tuple(jnp.asarray(a, jnp.float64) for a in (xt, yt, xq, yq))
        rff, unfolded = _rff_sweep(config, data, log, progress)
        trees = _tree_sweep(config, (xt, yt, xq, yq), log, progress)
        boosting = _boosting_sweep(config, (xt, yt, xq, yq), log, progress)

    findings = [
        *_judge_rff(config, rff, n),
        _judge_unfolded(config, unfolded),
        _judge_two_axis(config, "trees", trees, "leaves", "trees"),
        _judge_two_axis(config, "boosting", boosting, "rounds", "models"),
    ]
    figures = [
        plot_rff(rff, n, workdir / "rff_double_descent.png").name,
        plot_unfolded(unfolded, n, workdir / "rff_unfolded.png").name,
        plot_two_axis(trees, boosting, workdir / "trees_boosting.png").name,
    ]
    metrics = {"n": n, "num_test": len(xq), "rff": rff, "unfolded": {str(k): v for k, v in unfolded.items()},
               "trees": trees, "boosting": boosting}
    return reproduce.Result(findings=findings, metrics=metrics, figures=figures)


def plot_rff(rff, n: int, path: Path) -> Path:
    """Fig. 1/6 of the paper for RFF: error vs raw P, error vs p̂ (train/test), p̂ vs P."""
    p = np.array([r["P"] for r in rff])
    mse = np.array([r["test_mse"] for r in rff])
    fig = Figure(figsize=(14, 4.2))
    ax = fig.subplots(1, 3)
    ax[0].loglog(p, mse, "o-", color="C0")
    ax[0].axvline(n, color="grey", ls="--", label="P = n")
    ax[0].set(xlabel="raw parameters P (random features)", ylabel="test MSE", title="double descent in P")
    ax[0].legend()
    under = p <= n
    p_test = np.array([r["p_test"] for r in rff])
    ax[1].loglog(p_test[under], mse[under], "o-", color="C0", label="P ≤ n")
    ax[1].loglog(p_test[~under], mse[~under], "s-", color="C3", label="P > n")
    ax[1].set(xlabel="effective parameters p̂_test", ylabel="test MSE", title="U-turn: error vs p̂_test")
    ax[1].legend()
    ax[2].loglog(p, [r["p_train"] for r in rff], "o-", label="p̂_train")
    ax[2].loglog(p, p_test, "s-", label="p̂_test")
    ax[2].axvline(n, color="grey", ls="--")
    ax[2].set(xlabel="raw parameters P", ylabel="effective parameters", title="p̂ vs P")
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_unfolded(unfolded, n: int, path: Path) -> Path:
    """The unfolded RFF axis: error along P^PC for each P^ex, against P^PC and against p̂_test."""
    fig = Figure(figsize=(10, 4.2))
    ax = fig.subplots(1, 2)
    for i, (e, rs) in enumerate(unfolded.items()):
        k = [r["P_pc"] for r in rs]
        mse = [r["test_mse"] for r in rs]
        ax[0].semilogy(k, mse, "o-", color=f"C{i}", label=f"P^ex = {e} ({e / n:g} n)")
        ax[1].loglog([r["p_test"] for r in rs], mse, "o-", color=f"C{i}", label=f"P^ex = {e}")
    ax[0].set(xlabel="principal components P^PC", ylabel="test MSE", title="unfolded RFF: PC axis")
    ax[1].set(xlabel="effective parameters p̂_test", ylabel="test MSE", title="unfolded RFF vs p̂_test")
    ax[0].legend()
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def plot_two_axis(trees, boosting, path: Path) -> Path:
    """Trees (leaves → trees) and boosting (rounds → models): error on the composite axis and vs p̂_test."""
    fig = Figure(figsize=(11, 8))
    ax = fig.subplots(2, 2)
    for row, (title, rows, first, second) in enumerate(
        (("trees", trees, "leaves", "trees"), ("boosting", boosting, "rounds", "models"))
    ):
        a1 = [r for r in rows if r["axis"] == first]
        a2 = [r for r in rows if r["axis"] == second]
        x1 = np.arange(len(a1))
        x2 = np.arange(len(a1) - 1, len(a1) + len(a2))
        ax[row, 0].plot(x1, [r["test_mse"] for r in a1], "o-", color="C0", label=f"{first}")
        ax[row, 0].plot(x2, [r["test_mse"] for r in [a1[-1]] + a2], "s-", color="C3", label=f"{second}")
        ax[row, 0].axvline(len(a1) - 1, color="grey", ls="--")
        labels = [str(r[first if first != "trees" else "leaves"]) for r in a1] + [str(r[second]) for r in a2]
        ax[row, 0].set_xticks(np.arange(len(labels)), labels, rotation=60, fontsize=7)
        ax[row, 0].set(xlabel=f"{first} (one model), then {second}", ylabel="test MSE",
                       title=f"{title}: composite axis")
        ax[row, 0].legend()
        ax[row, 1].plot([r["p_test"] for r in a1], [r["test_mse"] for r in a1], "o-", color="C0", label=first)
        ax[row, 1].plot([r["p_test"] for r in [a1[-1]] + a2], [r["test_mse"] for r in [a1[-1]] + a2], "s-",
                        color="C3", label=second)
        ax[row, 1].set_xscale("log")
        ax[row, 1].set(xlabel="effective parameters p̂_test", ylabel="test MSE", title=f"{title}: U-turn")
        ax[row, 1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


REPRODUCTION = reproduce.register(
    reproduce.Reproduction(
        name=NAME,
        title="double descent vs effective parameters: RFF, unfolded RFF, trees, boosting on digits (Curth et al.)",
        paper="Curth, Jeffares, van der Schaar. A U-turn on Double Descent: Rethinking Parameter Counting in "
        "Statistical Learning. NeurIPS 2023",
        claims=CLAIMS,
        config="double_descent",
        run=run,
        notebook="colab/double_descent.ipynb",
    )
)
