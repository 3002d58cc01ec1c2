"""How efficient is each DISCS sampler on the Ising model, per step and per second of wall time?

DISCS' protocol on its Ising model (λ = 0.5, field U(−1.5, 1.5) ± μ with μ = 0.5, open
boundaries): ``--chains`` chains from uniform random states, ``--steps`` steps, the first half
discarded; per chain, the ESS of the Hamming distance to one random reference state
(``nips23jax.discrete.ess``, TensorFlow Probability's estimator). Reported per sampler:

* ESS per step (mean ± std over chains), ESS per model evaluation;
* seconds per step for all chains together, timed on a second run after compilation, waiting for
  the result with ``jax.block_until_ready`` (DISCS' own timing does not);
* ESS per second, and its ratio to random-walk Metropolis (the baseline).

    python benchmarks/discs.py                                   # 20x20 and 50x50, 100 chains, 2,000 steps
    python benchmarks/discs.py --steps 10000                     # DISCS' chain length
    python benchmarks/discs.py --sides 20 --samplers rwm gwg dlmc
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

import nips23jax.discrete as D
from nips23jax.discrete.samplers import SAMPLERS


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sides", type=int, nargs="+", default=[20, 50], help="lattice side lengths")
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--steps", type=int, default=2000, help="chain length (DISCS: 100,000); half is burn-in")
    p.add_argument("--samplers", nargs="+", default=list(SAMPLERS), choices=list(SAMPLERS))
    p.add_argument("--inverse-temperature", type=float, default=0.5)
    p.add_argument("--mu", type=float, default=0.5)
    p.add_argument("--block-size", type=int, default=3, help="block Gibbs block size (K^b evaluations per step)")
    p.add_argument("--hb-block-size", type=int, default=10, help="Hamming-ball block size (radius 1)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def measure(model, sampler, args):
    key = jax.random.key(args.seed)
    trace, info = D.run_chains(key, model, sampler, args.chains, args.steps)  # compiles, and the result
    jax.block_until_ready(trace)
    t0 = time.perf_counter()
    trace2, _ = D.run_chains(key, model, sampler, args.chains, args.steps)
    jax.block_until_ready(trace2)
    seconds = time.perf_counter() - t0
    ess = np.asarray(D.ess(trace, burn_in=0.5), float)
    ess = np.where(np.isfinite(ess), ess, 0.0)  # a chain that never moved after burn-in has no effective draws
    kept = args.steps - args.steps // 2
    return {
        "ess_step": ess.mean() / kept, "ess_step_std": ess.std() / kept,
        "ess_eval": ess.mean() / kept / sampler.evals_per_step,
        "sec_step": seconds / args.steps,
        "ess_sec": ess.mean() * args.chains / (seconds * kept / args.steps),
        "acc": float(np.asarray(info.acceptance_rate)[args.steps // 2:].mean()),
    }


def main(argv=None):
    args = parse_args(argv)
    print(f"JAX {jax.__version__}, {jax.default_backend()}, {jax.device_count()} device(s); "
          f"{args.chains} chains x {args.steps} steps, burn-in half")
    for side in args.sides:
        model = D.ising(side, inverse_temperature=args.inverse_temperature, mu=args.mu, key=jax.random.key(args.seed))
        rows = {}
        for name in args.samplers:
            kw = {"block_gibbs": {"block_size": args.block_size},
                  "hamming_ball": {"block_size": min(args.hb_block_size, side * side)}}.get(name, {})
            rows[name] = measure(model, D.get_sampler(name, model, **kw), args)
        base = rows.get("rwm", next(iter(rows.values())))["ess_sec"]
        base_name = "rwm" if "rwm" in rows else next(iter(rows))
        print(f"\n**Ising {side}x{side} (d={side * side}), λ={args.inverse_temperature}, μ={args.mu}**\n")
        print(f"| sampler | ESS/step | ESS/eval | ms/step ({args.chains} chains) | ESS/s (all chains) | "
              f"ESS/s vs {base_name} | acceptance |")
        print("|---|---|---|---|---|---|---|")
        for name, r in rows.items():
            label = f"{name} (baseline)" if name == base_name else name
            print(f"| {label} | {r['ess_step']:.4f} ± {r['ess_step_std']:.4f} | {r['ess_eval']:.4f} | "
                  f"{1e3 * r['sec_step']:.3f} | {r['ess_sec']:.1f} | {r['ess_sec'] / base:.2f}x | {r['acc']:.2f} |")


if __name__ == "__main__":
    main()
