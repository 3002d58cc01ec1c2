"""emergence: Schaeffer, Miranda & Koyejo (NeurIPS 2023), "Are Emergent Abilities of Large Language Models a Mirage?".

A family of tiny Transformers (the shared ``TransformerLM``) of increasing width and depth is trained
with the shared loop on multi-digit integer arithmetic. The same greedy answers of every model are
scored with exact match (nonlinear in per-token accuracy) and token edit distance (linear), and
BIG-bench's emergence score compares the two curves. The answers of a much larger test set resolve
the small models' small accuracies (the paper's Fig. 4); the analytic model is simulated and scored
with the same metrics; and a multiple-choice panel compares multiple-choice grade with Brier score
(the correct answer against the answers of other problems, as in BIG-bench's arithmetic task;
choice probabilities from the model's sequence likelihoods normalized over the options). The panel
uses a second family of the same architectures trained on multiplication: on addition these tiny
models learn the carry in one jump (their per-token cross-entropy stays flat, then collapses), so
every metric of them is sharp and the panel could not tell the metrics apart; multiplication is
learned by memorizing more of its table with more parameters, and its cross-entropy falls
gradually with scale, the smooth underlying capability the paper's argument starts from.
Config: ``configs/emergence.py``.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from matplotlib.figure import Figure

from nips23jax.core import reproduce
from nips23jax.core.compile import compile_fast, compiled_on_first_call
from nips23jax.core.config import ConfigError, config_fingerprint
from nips23jax.core.train import TrainState, fit, make_train_step, warmup_cosine
from nips23jax.data.arithmetic import ArithmeticTask
from nips23jax.emergence import (
    analytic_edit_distance,
    analytic_exact_match,
    bootstrap_ci,
    brier_score,
    emergence_score,
    exact_match,
    items_to_resolve,
    multiple_choice_grade,
    per_token_cross_entropy,
    power_law_cross_entropy,
    resolution,
    sequence_log_likelihood,
    token_edit_distance,
    token_probability,
)
from nips23jax.models.lm import LMApply, generate, lm_loss_fn
from nips23jax.models.transformer import TransformerConfig, TransformerLM

NAME = "emergence"

CLAIMS = (
    reproduce.Claim(
        "mirage",
        "On the same model outputs, exact match rises sharply with scale while token edit distance "
        "falls smoothly: the 'emergence' is the metric's",
        "sharp under exact match, smooth under edit distance (Fig. 3)",
        "|emergence score| under exact match >= {config.criteria.min_score_ratio} x that under token edit "
        "distance, same greedy answers of >= 5 models spanning >= 30x parameters",
    ),
    reproduce.Claim(
        "resolution",
        "A larger test set resolves the small models' accuracies that a small one reads as zero",
        "above-chance accuracy for all models once resolved (Fig. 4)",
        "some model has exact match 0 on the first {config.eval.num_small} test items, and every model has "
        "exact match > 0 on all {config.eval.num_test}",
    ),
    reproduce.Claim(
        "analytic",
        "With independent per-token errors, exact match is p^L (nonlinear in the per-token accuracy p) "
        "and token edit distance about L(1-p) (linear)",
        "Accuracy ~ p^L, token edit distance ~ L(1-p) (Eqs. 3-4, Fig. 2)",
        "outputs simulated from L_CE(N) = (N/c)^alpha and scored by our exact_match and token_edit_distance "
        "lie within {config.criteria.analytic_tolerance} of p^L and of L(1-p)/L at every N",
    ),
    reproduce.Claim(
        "multiple_choice",
        "Multiple-choice grade looks sharper across scale than the Brier score of the same choices",
        "emergent under multiple-choice grade, not under Brier score (Fig. 6)",
        "|emergence score| multiple-choice grade >= {config.criteria.min_score_ratio} x that under Brier score, "
        "same choices of a family (the architectures above) trained on {config.multiple_choice.num_digits}-digit "
        "{config.multiple_choice.op}",
    ),
)


# ----------------------------------------------------------------------------- data


def _check_int32(task: ArithmeticTask) -> None:
    """Raises unless every answer of ``task`` fits the int32 that :func:`encode_operands` computes in."""
    n = task.num_digits
    largest = (10**n - 1) ** 2 if task.op == "mul" else 2 * (10**n - 1)
    if largest >= 2**31:
        raise ValueError(f"encode_operands: {n}-digit {task.op} answers overflow int32 (up to {largest}); use "
                         f"num_digits <= {4 if task.op == 'mul' else 9}")


def encode_operands(task: ArithmeticTask, a: jax.Array, b: jax.Array) -> jax.Array:
    """``task.encode(a, b)["tokens"]`` computed with array ops, so batches can be drawn inside jit.

    Args:
      task: the arithmetic task (operands must fit int32: ``num_digits <= 4``).
      a, b: ``(B,)`` int operands in ``[0, 10^num_digits)``.

    Returns:
      ``(B, task.seq_len)`` int32 tokens ``<bos> a op b = answer <eos>``.
    """
    _check_int32(task)
    tok = task.tokenizer
    n = task.num_digits
    a = jnp.asarray(a, jnp.int32)
    b = jnp.asarray(b, jnp.int32)
    c = a + b if task.op == "add" else a * b

    def digits(x, width):  # most significant first
        powers = 10 ** jnp.arange(width - 1, -1, -1, dtype=jnp.int32)
        return (x[:, None] // powers[None]) % 10

    answer = digits(c, task.answer_len)
    if task.reverse_answer:
        answer = answer[:, ::-1]
    zero = tok.encode("0")[0]
    col = lambda i: jnp.full((a.shape[0], 1), i, jnp.int32)  # noqa: E731
    op_id = tok.encode("+" if task.op == "add" else "*")[0]
    return jnp.concatenate(
        [col(tok.bos_id), digits(a, n) + zero, col(op_id), digits(b, n) + zero, col(tok.encode("=")[0]),
         answer + zero, col(tok.eos_id)], axis=1,
    )


def multiple_choice_items(
    rng: np.random.Generator, answer: np.ndarray, num_choices: int
) -> tuple[np.ndarray, np.ndarray]:
    """Choices for a multiple-choice version of the task: the answer among answers to other problems.

    As in BIG-bench's arithmetic task (whose choices are the answer and other numbers), each item's
    ``num_choices - 1`` distractors are the answers of other, uniformly drawn items of the batch:
    numbers the task itself produces (right width, plausible leading digits), distinct from the
    answer and from each other, so a choice can only be told apart by the arithmetic, not by its
    format. The correct answer sits at a uniform random index.

    Args:
      rng: NumPy generator.
      answer: ``(B, L)`` answer token ids, with at least ``num_choices`` distinct rows.
      num_choices: ``K >= 2``.

    Returns:
      ``choices (B, K, L)`` token ids and ``correct (B,)`` int32 indices.
    """
    answer = np.asarray(answer)
    if answer.ndim != 2:
        raise ValueError(f"multiple_choice_items: answer must be (batch, length), got shape {answer.shape}")
    if num_choices < 2:
        raise ValueError(f"multiple_choice_items: num_choices must be >= 2, got {num_choices}")
    bsz = answer.shape[0]
    _, ids = np.unique(answer, axis=0, return_inverse=True)
    ids = ids.reshape(-1)
    if ids.max(initial=-1) + 1 < num_choices:
        raise ValueError(
            f"multiple_choice_items: answer has {ids.max(initial=-1) + 1} distinct rows, need num_choices={num_choices}"
        )
    wrong = np.empty((bsz, num_choices - 1), np.int64)  # rows of ``answer`` used as distractors
    for i in range(bsz):
        seen, k = {ids[i]}, 0
        while k < num_choices - 1:
            j = int(rng.integers(bsz))
            if ids[j] not in seen:
                seen.add(ids[j])
                wrong[i, k] = j
                k += 1
    correct = rng.integers(0, num_choices, bsz).astype(np.int32)
    choices = np.empty((bsz, num_choices, answer.shape[1]), answer.dtype)
    for k in range(num_choices):  # insert the answer at ``correct``; distractors fill the rest in order
        src = np.clip(k - (k > correct), 0, num_choices - 2)
        choices[:, k] = np.where((k == correct)[:, None], answer, answer[wrong[np.arange(bsz), src]])
    return choices, correct


def training_batches(task: ArithmeticTask, key: jax.Array, batch_size: int, num_batches: int, step: jax.Array) -> jax.Array:
    """The training problems of one logged step: ``num_batches`` batches of uniform operands.

    Batch ``k`` of step ``s`` draws ``a, b ~ U{0, ..., 10^num_digits - 1}`` from
    ``split(fold_in(fold_in(key, s), k))``: a deterministic function of ``(key, s, k)`` (bit-exact
    resume), the same for every model trained with ``key`` (a family sees the same problems).

    Args:
      task: the arithmetic task (``num_digits <= 4``).
      key: PRNG key of the training stream.
      batch_size: problems per batch ``B``.
      num_batches: batches ``U`` (optimizer updates of the step).
      step: int scalar, the logged step ``s``.

    Returns:
      ``(U, B, task.seq_len)`` int32 tokens (:func:`encode_operands`).
    """
    hi = 10**task.num_digits

    def one(k):
        ka, kb = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, step), k))
        return encode_operands(task, jax.random.randint(ka, (batch_size,), 0, hi),
                               jax.random.randint(kb, (batch_size,), 0, hi))

    return jax.vmap(one)(jnp.arange(num_batches))


# ----------------------------------------------------------------------------- models


def family(config: ml_collections.ConfigDict, task: ArithmeticTask) -> list[TransformerConfig]:
    """The model family: one ``TransformerConfig`` per entry of ``config.family``."""
    f = config.family
    n = len(f.d_model)
    if not all(len(f[k]) == n for k in ("num_layers", "num_heads", "lr")):
        raise ValueError("emergence: family.d_model, num_layers, num_heads and lr must have equal lengths")
    return [
        TransformerConfig(vocab_size=task.tokenizer.vocab_size, d_model=d, num_heads=h, num_layers=nl,
                          max_len=task.seq_len)
        for d, nl, h in zip(f.d_model, f.num_layers, f.num_heads)
    ]


def _train(
    config, task, model_cfg: TransformerConfig, lr: float, index: int, workdir: Path, progress: bool,
    programs: dict | None = None, train: ml_collections.ConfigDict | None = None,
):
    """Trains one model of the family on ``task`` with the shared loop; one logged step =
    ``updates_per_step`` updates; ``train`` (default ``config.train``) sets the schedule.

    ``programs`` (a dict the caller keeps for one family) holds the compiled initialization and
    update programs per ``(model_cfg, lr, task, schedule)``: members of a family that share an
    architecture and learning rate (the initial key is an argument) compile them once. The training
    problems (:func:`training_batches`) are drawn by one program per ``(task, schedule, seed)`` that
    every member shares, outside the update program: drawing them inside it cost each architecture
    about a quarter of its update program's compile time.
    """
    t = config.train if train is None else train
    model = TransformerLM(model_cfg)
    total = t.num_steps * t.updates_per_step
    opt = optax.chain(
        optax.clip_by_global_norm(t.max_grad_norm),
        optax.adamw(warmup_cosine(lr, total, t.warmup), weight_decay=t.weight_decay),
    )
    init_key = jax.random.fold_in(jax.random.key(config.seed), 1 + index)
    data_key = jax.random.key(config.seed)  # every model sees the same problems
    update = make_train_step(lm_loss_fn(model), opt, jit=False)
    loss_mask = jnp.arange(task.seq_len)[None, :] >= task.prompt_len

    def many_updates(state, batch):
        def body(s, tokens):
            return update(s, {"tokens": tokens, "loss_mask": jnp.broadcast_to(loss_mask, tokens.shape)})

        s, metrics = jax.lax.scan(body, state, batch["tokens"])
        return s.replace(step=state.step + 1), jax.tree.map(jnp.mean, metrics)

    run_cfg = ml_collections.ConfigDict(
        {"task": dataclasses.asdict(task), "train": t.to_dict(), "lr": lr, "model": repr(model_cfg), "seed": config.seed,
         "index": index}
    )
    # One compiled call builds the initial state: initializing eagerly compiles dozens of small
    # per-shape programs, which costs more than training these models.
    def init_state(key):
        params = model.init(key, jnp.zeros((1, task.seq_len), jnp.int32))["params"]
        return TrainState.create(params, opt)

    programs = {} if programs is None else programs
    # The problems do not depend on the model: one program draws them for every member of the family.
    data = ("data", task, t.batch_size, t.updates_per_step, config.seed)
    if data not in programs:
        programs[data] = compiled_on_first_call(
            jax.jit(partial(training_batches, task, data_key, t.batch_size, t.updates_per_step)), config.fast_compile
        )
    draw = programs[data]
    key = ("train", model_cfg, float(lr), task, config_fingerprint(t))
    if key not in programs:
        programs[key] = (
            compile_fast(jax.jit(init_state), init_key, fast=config.fast_compile),
            compiled_on_first_call(jax.jit(many_updates, donate_argnums=0), config.fast_compile),
        )
    init_program, update_program = programs[key]
    state = init_program(init_key)
    out = fit(
        state,
        update_program,
        lambda step: {"tokens": draw(np.int32(step))},
        num_steps=t.num_steps,
        workdir=workdir,
        checkpoint_every=t.checkpoint_every,
        keep_checkpoints=1,
        fingerprint=config_fingerprint(run_cfg),
        log_every=1,
        progress=progress,
        desc=f"{NAME} {task.op} d={model_cfg.d_model} L={model_cfg.num_layers}",
    )
    return model, out


# ----------------------------------------------------------------------------- evaluation


@partial(jax.jit, static_argnums=(0, 1, 2))
def _evaluate_chunk(apply_fn, prompt_len: int, answer_len: int, params, scored):
    """One compiled evaluation call: greedy answers to the prompts of the full sequences ``scored``
    ``(C, T)``, and the answers' log-likelihood and per-token cross-entropy under teacher forcing."""
    pred = generate(apply_fn, params, scored[:, :prompt_len], jax.random.key(0), max_new_tokens=answer_len)
    return (pred, *_score_chunk(apply_fn, prompt_len, answer_len, params, scored))


