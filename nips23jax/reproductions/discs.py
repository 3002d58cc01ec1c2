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
        "crossover near λ_c ≈ 0.44 (DISCS Fig. 3)",
        "ESS(sqrt) >= ESS(t/(t+1)) at the smallest λ and ESS(t/(t+1)) > ESS(sqrt) at the largest λ "
        "({config.sweep.sampler}, {config.sweep.side}x{config.sweep.side} Ising)",
    ),
    reproduce.Claim(
        "dimension",
        "Random-walk Metropolis' ESS decays fastest with the dimension",
        "RWM's ESS ~ 1/d",
        "RWM has the smallest ratio ESS(largest d)/ESS(smallest d) among {config.dimension.samplers}",
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


def _mean_ess(e) -> float:
    e = np.asarray(e, float)
    return float(np.nanmean(e)) if np.isfinite(e).any() else 0.0


def run(config: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True) -> reproduce.Result:
    """Measures the four experiments, plots them and judges the claims."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(workdir / "metrics.jsonl")
    key = jax.random.key(config.seed)
    bar = tqdm(total=4, desc="discs", disable=not progress)
    step = 0
    copts = _compiler_options(config)

    # 1. temperature sweep
    sw = config.sweep
    lams = jnp.asarray(sw.inverse_temperatures, jnp.float32)
    field_key = jax.random.fold_in(key, 1)
    sweep = {}
    for bal in ("sqrt", "barker"):
        runner = _ess_runner(lambda lam: D.ising(sw.side, inverse_temperature=lam, mu=sw.mu, key=field_key),
                             sw.sampler, {"balancing": bal}, sw.chains, sw.steps, copts)
        e, acc = runner(lams, jax.random.fold_in(key, 2))
        sweep[bal] = [_mean_ess(row) for row in np.asarray(e)]
        for lam, v, a in zip(sw.inverse_temperatures, sweep[bal], np.asarray(acc)):
            log.write(step, "sweep", {"balancing": bal, "inverse_temperature": lam, "ess": v, "acceptance": float(a)})
            step += 1
    bar.update()

    # 2. ESS vs dimension
    dm = config.dimension
    dim = {}
    for name in dm.samplers:
        dim[name] = []
        for side in dm.sides:
            runner = _ess_runner(lambda _, s=side: D.ising(s, inverse_temperature=dm.inverse_temperature, mu=0.5,
                                                           key=jax.random.fold_in(key, 3)),
                                 name, _sampler_kwargs(name, config), dm.chains, dm.steps, copts)
            e, _ = runner(jnp.zeros(1), jax.random.fold_in(key, 4))
            dim[name].append(_mean_ess(e))
            log.write(step, "dimension", {"sampler": name, "num_sites": side * side, "ess": dim[name][-1]})
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
            panels[mname][name] = _mean_ess(e)
            log.write(step, "panel", {"model": mname, "sampler": name, "ess": panels[mname][name],
                                      "acceptance": float(acc[0]), "seconds_incl_compile": time.perf_counter() - t0})
            step += 1
    bar.update()

    # 4. MIS / max-cut by annealing on ER graphs
    cb = config.combinatorial
    graph = D.erdos_renyi(jax.random.fold_in(key, 9), cb.num_nodes, cb.edge_prob)
    table = {}
    for pname, problem in (("mis", D.mis(graph)), ("maxcut", D.maxcut(graph))):
        if pname not in cb.problems:
            continue
        table[pname] = {}
        for name in cb.samplers:
            best, _ = D.anneal(jax.random.fold_in(key, 10), problem, name, num_chains=cb.chains, num_steps=cb.steps,
                               t_start=cb.t_start, t_end=cb.t_end, num_stages=cb.stages, compiler_options=copts,
                               **_sampler_kwargs(name, config))
            table[pname][name] = float(np.mean(np.asarray(best)))
            log.write(step, "combinatorial", {"problem": pname, "sampler": name, "best_mean": table[pname][name]})
            step += 1
    bar.update()
    bar.close()

    # verdicts
    lo, hi = int(np.argmin(sw.inverse_temperatures)), int(np.argmax(sw.inverse_temperatures))
    crossover_ok = sweep["sqrt"][lo] >= sweep["barker"][lo] and sweep["barker"][hi] > sweep["sqrt"][hi]
    ratios = {n: dim[n][-1] / max(dim[n][0], 1e-9) for n in dim}
    dim_ok = "rwm" in ratios and ratios["rwm"] == min(ratios.values())
    dlmc_gap = {m: panels[m].get("dlmc", 0.0) / max(max(panels[m].values()), 1e-9) for m in panels}
    dlmc_ok = all(g >= 1 - pn.tolerance for g in dlmc_gap.values())
    mis = table.get("mis", {})
    grad = [v for n, v in mis.items() if n in GRADIENT]
    other = [v for n, v in mis.items() if n not in GRADIENT]
    mis_ok = bool(grad and other and np.mean(grad) > np.mean(other))
    fmt = lambda d: ", ".join(f"{k} {v:.1f}" for k, v in d.items())  # noqa: E731
    findings = [
        reproduce.Finding(
            "crossover",
            f"λ={sw.inverse_temperatures[lo]}: sqrt {sweep['sqrt'][lo]:.1f} vs t/(t+1) {sweep['barker'][lo]:.1f}; "
            f"λ={sw.inverse_temperatures[hi]}: sqrt {sweep['sqrt'][hi]:.1f} vs t/(t+1) {sweep['barker'][hi]:.1f}",
            crossover_ok,
            "ESS per chain (mean over chains) along λ = " + str(list(sw.inverse_temperatures)) + ": sqrt "
            + str([round(v, 1) for v in sweep["sqrt"]]) + ", t/(t+1) " + str([round(v, 1) for v in sweep["barker"]]),
        ),
        reproduce.Finding(
            "dimension", "ESS(d_max)/ESS(d_min): " + ", ".join(f"{k} {v:.2f}" for k, v in ratios.items()), dim_ok,
            "ESS by side " + str(list(dm.sides)) + ": " + "; ".join(f"{k} {[round(v, 1) for v in vs]}" for k, vs in dim.items()),
        ),
        reproduce.Finding(
            "dlmc_best", "DLMC / best: " + ", ".join(f"{m} {g:.2f}" for m, g in dlmc_gap.items()), dlmc_ok,
            "; ".join(f"{m}: {fmt(v)}" for m, v in panels.items()),
        ),
        reproduce.Finding(
            "mis", f"gradient samplers {np.mean(grad) if grad else float('nan'):.2f} vs others "
            f"{np.mean(other) if other else float('nan'):.2f}", mis_ok,
            "; ".join(f"{p}: {fmt(v)}" for p, v in table.items()) + f" (ER n={cb.num_nodes}, p={cb.edge_prob})",
        ),
    ]
    figures = [_plot_sweep(sw, sweep, workdir / "discs_sweep.png"), _plot_dimension(dm, dim, workdir / "discs_dimension.png"),
               _plot_panels(panels, table, workdir / "discs_panels.png")]
    notes = "| problem | " + " | ".join(cb.samplers) + " |\n|---|" + "---|" * len(cb.samplers) + "\n"
    for p, row in table.items():
        notes += f"| {p} | " + " | ".join(f"{row[n]:.2f}" for n in cb.samplers) + " |\n"
    return reproduce.Result(
        findings=findings,
        metrics={"sweep": sweep, "dimension": dim, "panels": panels, "combinatorial": table},
        figures=[f.name for f in figures],
        notes=notes,
    )


def _plot_sweep(sw, sweep, path):
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    for bal, label in (("sqrt", "√t"), ("barker", "t/(t+1)")):
        ax.plot(sw.inverse_temperatures, sweep[bal], "o-", label=label)
    ax.axvline(LAMBDA_C, color="gray", ls="--", label="λ_c")
    ax.set(xlabel="inverse temperature λ", ylabel="ESS per chain", title=f"{sw.sampler} on {sw.side}×{sw.side} Ising")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _plot_dimension(dm, dim, path):
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    d = [s * s for s in dm.sides]
    for name, v in dim.items():
        ax.loglog(d, np.maximum(v, 1e-2), "o-", label=name)
    ax.set(xlabel="dimension d", ylabel="ESS per chain", title=f"Ising λ={dm.inverse_temperature}")
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
    axes[0].set_ylabel("ESS per chain (panels) / best objective")
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
