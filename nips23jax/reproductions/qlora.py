"""qlora: 4-bit data types, fine-tuning memory, and QLoRA vs full fine-tuning (Dettmers et al. 2023).

Three parts (config: ``configs/qlora.py``):

a) data types -- blockwise NF4, NF4 + double quantization, FP4 (E2M1) and Int4 on normal weights
   and on the linear layers of a pretrained tiny LM; the LM's held-out perplexity after each;
b) memory -- stored bits per parameter of our NF4 tensors, and fine-tuning memory of LLaMA-shaped
   7B-65B models (16-bit full, 16-bit LoRA, QLoRA) from our own byte accounting;
c) fine-tuning -- the pretrained tiny LM (2-digit addition, answers least-significant digit
   first) learns a new task (answers most-significant digit first) by full fine-tuning and by
   QLoRA (NF4 + DQ base, LoRA on every linear layer but the head).

The pretraining is language modelling of the whole problem (every token after ``<bos>``), so its
perplexity has an irreducible part (the random operand digits) that is sensitive to any distortion
of the model's predictions, which is what part a) measures: answers alone are predicted with such
confidence that 4-bit rounding barely moves their perplexity (1.0005 for every data type).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from matplotlib.figure import Figure

from nips23jax.core import reproduce
from nips23jax.core.config import ConfigError, config_fingerprint
from nips23jax.core.sharding import batch_sharding, make_mesh, param_shardings, shard_batch
from nips23jax.core.train import TrainState, fit, make_train_step, warmup_cosine
from nips23jax.data.arithmetic import ArithmeticTask, exact_match, predict_answers
from nips23jax.models.lm import LMApply, heldout_lm_loss, lm_loss_fn
from nips23jax.models.transformer import TransformerConfig, TransformerLM
from nips23jax.qlora import lora
from nips23jax.qlora.nf4 import bits_per_param, dequantize_4bit, quantize_4bit

NAME = "qlora"
DATATYPES = {  # label -> (quant_type, double_quant)
    "NF4+DQ": ("nf4", True),
    "NF4": ("nf4", False),
    "FP4": ("fp4", False),
    "Int4": ("int4", False),
}
CLAIMS = (
    reproduce.Claim(
        key="datatype_error",
        statement="NF4 represents normally distributed weights more accurately than FP4 and Int4",
        paper_value="NF4 is information-theoretically optimal for normal weights (Sec. 3)",
        criterion="RMS quantization error NF4 < FP4 and NF4 < Int4, on N(0, 1) weights and on the LM's weights",
    ),
    reproduce.Claim(
        key="datatype_ppl",
        statement="After 4-bit quantization, NF4 (+DQ) keeps perplexity lower than FP4 and Int4",
        paper_value="Table 2: NF4+DQ 27.41, FP4 (E2M1) 31.07, FP4 (E3M0) 29.48, Int4 34.34",
        criterion="held-out perplexity NF4+DQ < FP4 and NF4+DQ < Int4",
    ),
    reproduce.Claim(
        key="double_quant",
        statement="Double quantization cuts the scale overhead from 0.5 to ~0.127 bits per parameter",
        paper_value="saves 0.373 bits/param, ~3 GB at 65B",
        criterion="stored bits/param 4.5 without and 4.127 ± 0.005 with DQ (counting every byte)",
    ),
    reproduce.Claim(
        key="memory_65b",
        statement="Fine-tuning a 65B model needs > 780 GB in 16 bits but < 48 GB with QLoRA",
        paper_value="> 780 GB -> < 48 GB",
        criterion="our accounting: 16-bit full > 780 GB and QLoRA < 48 GB at 65B (weights, gradients, "
        "Adam state; activations excluded)",
    ),
    reproduce.Claim(
        key="matches_full",
        statement="QLoRA fine-tuning reaches the quality of full-precision full fine-tuning",
        paper_value="QLoRA replicates 16-bit full fine-tuning (Sec. 4, Table 3)",
        criterion="exact match of QLoRA >= full fine-tuning - {config.finetune.tolerance} on the new task",
    ),
    reproduce.Claim(
        key="trainable_fraction",
        statement="QLoRA trains a small fraction of the parameters",
        paper_value="< 1% (the adapters)",
        criterion="adapter parameters / all parameters <= {config.finetune.max_trainable_fraction}",
    ),
)


def _tasks(config):
    pre = ArithmeticTask("add", config.task.num_digits, reverse_answer=True)
    new = ArithmeticTask("add", config.task.num_digits, reverse_answer=False)
    return pre, new


def _model_config(config, task) -> TransformerConfig:
    return TransformerConfig(
        vocab_size=task.tokenizer.vocab_size, max_len=task.seq_len,
        **{k: config.model[k] for k in ("d_model", "num_heads", "num_layers", "d_ff", "tied_head")},
    )


def _sequence_mask(tokens) -> np.ndarray:
    """Every position after ``<bos>``: language modelling of the whole problem (the operands are
    uniformly random, so their tokens carry an irreducible log 10 each)."""
    mask = np.ones(np.shape(tokens), bool)
    mask[:, 0] = False
    return mask


def _evaluate(model, variables, task, batch, *, whole_sequence=False) -> dict[str, float]:
    """Held-out loss and its perplexity per scored token (the answers, or with ``whole_sequence``
    every token after ``<bos>``), and greedy exact match of the answers."""
    apply_fn = LMApply(model, variables=True)
    mask = _sequence_mask(batch["tokens"]) if whole_sequence else batch["loss_mask"]
    loss = float(heldout_lm_loss(apply_fn, variables, jnp.asarray(batch["tokens"]), jnp.asarray(mask))[0])
    pred = predict_answers(apply_fn, variables, task, batch)
    return {"loss": loss, "perplexity": float(np.exp(loss)), "exact_match": float(exact_match(pred, batch["answer"]).mean())}


def _has_adapters(params) -> bool:
    return any(bool(m) for m in jax.tree.leaves(lora.adapter_mask(params)))


def _train(config, run_cfg, model, params, frozen, optimizer, task, heldout, workdir, progress, desc,
           whole_sequence=False):
    mesh = make_mesh({"data": -1})
    state = TrainState.create(params, optimizer, frozen)
    shardings = param_shardings(state, mesh)
    state = jax.device_put(state, shardings)
    trainable = None if frozen is None and not _has_adapters(params) else lora.adapter_mask(params)
    step = make_train_step(lm_loss_fn(model), optimizer, state_shardings=shardings, batch_shardings=batch_sharding(mesh),
                           trainable=trainable)

    def batch_fn(t):
        b = task.batch(seed=config.seed + run_cfg.seed_offset, step=t, batch_size=run_cfg.batch_size)
        mask = _sequence_mask(b["tokens"]) if whole_sequence else b["loss_mask"]
        return shard_batch({"tokens": b["tokens"], "loss_mask": mask}, mesh)

    def variables(s):
        return {"params": s.params, **(s.frozen or {})}

    out = fit(
        state, step, batch_fn, num_steps=run_cfg.num_steps, workdir=workdir, checkpoint_every=run_cfg.num_steps,
        keep_checkpoints=1, fingerprint=config_fingerprint(config),
        eval_fn=lambda s: _evaluate(model, variables(s), task, heldout, whole_sequence=whole_sequence),
        eval_every=run_cfg.eval_every,
        log_every=max(run_cfg.num_steps // 20, 1), progress=progress, desc=desc,
    )
    return out, variables(out.state)


def datatype_errors(w: jax.Array, block_size: int) -> dict[str, float]:
    """Relative RMS error ``rms(dequant(quant(w)) − w) / rms(w)`` per data type."""
    errors = _relative_errors(jnp.asarray(w), block_size)
    return {label: float(errors[label]) for label in DATATYPES}


@partial(jax.jit, static_argnums=1)
def _relative_errors(w, block_size):
    """Every data type's relative RMS error in one compiled program."""
    w = w.astype(jnp.float32)
    rms = lambda x: jnp.sqrt(jnp.mean(jnp.square(x)))  # noqa: E731
    out = {}
    for label, (qt, dq) in DATATYPES.items():
        q = quantize_4bit(w, qt, block_size, double_quant=dq)
        out[label] = rms(dequantize_4bit(q, jnp.float32) - w) / rms(w)
    return out


