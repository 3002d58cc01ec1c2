"""How efficient is each DISCS sampler on DISCS' Ising model, per step and per second of wall time?

DISCS' protocol on its Ising benchmark (λ = 0.5, field U(−1.5, 1.5) ± μ with μ = 0.5, open
boundaries): ``--chains`` chains from uniform random states, ``--steps`` steps, the first half
discarded; per chain, TensorFlow Probability's ESS (``nips23jax.discrete.ess``) of the Hamming
distance to one random reference state; ESS per step = the mean over chains (a chain that never
moves counts as ESS 1) / the kept steps, DISCS' ``ESS_M-H`` (``ess_per_step``).

``--model discs`` (default) is DISCS' Ising exactly as its code defines it
(``discs/models/ising.py``): each lattice edge enters its log-likelihood twice, so the coupling per
edge is 2λ, and its "inside" field region is the central disc of area one half,
``(i/h − ½)² + (j/w − ½)² < 1/(2π)``. ``--model nips23jax`` is ``nips23jax.discrete.ising`` with
the same λ and μ (coupling λ per edge, a disc of radius min(h, w)/4): a warmer, easier target.

Reported per sampler variant (``name[:balancing][:solver]``, e.g. ``gwg:barker``, ``dlmc:euler``):
ESS per step (mean ± s.e. over chains), ESS per model evaluation, milliseconds per step for all
chains (``time_fn``: ``--warmup`` untimed runs, then ``--repeats`` runs of ``--time-steps`` steps,
each waited for with ``jax.block_until_ready``; DISCS' own timing does not wait), ESS per second
and its ratio to random-walk Metropolis. On DISCS' 50x50 model with λ = μ = 0.5 it adds DISCS'
own recorded ESS per step (``tests/discrete/fixtures/discs_ising_50x50_results.json``, from its
repository's results.csv files: 100 chains, 100,000 steps) and our/DISCS ratio.

    python benchmarks/discs.py                                   # 20x20, 100 chains, 1,000 steps
    python benchmarks/discs.py --sides 50 --steps 100000         # DISCS' chain length
    python benchmarks/discs.py --sides 50 --samplers gwg gwg:barker dlmc --jsonl out.jsonl
"""

from __future__ import annotations

import json
import pathlib
import sys

import jax
import numpy as np

import nips23jax.discrete as D
from nips23jax.core.benchmark import benchmark_parser, time_fn
from nips23jax.discrete.ess import ess_per_step
from nips23jax.discrete.samplers import BALANCING_FUNCTIONS, SAMPLERS

DISCS_RESULTS = pathlib.Path(__file__).resolve().parents[1] / "tests" / "discrete" / "fixtures" / "discs_ising_50x50_results.json"

# DISCS' results.csv sampler labels (``a_`` = adaptive, ``dlmcf`` = DLMC with the Euler solver,
# ``(ratio)`` = t/(t+1)) -> our variant of the same sampler and balancing function.
DISCS_TO_OURS = {
    "a_randomwalk": "rwm",
    "blockgibbs": "block_gibbs",
    "a_gwg(sqrt)": "gwg",
    "a_gwg(ratio)": "gwg:barker",
    "a_path_auxiliary(sqrt)": "pas",
    "a_path_auxiliary(ratio)": "pas:barker",
    "a_dmala(sqrt)": "dmala",
    "a_dmala(ratio)": "dmala:barker",
    "a_dlmc(sqrt)": "dlmc",
    "a_dlmc(ratio)": "dlmc:barker",
    "a_dlmcf(sqrt)": "dlmc:euler",
    "a_dlmcf(ratio)": "dlmc:barker:euler",
}
SOLVERS = ("interpolate", "euler")
BALANCED = ("gwg", "pas", "dmala", "dlmc")  # the samplers that take a balancing function