@partial(jax.jit, static_argnums=(0, 1, 2))
def _score_chunk(apply_fn, prompt_len: int, answer_len: int, params, scored):
    """One compiled scoring call: the answer log-likelihood ``(C,)`` and per-token cross-entropy ``(C,)``
    of the full sequences ``scored`` ``(C, T)`` (teacher forcing)."""
    logits = apply_fn(params, scored)[:, prompt_len - 1 : prompt_len - 1 + answer_len]
    targets = scored[:, prompt_len : prompt_len + answer_len]
    return sequence_log_likelihood(logits, targets), per_token_cross_entropy(logits, targets)


def _chunked(fn, static: tuple, program_key, model, params, tokens: np.ndarray, chunk: int, fast_compile: bool,
             programs):
    """``fn(*static, params, tokens[j:j+chunk])`` over ``chunk``-row pieces of ``tokens`` ``(M, T)`` (the last
    piece zero-padded, so one program serves every call), outputs concatenated and trimmed to ``M`` rows.
    With ``fast_compile`` on CPU the program is compiled once per ``program_key`` into ``programs``."""
    m = tokens.shape[0]
    pad = -m % chunk
    tokens = np.concatenate([tokens, np.zeros((pad, tokens.shape[1]), tokens.dtype)]) if pad else tokens
    call = partial(fn, *static)
    if fast_compile and jax.default_backend() == "cpu":
        programs = {} if programs is None else programs
        key = (program_key, model.config, tokens.shape[1], chunk)
        if key not in programs:
            programs[key] = compile_fast(fn, *static, params, jnp.zeros((chunk, tokens.shape[1]), jnp.int32))
        call = programs[key]
    outs = [call(params, jnp.asarray(tokens[j : j + chunk], jnp.int32)) for j in range(0, tokens.shape[0], chunk)]
    return [np.concatenate([np.asarray(o[i]) for o in outs])[:m] for i in range(len(outs[0]))]


