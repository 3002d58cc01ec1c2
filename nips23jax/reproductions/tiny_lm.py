"""tiny-lm: the shared Transformer learns multi-digit addition with the shared training loop.

The framework's own end-to-end check: model, sharded train step, resumable loop, checkpoints,
evaluation, report. Config: ``configs/tiny_lm.py``.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from matplotlib.figure import Figure  # not pyplot: leaves the user's backend (e.g. inline) alone
import optax

from nips23jax.core import reproduce
from nips23jax.core.config import ConfigError, config_fingerprint
from nips23jax.core.sharding import batch_sharding, make_mesh, param_shardings, shard_batch
from nips23jax.core.train import TrainState, fit, make_train_step, warmup_cosine
from nips23jax.data.arithmetic import ArithmeticTask, exact_match, predict_answers
from nips23jax.models.lm import LMApply, heldout_lm_loss, masked_lm_loss
from nips23jax.models.transformer import TransformerConfig, TransformerLM

NAME = "tiny-lm"
CLAIMS = (
    reproduce.Claim(
        key="learns",
        statement="A 2-layer Transformer trained with the shared loop solves held-out multi-digit addition",
        paper_value=None,
        criterion="exact match on held-out problems >= {config.eval.min_exact_match}",
    ),
    reproduce.Claim(
        key="loss_drop",
        statement="Held-out answer loss falls by an order of magnitude from initialization",
        paper_value=None,
        criterion="initial / final held-out loss >= {config.eval.min_loss_drop}",
    ),
)


def build(config: ml_collections.ConfigDict):
    """Task, model, mesh, sharded initial state, train step and batch function for ``config``."""
    task = ArithmeticTask(config.task.op, config.task.num_digits, config.task.reverse_answer)
    model_cfg = TransformerConfig(
        vocab_size=task.tokenizer.vocab_size,
        max_len=task.seq_len,
        **{k: config.model[k] for k in ("d_model", "num_heads", "num_layers", "d_ff", "tied_head", "dropout")},
    )
    model = TransformerLM(model_cfg)
    mesh = make_mesh({a: config.mesh[a] for a in ("data", "fsdp", "tensor")})

    schedule = warmup_cosine(config.train.lr, config.train.num_steps, config.train.warmup_steps)
    optimizer = optax.chain(
        optax.clip_by_global_norm(config.train.max_grad_norm),
        optax.adamw(schedule, weight_decay=config.train.weight_decay),
    )
    init_key, dropout_key = jax.random.split(jax.random.key(config.seed))
    dummy = jnp.zeros((1, task.seq_len), jnp.int32)
    abstract = jax.eval_shape(lambda: TrainState.create(model.init(init_key, dummy)["params"], optimizer))
    state_sharding = jax.tree.map(lambda s: s.sharding, _with_shardings(abstract, mesh))
    state = jax.jit(
        lambda: TrainState.create(model.init(init_key, dummy)["params"], optimizer), out_shardings=state_sharding
    )()

    def loss_fn(params, batch, key):
        logits = model.apply(
            {"params": params}, batch["tokens"], deterministic=config.model.dropout == 0.0, rngs={"dropout": key}
        )
        return masked_lm_loss(logits, batch["tokens"], batch["loss_mask"])

    train_step = make_train_step(
        loss_fn, optimizer, key=dropout_key, state_shardings=state_sharding, batch_shardings=batch_sharding(mesh)
    )

    def batch_fn(step: int):
        b = task.batch(seed=config.seed, step=step, batch_size=config.train.batch_size)
        return shard_batch({"tokens": b["tokens"], "loss_mask": b["loss_mask"]}, mesh)

    return task, model, mesh, state, train_step, batch_fn


def _with_shardings(abstract_state, mesh):
    shardings = param_shardings(abstract_state, mesh)
    return jax.tree.map(
        lambda s, sh: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sh), abstract_state, shardings
    )


def evaluate(model, params, task: ArithmeticTask, batch) -> dict[str, float]:
    """Held-out answer loss, token accuracy and greedy exact match on ``batch``."""
    apply_fn = LMApply(model)
    loss, aux = heldout_lm_loss(apply_fn, params, jnp.asarray(batch["tokens"]), jnp.asarray(batch["loss_mask"]))
    pred = predict_answers(apply_fn, params, task, batch)
    return {
        "loss": float(loss),
        "token_accuracy": float(aux["token_accuracy"]),
        "exact_match": float(exact_match(pred, batch["answer"]).mean()),
    }


def run(config: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True) -> reproduce.Result:
    """Trains (resuming from ``workdir`` if a run with this config is there), evaluates, plots."""
    validate(config)  # the CLI calls it too, before any run; a direct call (the notebooks) checks here
    workdir = Path(workdir)
    task, model, _, state, train_step, batch_fn = build(config)
    rng = np.random.default_rng((config.seed, 10**9))  # held-out stream, disjoint from train steps
    heldout = task.sample(rng, config.eval.num_examples)
    initial = evaluate(model, state.params, task, heldout)

    out = fit(
        state,
        train_step,
        batch_fn,
        num_steps=config.train.num_steps,
        workdir=workdir / "run",
        checkpoint_every=config.train.checkpoint_every,
        keep_checkpoints=config.train.keep_checkpoints,
        fingerprint=config_fingerprint(config),
        eval_fn=lambda s: evaluate(model, s.params, task, heldout),
        eval_every=config.train.eval_every,
        log_every=config.train.log_every,
        progress=progress,
        desc=NAME,
    )
    test = task.sample(np.random.default_rng((config.seed, 10**9 + 1)), config.eval.num_test)
    final = evaluate(model, out.state.params, task, test)
    drop = initial["loss"] / max(final["loss"], 1e-12)

    figure = _plot(out.log, workdir / "loss.png")
    pred = predict_answers(LMApply(model), out.state.params, task, test)
    tok = task.tokenizer
    examples = []
    for i in range(min(8, len(test["tokens"]))):
        prompt = tok.decode(test["tokens"][i, : task.prompt_len])
        examples.append(f"{prompt}{tok.decode(pred[i])} (target {tok.decode(test['answer'][i])})")

    findings = [
        reproduce.Finding(
            "learns",
            f"{final['exact_match']:.3f}",
            final["exact_match"] >= config.eval.min_exact_match,
            f"{config.eval.num_test} held-out {config.task.num_digits}-digit problems; "
            f"token accuracy {final['token_accuracy']:.3f}",
        ),
        reproduce.Finding(
            "loss_drop",
            f"{drop:.1f}x",
            drop >= config.eval.min_loss_drop,
            f"held-out loss {initial['loss']:.3f} at init -> {final['loss']:.4f}",
        ),
    ]
    return reproduce.Result(
        findings=findings,
        metrics={
            "initial": initial,
            "final": final,
            "loss_drop": drop,
            "num_params": model.config.num_params(),
            "resumed_from": out.resumed_from,
            "steps": int(out.state.step),
        },
        figures=[figure.name],
        notes="Sample outputs (answers written least-significant digit first when reversed):\n\n"
        + "\n".join(f"    {e}" for e in examples),
    )


def _plot(log, path: Path) -> Path:
    fig = Figure(figsize=(10, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    steps, loss = log.series("loss", "train")
    ax1.semilogy(steps, loss, label="train")
    es, el = log.series("loss", "eval")
    ax1.semilogy(es, el, "o-", label="held-out")
    ax1.set(xlabel="step", ylabel="answer cross-entropy", title="loss")
    ax1.legend()
    es, em = log.series("exact_match", "eval")
    ax2.plot(es, em, "o-", color="C2")
    ax2.set(xlabel="step", ylabel="exact match", ylim=(-0.02, 1.02), title="held-out exact match")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def validate(config: ml_collections.ConfigDict) -> None:
    """Config values the run cannot use, as :class:`ConfigError` naming the key (the CLI calls it first)."""
    try:
        ArithmeticTask(config.task.op, config.task.num_digits, config.task.reverse_answer)
    except ValueError as e:
        raise ConfigError(f"task: {e}") from None


REPRODUCTION = reproduce.register(
    reproduce.Reproduction(
        name=NAME,
        title="the shared Transformer learns multi-digit addition (framework end-to-end check)",
        paper="(framework check; no paper)",
        claims=CLAIMS,
        config="tiny_lm",
        run=run,
        notebook="colab/tiny_lm.ipynb",
        validate=validate,
    )
)
