"""discs: Goshvadi et al. (NeurIPS 2023), DISCS: A Benchmark for Discrete Sampling.

Run:
  nips23jax reproduce discs --quick   # small models, 2,000-step chains
  nips23jax reproduce discs           # larger, but cut to fit under an hour on 2 shared CPU cores (below)

Metric (DISCS' protocol): per chain, the ESS of the Hamming distance to a random reference state with
the first half discarded, divided by the kept steps; mean ± s.e. over chains. Experiments:
(1) DISCS' λ sweep (zero-field Ising, as run_configs/.../ising/lamdasweep_small.py) with gradient
samplers under sqrt(t) and t/(t+1); (2) DISCS' shape sweep (Ising λ = 0.5, μ = 0.5): slope of
log(ESS/step) vs log d; (3) Ising / Potts (K=4) / Bernoulli panels over samplers; (4) MIS and
max-cut on Erdős–Rényi graphs by annealing, with best found / brute-force optimum on a small graph.
Expected (the paper): sqrt(t) better above the critical temperature, t/(t+1) below; RWM's ESS
falls fastest with d; DLMC best on classical models; gradient samplers beat RWM / HB / block Gibbs on MIS.

Crossover criterion: the mean over the sweep's samplers of log(ESS sqrt / ESS t/(t+1)) must be more than
2 standard errors above 0 at the smallest λ and below 0 at the largest; a ratio within noise of 1 is no win.
DISCS' Ising counts each edge twice, so DISCS' λ is half of ours: its sweep 0.1607..0.7607 is our
0.32..1.52, its marked "λ_c" 0.4407 our 0.88, its hottest point our 0.3214 (the sweep's smallest λ here).
DISCS' sweep results are not in its repository (plot_ising_temp.py plots them from a bucket); its recorded
50x50 runs with a field (discs/common/discs-ising-sampler_sweep_56214850/*/results.csv, λ = 0.5 "hightemp"
and λ = 1) have t/(t+1) ahead of or equal to sqrt(t) for every sampler whose chains moved.

Measured, full (2026-11-30, load ~15 on 2 cores), crossover sweep (10x10, 128 chains x 4,000 steps), ESS sqrt /
ESS t/(t+1): λ=0.3214: GWG 0.965 ± 0.041, DMALA 0.953 ± 0.034, DLMC 1.113 ± 0.039, geometric mean 1.008 ± 0.022
(+0.4 s.e.: not resolved); λ=0.4407: 1.000 ± 0.035; λ=0.5207: 0.910 ± 0.040; λ=0.7607: GWG 0.735 ± 0.043,
DMALA 0.793 ± 0.050, DLMC 1.068 ± 0.088, mean 0.854 ± 0.034 (-4.0 s.e.: t/(t+1) better). Crossover NOT
reproduced: t/(t+1) wins at low temperature, but above λ_c the two are equal within ~2%; separate runs
(10x10, 256 chains x 5,000 steps) give 0.998 ± 0.021 (GWG), 1.029 ± 0.016 (DMALA), 1.007 ± 0.015 (DLMC) at
λ=0.1607 and 1.003, 0.980, 1.054 (± ~0.03) at λ=0.3607; 20x20 at λ=0.1607: GWG 0.996 ± 0.035, DMALA
1.050 ± 0.029. Other claims, reproduced: dimension (slope of log ESS/step vs log d over d = 16..256: rwm
-0.97, gwg -0.66, dlmc -0.35); dlmc_best (DLMC / best = 1.00 on Ising 16x16, Potts 8x8, Bernoulli 256); mis
(gradient 21.84 vs others 21.31 on ER n=60; every sampler finds the brute-force optimum of the 16-node graph
for MIS, RWM 0.995 of it for max-cut). The whole run: 643 s CPU (user+sys), 56 min wall at load ~15 on 2
cores (an earlier run with a smaller sweep, 387 s CPU, took 16 min at load ~13). DISCS' own
sizes (50x50 Ising, 100 chains, 100,000-400,000 steps) would take days on this CPU.
Measured, quick (2026-11-30, load ~15 on 2 cores: 134 s CPU, 10.1 min wall; before its sweep grew from one
sampler to two it took 80 s CPU and wall at load ~5, 96 s CPU at load ~13): crossover NOT reproduced (GWG,
DMALA on 8x8, 48 chains x 2,000 steps: 0.939 ± 0.042 at λ=0.3214, -1.4 s.e.; 0.858 ± 0.061 at λ=0.7607,
-2.1 s.e.: t/(t+1) better); dimension (slope rwm -0.63 vs dlmc -0.19), dlmc_best and mis (gradient 6.81 vs
others 6.44 on ER n=20) reproduced. Its high-temperature half cannot be resolved in 90 s: a ~2% difference
needs about 10^6 chain-steps per arm on 10x10 (the full sweep's 128 x 4,000 resolves ±2.2%).
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

    # DISCS' λ sweep (run_configs/classical_models/ising/lamdasweep_small.py: 50x50, μ = 0, no random field, 16
    # λ from 0.1607 to 0.7607, GWG / PAS / DMALA / DLMC under both balancing functions, 100 chains of 400,000
    # steps); ESS per step with the first half as burn-in. DISCS' Ising (discs/models/ising.py) counts every
    # edge twice, so its λ is half of ours (coupling per edge): its sweep is our 0.32..1.52, its hottest point
    # 0.1607 is our 0.3214, and the true critical point λ_c = 0.4407 here is its 0.2203 (it marks 0.4407).
    # Above λ_c the two functions differ only at second order in a flip's log-ratio d (log σ(d) = d/2 −
    # log 2cosh(d/2)), so their ESS differ by a few percent at most: the full sweep runs many chain-steps.
    c.sweep = ml_collections.ConfigDict()
    c.sweep.samplers = ["gwg", "dmala"] if quick else ["gwg", "dmala", "dlmc"]  # PAS: ~3x GWG's time per step
    c.sweep.side = 8 if quick else 10
    # quick: the two ends only, each with more chains (its high-temperature half cannot be resolved in 90 s)
    c.sweep.inverse_temperatures = [0.3214, 0.7607] if quick else [0.3214, 0.4407, 0.5207, 0.7607]
    c.sweep.chains = 48 if quick else 128
    c.sweep.steps = 2000 if quick else 4000
    c.sweep.significance = 2.0  # each half of the crossover must be resolved by this many standard errors

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
