"""distribution-shift: accuracy on the line and the X- vs Y|X-shift decomposition (DISDE), synthetic truth.

Run:
  nips23jax reproduce distribution-shift --quick   # about a minute on 2 busy CPU cores
  nips23jax reproduce distribution-shift           # larger test sets and families, 200 bootstrap refits

Data (nips23jax.shift.synthetic): x ~ N(0, I_8) in the source, labels P(y=1|x) = Φ(βᵀx) with
β_j = 2·0.7^j. A family of logistic regressions (first k of 8 features, k = 1..8, trained on n source
examples) is evaluated on the source and on two targets:
  X-shift   x ~ N(0, 0.6²·I), same P(y|x)          -> the models lie on a probit line (high R²);
  Y|X-shift same x, β_j sign-flipped for j >= 4      -> the line breaks (low R²); the 8-feature model's
                                                       OOD accuracy stays far below the target's Bayes
                                                       accuracy however much source data it gets.
DISDE (nips23jax.shift.disde, cross-fitted logistic domain classifier on (x, x²), where the Gaussian
log density ratio is exactly linear) on the 8-feature model in four cases (null P = Q, X-shift,
Y|X-shift, both) is compared term by term with the exact-density Monte Carlo truth.

Expected/measured (quick, 2026-11-30): X-shift line R² ~0.97 (slope ~0.75); Y|X-shift R² ~0.1 and
the 8-feature model ~0.14 below the target Bayes accuracy at n = 2048 although within 0.01 of the
source's; every DISDE term within 3 bootstrap SE of its truth, null-case terms ~0.
"""

import ml_collections


def get_config(arg=None):
    quick = arg == "quick"
    c = ml_collections.ConfigDict()
    c.reproduction = "distribution-shift"
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.dim = 8
    c.data.beta_scale = 2.0          # β_j = beta_scale · beta_decay^j
    c.data.beta_decay = 0.7
    c.data.noise = 1.0               # P(y=1|x) = Φ((βᵀx)/noise)
    c.data.x_shift_std = 0.6         # X-shift target: x ~ N(x_shift_mean, x_shift_std²·I)
    c.data.x_shift_mean = 0.0
    c.data.flip_from = 3             # Y|X-shift target: β_j -> -β_j for j >= flip_from (0-based)

    c.models = ml_collections.ConfigDict()
    c.models.num_features = (1, 2, 3, 4, 5, 6, 7, 8)   # capacity: the first k features
    c.models.train_sizes = (32, 128, 512, 2048) if quick else (32, 64, 128, 256, 512, 1024, 4096, 16384)
    c.models.steps = 300             # full-batch Adam steps (cosine-decayed)
    c.models.lr = 0.1
    c.models.l2 = 1e-3
    c.models.num_test = 10_000 if quick else 100_000   # test examples per domain (binomial CIs)
    c.models.num_bootstrap = 500 if quick else 2000    # bootstrap band of the probit fit

    c.disde = ml_collections.ConfigDict()
    c.disde.num_eval = 2000 if quick else 10_000       # examples per domain given to DISDE
    c.disde.num_bootstrap = 50 if quick else 200        # bootstrap refits (standard errors)
    c.disde.num_folds = 5
    c.disde.classifier = "logistic"
    c.disde.features = "quadratic"   # "linear": x; "quadratic": (x, x²)
    c.disde.truth_samples = 400_000 if quick else 2_000_000

    c.criteria = ml_collections.ConfigDict()
    c.criteria.line_r2_above = 0.9       # (a) X-shift: probit-fit R² at least this
    c.criteria.broken_r2_below = 0.5     # (b) Y|X-shift: probit-fit R² below this
    c.criteria.ood_gap_above = 0.05      # (b) largest model, most data: target Bayes acc − OOD acc above this
    c.criteria.id_gap_below = 0.02       # (b) ... while source Bayes acc − ID acc is below this
    c.criteria.within_se = 3.0           # (c) |estimate − truth| <= within_se · SE + abs_tol, every term
    c.criteria.abs_tol = 0.005
    return c
