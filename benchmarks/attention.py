"""Is nips23jax's causal attention as fast as the peers'?

Compares, forward and forward+backward, all jitted and measured side by side in one run:

* ``flax MHA`` (baseline): ``flax.linen.MultiHeadDotProductAttention`` with a causal mask;
* ``nips23jax CausalSelfAttention``: ``nips23jax.models.transformer.CausalSelfAttention``;
* ``jax.nn.dot_product_attention``: the same q/k/v/out projections around
  ``jax.nn.dot_product_attention(..., is_causal=True)``.

All three run on the same projection weights, and their outputs and gradients are checked equal
before anything is timed.

    python benchmarks/attention.py                    # batch 8, seq 128, d_model 128, 4 heads
    python benchmarks/attention.py --seq 512 --repeats 50
"""

from __future__ import annotations


import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from nips23jax.core.benchmark import benchmark_parser, compare, format_table
from nips23jax.models.transformer import CausalSelfAttention, TransformerConfig


def parse_args(argv=None):
    p = benchmark_parser(__doc__, warmup=2, repeats=100)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    return p.parse_args(argv)


def to_flax_mha_params(params, num_heads):
    """nips23jax's ``(d, h*dh)`` Dense projections -> flax MHA's ``DenseGeneral`` layout."""
    p = jax.tree.map(np.asarray, params)  # host-side reshapes: no per-op compiles
    d = p["query"]["kernel"].shape[0]
    dh = d // num_heads
    out = {n: {"kernel": p[n]["kernel"].reshape(d, num_heads, dh), "bias": p[n]["bias"].reshape(num_heads, dh)}
           for n in ("query", "key", "value")}
    out["out"] = {"kernel": p["out"]["kernel"].reshape(num_heads, dh, d), "bias": p["out"]["bias"]}
    return jax.device_put(out)  # device arrays, as the other cases get


def jax_nn_attention(params, x, num_heads):
    """Same projections as CausalSelfAttention around ``jax.nn.dot_product_attention``."""
    b, t, d = x.shape
    q, k, v = ((x @ params[n]["kernel"] + params[n]["bias"]).reshape(b, t, num_heads, d // num_heads)
               for n in ("query", "key", "value"))
    o = jax.nn.dot_product_attention(q, k, v, is_causal=True)  # (B, T, H, dh)
    return o.reshape(b, t, d) @ params["out"]["kernel"] + params["out"]["bias"]


def main(argv=None):
    args = parse_args(argv)
    cfg = TransformerConfig(vocab_size=1, d_model=args.d_model, num_heads=args.heads, max_len=args.seq)
    x = np.random.default_rng(args.seed).standard_normal((args.batch, args.seq, args.d_model), np.float32)
    x = jnp.asarray(x)

    # One set of weights, in each implementation's layout.
    ours = CausalSelfAttention(cfg)
    params = jax.jit(ours.init)(jax.random.key(args.seed), x)["params"]
    mha = nn.MultiHeadDotProductAttention(
        num_heads=args.heads, qkv_features=args.d_model, out_features=args.d_model, dropout_rate=0.0,
        deterministic=True,
    )
    mha_params = to_flax_mha_params(params, args.heads)
    causal = np.tril(np.ones((args.seq, args.seq), bool))[None, None]  # (1, 1, T, T), broadcast over B, H

    forwards = {
        "flax MHA": (lambda p, x: mha.apply({"params": p}, x, mask=causal), mha_params),
        "nips23jax CausalSelfAttention": (lambda p, x: ours.apply({"params": p}, x), params),
        "jax.nn.dot_product_attention": (lambda p, x: jax_nn_attention(p, x, args.heads), params),
    }
    fwd = {name: jax.jit(f) for name, (f, _) in forwards.items()}
    # Backward w.r.t. the input and all weights, through a scalar loss.
    bwd = {name: jax.jit(jax.grad(lambda p, x, f=f: jnp.sum(f(p, x) ** 2), argnums=(0, 1)))
           for name, (f, _) in forwards.items()}
    weights = {name: p for name, (_, p) in forwards.items()}

    # Apples to apples: same outputs and gradients before timing.
    def observed(name):  # output, input gradient, query-kernel gradient, as (d, d) host arrays
        dw, dx = jax.device_get(bwd[name](weights[name], x))
        q_kernel = np.asarray(dw["query"]["kernel"]).reshape(args.d_model, args.d_model)
        return np.asarray(fwd[name](weights[name], x)), np.asarray(dx), q_kernel

    reference = observed("flax MHA")
    for name in forwards:
        for what, got, want, tol in zip(("output", "input gradient", "query-kernel gradient"),
                                        observed(name), reference, (1e-4, 1e-3, 1e-3)):
            np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max(),
                                       err_msg=f"{name}: {what} differs from flax MHA")

    sizes = f"batch {args.batch}, seq {args.seq}, d_model {args.d_model}, {args.heads} heads"
    print(f"causal self-attention, {sizes}, {jax.default_backend()} (JAX {jax.__version__}); "
          f"outputs and gradients agree to 1e-4 / 1e-3\n")
    for label, fns in (("forward", fwd), ("forward+backward", bwd)):
        cases = {name: (lambda f=fns[name], p=weights[name]: f(p, x)) for name in forwards}
        rows = compare(cases, "flax MHA", warmup=args.warmup, repeats=args.repeats)
        print(format_table(rows, title=f"{label}, {sizes}", baseline="flax MHA") + "\n")


if __name__ == "__main__":
    main()
