"""Does nips23jax's training step add overhead over a hand-written ``jax.jit`` step?

Times one optimizer step of the shared ``TransformerLM`` (next-token loss, Adam), measured side
by side in one run:

* ``plain jax.jit`` (baseline): ``value_and_grad`` + ``optax`` update + ``apply_updates``, jitted
  by hand, no framework, no donation;
* ``make_train_step (donate)``: ``nips23jax.core.train.make_train_step`` with the state donated
  (the default: the update happens in place);
* ``make_train_step (no donate)``: the same without donation.

The framework step does slightly more work than the baseline -- it folds the step into a PRNG
key and returns the gradient norm -- so a ratio of ~1.0 means that bookkeeping is free. Before
timing, one step of each is checked to give the same loss and parameters.

    python benchmarks/train_step.py                  # batch 8, seq 128, d_model 128, 2 layers
    python benchmarks/train_step.py --layers 4 --repeats 50
"""

from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import optax

from nips23jax.core.benchmark import benchmark_parser, compare, format_table
from nips23jax.core.train import TrainState, make_train_step
from nips23jax.models.lm import masked_lm_loss
from nips23jax.models.transformer import TransformerConfig, TransformerLM


def parse_args(argv=None):
    p = benchmark_parser(__doc__, warmup=2, repeats=30)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq", type=int, default=128)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--vocab", type=int, default=256)
    return p.parse_args(argv)


def fresh_copy(tree):
    """New buffers, so one case donating its state cannot invalidate another's."""
    return jax.tree.map(lambda a: jnp.array(a, copy=True), tree)


def main(argv=None):
    args = parse_args(argv)
    cfg = TransformerConfig(vocab_size=args.vocab, d_model=args.d_model, num_heads=args.heads,
                            num_layers=args.layers, max_len=args.seq)
    model = TransformerLM(cfg)
    optimizer = optax.adam(1e-3)
    tokens = jnp.asarray(np.random.default_rng(args.seed).integers(0, args.vocab, (args.batch, args.seq)),
                         jnp.int32)
    params = jax.jit(model.init)(jax.random.key(args.seed), tokens)["params"]
    state = jax.jit(TrainState.create, static_argnums=1)(params, optimizer)

    def lm_loss(params, tokens):
        return masked_lm_loss(model.apply({"params": params}, tokens), tokens)

    # The baseline: what one would write without the framework.
    @jax.jit
    def plain_step(params, opt_state, tokens):
        (loss, _), grads = jax.value_and_grad(lm_loss, has_aux=True)(params, tokens)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    framework_loss = lambda params, batch, key: lm_loss(params, batch)  # noqa: E731
    donating = make_train_step(framework_loss, optimizer, key=args.seed, donate=True)
    copying = make_train_step(framework_loss, optimizer, key=args.seed, donate=False)

    # Same step, same result: one update from the same state.
    want_params, _, want_loss = jax.device_get(plain_step(state.params, state.opt_state, tokens))
    for name, step in (("donate", donating), ("no donate", copying)):
        got, metrics = jax.device_get(step(fresh_copy(state), tokens))
        np.testing.assert_allclose(metrics["loss"], want_loss, rtol=1e-5, err_msg=f"{name}: loss differs")
        jax.tree.map(lambda g, w: np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6), got.params, want_params)

    # Each case owns its state and advances it every call (the donated one must).
    def plain_case(params, opt_state):
        carry = [params, opt_state]

        def run():
            carry[0], carry[1], loss = plain_step(carry[0], carry[1], tokens)
            return carry[0], loss

        return run

    def framework_case(step, state):
        carry = [state]

        def run():
            carry[0], metrics = step(carry[0], tokens)
            return carry[0], metrics

        return run

    cases = {
        "plain jax.jit": plain_case(fresh_copy(state.params), fresh_copy(state.opt_state)),
        "make_train_step (donate)": framework_case(donating, fresh_copy(state)),
        "make_train_step (no donate)": framework_case(copying, fresh_copy(state)),
    }
    sizes = (f"batch {args.batch}, seq {args.seq}, d_model {args.d_model}, {args.heads} heads, "
             f"{args.layers} layers, vocab {args.vocab}, {cfg.num_params():,} params")
    print(f"TransformerLM train step (Adam), {sizes}, {jax.default_backend()} (JAX {jax.__version__}); "
          "one step of each matches the baseline's loss and parameters\n")
    rows = compare(cases, "plain jax.jit", warmup=args.warmup, repeats=args.repeats)
    print(format_table(rows, title=f"train step, {sizes}", baseline="plain jax.jit"))


if __name__ == "__main__":
    main()