@jax.jit
def _squared_error(ws, wqs):
    """``(Σ (wq − w)², Σ w²)`` over lists of arrays, one compiled program."""
    err = sum(jnp.sum(jnp.square(wq - w)) for w, wq in zip(ws, wqs))
    return err, sum(jnp.sum(jnp.square(w)) for w in ws)


def _quantized_model_params(params, lcfg, qt, dq, block_size):
    """``(params with every targeted kernel replaced by its 4-bit round trip, relative RMS error of
    those kernels)``."""
    rest, quant = lora.quantize_base(params, lcfg, quant_type=qt, block_size=block_size, double_quant=dq)
    rounded = lora.dequantize_base(rest, quant)
    ws, wqs = [], []
    for path in lora.target_paths(params, lcfg.targets):
        keys = path.split("/")
        w, wq = params, rounded
        for k in keys:
            w, wq = w[k], wq[k]
        ws.append(w)
        wqs.append(wq)
    err, norm = _squared_error(ws, wqs)
    return rounded, float(np.sqrt(float(err) / float(norm)))


def llama_shapes() -> dict[str, dict[str, int]]:
    """LLaMA-1 shapes (d_model, layers, FFN width, vocabulary) of the sizes QLoRA fine-tunes."""
    return {
        "7B": dict(d=4096, layers=32, ffn=11008, vocab=32000),
        "13B": dict(d=5120, layers=40, ffn=13824, vocab=32000),
        "33B": dict(d=6656, layers=60, ffn=17920, vocab=32000),
        "65B": dict(d=8192, layers=80, ffn=22016, vocab=32000),
    }