def evaluate_model(
    model, params, task: ArithmeticTask, test: dict, chunk: int, fast_compile: bool = False,
    programs: dict | None = None,
) -> dict[str, np.ndarray]:
    """Per-item metrics of one model's greedy answers to the test problems.

    The answers are scored with exact match and token edit distance against the targets; the
    targets' per-token cross-entropy comes from the same compiled call (teacher forcing).

    Args:
      model: the ``TransformerLM``.
      params: its parameters.
      task: the arithmetic task.
      test: ``{"tokens": (M, T), "answer": (M, L)}`` from ``task.sample``.
      chunk: prompts per compiled call.
      fast_compile: on CPU, compile the evaluation program at XLA optimization level 0.
      programs: a dict kept across calls: models of one architecture share the compiled program.

    Returns:
      ``pred (M, L)`` and per item ``exact_match``, ``edit_distance``, ``token_accuracy`` and
      ``cross_entropy`` (nats per answer token).
    """
    static = (LMApply(model), task.prompt_len, task.answer_len)
    tokens = np.asarray(test["tokens"])
    pred, _, ce = _chunked(_evaluate_chunk, static, ("evaluate", task), model, params, tokens, chunk, fast_compile, programs)
    answer = test["answer"]
    return {
        "pred": pred,
        "exact_match": np.asarray(exact_match(pred, answer)),
        "edit_distance": np.asarray(token_edit_distance(pred, answer)).astype(np.float32),
        "token_accuracy": (pred == answer).mean(-1),
        "cross_entropy": ce,
    }


