"""discs: Goshvadi et al., DISCS: A Benchmark for Discrete Sampling (NeurIPS 2023 D&B).

The samplers of ``nips23jax.discrete`` on DISCS' classical models and a combinatorial problem,
measured by DISCS' metric (per-chain ESS of the Hamming distance to a random reference state,
first half discarded): (1) the Ising inverse-temperature sweep through λ_c with two balancing
functions, (2) ESS vs dimension, (3) Ising / Potts / Bernoulli panels over samplers, (4) max
independent set (and max-cut) on Erdős–Rényi graphs by annealing. Config: ``configs/discs.py``.
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from matplotlib.figure import Figure
from tqdm.auto import tqdm

import nips23jax.discrete as D
from nips23jax.core import reproduce
from nips23jax.core.compile import FAST_COMPILER_OPTIONS
from nips23jax.core.train import MetricsLog

NAME = "discs"
LAMBDA_C = 0.5 * float(np.log1p(np.sqrt(2.0)))

CLAIMS = (
    reproduce.Claim(
        "crossover",
        "On the Ising model, the balancing function sqrt(t) gives higher ESS above the critical temperature "
        "and t/(t+1) below it",
        "crossover at its marked λ = 0.4407 (DISCS' zero-field λ sweep 0.1607..0.7607, 50x50, 400,000 steps; a plot "
        "only). Its Ising counts each edge twice: its λ is half of ours, so its sweep is our 0.32..1.52",
        "mean over {config.sweep.samplers} of log(ESS sqrt / ESS t/(t+1)) more than {config.sweep.significance} "
        "standard errors above 0 at the smallest λ (high temperature) and below 0 at the largest (low temperature) "
        "({config.sweep.side}x{config.sweep.side} zero-field Ising, {config.sweep.chains} chains of "
        "{config.sweep.steps} steps)",
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
    return dict(FAST_COMPILER_OPTIONS) if config.get("fast_compile", False) else None


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


def _measure(jobs: list, config):
    """Iterator of ``(per-chain ESS, acceptance)``, vmapped over ``params``, for each job ``(make_model, sampler,
    kwargs, params, key, chains, steps)``: one compiled program per job, run as the iterator reaches it, or,
    for tiny (``fast_compile``) runs, where compiling is the run's time and XLA's per-program overhead
    (~1.5 s on CPU) much of it, one program for all the jobs."""
    copts, merged = _compiler_options(config), config.get("fast_compile", False)
    runners = [_ess_runner(make, name, kw, chains, steps, None if merged else copts)
               for make, name, kw, _, _, chains, steps in jobs]
    args = [(params, key) for _, _, _, params, key, _, _ in jobs]
    if merged:  # the runners' jits inline into this one program
        return iter(jax.jit(lambda a: [r(*x) for r, x in zip(runners, a)], compiler_options=copts)(args))
    return (r(*x) for r, x in zip(runners, args))


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

    # the three ESS experiments' measurements (one program for all of them in tiny runs)
    # 1. temperature sweep through λ_c, zero field (DISCS' λ sweep: μ = 0, no random field); ESS per step
    sw = config.sweep
    sweep_jobs = [(name, bal) for name in sw.samplers for bal in ("sqrt", "barker")]
    lams = jnp.asarray(sw.inverse_temperatures, jnp.float32)
    jobs = [(lambda lam: D.ising(sw.side, inverse_temperature=lam), name, {"balancing": bal}, lams,
             jax.random.fold_in(key, 2), sw.chains, sw.steps) for name, bal in sweep_jobs]
    # 2. ESS per step vs dimension (DISCS' shape sweep: λ = 0.5, μ = 0.5 with the random field)
    dm = config.dimension
    dim_jobs = [(name, side) for name in dm.samplers for side in dm.sides]
    jobs += [(lambda _, s=side: D.ising(s, inverse_temperature=dm.inverse_temperature, mu=0.5,
                                        key=jax.random.fold_in(key, 3)),
              name, _sampler_kwargs(name, config), jnp.zeros(1), jax.random.fold_in(key, 4), dm.chains, dm.steps)
             for name, side in dim_jobs]
    # 3. Ising / Potts / Bernoulli panels over samplers
    pn = config.panels
    models = {
        "ising": lambda _: D.ising(pn.ising_side, inverse_temperature=0.5, mu=0.5, key=jax.random.fold_in(key, 5)),
        "potts": lambda _: D.potts(pn.potts_side, num_colors=4, inverse_temperature=pn.potts_inverse_temperature,
                                   key=jax.random.fold_in(key, 6)),
        "bernoulli": lambda _: D.bernoulli(jax.random.normal(jax.random.fold_in(key, 7), (pn.bernoulli_sites,))),
    }
    panel_jobs = [(mname, name) for mname in models for name in pn.samplers]
    jobs += [(models[mname], name, _sampler_kwargs(name, config), jnp.zeros(1), jax.random.fold_in(key, 8), pn.chains,
              pn.steps) for mname, name in panel_jobs]
    results = _measure(jobs, config)

    sweep = {name: {} for name in sw.samplers}
    for name, bal in sweep_jobs:
        e, acc = next(results)
        stats = [_ess_per_step(row, sw.steps) for row in np.asarray(e)]
        sweep[name][bal] = [m for m, _ in stats]
        sweep[name][bal + "_se"] = [se for _, se in stats]
        for lam, (v, se), a in zip(sw.inverse_temperatures, stats, np.asarray(acc)):
            log.write(step, "sweep", {"sampler": name, "balancing": bal, "inverse_temperature": lam,
                                      "ess_per_step": v, "se": se, "acceptance": float(a)})
            step += 1
    bar.update()

    dim = {k: [] for name in dm.samplers for k in (name, name + "_se")}
    for name, side in dim_jobs:
        v, se = _ess_per_step(next(results)[0], dm.steps)
        dim[name].append(v)
        dim[name + "_se"].append(se)
        log.write(step, "dimension", {"sampler": name, "num_sites": side * side, "ess_per_step": v, "se": se})
        step += 1
    bar.update()

    panels = {m: {} for m in models}
    for mname, name in panel_jobs:
        e, acc = next(results)
        panels[mname][name] = _ess_per_step(e, pn.steps)[0]
        log.write(step, "panel", {"model": mname, "sampler": name, "ess_per_step": panels[mname][name],
                                  "acceptance": float(acc[0])})
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

    * crossover: at the smallest and the largest swept λ, ``r`` = mean over the sweep's samplers of
      ``log(ESS_sqrt / ESS_t/(t+1))`` with its standard error (delta method from each arm's s.e. over
      chains); each half must be resolved: ``r > z·se`` at the smallest λ (high temperature: sqrt(t)
      better) and ``r < −z·se`` at the largest (low temperature: t/(t+1) better), ``z =
      config.sweep.significance``. A ratio within noise of 1 is not a win for either function;
    * dimension: slope of log(ESS per step) vs log d per sampler; reproduced iff RWM's is the most negative;
    * dlmc_best: DLMC's ESS per step at least ``1 − tolerance`` of the best sampler's on every panel;
    * mis: mean best MIS size of the gradient samplers > that of the others.
    """
    sw, dm, pn, cb = config.sweep, config.dimension, config.panels, config.combinatorial
    sweep, dim, panels, table = metrics["sweep"], metrics["dimension"], metrics["panels"], metrics["combinatorial"]
    lams = list(sw.inverse_temperatures)
    lo, hi = int(np.argmin(lams)), int(np.argmax(lams))
    high_t, low_t = _mean_log_ratio(sweep, sw.samplers, lo), _mean_log_ratio(sweep, sw.samplers, hi)
    high_ok = bool(high_t[0] > sw.significance * high_t[1])
    low_ok = bool(low_t[0] < -sw.significance * low_t[1])
    crossover_ok = high_ok and low_ok
    per_sampler = "; ".join(
        f"{n}: " + ", ".join(f"λ={lam:g} sqrt {sweep[n]['sqrt'][i]:.4f}±{sweep[n]['sqrt_se'][i]:.4f} vs t/(t+1) "
                             f"{sweep[n]['barker'][i]:.4f}±{sweep[n]['barker_se'][i]:.4f}" for i, lam in enumerate(lams))
        for n in sw.samplers)

    slopes = {n: _slope(dm.sides, dim[n]) for n in dm.samplers}
    # a comparison needs something to compare with: RWM and at least one other sampler, RWM's ESS falling
    dim_ok = ("rwm" in slopes and len(slopes) >= 2 and slopes["rwm"] < 0
              and slopes["rwm"] == min(slopes.values()))

    dlmc_gap = {m: panels[m].get("dlmc", 0.0) / max(max(panels[m].values()), 1e-9) for m in panels}
    dlmc_ok = (all(len(panels[m]) >= 2 and "dlmc" in panels[m] for m in panels)
               and all(g >= 1 - pn.tolerance for g in dlmc_gap.values()))

    mis = table.get("mis", {})
    grad = [v for n, v in mis.items() if n in GRADIENT]
    other = [v for n, v in mis.items() if n not in GRADIENT]
    mis_ok = bool(grad and other and np.mean(grad) > np.mean(other))
    fmt = lambda d: ", ".join(f"{k} {v:.3g}" for k, v in d.items())  # noqa: E731
    ratio = metrics.get("approximation_ratio", {})
    return [
        reproduce.Finding(
            "crossover",
            f"ESS sqrt / ESS t/(t+1) (geometric mean over {list(sw.samplers)}): "
            + _half(lams[lo], "high T", high_t, high_ok, "sqrt(t)") + "; " + _half(lams[hi], "low T", low_t, low_ok, "t/(t+1)"),
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


def _mean_log_ratio(sweep: dict, samplers, i: int) -> tuple[float, float]:
    """Mean over samplers of ``log(ESS_sqrt / ESS_t/(t+1))`` at sweep point ``i``, and its standard error
    (independent arms; the s.e. of ``log m`` is ``se / m``)."""
    lr, var = [], []
    for n in samplers:
        s, b = max(sweep[n]["sqrt"][i], 1e-12), max(sweep[n]["barker"][i], 1e-12)
        lr.append(np.log(s) - np.log(b))
        var.append((sweep[n]["sqrt_se"][i] / s) ** 2 + (sweep[n]["barker_se"][i] / b) ** 2)
    return float(np.mean(lr)), float(np.sqrt(np.sum(var)) / len(lr))


def _half(lam: float, label: str, stat: tuple[float, float], ok: bool, winner: str) -> str:
    r, se = stat
    verdict = f"{winner} better" if ok else "not resolved"
    return f"{np.exp(r):.3f} ± {np.exp(r) * se:.3f} at λ={lam:g} ({label}, {r / max(se, 1e-12):+.1f} s.e.: {verdict})"


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
    ax.set(xlabel="inverse temperature λ (coupling per edge; DISCS' λ is half)", ylabel="ESS per step", yscale="log",
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
