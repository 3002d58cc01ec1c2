"""discs: Goshvadi et al. (NeurIPS 2023), DISCS: A Benchmark for Discrete Sampling.

Run:
  nips23jax reproduce discs --quick   # tiny models (see the lead's README for the measured time)
  nips23jax reproduce discs           # DISCS-like sizes

Metric: per-chain ESS of the Hamming distance to a random reference state, first half discarded,
mean over chains (DISCS' protocol). Experiments: an Ising temperature sweep with GWG under the
balancing functions sqrt(t) and t/(t+1); ESS vs dimension for RWM, GWG and DLMC; Ising (λ=0.5,
μ=0.5), Potts (K=4) and Bernoulli panels over samplers; MIS and max-cut on an Erdős–Rényi graph
by annealing. Expected (the paper): t/(t+1) better than sqrt(t) below the critical temperature and
sqrt(t) above; RWM's ESS falls fastest with d; DLMC best on the classical models; gradient samplers
beat RWM / Hamming ball / block Gibbs on MIS. Measured (quick, 2026-11-30, 2 shared cores at load ~10):
100 s CPU (user+sys), 423 s wall under that load; ~19 XLA compiles, compiled at XLA's cheapest backend
level (``fast_compile``). Quick verdicts: dlmc_best and mis reproduced; crossover (λ=0.1: sqrt 19.0 vs
t/(t+1) 22.6) and dimension (ESS ratio 16->64 sites: rwm 0.49, dlmc 0.31) NOT reproduced at 400 steps.
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
    c.sweep.inverse_temperatures = [0.1607, 0.4407, 0.7607] if quick else [0.1607, 0.2807, 0.3607, 0.4407, 0.5207, 0.6007, 0.7607]
    c.sweep.chains = 32
    c.sweep.steps = 2000 if quick else 4000

    # DISCS' shape sweep (λ = 0.5, μ = 0.5 with the random field): slope of log ESS per step vs log d
    c.dimension = ml_collections.ConfigDict()
    c.dimension.samplers = ["rwm", "dlmc"] if quick else ["rwm", "gwg", "dlmc"]
    # chains long against RWM's autocorrelation time (~d/2 steps): at d = 1600 and 2,000 kept steps the
    # estimator is truncated and RWM's ESS per step stops falling
    c.dimension.sides = [5, 10] if quick else [4, 8, 16]
    c.dimension.inverse_temperature = 0.5
    c.dimension.chains = 32
    c.dimension.steps = 2000 if quick else 16_000

    c.panels = ml_collections.ConfigDict()
    c.panels.samplers = (["rwm", "gwg", "dlmc"] if quick else
                         ["rwm", "gibbs", "block_gibbs", "hamming_ball", "gwg", "pas", "dmala", "dlmc"])
    c.panels.ising_side = 8 if quick else 20
    c.panels.potts_side = 6 if quick else 10
    c.panels.potts_inverse_temperature = 1.0
    c.panels.bernoulli_sites = 64 if quick else 400
    c.panels.chains = 8 if quick else 32
    c.panels.steps = 400 if quick else 2000
    c.panels.tolerance = 0.15  # DLMC's ESS at least 85% of the best sampler's

    c.combinatorial = ml_collections.ConfigDict()
    c.combinatorial.problems = ["mis"] if quick else ["mis", "maxcut"]
    c.combinatorial.samplers = (["rwm", "hamming_ball", "gwg", "dlmc"] if quick else
                                ["rwm", "block_gibbs", "hamming_ball", "gwg", "pas", "dmala", "dlmc"])
    c.combinatorial.num_nodes = 20 if quick else 100
    c.combinatorial.edge_prob = 0.3 if quick else 0.05
    c.combinatorial.chains = 8 if quick else 16
    c.combinatorial.steps = 200 if quick else 1000
    c.combinatorial.stages = 5 if quick else 20
    c.combinatorial.t_start = 1.0
    c.combinatorial.t_end = 0.01
    # best found / optimum on a graph small enough to brute-force (<= 2^20 states); quick: the table's graph
    c.combinatorial.ratio_nodes = 20 if quick else 16
    c.combinatorial.ratio_edge_prob = 0.3
    return c
