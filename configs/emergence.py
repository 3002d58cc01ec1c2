"""emergence: Schaeffer, Miranda & Koyejo (NeurIPS 2023) -- are emergent abilities a mirage?

Run:
  nips23jax reproduce emergence --quick   # 5 models, 2-digit addition (TIME_QUICK)
  nips23jax reproduce emergence           # 6 models, 3-digit addition (TIME_FULL)

A family of tiny Transformers (1 to 2 layers, widths 8 to 64) trained with the shared loop on
multi-digit addition; the same greedy answers are scored with exact match and token edit
distance and compared by BIG-bench's emergence score. Expected: a larger emergence score under
exact match than under edit distance; small models at exact match 0 on a 100-item test set but
nonzero on the full test set; the analytic model's simulated exact match sharp and edit distance
smooth; multiple-choice grade sharper than Brier score.
Measured: RESULTS
"""

import ml_collections


def get_config(arg=None):
    quick = arg == "quick"
    c = ml_collections.ConfigDict()
    c.reproduction = "emergence"
    c.seed = 0
    # On CPU, compile at XLA optimization level 0: compiling, not running, dominates these tiny models.
    c.fast_compile = True

    c.task = ml_collections.ConfigDict()
    c.task.op = "add"
    c.task.num_digits = 2 if quick else 3
    c.task.reverse_answer = True

    # The family: one entry per model (widths and depths give >= 30x parameters).
    c.family = ml_collections.ConfigDict()
    if quick:
        c.family.d_model = (8, 12, 16, 24, 48)
        c.family.num_layers = (1, 1, 1, 2, 2)
        c.family.num_heads = (2, 2, 2, 2, 4)
        c.family.lr = (1e-2, 1e-2, 1e-2, 5e-3, 3e-3)
    else:
        c.family.d_model = (8, 12, 16, 24, 32, 64)
        c.family.num_layers = (1, 1, 1, 2, 2, 2)
        c.family.num_heads = (2, 2, 2, 2, 4, 4)
        c.family.lr = (1e-2, 1e-2, 1e-2, 5e-3, 3e-3, 2e-3)

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = 6 if quick else 40       # logged steps of the shared loop ...
    c.train.updates_per_step = 50                # ... each this many optimizer updates (one compiled scan)
    c.train.batch_size = 64 if quick else 128
    c.train.warmup = 50
    c.train.weight_decay = 0.01
    c.train.max_grad_norm = 1.0
    c.train.checkpoint_every = 4 if quick else 10

    c.eval = ml_collections.ConfigDict()
    c.eval.num_test = 2048 if quick else 20480   # the enlarged test set (greedy answers), chunk multiple
    c.eval.num_small = 100                       # the "small benchmark": its first items
    c.eval.num_choices = 4                       # multiple choice: the first chunk/K items of each chunk
    c.eval.chunk = 2048                          # rows per compiled evaluation call
    c.eval.bootstrap = 200 if quick else 1000

    c.analytic = ml_collections.ConfigDict()
    c.analytic.c = 1e8
    c.analytic.alpha = -0.5
    c.analytic.length = 5
    c.analytic.n_min = 1e7
    c.analytic.n_max = 1e12
    c.analytic.num_points = 11
    c.analytic.num_items = 2000 if quick else 20000

    c.criteria = ml_collections.ConfigDict()
    c.criteria.min_score_ratio = 1.5
    c.criteria.analytic_tolerance = 0.05 if quick else 0.02
    return c
