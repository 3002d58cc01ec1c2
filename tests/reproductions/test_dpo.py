import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nips23jax.core.config import load_config
from nips23jax.reproductions import dpo as repro


def test_corpus_follows_the_markov_chain_and_rewards_add_up():
    config = load_config("dpo", quick=True)
    world = repro.World(config)
    ids = world.sample_corpus(np.random.default_rng(0), 4000)
    assert ids.shape == (4000, 1 + 4 + 8) and (ids[:, 0] == repro.BOS).all()
    letters = ids[:, 1:] - repro.OFFSET
    assert letters.min() >= 0 and letters.max() < world.k
    # empirical transitions inside completions match the transition matrix
    counts = np.zeros((world.k, world.k))
    for t in range(4, letters.shape[1]):
        np.add.at(counts, (letters[:, t - 1], letters[:, t]), 1)
    empirical = counts / counts.sum(1, keepdims=True)
    np.testing.assert_allclose(empirical, world.transition, atol=0.04)
    # reward: sum of per-letter scores; non-letter tokens score 0
    comp = ids[:3, 5:]
    want = world.letter_reward[comp - repro.OFFSET].sum(1)
    np.testing.assert_allclose(world.reward(comp), want, rtol=1e-6)
    np.testing.assert_allclose(world.reward(np.array([[0, 1, 2, repro.OFFSET]])), [world.letter_reward[0]], rtol=1e-6)
    assert sorted(np.round(world.letter_reward, 6)) == sorted(np.round(np.linspace(-1, 1, world.k), 6))


def test_policy_stats_kl_is_zero_for_the_reference():
    config = load_config("dpo", quick=True)
    world = repro.World(config)
    model = repro.TransformerLM(repro.TransformerConfig(vocab_size=world.vocab_size, max_len=13, d_model=16,
                                                       num_heads=2, num_layers=1))
    params = jax.jit(model.init)(jax.random.key(0), jnp.zeros((1, 5), jnp.int32))["params"]
    prompts = world.prompts(np.random.default_rng(1), 32)
    stats = repro.policy_stats(repro.LMApply(model), params, params, world, prompts, jax.random.key(2))
    assert stats["kl"] == 0.0 and np.isfinite(stats["reward"])


def check_run(result, config, workdir):
    """End-to-end checks, run on the notebook's run by tests/test_notebooks.py (one run per session)."""
    assert [f.claim for f in result.findings] == ["frontier", "implicit_reward"]
    assert (workdir / "dpo_frontier.png").read_bytes()[:4] == b"\x89PNG"
    m = result.metrics
    assert [p["beta"] for p in m["dpo"]] == list(config.dpo.betas)
    assert [p["steps"] for p in m["preferred_ft"]] == list(config.baselines.preferred_ft_steps)
    # best-of-n's KL from the reference has a closed form: log n - (n - 1) / n
    n = np.asarray(config.baselines.best_of_n, float)
    np.testing.assert_allclose([p["kl"] for p in m["best_of_n"]], np.log(n) - (n - 1) / n, atol=1e-6)
    acc = [p["implicit_accuracy"] for p in m["dpo"]]
    assert result.findings[1].passed == (float(np.median(acc)) >= config.eval.min_implicit_accuracy)
