"""tiny-lm: the shared Transformer learns multi-digit addition with the shared training loop.

Run:
  nips23jax reproduce tiny-lm --quick     # 2-digit addition, about a minute on 2 CPU cores
  nips23jax reproduce tiny-lm             # 3-digit addition, several minutes on 2 CPU cores

Expected: held-out exact match >= 0.95 (quick: >= 0.90) and the held-out loss at least 10x
below its value at initialization. Reports land in reports/tiny-lm/.
"""

import ml_collections


def get_config(arg=None):
    quick = arg == "quick"
    c = ml_collections.ConfigDict()
    c.reproduction = "tiny-lm"
    c.seed = 0

    c.task = ml_collections.ConfigDict()
    c.task.op = "add"
    c.task.num_digits = 2 if quick else 3
    c.task.reverse_answer = True

    c.model = ml_collections.ConfigDict()
    c.model.d_model = 64 if quick else 128
    c.model.num_heads = 4
    c.model.num_layers = 2
    c.model.d_ff = 256 if quick else 512
    c.model.tied_head = True
    c.model.dropout = 0.0

    c.train = ml_collections.ConfigDict()
    c.train.num_steps = 1500 if quick else 3000
    c.train.batch_size = 64 if quick else 128
    c.train.lr = 3e-3 if quick else 1e-3
    c.train.warmup_steps = 100
    c.train.weight_decay = 0.01
    c.train.max_grad_norm = 1.0
    c.train.log_every = 25
    c.train.eval_every = 250 if quick else 500
    c.train.checkpoint_every = 500
    c.train.keep_checkpoints = 2

    # Mesh axis sizes; -1 takes all remaining devices (data parallel over everything by default).
    c.mesh = ml_collections.ConfigDict()
    c.mesh.data = -1
    c.mesh.fsdp = 1
    c.mesh.tensor = 1

    c.eval = ml_collections.ConfigDict()
    c.eval.num_examples = 256        # held-out set used during training
    c.eval.num_test = 1000           # final exact-match test set
    c.eval.min_exact_match = 0.90 if quick else 0.95
    c.eval.min_loss_drop = 10.0
    return c
