"""discs: Goshvadi et al., DISCS: A Benchmark for Discrete Sampling (NeurIPS 2023 D&B).

The samplers of ``nips23jax.discrete`` on DISCS' classical models and a combinatorial problem,
measured by DISCS' metric (per-chain ESS of the Hamming distance to a random reference state,
first half discarded): (1) the Ising inverse-temperature sweep through λ_c with two balancing
functions, (2) ESS vs dimension, (3) Ising / Potts / Bernoulli panels over samplers, (4) max
independent set (and max-cut) on Erdős–Rényi graphs by annealing. Config: ``configs/discs.py``.
"""

from __future__ import annotations

import functools
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from matplotlib.figure import Figure
from tqdm.auto import tqdm

import nips23jax.discrete as D
from nips23jax.core import reproduce
from nips23jax.core.train import MetricsLog

NAME = "discs"
LAMBDA_C = 0.5 * float(np.log1p(np.sqrt(2.0)))

CLAIMS = (
    reproduce.Claim(
        "crossover",
        "On the Ising model, the balancing function sqrt(t) gives higher ESS above the critical temperature "
        "and t/(t+1) below it",
        "crossover near λ_c ≈ 0.44 (DISCS' zero-field λ sweep, 400,000 steps)",
        "mean over {config.sweep.samplers} of log(ESS sqrt / ESS t/(t+1)) > 0 at the smallest λ and < 0 at the "
        "largest ({config.sweep.side}x{config.sweep.side} zero-field Ising, {config.sweep.steps} steps)",
    ),
    reproduce.Claim(
        "dimension",
        "Random-walk Metropolis' ESS decays fastest with the dimension",
        "RWM's ESS ~ 1/d",
        "RWM has the most negative slope of log(ESS per step) vs log d among {config.dimension.samplers} "
        "(Ising λ={config.dimension.inverse_temperature}, μ=0.5, sides {config.dimension.sides})",
    ),
    reproduce.Claim(
        "dlmc_best",
        "DLMC is the best sampler on the classical models (Ising, Potts, Bernoulli)",
        "DLMC best ESS on classical models (DISCS Sec. 5)",
        "DLMC's ESS per step within {config.panels.tolerance} of the best sampler's on every panel",
    ),
    reproduce.Claim(
        "mis",
        "On maximum independent set, gradient-informed samplers (PAS, GWG, DMALA, DLMC) find larger sets than "
        "RWM, Hamming ball and block Gibbs",
        "ER-700-800: PAS 105.06, GWG 104.81, DLMC 104.84, DMALA 104.75 vs block Gibbs 102.47, HB 100.37, RWM 97.19",
        "mean best MIS size of the gradient samplers > that of the others (ER graphs)",
    ),
)

GRADIENT = ("gwg", "pas", "dmala", "dlmc")


def _sampler_kwargs(name: str, config) -> dict:
    if name in ("block_gibbs", "hamming_ball"):
        return dict(config.get(name, {}))
    return {}


def _compiler_options(config) -> dict | None:
    """Tiny (quick) runs are all compilation: XLA's cheapest backend optimization level halves it."""
    return {"xla_backend_optimization_level": 0} if config.get("fast_compile", False) else None