def finetune_memory_gb(shape: dict[str, int], rank: int, bits_4bit: float) -> dict[str, float]:
    """Fine-tuning memory (GB = 1e9 bytes) of a LLaMA-shaped model, activations excluded.

    16-bit full: bf16 weights and gradients, fp32 Adam moments (2 + 2 + 8 bytes/param). 16-bit LoRA:
    bf16 frozen weights + adapters at 12 bytes/param. QLoRA: linear weights at ``bits_4bit`` bits,
    embeddings and head in bf16, adapters at 12 bytes/param. Adapters: rank ``rank`` on every
    linear layer of every block (q, k, v, o, gate, up, down).
    """
    d, n, f, v = shape["d"], shape["layers"], shape["ffn"], shape["vocab"]
    linear = n * (4 * d * d + 3 * d * f)
    other = 2 * v * d + n * 2 * d + d  # embeddings, head, RMSNorm gains
    adapters = n * rank * (4 * 2 * d + 3 * (d + f))
    total = linear + other
    return {
        "params_B": total / 1e9,
        "adapter_fraction": adapters / total,
        "full_16bit": 12 * total / 1e9,
        "lora_16bit": (2 * total + 12 * adapters) / 1e9,
        "qlora": (bits_4bit / 8 * linear + 2 * other + 12 * adapters) / 1e9,
    }


