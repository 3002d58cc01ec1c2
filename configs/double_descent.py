"""double-descent: Curth, Jeffares & van der Schaar (NeurIPS 2023) -- the U-turn on double descent.

Run:
  nips23jax reproduce double-descent --quick   # about 1 minute on 2 busy CPU cores (50-63 s measured)
  nips23jax reproduce double-descent           # 167 s on 2 busy CPU cores (load average ~14)

Data: scikit-learn's bundled digits (8x8, 1797 images, offline), pixels / 16, one-hot targets,
squared loss; n = 500 training digits as in the paper (quick: 200), the rest (quick: 400) as test
inputs. Models, all written as linear smoothers ŷ(x) = ŝ(x)ᵀy (nips23jax.double_descent):
  rff       min-norm least squares on P random Fourier features (Gaussian kernel, bandwidth 5),
            P from n/20 to 10n through P = n (quick: n/10 to 10n), averaged over feature draws;
  unfold    P^ex raw features, then OLS on P^PC ≤ n principal components, for
            P^ex ∈ {n, 2n, 10n} (quick: {n, 2n});
  trees     one tree with more and more leaves up to the interpolating (fully grown) tree, then
            forests of fully grown trees (no bootstrap, sqrt(d) features per split);
  boosting  L2 boosting of 10-leaf trees (learning rate 0.85) over rounds, then averages of
            independently boosted models (sqrt(d) features per split).
Effective parameters p̂ = n/|I₀| Σ‖ŝ(x_j)‖² on the training and on the test inputs.

Expected (the paper): test error against raw parameters shows double descent (peak at P = n for RFF,
at the switch of axes for trees and boosting); against p̂_test the second descent turns back (the
U-turn: p̂_test falls while the error falls) so the curve is a traditional U; unfolding RFF into
P^PC and P^ex gives two separate U-shapes.
Measured with the full config (2026-11-30, 167 s), all five claims reproduced:
  rff           test MSE 0.246 (best P < n) -> 28.2 at P = n = 500 -> 0.144 at P = 10n;
  U-turn        p_train = min(P, n); p_test 2.35e5 at P = n -> 942 at P = 10n; Spearman(test MSE,
                p_test) 1.00 on both arms (error rises with p_test up to P = n, falls with it after);
  unfolded      P^ex = n: min 0.174 at P^PC = 200, 28.2 at P^PC = n; P^ex = 2n: min 0.153 at 250,
                0.22 at n; P^ex = 10n: min 0.130 at 250, 0.144 at n (three U's, lower and left as P^ex grows);
  trees         test MSE 0.517 (32 leaves) -> 0.594 (interpolating tree, 117 leaves) -> 0.149 (50 trees);
                p_test 131 -> 13;
  boosting      test MSE 0.398 (8 rounds) -> 0.458 (200 rounds) -> 0.161 (10 models); p_test 458 -> 109.
Quick config (n = 200): the same five verdicts (RFF peak 41.6 at P = n vs 0.421 / 0.229; trees
0.619 -> 0.815 -> 0.263; boosting 0.457 -> 0.556 -> 0.271).
"""

import ml_collections


def get_config(arg=None):
    quick = arg == "quick"
    c = ml_collections.ConfigDict()
    c.reproduction = "double-descent"
    c.seed = 0
    c.num_train = 200 if quick else 500
    c.num_test = 400 if quick else -1    # -1: every digit not used for training (1297 at n = 500)
    c.blas_threads = 1                    # BLAS threads during the sweeps (small matrices: 1 is fastest)

    c.rff = ml_collections.ConfigDict()
    c.rff.bandwidth = 5.0
    c.rff.num_draws = 1 if quick else 3
    # P / n; must contain 1.0 (P = n)
    c.rff.ratios = ([0.1, 0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.5, 2.0, 4.0, 10.0] if quick else
                    [0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.2, 1.35,
                     1.5, 2.0, 3.0, 5.0, 10.0])
    c.rff.rtol = 1e-11                    # eigenvalues of the Gram matrix below rtol·λ_max are zero (float64)

    c.unfold = ml_collections.ConfigDict()
    c.unfold.excess_ratios = [1.0, 2.0] if quick else [1.0, 2.0, 10.0]  # P^ex / n
    c.unfold.pc_ratios = ([0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0] if quick else
                          [0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0])

    c.trees = ml_collections.ConfigDict()
    c.trees.max_features = "sqrt"
    c.trees.leaf_grid = [2, 4, 8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 160, 200]
    c.trees.ensemble_sizes = [1, 2, 3, 5, 10, 20] if quick else [1, 2, 3, 5, 10, 20, 50]

    c.boosting = ml_collections.ConfigDict()
    c.boosting.learning_rate = 0.85
    c.boosting.max_leaf_nodes = 10
    c.boosting.max_features = "sqrt"
    c.boosting.num_rounds = 80 if quick else 200
    c.boosting.round_grid = [1, 2, 3, 5, 8, 12, 20, 30, 50, 80, 120, 160, 200]
    c.boosting.ensemble_sizes = [1, 2, 3, 5] if quick else [1, 2, 3, 5, 10]

    # Verdicts
    c.criteria = ml_collections.ConfigDict()
    c.criteria.peak_ratio = 3.0      # RFF: test MSE at P = n over the best P < n and over the largest P
    c.criteria.uturn_drop = 0.5      # p_test at the end of the second axis / p_test at the switch
    c.criteria.min_spearman = 0.9    # rank correlation of test MSE with p_test on the U's right arm
    c.criteria.u_rise = 0.05         # a U's ends (a peak) exceed the minimum by this fraction
    return c
