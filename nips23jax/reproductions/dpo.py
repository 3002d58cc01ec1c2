"""dpo: DPO vs RL-free baselines on controlled generation with a known reward (Rafailov et al. 2023).

The paper's controlled-sentiment experiment, made synthetic and offline (config: ``configs/dpo.py``):
an SFT model, preference pairs labelled through Bradley-Terry on a ground-truth reward, DPO for
several beta with the SFT model as frozen reference, and the reward-KL(policy || reference)
frontier against best-of-N sampling and SFT on preferred completions (Preferred-FT).
"""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from matplotlib.figure import Figure

from nips23jax.core import reproduce
from nips23jax.core.config import ConfigError, config_fingerprint
from nips23jax.core.train import TrainState, fit, make_train_step
from nips23jax.dpo import LOSS_TYPES, frozen_reference, make_dpo_loss_fn, reference_logps, sequence_logps
from nips23jax.models.lm import LMApply, generate, lm_loss_fn
from nips23jax.models.transformer import TransformerConfig, TransformerLM

NAME = "dpo"
OFFSET = 3  # token id of letter 0 (ids 0, 1, 2 are <pad>, <bos>, <eos>)
BOS = 1

CLAIMS = (
    reproduce.Claim(
        "frontier",
        "DPO attains at least the reward of the RL-free baseline (Preferred-FT) at equal KL to the reference",
        "DPO frontier dominates (Fig. 2 left)",
        "every DPO point with KL inside Preferred-FT's range (at least one) >= Preferred-FT's reward-KL "
        "envelope - {config.eval.frontier_tolerance} x reward range",
    ),
    reproduce.Claim(
        "implicit_reward",
        "The implicit reward beta*log(pi/pi_ref) ranks held-out completion pairs like the true reward",
        None,
        "median over beta of pairwise ranking accuracy >= {config.eval.min_implicit_accuracy}",
    ),
)


class World:
    """The synthetic task: a Markov-chain corpus and a per-letter reward.

    Attributes:
      transition: ``(K, K)`` row-stochastic corpus transition matrix.
      letter_reward: ``(K,)`` true reward of each letter (``linspace(-1, 1)`` in a random order).
    """

    def __init__(self, config: ml_collections.ConfigDict):
        t = config.task
        rng = np.random.default_rng((config.seed, 7))
        self.k, self.prompt_len, self.completion_len = t.num_letters, t.prompt_len, t.completion_len
        self.transition = rng.dirichlet(np.full(self.k, t.markov_concentration), size=self.k)
        self.letter_reward = rng.permutation(np.linspace(-1.0, 1.0, self.k))
        self.bt_temperature = t.bt_temperature

    @property
    def vocab_size(self) -> int:
        return OFFSET + self.k

    def sample_corpus(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, 1 + P + L)`` token ids: ``<bos>``, a uniform prompt, a Markov completion."""
        letters = np.empty((n, self.prompt_len + self.completion_len), np.int64)
        letters[:, : self.prompt_len] = rng.integers(0, self.k, (n, self.prompt_len))
        cum = np.cumsum(self.transition, axis=1)
        for t in range(self.prompt_len, letters.shape[1]):
            u = rng.random((n, 1))
            letters[:, t] = np.minimum((u > cum[letters[:, t - 1]]).sum(1), self.k - 1)
        return np.concatenate([np.full((n, 1), BOS), letters + OFFSET], 1).astype(np.int32)

    def prompts(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``(n, 1 + P)`` prompt ids."""
        return np.concatenate([np.full((n, 1), BOS), rng.integers(0, self.k, (n, self.prompt_len)) + OFFSET], 1).astype(np.int32)

    def reward(self, completion_ids) -> jax.Array:
        """True reward ``Σ_t letter_reward[y_t]`` of ``(..., L)`` completion ids (non-letters score 0)."""
        return _true_reward(jnp.asarray(self.letter_reward, jnp.float32), jnp.asarray(completion_ids))