def run(config: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True) -> reproduce.Result:
    """Pretrains (or resumes), measures the data types and memory, fine-tunes full vs QLoRA, plots."""
    validate(config)  # the CLI calls it too, before any run; a direct call (the notebooks) checks here
    workdir = Path(workdir)
    pre_task, new_task = _tasks(config)
    mcfg = _model_config(config, pre_task)
    base_model = TransformerLM(mcfg)
    lcfg = lora.LoRAConfig(rank=config.finetune.rank, alpha=config.finetune.alpha, dropout=config.finetune.dropout)
    heldout_pre = pre_task.sample(np.random.default_rng((config.seed, 10**9)), config.eval.num_examples)
    heldout_new = new_task.sample(np.random.default_rng((config.seed, 10**9 + 1)), config.eval.num_examples)
    test_new = new_task.sample(np.random.default_rng((config.seed, 10**9 + 2)), config.eval.num_test)

    # -- pretraining on the first task
    init = jax.jit(base_model.init)(jax.random.key(config.seed), jnp.zeros((1, pre_task.seq_len), jnp.int32))["params"]
    pc = config.pretrain
    pre_opt = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(warmup_cosine(pc.lr, pc.num_steps, pc.warmup_steps),
                                                                        weight_decay=0.01))
    pre_out, pre_vars = _train(config, pc, base_model, init, None, pre_opt, pre_task, heldout_pre,
                               workdir / "pretrain", progress, "qlora: pretrain", whole_sequence=True)
    pretrained = jax.device_get(pre_vars["params"])

    # -- a) data types
    bs = config.quant.block_size
    normal = jax.random.normal(jax.random.key(config.seed + 1), tuple(config.quant.normal_shape))
    err_normal = datatype_errors(normal, bs)
    ppl, err_lm, em_q = {}, {}, {}
    fp = _evaluate(base_model, {"params": pretrained}, pre_task, heldout_pre, whole_sequence=True)
    for label, (qt, dq) in DATATYPES.items():
        qparams, err_lm[label] = _quantized_model_params(pretrained, lcfg, qt, dq, bs)
        ev = _evaluate(base_model, {"params": qparams}, pre_task, heldout_pre, whole_sequence=True)
        ppl[label], em_q[label] = ev["perplexity"], ev["exact_match"]

    # -- b) memory
    big = jax.ShapeDtypeStruct((1024, 1024), jnp.float32)  # the stored layout depends on the shape alone
    bits = {label: bits_per_param(jax.eval_shape(partial(quantize_4bit, quant_type="nf4", block_size=64, double_quant=dq),
                                                 big))
            for label, dq in (("NF4", False), ("NF4+DQ", True))}
    memory = {k: finetune_memory_gb(s, config.memory.rank, bits["NF4+DQ"]) for k, s in llama_shapes().items()}

    # -- c) fine-tuning on the new task: full vs (Q)LoRA, same steps and data
    fc = config.finetune
    runs, finals = {}, {}
    for method in fc.methods:
        start = jax.tree.map(lambda x: jnp.array(x, copy=True), pretrained)  # the train step donates
        if method == "full":
            model, params, frozen = base_model, start, None
            opt = optax.adamw(warmup_cosine(fc.lr_full, fc.num_steps, fc.warmup_steps), weight_decay=0.0)
        else:
            params = lora.add_adapters(jax.random.key(config.seed + 2), start, lcfg)
            frozen = None
            model = TransformerLM(mcfg, dense=lora.lora_dense(lcfg))
            if method == "qlora":
                params, quant = lora.quantize_base(params, lcfg, quant_type=fc.quant_type, block_size=bs,
                                                   double_quant=fc.double_quant)
                frozen = {"quant": quant}
                model = TransformerLM(mcfg, dense=lora.qlora_dense(lcfg, quant_type=fc.quant_type, block_size=bs,
                                                                   double_quant=fc.double_quant))
            opt = lora.lora_optimizer(optax.adamw(warmup_cosine(fc.lr_lora, fc.num_steps, fc.warmup_steps),
                                                  weight_decay=0.0), params)
        out, variables = _train(config, fc, model, params, frozen, opt, new_task, heldout_new,
                                workdir / f"finetune_{method}", progress, f"qlora: finetune {method}")
        runs[method] = out.log
        finals[method] = _evaluate(model, variables, new_task, test_new)
        if method != "full":
            counts = lora.count_params(params)
            base_count = mcfg.num_params()
            finals[method]["trainable_fraction"] = counts["adapter"] / (base_count + counts["adapter"])
    before = _evaluate(base_model, {"params": pretrained}, new_task, test_new)

    figure = _plot(ppl, fp["perplexity"], memory, runs, workdir / "qlora.png")

    crit = config.finetune
    findings = [
        reproduce.Finding(
            "datatype_error",
            "normal: " + ", ".join(f"{k} {v:.4f}" for k, v in err_normal.items())
            + "; LM: " + ", ".join(f"{k} {v:.4f}" for k, v in err_lm.items()),
            all(e["NF4"] < e["FP4"] and e["NF4"] < e["Int4"] for e in (err_normal, err_lm)),
            f"relative RMS error, block size {bs}; N(0, 1) weights {tuple(config.quant.normal_shape)}",
        ),
        reproduce.Finding(
            "datatype_ppl",
            ", ".join(f"{k} {v:.5f}" for k, v in ppl.items()),
            ppl["NF4+DQ"] < ppl["FP4"] and ppl["NF4+DQ"] < ppl["Int4"],
            f"per-token perplexity of whole held-out problems ({config.eval.num_examples}; the operand digits are "
            f"random, floor 10^(4/{pre_task.seq_len - 1}) = {10 ** (4 / (pre_task.seq_len - 1)):.4f}); unquantized "
            f"{fp['perplexity']:.5f}; exact match " + ", ".join(f"{k} {v:.3f}" for k, v in em_q.items()),
        ),
        reproduce.Finding(
            "double_quant",
            f"{bits['NF4']:.4f} -> {bits['NF4+DQ']:.4f} bits/param (saves {bits['NF4'] - bits['NF4+DQ']:.3f}; "
            f"{(bits['NF4'] - bits['NF4+DQ']) / 8 * memory['65B']['params_B']:.2f} GB at 65B)",
            abs(bits["NF4"] - 4.5) < 1e-3 and abs(bits["NF4+DQ"] - 4.127) < 5e-3,
            "stored bytes of every leaf of a 1024 x 1024 NF4Tensor",
        ),
        reproduce.Finding(
            "memory_65b",
            f"{memory['65B']['full_16bit']:.0f} GB -> {memory['65B']['qlora']:.1f} GB",
            memory["65B"]["full_16bit"] > 780 and memory["65B"]["qlora"] < 48,
            f"LLaMA-65B shapes, {memory['65B']['params_B']:.1f}B params, LoRA rank {config.memory.rank} on all "
            f"linear layers ({100 * memory['65B']['adapter_fraction']:.2f}% of params)",
        ),
    ]
    missing = [m for m in ("full", "qlora") if m not in finals]
    if missing:
        for key in ("matches_full", "trainable_fraction"):
            findings.append(reproduce.Finding(key, "not run", False, f"finetune.methods lacks {missing}"))
    else:
        q, f = finals["qlora"], finals["full"]
        findings.append(reproduce.Finding(
            "matches_full",
            f"QLoRA {q['exact_match']:.3f} vs full {f['exact_match']:.3f}",
            q["exact_match"] >= f["exact_match"] - crit.tolerance,
            f"{config.eval.num_test} held-out problems of the new task; before fine-tuning "
            f"{before['exact_match']:.3f}; " + ", ".join(f"{m} loss {r['loss']:.4f}" for m, r in finals.items()),
        ))
        findings.append(reproduce.Finding(
            "trainable_fraction",
            f"{100 * q['trainable_fraction']:.2f}%",
            q["trainable_fraction"] <= crit.max_trainable_fraction,
            f"LoRA rank {lcfg.rank} on {len(lora.target_paths(pretrained))} kernels of a "
            f"{mcfg.num_params():,}-parameter model",
        ))
    return reproduce.Result(
        findings=findings,
        metrics={
            "pretrained": fp, "errors_normal": err_normal, "errors_lm": err_lm, "perplexity": ppl,
            "exact_match_quantized": em_q, "bits_per_param": bits, "memory_gb": memory,
            "finetune": finals, "before_finetune": before, "pretrain_resumed_from": pre_out.resumed_from,
        },
        figures=[figure.name],
        notes=_memory_table(memory),
    )