def evaluate_choices(
    model, params, task: ArithmeticTask, mc: dict, chunk: int, fast_compile: bool = False,
    programs: dict | None = None,
) -> dict[str, np.ndarray]:
    """Per-item multiple-choice metrics of one model: every choice's answer log-likelihood (teacher
    forcing), normalized over the choices as BIG-bench scores multiple-choice tasks.

    Args:
      model, params, task, chunk, fast_compile, programs: as :func:`evaluate_model`.
      mc: ``{"tokens": (B, K, T), "correct": (B,)}``: each item's prompt followed by each of its ``K``
        choices (:func:`multiple_choice_items`), and the index of the correct one.

    Returns:
      per item ``mc_grade``, ``brier``, ``mc_prob`` (the normalized probability of the correct choice)
      and ``cross_entropy`` (per answer token, of the correct choice).
    """
    b, k, tlen = mc["tokens"].shape
    static = (LMApply(model), task.prompt_len, task.answer_len)
    tokens = np.asarray(mc["tokens"]).reshape(b * k, tlen)
    ll, ce = _chunked(_score_chunk, static, ("score", task), model, params, tokens, chunk, fast_compile, programs)
    ll, correct = jnp.asarray(ll.reshape(b, k)), jnp.asarray(mc["correct"])
    return {
        "mc_grade": np.asarray(multiple_choice_grade(ll, correct)),
        "brier": np.asarray(brier_score(ll, correct)),
        "mc_prob": np.asarray(jax.nn.softmax(ll, axis=1))[np.arange(b), mc["correct"]],
        "cross_entropy": ce.reshape(b, k)[np.arange(b), mc["correct"]],
    }