def _ess_runner(make_model, sampler: str, kwargs: dict, chains: int, steps: int, compiler_options=None):
    """jit(vmap over a model parameter) of DISCS' ESS measurement: one compile per (model family, sampler)."""

    @functools.partial(jax.jit, compiler_options=compiler_options)
    def run(params, key):
        def one(p):
            m = make_model(p)
            alg = D.get_sampler(sampler, m, **kwargs)
            k1, k2, k3 = jax.random.split(key, 3)
            x0 = jax.random.randint(k1, (chains, m.num_sites), 0, m.num_categories)
            ref = jax.random.randint(k2, (m.num_sites,), 0, m.num_categories)
            tr, _, acc, _ = D.sample_chains(alg, x0, ref, jax.random.split(k3, chains), steps)
            return D.ess(tr, burn_in=0.5), acc[steps // 2:].mean()

        return jax.vmap(one)(params)

    return run


def _ess_per_step(e, steps: int) -> tuple[float, float]:
    """Mean over chains of ESS per kept step (after the burn-in half), and its standard error."""
    e = np.asarray(e, float).ravel()
    e = np.where(np.isfinite(e), e, 0.0) / (steps - steps // 2)  # a chain that never moved has no effective draws
    return float(e.mean()), float(e.std() / np.sqrt(e.size))


def _slope(sides, values) -> float:
    """Least-squares slope of log(value) vs log(d), d = side²."""
    d = np.square(np.asarray(sides, float))
    return float(np.polyfit(np.log(d), np.log(np.maximum(values, 1e-12)), 1)[0])


def run(config: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True) -> reproduce.Result:
    """Measures the four experiments, plots them and judges the claims."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(workdir / "metrics.jsonl")
    key = jax.random.key(config.seed)
    bar = tqdm(total=4, desc="discs", disable=not progress)
    step = 0
    copts = _compiler_options(config)

    # 1. temperature sweep through λ_c, zero field (DISCS' λ sweep: μ = 0, no random field); ESS per step
    sw = config.sweep
    lams = jnp.asarray(sw.inverse_temperatures, jnp.float32)
    sweep = {}
    for name in sw.samplers:
        sweep[name] = {}
        for bal in ("sqrt", "barker"):
            runner = _ess_runner(lambda lam: D.ising(sw.side, inverse_temperature=lam), name, {"balancing": bal},
                                 sw.chains, sw.steps, copts)
            e, acc = runner(lams, jax.random.fold_in(key, 2))
            stats = [_ess_per_step(row, sw.steps) for row in np.asarray(e)]
            sweep[name][bal] = [m for m, _ in stats]
            sweep[name][bal + "_se"] = [se for _, se in stats]
            for lam, (v, se), a in zip(sw.inverse_temperatures, stats, np.asarray(acc)):
                log.write(step, "sweep", {"sampler": name, "balancing": bal, "inverse_temperature": lam,
                                          "ess_per_step": v, "se": se, "acceptance": float(a)})
                step += 1
    bar.update()

    # 2. ESS per step vs dimension (DISCS' shape sweep: λ = 0.5, μ = 0.5 with the random field)
    dm = config.dimension
    dim = {}
    for name in dm.samplers:
        dim[name], dim[name + "_se"] = [], []
        for side in dm.sides:
            runner = _ess_runner(lambda _, s=side: D.ising(s, inverse_temperature=dm.inverse_temperature, mu=0.5,
                                                           key=jax.random.fold_in(key, 3)),
                                 name, _sampler_kwargs(name, config), dm.chains, dm.steps, copts)
            e, _ = runner(jnp.zeros(1), jax.random.fold_in(key, 4))
            v, se = _ess_per_step(e, dm.steps)
            dim[name].append(v)
            dim[name + "_se"].append(se)
            log.write(step, "dimension", {"sampler": name, "num_sites": side * side, "ess_per_step": v, "se": se})
            step += 1
    bar.update()

    # 3. panels
    pn = config.panels
    models = {
        "ising": lambda _: D.ising(pn.ising_side, inverse_temperature=0.5, mu=0.5, key=jax.random.fold_in(key, 5)),
        "potts": lambda _: D.potts(pn.potts_side, num_colors=4, inverse_temperature=pn.potts_inverse_temperature,
                                   key=jax.random.fold_in(key, 6)),
        "bernoulli": lambda _: D.bernoulli(jax.random.normal(jax.random.fold_in(key, 7), (pn.bernoulli_sites,))),
    }
    panels = {m: {} for m in models}
    for mname, make in models.items():
        for name in pn.samplers:
            t0 = time.perf_counter()
            e, acc = _ess_runner(make, name, _sampler_kwargs(name, config), pn.chains, pn.steps, copts)(
                jnp.zeros(1), jax.random.fold_in(key, 8))
            e = jax.block_until_ready(e)
            panels[mname][name] = _ess_per_step(e, pn.steps)[0]
            log.write(step, "panel", {"model": mname, "sampler": name, "ess_per_step": panels[mname][name],
                                      "acceptance": float(acc[0]), "seconds_incl_compile": time.perf_counter() - t0})
            step += 1
    bar.update()

    # 4. MIS / max-cut by annealing on ER graphs; on a small graph, the ratio to the brute-force optimum
    cb = config.combinatorial
    graph = D.erdos_renyi(jax.random.fold_in(key, 9), cb.num_nodes, cb.edge_prob)
    same = (cb.ratio_nodes, cb.ratio_edge_prob) == (cb.num_nodes, cb.edge_prob)  # the table's graph is brute-forceable
    small = graph if same else D.erdos_renyi(jax.random.fold_in(key, 11), cb.ratio_nodes, cb.ratio_edge_prob)
    table, ratio, optimum = {}, {}, {}
    for pname, make in (("mis", D.mis), ("maxcut", D.maxcut)):
        if pname not in cb.problems:
            continue
        table[pname], ratio[pname] = {}, {}
        optimum[pname] = D.brute_force_optimum(make(small))[0]
        for name in cb.samplers:
            kw = dict(num_chains=cb.chains, num_steps=cb.steps, t_start=cb.t_start, t_end=cb.t_end, num_stages=cb.stages,
                      compiler_options=copts, **_sampler_kwargs(name, config))
            best, _ = D.anneal(jax.random.fold_in(key, 10), make(graph), name, **kw)
            table[pname][name] = float(np.mean(np.asarray(best)))
            best_small = best if same else D.anneal(jax.random.fold_in(key, 12), make(small), name, **kw)[0]
            ratio[pname][name] = float(np.mean(np.asarray(best_small))) / optimum[pname]
            log.write(step, "combinatorial", {"problem": pname, "sampler": name, "best_mean": table[pname][name],
                                              "ratio_to_optimum_small": ratio[pname][name]})
            step += 1
    bar.update()
    bar.close()

    metrics = {"sweep": sweep, "dimension": dim, "panels": panels, "combinatorial": table,
               "approximation_ratio": ratio, "brute_force_optimum": optimum}
    findings = judge(config, metrics)
    figures = [_plot_sweep(sw, sweep, workdir / "discs_sweep.png"), _plot_dimension(dm, dim, workdir / "discs_dimension.png"),
               _plot_panels(panels, table, workdir / "discs_panels.png")]
    notes = _combinatorial_table(cb, table, ratio, optimum)
    return reproduce.Result(
        findings=findings,
        metrics=metrics,
        figures=[f.name for f in figures],
        notes=notes,
    )


def judge(config: ml_collections.ConfigDict, metrics: dict) -> list[reproduce.Finding]:
    """The four verdicts from the measured numbers (a pure function of ``run``'s ``metrics``).

    * crossover: per swept λ, ``r(λ)`` = mean over the sweep's samplers of ``log(ESS_sqrt / ESS_t/(t+1))``;
      reproduced iff ``r > 0`` at the smallest λ and ``r < 0`` at the largest;
    * dimension: slope of log(ESS per step) vs log d per sampler; reproduced iff RWM's is the most negative;
    * dlmc_best: DLMC's ESS per step at least ``1 − tolerance`` of the best sampler's on every panel;
    * mis: mean best MIS size of the gradient samplers > that of the others.
    """
    sw, dm, pn, cb = config.sweep, config.dimension, config.panels, config.combinatorial
    sweep, dim, panels, table = metrics["sweep"], metrics["dimension"], metrics["panels"], metrics["combinatorial"]
    lams = list(sw.inverse_temperatures)
    lo, hi = int(np.argmin(lams)), int(np.argmax(lams))
    log_ratio = {n: np.log(np.maximum(sweep[n]["sqrt"], 1e-12)) - np.log(np.maximum(sweep[n]["barker"], 1e-12))
                 for n in sw.samplers}
    mean_log_ratio = np.mean([log_ratio[n] for n in sw.samplers], axis=0)
    crossover_ok = bool(mean_log_ratio[lo] > 0 and mean_log_ratio[hi] < 0)
    per_sampler = "; ".join(
        f"{n}: " + ", ".join(f"λ={lam:g} sqrt {sweep[n]['sqrt'][i]:.4f}±{sweep[n]['sqrt_se'][i]:.4f} vs t/(t+1) "
                             f"{sweep[n]['barker'][i]:.4f}±{sweep[n]['barker_se'][i]:.4f}" for i, lam in enumerate(lams))
        for n in sw.samplers)

    slopes = {n: _slope(dm.sides, dim[n]) for n in dm.samplers}
    dim_ok = "rwm" in slopes and slopes["rwm"] == min(slopes.values())

    dlmc_gap = {m: panels[m].get("dlmc", 0.0) / max(max(panels[m].values()), 1e-9) for m in panels}
    dlmc_ok = all(g >= 1 - pn.tolerance for g in dlmc_gap.values())

    mis = table.get("mis", {})
    grad = [v for n, v in mis.items() if n in GRADIENT]
    other = [v for n, v in mis.items() if n not in GRADIENT]
    mis_ok = bool(grad and other and np.mean(grad) > np.mean(other))
    fmt = lambda d: ", ".join(f"{k} {v:.3g}" for k, v in d.items())  # noqa: E731
    ratio = metrics.get("approximation_ratio", {})
    return [
        reproduce.Finding(
            "crossover",
            f"ESS sqrt / ESS t/(t+1) (geometric mean over {list(sw.samplers)}): {np.exp(mean_log_ratio[lo]):.3f} at "
            f"λ={lams[lo]:g}, {np.exp(mean_log_ratio[hi]):.3f} at λ={lams[hi]:g}",
            crossover_ok,
            "ESS per step, mean ± s.e. over chains: " + per_sampler,
        ),
        reproduce.Finding(
            "dimension", "slope of log ESS/step vs log d: " + ", ".join(f"{k} {v:.2f}" for k, v in slopes.items()), dim_ok,
            f"ESS per step by d = {[s * s for s in dm.sides]}: "
            + "; ".join(f"{n} {[round(v, 5) for v in dim[n]]}" for n in dm.samplers),
        ),
        reproduce.Finding(
            "dlmc_best", "DLMC / best: " + ", ".join(f"{m} {g:.2f}" for m, g in dlmc_gap.items()), dlmc_ok,
            "ESS per step: " + "; ".join(f"{m}: {fmt(v)}" for m, v in panels.items()),
        ),
        reproduce.Finding(
            "mis", f"gradient samplers {np.mean(grad) if grad else float('nan'):.2f} vs others "
            f"{np.mean(other) if other else float('nan'):.2f}", mis_ok,
            "; ".join(f"{p}: {fmt(v)}" for p, v in table.items()) + f" (ER n={cb.num_nodes}, p={cb.edge_prob}); "
            + "; ".join(f"{p} best/optimum on ER n={cb.ratio_nodes}: {fmt(v)}" for p, v in ratio.items()),
        ),
    ]


def _combinatorial_table(cb, table, ratio, optimum) -> str:
    """Markdown: per problem, the mean best objective on the ER graph and, on the small graph, its ratio
    to the brute-force optimum (mean over chains of best found / optimum)."""
    rows = ["| problem | " + " | ".join(cb.samplers) + " |", "|---|" + "---|" * len(cb.samplers)]
    for p, row in table.items():
        rows.append(f"| {p}: best (ER n={cb.num_nodes}, p={cb.edge_prob}) | " + " | ".join(f"{row[n]:.2f}" for n in cb.samplers)
                    + " |")
        rows.append(f"| {p}: best / optimum (ER n={cb.ratio_nodes}, p={cb.ratio_edge_prob}, optimum {optimum[p]:g} by brute force) | "
                    + " | ".join(f"{ratio[p][n]:.3f}" for n in cb.samplers) + " |")
    return "\n".join(rows) + "\n"


def _plot_sweep(sw, sweep, path):
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for i, name in enumerate(sw.samplers):
        for bal, label, ls in (("sqrt", "√t", "-"), ("barker", "t/(t+1)", "--")):
            ax.errorbar(sw.inverse_temperatures, sweep[name][bal], yerr=sweep[name][bal + "_se"], fmt="o" + ls,
                        color=f"C{i}", label=f"{name} {label}")
    ax.axvline(LAMBDA_C, color="gray", ls=":", label="λ_c")
    ax.set(xlabel="inverse temperature λ", ylabel="ESS per step", yscale="log",
           title=f"{sw.side}×{sw.side} zero-field Ising, {sw.steps} steps")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _plot_dimension(dm, dim, path):
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    d = [s * s for s in dm.sides]
    for name in dm.samplers:
        ax.errorbar(d, np.maximum(dim[name], 1e-6), yerr=dim[name + "_se"], fmt="o-",
                    label=f"{name} (slope {_slope(dm.sides, dim[name]):.2f})")
    ax.set(xlabel="dimension d", ylabel="ESS per step", xscale="log", yscale="log",
           title=f"Ising λ={dm.inverse_temperature}, μ=0.5, {dm.steps} steps")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _plot_panels(panels, table, path):
    fig = Figure(figsize=(4 * (len(panels) + len(table)), 3.8))
    axes = fig.subplots(1, len(panels) + len(table))
    for ax, (m, v) in zip(axes, list(panels.items()) + list(table.items())):
        ax.bar(list(v), list(v.values()), color="C0")
        ax.set_title(m)
        ax.tick_params(axis="x", rotation=60)
    axes[0].set_ylabel("ESS per step (panels) / best objective")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


REPRODUCTION = reproduce.register(
    reproduce.Reproduction(
        name=NAME,
        title="DISCS: discrete samplers on Ising/Potts/Bernoulli and MIS/max-cut (Goshvadi et al.)",
        paper="Goshvadi, Sun, Liu, Nova, Zhang, Dai, Schuurmans. DISCS: A Benchmark for Discrete Sampling. "
        "NeurIPS 2023 Datasets and Benchmarks",
        claims=CLAIMS,
        config="discs",
        run=run,
        notebook="colab/discs.ipynb",
    )
)