@jax.jit
def _true_reward(letter_reward: jax.Array, completion_ids: jax.Array) -> jax.Array:
    """:meth:`World.reward` as one compiled program per ids shape."""
    k = letter_reward.shape[0]
    letters = completion_ids - OFFSET
    valid = (letters >= 0) & (letters < k)
    return jnp.where(valid, letter_reward[jnp.clip(letters, 0, k - 1)], 0.0).sum(-1)


@jax.jit
def _mean_difference(a: jax.Array, b: jax.Array) -> jax.Array:
    return (a - b).mean()


def _labels(ids: jax.Array, prompt_width: int) -> jax.Array:
    return jnp.asarray(ids).at[:, :prompt_width].set(-100)


@jax.jit
def _label_pairs(letter_reward, prompts, y1, y2, key, temperature) -> dict[str, jax.Array]:
    """Bradley-Terry labels of two completions per prompt (one compiled program): y1 is chosen with
    probability ``sigmoid((r1 − r2)/temperature)``. Returns the pairs' ids, TRL labels and true rewards."""
    r1, r2 = _true_reward(letter_reward, y1), _true_reward(letter_reward, y2)
    first = jax.random.uniform(key, r1.shape) < jax.nn.sigmoid((r1 - r2) / temperature)
    chosen = jnp.where(first[:, None], y1, y2)
    rejected = jnp.where(first[:, None], y2, y1)
    out = {"chosen_ids": jnp.concatenate([prompts, chosen], 1), "rejected_ids": jnp.concatenate([prompts, rejected], 1)}
    width = prompts.shape[1]
    out["chosen_labels"] = _labels(out["chosen_ids"], width)
    out["rejected_labels"] = _labels(out["rejected_ids"], width)
    out["chosen_reward"] = _true_reward(letter_reward, chosen)
    out["rejected_reward"] = _true_reward(letter_reward, rejected)
    return out


@functools.partial(jax.jit, static_argnums=(0, 3))
def _completion_logps(apply_fn, params, ids, prompt_width):
    return sequence_logps(apply_fn(params, ids, None), _labels(ids, prompt_width))


def _sample(apply_fn, params, prompts, key):
    n_new = apply_fn.model.config.max_len - prompts.shape[1]
    return generate(apply_fn, params, jnp.asarray(prompts), key, max_new_tokens=n_new, temperature=1.0)


def policy_stats(apply_fn, params, ref_params, world: World, prompts, key) -> dict[str, float]:
    """Mean true reward of the policy's samples and the Monte Carlo KL(π || π_ref) (nats per completion)."""
    completions = _sample(apply_fn, params, prompts, key)
    ids = jnp.concatenate([jnp.asarray(prompts), completions], 1)
    width = prompts.shape[1]
    kl = _mean_difference(_completion_logps(apply_fn, params, ids, width), _completion_logps(apply_fn, ref_params, ids, width))
    return {"reward": float(world.reward(completions).mean()), "kl": float(kl)}