def multiple_choice_set(config: ml_collections.ConfigDict) -> tuple[ArithmeticTask, dict]:
    """The multiple-choice panel's task and items: ``config.multiple_choice.num_items`` fixed problems
    (a NumPy stream apart from training), each with the answers of other items as distractors.

    Returns:
      ``(task, {"tokens": (B, K, T), "correct": (B,)})``.
    """
    c = config.multiple_choice
    task = ArithmeticTask(c.op, c.num_digits, config.task.reverse_answer)
    items = task.sample(np.random.default_rng((config.seed, 10**9 + 2)), c.num_items)
    choices, correct = multiple_choice_items(np.random.default_rng((config.seed, 10**9 + 1)), items["answer"],
                                             c.num_choices)
    tokens = np.repeat(items["tokens"][:, None], c.num_choices, axis=1)
    tokens[:, :, task.prompt_len : task.prompt_len + task.answer_len] = choices
    return task, {"tokens": tokens, "correct": correct}


def simulate_analytic(config: ml_collections.ConfigDict, key: jax.Array) -> dict[str, np.ndarray]:
    """Samples outputs from the analytic model and scores them with our metrics.

    For each ``N`` on a log grid: ``p = exp(-(N/c)^alpha)``; each of ``L`` answer tokens is right
    with probability ``p`` and otherwise a uniformly random wrong digit; the samples are scored with
    :func:`exact_match` and :func:`token_edit_distance` against the target.
    """
    a = config.analytic
    n_grid = np.logspace(np.log10(a.n_min), np.log10(a.n_max), a.num_points)
    p = np.asarray(token_probability(power_law_cross_entropy(n_grid, a.c, a.alpha)))
    em, ed = _simulate(key, jnp.asarray(p, jnp.float32), a.num_items, a.length)
    return {
        "num_params": n_grid,
        "p": p,
        "exact_match": np.asarray(em),
        "edit_distance": np.asarray(ed),
        "exact_match_closed_form": np.asarray(analytic_exact_match(p, a.length)),
        "edit_distance_closed_form": np.asarray(analytic_edit_distance(p, a.length)),
    }


@partial(jax.jit, static_argnums=(2, 3))
def _simulate(key, p, num_items: int, length: int):
    k_target, k_ok, k_wrong = jax.random.split(key, 3)
    g = p.shape[0]
    target = jax.random.randint(k_target, (g * num_items, length), 0, 10)
    ok = jax.random.bernoulli(k_ok, jnp.repeat(p, num_items)[:, None], target.shape)
    pred = jnp.where(ok, target, (target + jax.random.randint(k_wrong, target.shape, 1, 10)) % 10)
    em = exact_match(pred, target).reshape(g, num_items).mean(1)
    ed = token_edit_distance(pred, target).reshape(g, num_items).mean(1)
    return em, ed


def _fmt_score(x: float) -> str:
    return "inf" if not np.isfinite(x) else f"{x:.2f}"


def _ratio(num: float, den: float) -> float:
    """``|num| / |den|``; NaN (a failed comparison) when either is NaN or both are infinite (both metrics
    saturated: neither is smoother than the other)."""
    num, den = abs(num), abs(den)
    if np.isnan(num) or np.isnan(den) or (np.isinf(num) and np.isinf(den)):
        return np.nan
    if np.isinf(num):
        return np.inf
    return num / den if den > 0 else (np.inf if num > 0 else 1.0)