def _memory_table(memory) -> str:
    rows = ["| model | params | 16-bit full | 16-bit LoRA | QLoRA (NF4+DQ) | adapters |", "|---|---|---|---|---|---|"]
    for k, m in memory.items():
        rows.append(f"| {k} | {m['params_B']:.1f}B | {m['full_16bit']:.0f} GB | {m['lora_16bit']:.1f} GB | "
                    f"{m['qlora']:.1f} GB | {100 * m['adapter_fraction']:.2f}% |")
    return ("Fine-tuning memory from our accounting (weights, gradients, Adam state; activations and the "
            "paged optimizer's spikes excluded):\n\n" + "\n".join(rows))


def _plot(ppl, ppl_fp, memory, runs, path: Path) -> Path:
    fig = Figure(figsize=(14, 3.8))
    ax1, ax2, ax3 = fig.subplots(1, 3)
    labels = list(ppl)
    ax1.bar(labels, [ppl[k] for k in labels], color=["C0", "C0", "C1", "C3"])
    ax1.axhline(ppl_fp, color="k", ls="--", label="unquantized")
    spread = max(ppl.values()) - ppl_fp
    ax1.set_ylim(ppl_fp - 0.5 * spread, max(ppl.values()) + 0.3 * spread)
    ax1.set(ylabel="perplexity (held-out problems)", title="a) 4-bit data types on the tiny LM")
    ax1.legend()
    sizes = list(memory)
    x = np.arange(len(sizes))
    for i, (key, name) in enumerate([("full_16bit", "16-bit full"), ("lora_16bit", "16-bit LoRA"), ("qlora", "QLoRA")]):
        ax2.bar(x + (i - 1) * 0.27, [memory[s][key] for s in sizes], 0.27, label=name)
    ax2.axhline(48, color="k", ls=":", label="48 GB")
    ax2.set(xticks=x, xticklabels=sizes, ylabel="GB", yscale="log", title="b) fine-tuning memory (LLaMA shapes)")
    ax2.legend(fontsize=8)
    for method, log in runs.items():
        s, em = log.series("exact_match", "eval")
        ax3.plot(s, em, "o-", label=method)
    ax3.set(xlabel="fine-tuning step", ylabel="held-out exact match", ylim=(-0.02, 1.02),
            title="c) new task: full vs QLoRA")
    ax3.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def validate(config: ml_collections.ConfigDict) -> None:
    """Config values the run cannot use, as :class:`ConfigError` naming the key (the CLI calls it first)."""
    unknown = sorted(set(config.finetune.methods) - {"full", "lora", "qlora"})
    if unknown:
        raise ConfigError(f"finetune.methods: unknown {unknown}; choose from ('full', 'lora', 'qlora')")


REPRODUCTION = reproduce.register(
    reproduce.Reproduction(
        name=NAME,
        title="QLoRA: 4-bit data types, fine-tuning memory, QLoRA vs full fine-tuning",
        paper="Dettmers, Pagnoni, Holtzman, Zettlemoyer. QLoRA: Efficient Finetuning of Quantized LLMs. NeurIPS 2023",
        claims=CLAIMS,
        config="qlora",
        run=run,
        notebook="colab/qlora.ipynb",
        validate=validate,
    )
)