def _lm_fit(model, params, batches, num_steps, lr, workdir, fingerprint, progress, desc, callbacks=()):
    opt = optax.adam(lr)
    return fit(TrainState.create(frozen_reference(params), opt), make_train_step(lm_loss_fn(model), opt), batches,
               num_steps=num_steps, workdir=workdir, checkpoint_every=max(num_steps // 2, 1), keep_checkpoints=1,
               fingerprint=fingerprint, log_every=max(num_steps // 20, 1), progress=progress, desc=desc,
               callbacks=callbacks)


def run(config: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True) -> reproduce.Result:
    """SFT, preference labelling, DPO for each beta, baselines, frontier, verdicts."""
    validate(config)  # the CLI calls it too, before any run; a direct call (the notebooks) checks here
    workdir = Path(workdir)
    world = World(config)
    width = 1 + world.prompt_len
    model = TransformerLM(TransformerConfig(
        vocab_size=world.vocab_size, max_len=width + world.completion_len, d_model=config.model.d_model,
        num_heads=config.model.num_heads, num_layers=config.model.num_layers,
    ))
    apply_fn = LMApply(model)
    fp = config_fingerprint(config)
    key = jax.random.key(config.seed)
    init = model.init(jax.random.fold_in(key, 0), jnp.zeros((1, width), jnp.int32))["params"]
    loss_mask = np.zeros((1, width + world.completion_len), bool)
    loss_mask[:, width:] = True

    # 1. SFT on the corpus.
    def sft_batch(t):
        tokens = world.sample_corpus(np.random.default_rng((config.seed, 1, t)), config.sft.batch_size)
        return {"tokens": tokens, "loss_mask": np.broadcast_to(loss_mask, tokens.shape)}

    sft = _lm_fit(model, init, sft_batch, config.sft.num_steps, config.sft.lr, workdir / "sft", fp, progress, "sft")
    sft_params = frozen_reference(sft.state.params)

    # 2. Preference pairs: two SFT samples per prompt, labelled by Bradley-Terry on the true reward.
    def pairs(n, salt):
        prompts = world.prompts(np.random.default_rng((config.seed, 2, salt)), n)
        k1, k2, k3 = jax.random.split(jax.random.fold_in(key, 100 + salt), 3)
        y1, y2 = _sample(apply_fn, sft_params, prompts, k1), _sample(apply_fn, sft_params, prompts, k2)
        labelled = _label_pairs(jnp.asarray(world.letter_reward, jnp.float32), jnp.asarray(prompts), y1, y2, k3,
                                jnp.float32(world.bt_temperature))
        out = {k: np.asarray(labelled[k]) for k in ("chosen_ids", "rejected_ids", "chosen_labels", "rejected_labels")}
        return out, (np.asarray(labelled["chosen_reward"]), np.asarray(labelled["rejected_reward"]))

    train_pairs, _ = pairs(config.prefs.num_pairs, 0)
    heldout_pairs, (r_chosen, r_rejected) = pairs(config.prefs.num_heldout, 1)
    ref = jax.jit(functools.partial(reference_logps, apply_fn))(sft_params, train_pairs)
    train_pairs = {**train_pairs, **{k: np.asarray(v) for k, v in ref.items()}}

    def pair_batch(t, size):
        idx = np.random.default_rng((config.seed, 3, t)).choice(config.prefs.num_pairs, size, replace=False)
        return {k: v[idx] for k, v in train_pairs.items()}

    eval_prompts = world.prompts(np.random.default_rng((config.seed, 4)), config.eval.num_prompts)
    eval_key = jax.random.fold_in(key, 5)
    sft_stats = policy_stats(apply_fn, sft_params, sft_params, world, eval_prompts, eval_key)

    # 3. DPO for each beta (reference: the frozen SFT model, its log-probs precomputed).
    dpo_points = []
    h_ids = (heldout_pairs["chosen_ids"], heldout_pairs["rejected_ids"])
    differs = r_chosen != r_rejected
    # One compiled step serves every beta: each batch carries its beta.
    opt = optax.adam(config.dpo.lr)
    step = make_train_step(make_dpo_loss_fn(apply_fn, loss_type=config.dpo.loss_type), opt)
    for beta in config.dpo.betas:
        def beta_batch(t, beta=np.float32(beta)):
            return {**pair_batch(t, config.dpo.batch_size), "beta": beta}

        out = fit(TrainState.create(frozen_reference(sft_params), opt), step, beta_batch, num_steps=config.dpo.num_steps,
                  workdir=workdir / f"dpo_beta{beta:g}", checkpoint_every=max(config.dpo.num_steps // 2, 1),
                  keep_checkpoints=1, fingerprint=fp, log_every=max(config.dpo.num_steps // 20, 1),
                  progress=progress, desc=f"dpo beta={beta:g}")
        stats = policy_stats(apply_fn, out.state.params, sft_params, world, eval_prompts, eval_key)
        implicit = [beta * (_completion_logps(apply_fn, out.state.params, jnp.asarray(x), width)
                            - _completion_logps(apply_fn, sft_params, jnp.asarray(x), width)) for x in h_ids]
        agree = np.sign(np.asarray(implicit[0] - implicit[1])) == np.sign(r_chosen - r_rejected)
        dpo_points.append({"beta": beta, **stats, "implicit_accuracy": float(agree[differs].mean()),
                           "implicit_margin": np.asarray(implicit[0] - implicit[1]).tolist()})

    # 4. Baselines. Preferred-FT: SFT continued on the chosen completions, evaluated along the way.
    pft_points = []
    pft_steps = sorted(config.baselines.preferred_ft_steps)

    def pft_batch(t):
        b = pair_batch(t, config.dpo.batch_size)
        return {"tokens": b["chosen_ids"], "loss_mask": np.broadcast_to(loss_mask, b["chosen_ids"].shape)}

    def record(done, state, metrics):
        if done in pft_steps:
            stats = policy_stats(apply_fn, state.params, sft_params, world, eval_prompts, eval_key)
            pft_points.append({"steps": done, **stats})

    # No checkpoints here: the sweep's points are recorded along the way, so it always runs whole.
    _lm_fit(model, sft_params, pft_batch, pft_steps[-1], config.baselines.preferred_ft_lr, None, fp, progress,
            "preferred-ft",
            callbacks=[record])

    # Best-of-N from the SFT model; KL(best-of-N || SFT) = log N - (N - 1)/N.
    n_max = max(config.baselines.best_of_n)
    samples = jnp.stack([_sample(apply_fn, sft_params, eval_prompts, jax.random.fold_in(key, 1000 + i))
                         for i in range(n_max)])
    rewards = np.asarray(world.reward(samples))  # (n_max, prompts)
    bon_points = [{"n": n, "reward": float(rewards[:n].max(0).mean()), "kl": float(np.log(n) - (n - 1) / n)}
                  for n in config.baselines.best_of_n]

    # 5. Verdicts.
    kls = np.array([p["kl"] for p in pft_points] + [0.0])
    rews = np.array([p["reward"] for p in pft_points] + [sft_stats["reward"]])
    order = np.argsort(kls)
    envelope = np.maximum.accumulate(rews[order])
    all_rewards = [p["reward"] for p in dpo_points + pft_points + bon_points] + [sft_stats["reward"]]
    tol = config.eval.frontier_tolerance * (max(all_rewards) - min(all_rewards))
    gaps = [p["reward"] - float(np.interp(p["kl"], kls[order], envelope)) for p in dpo_points]
    comparable = [g for p, g in zip(dpo_points, gaps) if p["kl"] <= kls.max()]
    bon_kl = np.array([p["kl"] for p in bon_points])
    bon_r = np.array([p["reward"] for p in bon_points])
    accuracies = [p["implicit_accuracy"] for p in dpo_points]
    findings = [
        reproduce.Finding(
            "frontier",
            f"min gap {min(comparable):+.2f} over {len(comparable)} points (tolerance -{tol:.2f})" if comparable
            else "no DPO point inside Preferred-FT's KL range",
            bool(comparable) and min(comparable) >= -tol,
            "; ".join(
                f"beta {p['beta']:g}: reward {p['reward']:.2f} at KL {p['kl']:.2f} (vs Preferred-FT {g:+.2f}"
                + (f", vs best-of-N {p['reward'] - float(np.interp(p['kl'], bon_kl, bon_r)):+.2f}"
                   if p["kl"] <= bon_kl.max() else "")
                + ")"
                for p, g in zip(dpo_points, gaps)
            ) + f"; Preferred-FT reaches KL {kls.max():.2f}",
        ),
        reproduce.Finding(
            "implicit_reward", f"{np.median(accuracies):.3f}", float(np.median(accuracies)) >= config.eval.min_implicit_accuracy,
            "; ".join(f"beta {p['beta']:g}: {p['implicit_accuracy']:.3f}" for p in dpo_points)
            + f" ({int(differs.sum())} held-out pairs with distinct true rewards)",
        ),
    ]
    figure = _plot(sft_stats, dpo_points, pft_points, bon_points, r_chosen - r_rejected, differs,
                   workdir / "dpo_frontier.png")
    for p in dpo_points:
        p.pop("implicit_margin")
    return reproduce.Result(
        findings=findings,
        metrics={"sft": sft_stats, "dpo": dpo_points, "preferred_ft": pft_points, "best_of_n": bon_points},
        figures=[figure.name],
    )


def _plot(sft_stats, dpo_points, pft_points, bon_points, true_diff, differs, path: Path) -> Path:
    fig = Figure(figsize=(12, 4.6))
    ax1, ax2 = fig.subplots(1, 2)
    ax1.plot([p["kl"] for p in dpo_points], [p["reward"] for p in dpo_points], "o-", color="C3", label="DPO (beta sweep)")
    for p in dpo_points:
        ax1.annotate(f"β={p['beta']:g}", (p["kl"], p["reward"]), textcoords="offset points", xytext=(4, -10), fontsize=8)
    ax1.plot([0] + [p["kl"] for p in pft_points], [sft_stats["reward"]] + [p["reward"] for p in pft_points], "s-",
             color="C0", label="Preferred-FT (steps sweep)")
    ax1.plot([p["kl"] for p in bon_points], [p["reward"] for p in bon_points], "^--", color="C2", label="best-of-N (SFT)")
    ax1.plot([0], [sft_stats["reward"]], "k*", markersize=12, label="SFT")
    ax1.set(xlabel="KL(π || π_ref) [nats]", ylabel="true reward", title="reward vs KL frontier")
    ax1.legend(fontsize=8)
    mid = dpo_points[len(dpo_points) // 2]
    ax2.scatter(true_diff[differs], np.asarray(mid["implicit_margin"])[differs], s=8, alpha=0.5)
    ax2.axhline(0, color="gray", lw=0.5)
    ax2.axvline(0, color="gray", lw=0.5)
    ax2.set(xlabel="true reward: chosen − rejected", ylabel="implicit reward: chosen − rejected",
            title=f"held-out pairs, β={mid['beta']:g} (accuracy {mid['implicit_accuracy']:.2f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def validate(config: ml_collections.ConfigDict) -> None:
    """Config values the run cannot use, as :class:`ConfigError` naming the key (the CLI calls it first)."""
    types = (config.dpo.loss_type,) if isinstance(config.dpo.loss_type, str) else tuple(config.dpo.loss_type)
    unknown = [t for t in types if t not in LOSS_TYPES]
    if unknown or not types:
        raise ConfigError(f"dpo.loss_type: unknown {unknown or config.dpo.loss_type!r}; valid: {', '.join(LOSS_TYPES)}")
    if not config.dpo.betas or not all(b > 0 for b in config.dpo.betas):
        raise ConfigError(f"dpo.betas must be a non-empty list of numbers > 0, got {list(config.dpo.betas)}")
    if not config.baselines.preferred_ft_steps or not config.baselines.best_of_n:
        raise ConfigError("baselines.preferred_ft_steps and baselines.best_of_n must be non-empty")
    if config.dpo.batch_size > config.prefs.num_pairs:
        raise ConfigError(f"dpo.batch_size ({config.dpo.batch_size}) must be <= prefs.num_pairs ({config.prefs.num_pairs})")


REPRODUCTION = reproduce.register(
    reproduce.Reproduction(
        name=NAME,
        title="DPO vs RL-free baselines on controlled generation with a known reward",
        paper="Rafailov, Sharma, Mitchell, Ermon, Manning, Finn. Direct Preference Optimization: Your Language "
        "Model is Secretly a Reward Model. NeurIPS 2023",
        claims=CLAIMS,
        config="dpo",
        run=run,
        notebook="colab/dpo.ipynb",
        validate=validate,
    )
)