def run(config: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True) -> reproduce.Result:
    """Trains the family (resuming from ``workdir``), evaluates every model, simulates, plots."""
    validate(config)  # the CLI calls it too, before any run; a direct call (the notebooks) checks here
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    task = ArithmeticTask(config.task.op, config.task.num_digits, config.task.reverse_answer)
    cfgs = family(config, task)
    num_params = np.array([c.num_params() for c in cfgs], np.float64)

    # Fixed test problems (a NumPy stream apart from the training stream).
    test = task.sample(np.random.default_rng((config.seed, 10**9)), config.eval.num_test)
    per_model, programs = [], {}  # compiled programs, shared by members of one architecture
    for i, (mcfg, lr) in enumerate(zip(cfgs, config.family.lr)):
        wd = workdir / f"model{i}_d{mcfg.d_model}_l{mcfg.num_layers}"
        model, out = _train(config, task, mcfg, lr, i, wd, progress, programs)
        per_model.append(evaluate_model(model, out.state.params, task, test, config.eval.chunk, config.fast_compile,
                                        programs))

    # The multiple-choice panel: the same architectures trained on its own task.
    mc_task, mc = multiple_choice_set(config)
    mc_cfgs = family(config, mc_task)
    mc_params = np.array([c.num_params() for c in mc_cfgs], np.float64)
    mc_train = ml_collections.ConfigDict(config.train.to_dict())
    mc_train.num_steps = config.multiple_choice.num_steps
    per_mc = []
    for i, (mcfg, lr) in enumerate(zip(mc_cfgs, config.family.lr)):
        wd = workdir / f"mc_model{i}_d{mcfg.d_model}_l{mcfg.num_layers}"
        model, out = _train(config, mc_task, mcfg, lr, i, wd, progress, programs, train=mc_train)
        per_mc.append(evaluate_choices(model, out.state.params, mc_task, mc, config.eval.chunk, config.fast_compile,
                                       programs))

    keys = ("exact_match", "edit_distance", "token_accuracy", "cross_entropy")
    # the panel's means, keyed apart from the main family's cross-entropy
    mc_keys = {"mc_grade": "mc_grade", "brier": "brier", "mc_prob": "mc_prob", "mc_cross_entropy": "cross_entropy"}
    means = {k: np.array([m[k].mean() for m in per_model]) for k in keys}
    means |= {k: np.array([m[src].mean() for m in per_mc]) for k, src in mc_keys.items()}
    ci_key = jax.random.fold_in(jax.random.key(config.seed), 10**6)
    cis = {
        k: bootstrap_ci(ci_key, np.stack([m[k] for m in per], 1), num_resamples=config.eval.bootstrap)
        for per, ks in ((per_model, ("exact_match", "edit_distance")), (per_mc, ("mc_grade", "brier"))) for k in ks
    }
    scores = {k: float(emergence_score(means[k], num_params)) for k in keys}
    scores |= {k: float(emergence_score(means[k], mc_params)) for k in mc_keys}

    # mirage: the same outputs, two metrics
    ratio = _ratio(scores["exact_match"], scores["edit_distance"])
    mirage_ok = ratio >= config.criteria.min_score_ratio and num_params.max() / num_params.min() >= 30 and len(cfgs) >= 5

    # resolution: the first num_small items vs all of them
    small = np.array([m["exact_match"][: config.eval.num_small].mean() for m in per_model])
    zero_small = int((small == 0).sum())
    zero_large = int((means["exact_match"] == 0).sum())
    resolution_ok = zero_small >= 1 and zero_large == 0

    # analytic model
    sim = simulate_analytic(config, jax.random.fold_in(jax.random.key(config.seed), 7))
    sim_err = max(
        float(np.abs(sim["exact_match"] - sim["exact_match_closed_form"]).max()),
        float(np.abs(sim["edit_distance"] - sim["edit_distance_closed_form"]).max()) / config.analytic.length,
    )
    analytic_ok = sim_err <= config.criteria.analytic_tolerance

    # multiple choice
    mc_ratio = _ratio(scores["mc_grade"], scores["brier"])
    mc_ok = mc_ratio >= config.criteria.min_score_ratio

    # the analytic model's prediction from each model's own per-token cross-entropy
    p_hat = np.exp(-means["cross_entropy"])
    predicted_em = p_hat**task.answer_len
    figures = [
        _plot_family(workdir / "emergence_metrics.png", num_params, means, cis, small, predicted_em, config, task),
        _plot_analytic(workdir / "emergence_analytic.png", sim, config),
        _plot_multiple_choice(workdir / "emergence_multiple_choice.png", mc_params, means, cis, config),
    ]
    table = " / ".join(
        f"{int(n)}: EM {em:.4f}, ED {ed:.3f}" for n, em, ed in zip(num_params, means["exact_match"], means["edit_distance"])
    )
    findings = [
        reproduce.Finding(
            "mirage",
            f"score EM {_fmt_score(scores['exact_match'])} vs ED {_fmt_score(scores['edit_distance'])} (ratio {_fmt_score(ratio)})",
            bool(mirage_ok),
            f"{len(cfgs)} models, {int(num_params.min())}-{int(num_params.max())} parameters "
            f"({num_params.max() / num_params.min():.0f}x), {config.eval.num_test} test problems "
            f"({config.task.num_digits}-digit {config.task.op}): {table}",
        ),
        reproduce.Finding(
            "resolution",
            f"min exact match {float(means['exact_match'].min()):.2g}; {zero_small} -> {zero_large} models at 0",
            bool(resolution_ok),
            f"exact match on {config.eval.num_small} items: {np.round(small, 4).tolist()}; on {config.eval.num_test}: "
            f"{np.round(means['exact_match'], 5).tolist()} (resolution {float(resolution(config.eval.num_test)):.1e}); "
            f"items needed to see the smallest nonzero accuracy with 95% probability: "
            f"{int(items_to_resolve(max(float(means['exact_match'].min()), 1e-9)))}",
        ),
        reproduce.Finding(
            "analytic",
            f"largest deviation {sim_err:.4f}",
            bool(analytic_ok),
            f"L_CE = (N/{config.analytic.c:.3g})^{config.analytic.alpha}, L = {config.analytic.length}, "
            f"{config.analytic.num_items} simulated answers at each of {config.analytic.num_points} N; p from "
            f"{sim['p'][0]:.3f} to {sim['p'][-1]:.3f}; emergence scores on this grid: exact match "
            f"{_fmt_score(float(emergence_score(sim['exact_match'])))}, edit distance "
            f"{_fmt_score(float(emergence_score(sim['edit_distance'])))} (in log N both are the same Gumbel-type "
            f"curve, exact match shifted by log(L)/|alpha|, so the score depends on the window)",
        ),
        reproduce.Finding(
            "multiple_choice",
            f"score MC grade {_fmt_score(scores['mc_grade'])} vs Brier {_fmt_score(scores['brier'])} "
            f"(ratio {_fmt_score(mc_ratio)})",
            bool(mc_ok),
            f"{len(mc['correct'])} {config.multiple_choice.num_digits}-digit {config.multiple_choice.op} items, each "
            f"the answer among {config.multiple_choice.num_choices - 1} other problems' answers, scored by the family "
            f"retrained on that task ({config.multiple_choice.num_steps * config.train.updates_per_step} updates, "
            f"{int(mc_params.min())}-{int(mc_params.max())} parameters): per-token cross-entropy of the answers "
            f"{np.round(means['mc_cross_entropy'], 3).tolist()} (score {_fmt_score(scores['mc_cross_entropy'])}), "
            f"MC grade {np.round(means['mc_grade'], 3).tolist()} (chance {1 / config.multiple_choice.num_choices:.2f}), "
            f"Brier {np.round(means['brier'], 3).tolist()}, "
            f"normalized probability of the correct choice {np.round(means['mc_prob'], 3).tolist()} (score "
            f"{_fmt_score(scores['mc_prob'])}). A straight line across {len(mc_cfgs)} models scores about "
            f"{len(mc_cfgs) - 1}: the claim needs the grade well above that (emergent) and the Brier score near it",
        ),
    ]
    metrics = {
        "num_params": num_params.tolist(),
        "mc_num_params": mc_params.tolist(),
        **{f"mean_{k}": v.tolist() for k, v in means.items()},
        **{f"ci_{k}": [np.asarray(c.low).tolist(), np.asarray(c.high).tolist()] for k, c in cis.items()},
        "emergence_scores": {k: (v if np.isfinite(v) else repr(v)) for k, v in scores.items()},
        "exact_match_small": small.tolist(),
        "predicted_exact_match": predicted_em.tolist(),
        "analytic": {k: np.asarray(v).tolist() for k, v in sim.items()},
    }
    tok = task.tokenizer
    notes = "Greedy answers of the largest and smallest model (least-significant digit first):\n\n" + "\n".join(
        f"    {tok.decode(test['tokens'][j, : task.prompt_len])} target {tok.decode(test['answer'][j])}: "
        f"smallest {tok.decode(per_model[0]['pred'][j])}, largest {tok.decode(per_model[-1]['pred'][j])}"
        for j in range(6)
    )
    return reproduce.Result(findings=findings, metrics=metrics, figures=[f.name for f in figures], notes=notes)


