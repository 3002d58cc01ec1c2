"""What does a matrix product with a 4-bit weight cost, against the same product with a dense weight?

``nips23jax.qlora.nf4_matmul(x, q)`` computes ``x @ W`` for a weight ``W (in, out)`` stored in NF4
(QLoRA's storage, ~4.1 bits per parameter with double quantization), dequantizing it tile by tile
inside the compiled computation. Side by side in one run, for each batch size (rows of ``x``):

* ``dense fp32`` (baseline): ``x @ W`` with ``W`` the dequantized weight held in float32;
* ``nf4_matmul fp32``: ours, ``compute_dtype`` float32;
* ``dense bf16``: ``x @ W`` in bfloat16 (``W`` held in bfloat16);
* ``nf4_matmul bf16``: ours, ``compute_dtype`` bfloat16;
* ``dequantize then matmul (fp32)``: ``x @ dequantize_4bit(q)`` in one jitted function, the naive
  4-bit product (materializes the whole float32 weight), for reference.

The cases are timed round-robin in that order, so every 4-bit case runs right after a dense one
that has streamed its 32-64 MiB weight through the caches: the 8 MiB of codes of a 4096 x 4096
weight would otherwise stay in a 32 MiB L3 from one call to the next, which one layer of a model
does not enjoy.

Before timing, each product is checked against ``dense fp32`` (float32 to 1e-4 relative, bfloat16
to 2e-2). Goals for ``nf4_matmul fp32 / dense fp32`` on a 2-core CPU: <= 3x at batch 1, <= 1.4x at
batch 64, <= 1.1x from batch 256 on (the 4-bit weight is read 8x less memory than the float32 one,
but every entry has to be decoded on each call).

    python benchmarks/nf4_matmul.py                     # 4096 x 4096 weight, batches 1 8 64 256 512
    python benchmarks/nf4_matmul.py --in 1024 --out 1024 --batches 1 64 --repeats 20
    taskset -c 0 python benchmarks/nf4_matmul.py        # pinned to one core, away from other jobs
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from nips23jax.core.benchmark import benchmark_parser, compare, format_table
from nips23jax.qlora import bits_per_param, dequantize_4bit, quantize_4bit
from nips23jax.qlora.matmul import default_tile, nf4_matmul

BASELINE = "dense fp32"
OURS = "nf4_matmul fp32"
GOALS = {1: 3.0, 64: 1.4, 256: 1.1}  # batch -> limit on nf4_matmul fp32 / dense fp32 (256: and above)


def parse_args(argv=None):
    p = benchmark_parser(__doc__, warmup=2, repeats=10, number=1)
    p.add_argument("--in", dest="in_features", type=int, default=4096, help="rows of the weight (input width)")
    p.add_argument("--out", dest="out_features", type=int, default=4096, help="columns of the weight (output width)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 8, 64, 256, 512], help="rows of x")
    p.add_argument("--quant-type", default="nf4", choices=["nf4", "fp4", "int4"])
    p.add_argument("--no-double-quant", dest="double_quant", action="store_false")
    p.add_argument("--tile", type=int, default=None, help="rows of the weight per tile (default: default_tile)")
    return p.parse_args(argv)


def goal(batch):
    """The limit on nf4_matmul fp32 / dense fp32 at this batch size, or None where none is stated."""
    if batch >= 256:
        return GOALS[256]
    return GOALS.get(batch)


def verdict(ratio, batch):
    limit = goal(batch)
    if limit is None:
        return "no goal stated"
    return f"<= {limit}x: {'met' if ratio <= limit else 'NOT met'}"


def scratch_mib(fn, *args):
    """Scratch (temporary) memory of the compiled program, in MiB."""
    return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes / 2**20


def main(argv=None):
    args = parse_args(argv)
    n_in, n_out = args.in_features, args.out_features
    key_w, key_x = jax.random.split(jax.random.key(args.seed))
    q = quantize_4bit(jax.random.normal(key_w, (n_in, n_out)) * 0.02, args.quant_type, double_quant=args.double_quant)
    w32 = dequantize_4bit(q)
    w16 = w32.astype(jnp.bfloat16)

    dense = jax.jit(lambda x, w: x @ w)
    naive = jax.jit(lambda x, q: x @ dequantize_4bit(q))
    ours = jax.jit(functools.partial(nf4_matmul, tile=args.tile))

    print(f"x (batch, {n_in}) @ W ({n_in}, {n_out}); W stored as {args.quant_type}"
          f"{' with double quantization' if args.double_quant else ''} ({bits_per_param(q):.3f} bits/param, "
          f"{np.asarray(q.packed).nbytes / 2**20:.1f} MiB of codes vs {w32.nbytes / 2**20:.1f} MiB in float32); "
          f"{jax.default_backend()}, JAX {jax.__version__}\n")

    summary = []
    for batch in args.batches:
        x32 = jax.random.normal(jax.random.fold_in(key_x, batch), (batch, n_in))
        x16 = x32.astype(jnp.bfloat16)
        # Timed round-robin in this order, so each 4-bit case runs right after a dense one, which
        # streams its 32-64 MiB weight through the caches: the codes come from memory, as they do
        # for one layer of a model, not from the L3 cache where the previous 4-bit call left them.
        cases = {
            BASELINE: lambda: dense(x32, w32),
            OURS: lambda: ours(x32, q),
            "dense bf16": lambda: dense(x16, w16),
            "nf4_matmul bf16": lambda: ours(x16, q),
            "dequantize then matmul (fp32)": lambda: naive(x32, q),
        }
        # Same product before timing: float32 cases to 1e-4 of the largest entry, bfloat16 to 2e-2.
        ref = np.asarray(cases[BASELINE]())
        scale = float(np.abs(ref).max())
        for name, fn in cases.items():
            tol = 2e-2 if "bf16" in name else 1e-4
            np.testing.assert_allclose(np.asarray(fn(), np.float32), ref, rtol=tol, atol=tol * scale,
                                       err_msg=f"{name} differs from {BASELINE} at batch {batch}")
        tile = args.tile or default_tile(n_in, n_out, batch)
        rows = compare(cases, BASELINE, warmup=args.warmup, repeats=args.repeats, number=args.number)
        print(format_table(rows, title=f"batch {batch}: x ({batch}, {n_in}) @ W ({n_in}, {n_out}), "
                                       f"nf4_matmul tile {tile} rows", baseline=BASELINE))
        print()
        summary.append((batch, tile, rows))

    names = list(summary[0][2][i].name for i in range(len(summary[0][2])))
    lines = [f"**ratio vs {BASELINE}, W ({n_in}, {n_out})**", "",
             "| batch | tile | dense fp32 ms | " + " | ".join(names[1:]) + " | goal (nf4_matmul fp32) |",
             "|---:|---:|---:|" + "---:|" * (len(names) - 1) + "---|"]
    for batch, tile, rows in summary:
        by_name = {r.name: r for r in rows}
        lines.append(f"| {batch} | {tile} | {by_name[BASELINE].median * 1e3:.3f} | "
                     + " | ".join(f"{by_name[n].ratio:.2f}" for n in names[1:])
                     + f" | {verdict(by_name[OURS].ratio, batch)} |")
    print("\n".join(lines))

    batch = args.batches[-1]
    x32 = jnp.zeros((batch, n_in))
    print(f"\nScratch memory of the compiled program at batch {batch}: nf4_matmul "
          f"{scratch_mib(functools.partial(nf4_matmul, tile=args.tile), x32, q):.2f} MiB, dequantize then matmul "
          f"{scratch_mib(lambda x, q: x @ dequantize_4bit(q), x32, q):.2f} MiB (W in float32: "
          f"{w32.nbytes / 2**20:.2f} MiB).")
    met = [verdict(next(r for r in rows if r.name == OURS).ratio, b) for b, _, rows in summary]
    print("Goals for nf4_matmul fp32 / dense fp32, set for the 4096 x 4096 weight on a 2-core CPU "
          "(<= 3x at batch 1, <= 1.4x at 64, <= 1.1x from 256): "
          + "; ".join(f"batch {b}: {m}" for (b, _, _), m in zip(summary, met)) + ".")


if __name__ == "__main__":
    main()
