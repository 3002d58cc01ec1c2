"""discs: Goshvadi et al. (NeurIPS 2023), DISCS: A Benchmark for Discrete Sampling.

Run:
  nips23jax reproduce discs --quick   # small models, 2,000-step chains
  nips23jax reproduce discs           # larger, but cut to fit 30 min on 2 shared CPU cores (below)

Metric (DISCS' protocol): per chain, the ESS of the Hamming distance to a random reference state with
the first half discarded, divided by the kept steps; mean ± s.e. over chains. Experiments:
(1) DISCS' λ sweep (zero-field Ising, as run_configs/.../ising/lamdasweep_small.py) with gradient
samplers under sqrt(t) and t/(t+1); (2) DISCS' shape sweep (Ising λ = 0.5, μ = 0.5): slope of
log(ESS/step) vs log d; (3) Ising / Potts (K=4) / Bernoulli panels over samplers; (4) MIS and
max-cut on Erdős–Rényi graphs by annealing, with best found / brute-force optimum on a small graph.
Expected (the paper): sqrt(t) better above the critical temperature, t/(t+1) below; RWM's ESS
falls fastest with d; DLMC best on classical models; gradient samplers beat RWM / HB / block Gibbs on MIS.

Measured, quick (2026-11-30, 2 shared cores): 80 s wall, 80 s CPU (user+sys) at load ~5; 96 s CPU and
459 s wall at load ~13. Verdicts: dimension (slope rwm -0.63 vs dlmc -0.19), dlmc_best and mis (gradient 6.81 vs
others 6.44 on ER n=20; best/optimum rwm 0.84, HB 1.00, gwg 0.98, dlmc 0.96) reproduced; crossover
NOT reproduced (DLMC on 8x8: ESS sqrt / t/(t+1) = 1.11 at λ=0.16 and 1.14 at λ=0.76).
Measured, full (this file's sizes, 2026-11-30, same load): 387 s CPU (user+sys), 965 s wall (16 min).
All four reproduced: crossover (ESS sqrt / t/(t+1), geometric mean over GWG, DMALA, DLMC: 1.02 at
λ=0.16, 0.74 at λ=0.76; the low-temperature half is clear for GWG 0.57 and DMALA 0.65, DLMC is
indifferent at 1.08 ± 0.2; the high-temperature half is within noise: GWG 0.98, DMALA 1.10, DLMC 0.98,
s.e. ≈ 4%); dimension (slope of log ESS/step vs log d over d = 16..256: rwm -0.97, gwg -0.66,
dlmc -0.35); dlmc_best (DLMC / best = 1.00 on Ising 16x16, Potts 8x8, Bernoulli 256); mis (gradient
21.84 vs others 21.31 on ER n=60; every sampler finds the brute-force optimum of the 16-node graph for
MIS, RWM 0.995 of it for max-cut). DISCS' own sizes (50x50 Ising, 100 chains, 100,000-400,000 steps)
would take days on this CPU; the sizes here were cut from a first attempt that was on course for
more than an hour at this load.
"""

import ml_collections


def get_config(arg=None):
    quick = arg == "quick"
    c = ml_collections.ConfigDict()
    c.reproduction = "discs"
    c.seed = 0
    c.fast_compile = quick  # tiny runs are all XLA compilation: compile at the cheapest optimization level
    c.block_gibbs = ml_collections.ConfigDict({"block_size": 3})
    c.hamming_ball = ml_collections.ConfigDict({"block_size": 10, "radius": 1})

    # DISCS' λ sweep (run_configs/.../ising/lamdasweep_small.py): zero field, gradient samplers under both
    # balancing functions, 400,000 steps; ESS per step with the first half as burn-in
    c.sweep = ml_collections.ConfigDict()
    c.sweep.samplers = ["dlmc"] if quick else ["gwg", "dmala", "dlmc"]  # PAS: ~10x GWG's time per step here
    c.sweep.side = 8 if quick else 10
    c.sweep.inverse_temperatures = [0.1607, 0.4407, 0.7607] if quick else [0.1607, 0.3607, 0.4407, 0.5207, 0.7607]
    c.sweep.chains = 32
    c.sweep.steps = 2000 if quick else 3000

    # DISCS' shape sweep (λ = 0.5, μ = 0.5 with the random field): slope of log ESS per step vs log d
    c.dimension = ml_collections.ConfigDict()
    c.dimension.samplers = ["rwm", "dlmc"] if quick else ["rwm", "gwg", "dlmc"]
    # chains long against RWM's autocorrelation time (~d/2 steps): at d = 1600 and 2,000 kept steps the
    # estimator is truncated and RWM's ESS per step stops falling
    c.dimension.sides = [5, 10] if quick else [4, 8, 16]
    c.dimension.inverse_temperature = 0.5
    c.dimension.chains = 32
    c.dimension.steps = 2000 if quick else 8000

    c.panels = ml_collections.ConfigDict()
    c.panels.samplers = (["rwm", "gwg", "dlmc"] if quick else
                         ["rwm", "gibbs", "block_gibbs", "hamming_ball", "gwg", "pas", "dmala", "dlmc"])
    c.panels.ising_side = 8 if quick else 16
    c.panels.potts_side = 6 if quick else 8
    c.panels.potts_inverse_temperature = 1.0
    c.panels.bernoulli_sites = 64 if quick else 256
    c.panels.chains = 8 if quick else 16
    c.panels.steps = 400 if quick else 1000
    c.panels.tolerance = 0.15  # DLMC's ESS at least 85% of the best sampler's

    c.combinatorial = ml_collections.ConfigDict()
    c.combinatorial.problems = ["mis"] if quick else ["mis", "maxcut"]
    c.combinatorial.samplers = (["rwm", "hamming_ball", "gwg", "dlmc"] if quick else
                                ["rwm", "block_gibbs", "hamming_ball", "gwg", "pas", "dmala", "dlmc"])
    c.combinatorial.num_nodes = 20 if quick else 60
    c.combinatorial.edge_prob = 0.3 if quick else 0.1
    c.combinatorial.chains = 8 if quick else 16
    c.combinatorial.steps = 200 if quick else 1000
    c.combinatorial.stages = 5 if quick else 10
    c.combinatorial.t_start = 1.0
    c.combinatorial.t_end = 0.01
    # best found / optimum on a graph small enough to brute-force (<= 2^20 states); quick: the table's graph
    c.combinatorial.ratio_nodes = 20 if quick else 16
    c.combinatorial.ratio_edge_prob = 0.3
    return c