# ----------------------------------------------------------------------------- figures


def _errorbar(ax, x, ci, mean, **kw):
    lo, hi = np.asarray(ci.low), np.asarray(ci.high)
    ax.errorbar(x, mean, yerr=[np.maximum(mean - lo, 0), np.maximum(hi - mean, 0)], fmt="o-", capsize=3, **kw)


def _plot_family(path, n, means, cis, small, predicted_em, config, task) -> Path:
    fig = Figure(figsize=(15, 3.8))
    ax = fig.subplots(1, 4)
    _errorbar(ax[0], n, cis["exact_match"], means["exact_match"], color="C3")
    ax[0].set(xscale="log", xlabel="parameters", ylabel="exact match", title="exact match (nonlinear)")
    _errorbar(ax[1], n, cis["edit_distance"], means["edit_distance"], color="C0")
    ax[1].set(xscale="log", xlabel="parameters", ylabel="token edit distance", title="same outputs: edit distance")
    ax[2].loglog(n, means["cross_entropy"], "o-", color="C2")
    ax[2].set(xlabel="parameters", ylabel="per-token cross-entropy", title="answer cross-entropy")
    floor = 0.5 / config.eval.num_test
    ax[3].semilogx(n, np.maximum(small, floor), "s--", color="C7", label=f"{config.eval.num_small} items")
    ax[3].semilogx(n, np.maximum(means["exact_match"], floor), "o-", color="C3", label=f"{config.eval.num_test} items")
    ax[3].semilogx(n, predicted_em, "k:", label=f"exp(-CE)^{task.answer_len}")
    ax[3].set(yscale="log", xlabel="parameters", ylabel="exact match (0 drawn at floor)", title="resolution")
    ax[3].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _plot_analytic(path, sim, config) -> Path:
    fig = Figure(figsize=(11, 3.6))
    ax = fig.subplots(1, 3)
    n = sim["num_params"]
    ax[0].loglog(n, -np.log(sim["p"]), "-", color="C2")
    ax[0].set(xlabel="parameters N", ylabel="L_CE = (N/c)^alpha", title="per-token cross-entropy")
    ax[1].semilogx(n, sim["exact_match_closed_form"], "-", color="C3", label="p^L")
    ax[1].semilogx(n, sim["exact_match"], "o", color="C3", label="simulated")
    ax[1].set(xlabel="parameters N", ylabel="exact match", title="nonlinear metric")
    ax[1].legend()
    ax[2].semilogx(n, sim["edit_distance_closed_form"], "-", color="C0", label="L(1-p)")
    ax[2].semilogx(n, sim["edit_distance"], "o", color="C0", label="simulated")
    ax[2].set(xlabel="parameters N", ylabel="token edit distance", title="linear metric")
    ax[2].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _plot_multiple_choice(path, n, means, cis, config) -> Path:
    c = config.multiple_choice
    fig = Figure(figsize=(12, 3.6))
    ax = fig.subplots(1, 3)
    ax[0].loglog(n, means["mc_cross_entropy"], "o-", color="C2")
    ax[0].set(xlabel="parameters", ylabel="per-token cross-entropy", title=f"{c.num_digits}-digit {c.op}: answer CE")
    _errorbar(ax[1], n, cis["mc_grade"], means["mc_grade"], color="C3")
    ax[1].axhline(1 / c.num_choices, color="gray", ls=":", label="chance")
    ax[1].set(xscale="log", xlabel="parameters", ylabel="multiple-choice grade", title="multiple-choice grade")
    ax[1].legend()
    _errorbar(ax[2], n, cis["brier"], means["brier"], color="C0")
    ax[2].set(xscale="log", xlabel="parameters", ylabel="Brier score (lower is better)", title="Brier score")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def validate(config: ml_collections.ConfigDict) -> None:
    """Config values the run cannot use, as :class:`ConfigError` naming the key (the CLI calls it first)."""
    for group in ("task", "multiple_choice"):
        c = config[group]
        try:
            _check_int32(ArithmeticTask(c.op, c.num_digits, config.task.reverse_answer))
        except ValueError as e:
            raise ConfigError(f"{group}: {e}") from None


REPRODUCTION = reproduce.register(
    reproduce.Reproduction(
        name=NAME,
        title="emergent abilities as a metric artifact: exact match vs token edit distance on tiny LMs",
        paper="Schaeffer, Miranda & Koyejo, Are Emergent Abilities of Large Language Models a Mirage? (NeurIPS 2023)",
        claims=CLAIMS,
        config="emergence",
        run=run,
        notebook="colab/emergence.ipynb",
        validate=validate,
    )
)
