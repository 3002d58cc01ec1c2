"""dpo: controlled generation with a known reward (the DPO paper's controlled-sentiment setup, synthetic).

Run:
  nips23jax reproduce dpo --quick    # about 2-3 minutes on 2 CPU cores
  nips23jax reproduce dpo            # more preference pairs, steps and betas

Setup: an "SFT" Transformer is trained on a built-in corpus (a random first-order Markov chain over
8 letters, prompts of 4 letters, completions of 8). The ground-truth reward of a completion is the
sum of fixed per-letter scores (the "sentiment" of each letter). Pairs of SFT samples are labelled
through Bradley-Terry on that reward; DPO then trains for several beta with the SFT model as the
frozen reference. Baselines that need no RL: best-of-N sampling from the SFT model, and SFT on the
preferred completions ("Preferred-FT"), each swept over its strength.

Expected: DPO's reward-KL points within the KL range Preferred-FT reaches lie on or above the
Preferred-FT frontier (at least its reward at equal KL); the implicit reward beta*log(pi/pi_ref)
orders held-out pairs like the true reward (pairwise accuracy around 0.9).
"""

import ml_collections


def get_config(arg=None):
    quick = arg == "quick"
    c = ml_collections.ConfigDict()
    c.reproduction = "dpo"
    c.seed = 0

    c.task = ml_collections.ConfigDict()
    c.task.num_letters = 8
    c.task.prompt_len = 4
    c.task.completion_len = 8
    c.task.markov_concentration = 0.5    # Dirichlet concentration of the corpus' transition rows
    c.task.bt_temperature = 1.0          # P(y1 > y2) = sigmoid((r1 - r2) / T)

    c.model = ml_collections.ConfigDict()
    c.model.d_model = 64
    c.model.num_heads = 4
    c.model.num_layers = 2

    c.sft = ml_collections.ConfigDict()
    c.sft.num_steps = 400 if quick else 1500
    c.sft.batch_size = 64
    c.sft.lr = 3e-3

    c.prefs = ml_collections.ConfigDict()
    c.prefs.num_pairs = 2048 if quick else 8192
    c.prefs.num_heldout = 512

    c.dpo = ml_collections.ConfigDict()
    c.dpo.betas = (0.1, 0.5, 2.0, 5.0, 10.0) if quick else (0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0)
    c.dpo.loss_type = "sigmoid"
    c.dpo.num_steps = 300 if quick else 1000
    c.dpo.batch_size = 64
    c.dpo.lr = 1e-3

    c.baselines = ml_collections.ConfigDict()
    c.baselines.best_of_n = (1, 2, 4, 8, 16) if quick else (1, 2, 4, 8, 16, 32, 64)
    c.baselines.preferred_ft_steps = (25, 50, 100, 200, 400, 800) if quick else (25, 50, 100, 200, 400, 800, 1600, 3200)
    c.baselines.preferred_ft_lr = 3e-3

    c.eval = ml_collections.ConfigDict()
    c.eval.num_prompts = 512            # samples per policy for reward and KL
    c.eval.min_implicit_accuracy = 0.75
    c.eval.frontier_tolerance = 0.05    # DPO reward >= Preferred-FT reward at equal KL - tol * reward range
    return c