def parse_variant(spec: str) -> tuple[str, dict]:
    """``"name[:balancing][:solver]"`` -> ``(sampler name, keyword arguments)``.

    Raises:
      ValueError: unknown sampler, balancing function or solver, or an option the sampler lacks.
    """
    name, *opts = spec.split(":")
    if name not in SAMPLERS:
        raise ValueError(f"--samplers: unknown sampler {name!r} in {spec!r}; expected one of {sorted(SAMPLERS)}")
    kw: dict = {}
    for opt in opts:
        if opt in BALANCING_FUNCTIONS and name in BALANCED:
            kw["balancing"] = opt
        elif opt in SOLVERS and name == "dlmc":
            kw["solver"] = opt
        else:
            raise ValueError(f"--samplers: {spec!r}: {opt!r} is not a balancing function "
                             f"{sorted(BALANCING_FUNCTIONS)} of {BALANCED} or a dlmc solver {SOLVERS}")
    return name, kw


def discs_ising(side: int, lam: float, mu: float, key: jax.Array, sigma: float = 1.5) -> D.DiscreteModel:
    """DISCS' Ising (``discs/models/ising.py``) as a ``nips23jax.discrete.ising``.

    DISCS: ``log π(x) = Σ_i Σ_{j ∈ N(i)} λ s_i s_j − Σ_i b_i s_i`` (every edge twice: coupling 2λ per
    edge), ``b_i = u_i + μ (+1 inside, −1 outside)``, ``u_i ~ U(−σ, σ)``, inside:
    ``(i/h − ½)² + (j/w − ½)² < 1/(2π)``.
    """
    i, j = np.indices((side, side))
    inside = (i / side - 0.5) ** 2 + (j / side - 0.5) ** 2 < 0.5 / np.pi
    u = jax.random.uniform(key, (side, side), minval=-sigma, maxval=sigma)
    field = (u + mu * np.where(inside, 1.0, -1.0)).reshape(-1)
    return D.ising(side, inverse_temperature=2.0 * lam, field=field)


def load_discs_results(path: pathlib.Path = DISCS_RESULTS) -> dict:
    """DISCS' recorded 50x50 Ising results: ``{our variant: row}`` plus the config they ran with."""
    data = json.loads(path.read_text())
    rows = {}
    for row in data["rows"]:
        if row["sampler"] not in DISCS_TO_OURS:
            raise ValueError(f"{path.name}: DISCS sampler {row['sampler']!r} has no entry in DISCS_TO_OURS")
        rows[DISCS_TO_OURS[row["sampler"]]] = row
    return {"config": data["config"], "rows": rows}


def discs_reference(args, side: int) -> dict:
    """DISCS' rows when this run is the model they were recorded on, else ``{}``."""
    ref = load_discs_results()
    m = ref["config"]["model"]
    same = (args.model == "discs" and [side, side] == m["shape"] and args.inverse_temperature == m["lambdaa"]
            and args.mu == m["mu"] and args.field_scale == m["init_sigma"])
    return ref["rows"] if same else {}


def parse_args(argv=None):
    p = benchmark_parser(__doc__, warmup=1, repeats=3)
    p.add_argument("--sides", type=int, nargs="+", default=[20], help="lattice side lengths (DISCS: 50)")
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--steps", type=int, default=1000, help="chain length (DISCS: 100,000); half is burn-in")
    p.add_argument("--time-steps", type=int, default=100, help="steps per timed run")
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS),
                   help="variants name[:balancing][:solver], e.g. gwg gwg:barker dlmc:euler; 'discs' = every "
                        "variant DISCS recorded")
    p.add_argument("--model", choices=("discs", "nips23jax"), default="discs",
                   help="DISCS' Ising as its code defines it, or nips23jax.discrete.ising")
    p.add_argument("--inverse-temperature", type=float, default=0.5, help="DISCS' lambdaa")
    p.add_argument("--mu", type=float, default=0.5)
    p.add_argument("--field-scale", type=float, default=1.5, help="DISCS' init_sigma (discs model only)")
    p.add_argument("--block-size", type=int, default=2, help="block Gibbs block size (DISCS: 2)")
    p.add_argument("--hb-block-size", type=int, default=10, help="Hamming-ball block size (radius 1)")
    p.add_argument("--jsonl", type=pathlib.Path, help="append one JSON line per finished sampler")
    args = p.parse_args(argv)
    if args.samplers == ["discs"]:
        args.samplers = list(DISCS_TO_OURS.values())
    for spec in args.samplers:
        parse_variant(spec)
    return args


