"""What do LoRA and QLoRA save over full fine-tuning: step time and optimizer-state bytes.

Times one AdamW training step (``make_train_step``, jitted, state donated and threaded through
every call) of the shared ``TransformerLM`` on one batch, side by side in one run:

* ``full fine-tune`` (baseline): every parameter trained;
* ``LoRA``: adapters of rank ``--rank`` on every Dense kernel but the head
  (``lora.add_adapters`` + ``lora.lora_optimizer``, ``make_train_step(...,
  trainable=lora.adapter_mask(params))``): the base is frozen and not differentiated;
* ``QLoRA``: the same adapters over an NF4 + double-quantization base (``lora.quantize_base``, the
  4-bit kernels in ``TrainState.frozen``, ``nf4_matmul`` inside the layers).

Also printed: optimizer-state bytes (``optimizer_state_bytes``), stored bytes of the weights, and
the trainable fraction. Before timing, the first step's loss is checked equal across the three
(LoRA starts at B = 0; QLoRA's loss differs only by the quantization of its base).

    python benchmarks/lora.py                        # batch 8 x 64 tokens, d_model 256, 2 layers, rank 8
    python benchmarks/lora.py --d-model 512 --rank 16 --repeats 20
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import optax

from nips23jax.core.benchmark import benchmark_parser, compare, format_table
from nips23jax.core.train import TrainState, make_train_step
from nips23jax.models.lm import lm_loss_fn
from nips23jax.models.transformer import TransformerConfig, TransformerLM
from nips23jax.qlora import lora
from nips23jax.qlora.paged_optimizer import optimizer_state_bytes

FULL, LORA, QLORA = "full fine-tune", "LoRA", "QLoRA (NF4+DQ base)"


def parse_args(argv=None):
    p = benchmark_parser(__doc__, warmup=2, repeats=20)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--d-model", type=int, default=256)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=256)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--lr", type=float, default=1e-4)
    return p.parse_args(argv)


def _bytes(tree) -> int:
    return sum(int(np.prod(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def main(argv=None):
    args = parse_args(argv)
    cfg = TransformerConfig(vocab_size=args.vocab, d_model=args.d_model, num_heads=args.heads,
                            num_layers=args.layers, max_len=args.seq)
    lcfg = lora.LoRAConfig(rank=args.rank, alpha=2.0 * args.rank)
    tokens = jax.random.randint(jax.random.key(args.seed), (args.batch, args.seq), 0, args.vocab)
    batch = {"tokens": tokens, "loss_mask": jnp.ones_like(tokens, bool)}
    base = jax.jit(TransformerLM(cfg).init)(jax.random.key(args.seed), tokens)["params"]
    copy = lambda t: jax.tree.map(lambda x: jnp.array(x, copy=True), t)  # noqa: E731 - the steps donate

    adapted = lora.add_adapters(jax.random.key(args.seed + 1), base, lcfg)
    q_params, q_base = lora.quantize_base(adapted, lcfg)
    setups = {
        FULL: (TransformerLM(cfg), base, None, optax.adamw(args.lr)),
        LORA: (TransformerLM(cfg, dense=lora.lora_dense(lcfg)), adapted, None,
               lora.lora_optimizer(optax.adamw(args.lr), adapted)),
        QLORA: (TransformerLM(cfg, dense=lora.qlora_dense(lcfg)), q_params, {"quant": q_base},
                lora.lora_optimizer(optax.adamw(args.lr), q_params)),
    }
    states, steps, info = {}, {}, {}
    for name, (model, params, frozen, opt) in setups.items():
        states[name] = TrainState.create(copy(params), opt, None if frozen is None else copy(frozen))
        trainable = None if name == FULL else lora.adapter_mask(params)  # differentiate the adapters alone
        steps[name] = make_train_step(lm_loss_fn(model), opt, key=args.seed, trainable=trainable)
        counts = lora.count_params(params) if name != FULL else {"adapter": 0}
        info[name] = {
            "opt_bytes": sum(optimizer_state_bytes(states[name].opt_state).values()),
            "weight_bytes": _bytes(params) + (0 if frozen is None else _bytes(frozen)),
            "trainable": cfg.num_params() if name == FULL else counts["adapter"],
        }

    first = {}
    for name in setups:
        states[name], metrics = steps[name](states[name], batch)
        first[name] = float(metrics["loss"])
    np.testing.assert_allclose(first[LORA], first[FULL], rtol=1e-5, err_msg="LoRA at B = 0 must equal the base")
    np.testing.assert_allclose(first[QLORA], first[FULL], rtol=0.02, err_msg="QLoRA's loss is far from the base's")

    def case(name):
        carry = [states[name]]

        def run():
            carry[0], metrics = steps[name](carry[0], batch)
            return carry[0], metrics

        return run

    sizes = (f"batch {args.batch} x {args.seq} tokens, d_model {args.d_model}, {args.layers} layers, vocab "
             f"{args.vocab}, {cfg.num_params():,} params, LoRA rank {args.rank}")
    print(f"LoRA / QLoRA vs full fine-tuning (AdamW), TransformerLM, {sizes}, {jax.default_backend()} "
          f"(JAX {jax.__version__}); first-step losses: full {first[FULL]:.6f}, LoRA {first[LORA]:.6f} (equal: "
          f"B = 0), QLoRA {first[QLORA]:.6f} (NF4 base)\n")
    rows = compare({name: case(name) for name in setups}, FULL, warmup=args.warmup, repeats=args.repeats)
    print(format_table(rows, title=f"one training step, {sizes}", baseline=FULL))
    total = cfg.num_params()
    print(f"\n**memory, {sizes}**\n")
    print("| setup | trainable params | trainable % | optimizer state | weights stored |")
    print("|---|---|---|---|---|")
    for name in setups:
        i = info[name]
        print(f"| {name} | {i['trainable']:,} | {100 * i['trainable'] / total:.2f}% | "
              f"{i['opt_bytes'] / 2**20:.2f} MiB ({i['opt_bytes'] / info[FULL]['opt_bytes']:.3f}x) | "
              f"{i['weight_bytes'] / 2**20:.2f} MiB ({i['weight_bytes'] / info[FULL]['weight_bytes']:.3f}x) |")
    return rows, info


if __name__ == "__main__":
    main()