def measure(model, sampler, args) -> dict:
    key = jax.random.key(args.seed)
    trace, info = D.run_chains(key, model, sampler, args.chains, args.steps)
    ess = np.asarray(D.ess(trace, burn_in=0.5), float)
    kept = args.steps - int(0.5 * args.steps)
    per_step = np.where(np.isfinite(ess), ess, 1.0) / kept  # DISCS: a constant chain counts as ESS 1
    timing = time_fn(lambda: D.run_chains(key, model, sampler, args.chains, args.time_steps)[0],
                     warmup=args.warmup, repeats=args.repeats)
    sec_step = timing.median / args.time_steps
    return {
        "ess_step": float(ess_per_step(trace, burn_in=0.5)),
        "ess_step_se": float(per_step.std(ddof=1) / np.sqrt(len(per_step))) if len(per_step) > 1 else float("nan"),
        "ess_eval": float(per_step.mean() / sampler.evals_per_step),
        "sec_step": sec_step,
        "ess_sec": float(per_step.mean() * args.chains / sec_step),
        "acc": float(np.asarray(info.acceptance_rate)[args.steps // 2:].mean()),
    }


def main(argv=None):
    args = parse_args(argv)
    print(f"JAX {jax.__version__}, {jax.default_backend()}, {jax.device_count()} device(s); {args.model} Ising, "
          f"{args.chains} chains x {args.steps} steps, burn-in half; timing {args.repeats} x {args.time_steps} steps")
    for side in args.sides:
        key = jax.random.key(args.seed)
        if args.model == "discs":
            model = discs_ising(side, args.inverse_temperature, args.mu, key, args.field_scale)
        else:
            model = D.ising(side, inverse_temperature=args.inverse_temperature, mu=args.mu, key=key)
        ref = discs_reference(args, side)
        rows = {}
        for spec in args.samplers:
            name, kw = parse_variant(spec)
            kw.update({"block_gibbs": {"block_size": args.block_size},
                       "hamming_ball": {"block_size": min(args.hb_block_size, side * side)}}.get(name, {}))
            rows[spec] = r = measure(model, D.get_sampler(name, model, **kw), args)
            print(f"  {side}x{side} {spec}: ESS/step {r['ess_step']:.5f} ± {r['ess_step_se']:.5f}, "
                  f"{1e3 * r['sec_step']:.2f} ms/step", file=sys.stderr, flush=True)
            if args.jsonl:
                with open(args.jsonl, "a") as f:
                    f.write(json.dumps({"side": side, "sampler": spec, "model": args.model, "chains": args.chains,
                                        "steps": args.steps, "lambda": args.inverse_temperature, "mu": args.mu,
                                        **r}) + "\n")
        base_name = "rwm" if "rwm" in rows else next(iter(rows))
        base = rows[base_name]["ess_sec"]
        print(f"\n**Ising {side}x{side} (d={side * side}), {args.model} model, λ={args.inverse_temperature}, "
              f"μ={args.mu}**\n")
        extra = " DISCS ESS/step | ours/DISCS |" if ref else ""
        print(f"| sampler | ESS/step (± s.e.) |{extra} ESS/eval | ms/step ({args.chains} chains) | "
              f"ESS/s (all chains) | ESS/s vs {base_name} | acceptance |")
        print("|---|---|" + ("---|---|" if ref else "") + "---|---|---|---|---|")
        for spec, r in rows.items():
            label = f"{spec} (baseline)" if spec == base_name else spec
            cols = ""
            if ref:
                d = ref.get(spec)
                cols = (f" {d['ESS_M-H']:.5f} | {r['ess_step'] / d['ESS_M-H']:.2f}x |" if d else " – | – |")
            print(f"| {label} | {r['ess_step']:.5f} ± {r['ess_step_se']:.5f} |{cols} {r['ess_eval']:.5f} | "
                  f"{1e3 * r['sec_step']:.3f} | {r['ess_sec']:.1f} | {r['ess_sec'] / base:.2f}x | {r['acc']:.2f} |")


if __name__ == "__main__":
    main()
