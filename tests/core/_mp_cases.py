"""Named multi-process cases: each runs a few steps of one capability on a 4-device mesh and returns arrays.

Run as a script under the launcher (2 processes x 2 devices)::

    nips23jax launch -n 2 --devices-per-process 2 -- python tests/core/_mp_cases.py OUT.npz CASE [CASE ...]
        [--workdir DIR] [--restore DIR] [--kill-once FILE]

or import it and call ``run_cases(names, mesh)`` in one process with 4 devices: the two must give
the same arrays (tests/core/test_distributed.py compares them). Every process calls the cases (they
are collective); process 0 writes ``OUT.npz`` with keys ``"<case>/<name>"``.

Each process builds only its own rows of every global batch (``process_rows``): row ``r`` of
step ``t`` is drawn from ``default_rng((seed, t, r))``, so the global batch is the same whatever the
process count, and ``global_batch`` assembles it with ``make_array_from_process_local_data``.

Adding a case (e.g. GP SGD, DISCS chains): write ``def my_case(mesh, opts) -> dict[str, array]``
that runs a few sharded steps on ``mesh`` and returns what must match, decorate it with
``@case("my_case")``, and add ``"my_case"`` to ``CASES_COMPARED`` in test_distributed.py.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from nips23jax.core import distributed

CASES: dict[str, Callable] = {}
MESH = {"data": 2, "fsdp": 2}


def case(name: str):
    def register(fn):
        CASES[name] = fn
        return fn

    return register


def rows_batch(mesh, global_size: int, step: int, seed: int, make_row: Callable) -> dict:
    """This process's rows of step ``step``'s global batch, assembled into global arrays."""

    rows = distributed.process_rows(global_size, mesh)
    examples = [make_row(np.random.default_rng((seed, step, r))) for r in range(rows.start, rows.stop)]
    local = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
    return distributed.global_batch(local, mesh)


def _named(tree, prefix: str = "") -> dict:
    import jax

    from nips23jax.core.sharding import path_to_str

    flat = jax.tree_util.tree_flatten_with_path(distributed.gather(tree))[0]
    return {prefix + path_to_str(p): v for p, v in flat}


def _tiny_lm(lora_cfg=None, quantized=False):
    from nips23jax.models import TransformerConfig, TransformerLM
    from nips23jax.qlora import lora

    cfg = TransformerConfig(vocab_size=16, d_model=64, num_heads=2, num_layers=1, max_len=8)
    dense = None if lora_cfg is None else (lora.qlora_dense(lora_cfg) if quantized else lora.lora_dense(lora_cfg))
    return TransformerLM(cfg) if dense is None else TransformerLM(cfg, dense=dense), TransformerLM(cfg)


def _init_params(model, seed: int):
    """Deterministic LM parameters from NumPy (no init compile: these tests start several runtimes)."""
    import jax
    import jax.numpy as jnp

    shapes = jax.eval_shape(model.init, jax.random.key(0), jnp.zeros((1, 8), jnp.int32))["params"]
    rng = np.random.default_rng(seed)

    def fill(path, s):  # host arrays: placing them on a mesh compiles nothing
        name = str(path[-1].key)
        if name in ("scale", "bias"):
            return np.full(s.shape, 1.0 if name == "scale" else 0.0, s.dtype)
        return (0.3 * rng.standard_normal(s.shape)).astype(s.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)


def _sharded_state(state, mesh):
    import jax

    from nips23jax.core.sharding import param_shardings

    shardings = param_shardings(state, mesh, fsdp_min_size=256)
    return jax.device_put(state, shardings), shardings


@case("qlora")
def qlora_case(mesh, opts) -> dict:
    """Three QLoRA steps: NF4 base FSDP-sharded in ``frozen``, LoRA adapters trained (SGD)."""
    import jax
    import jax.numpy as jnp
    import optax

    from nips23jax.core.sharding import batch_sharding
    from nips23jax.core.train import TrainState, make_train_step
    from nips23jax.models.lm import lm_loss_fn
    from nips23jax.qlora import lora

    lcfg = lora.LoRAConfig(rank=4, alpha=8, targets=r"mlp/fc1/kernel$")  # one NF4 matrix: a small compile
    model, base_model = _tiny_lm(lcfg, quantized=True)
    base = _init_params(base_model, 0)
    params, quant = lora.quantize_base(lora.add_adapters(jax.random.key(1), base, lcfg), lcfg)
    opt = lora.lora_optimizer(optax.sgd(0.5), params)
    state, shardings = _sharded_state(TrainState.create(params, opt, {"quant": quant}), mesh)
    step = make_train_step(lm_loss_fn(model), opt, trainable=lora.adapter_mask(params), state_shardings=shardings,
                           batch_shardings=batch_sharding(mesh))

    def row(rng):
        tokens = rng.integers(0, 16, 8)
        return {"tokens": tokens, "loss_mask": tokens >= 0}

    losses = []
    for t in range(3):
        state, m = step(state, rows_batch(mesh, 8, t, 1, row))
        losses.append(m["loss"])
    return {**_named(state.params, "params/"), "loss": distributed.gather(jnp.stack(losses))}


@case("dpo")
def dpo_case(mesh, opts) -> dict:
    """Three DPO steps (sigmoid loss) of the tiny LM against precomputed reference log-probs."""
    import jax
    import jax.numpy as jnp
    import optax

    from nips23jax.core.sharding import batch_sharding
    from nips23jax.core.train import TrainState, make_train_step
    from nips23jax.dpo import make_dpo_loss_fn
    from nips23jax.models.lm import LMApply

    model, _ = _tiny_lm()
    params = _init_params(model, 2)
    opt = optax.sgd(0.5)
    state, shardings = _sharded_state(TrainState.create(params, opt), mesh)
    step = make_train_step(make_dpo_loss_fn(LMApply(model), beta=0.1), opt, state_shardings=shardings,
                           batch_shardings=batch_sharding(mesh))

    def row(rng):
        prompt = rng.integers(3, 16, 3)
        chosen = np.concatenate([prompt, rng.integers(3, 16, 5)])
        rejected = np.concatenate([prompt, rng.integers(3, 16, 5)])
        cl, rl = chosen.copy(), rejected.copy()
        cl[:3] = rl[:3] = -100
        ref = rng.normal(-12.0, 1.0, 2).astype(np.float32)  # the reference model's log-probs, precomputed
        return {"chosen_ids": chosen, "chosen_labels": cl, "rejected_ids": rejected, "rejected_labels": rl,
                "ref_chosen_logps": ref[0], "ref_rejected_logps": ref[1]}

    out = []
    for t in range(3):
        state, m = step(state, rows_batch(mesh, 8, t, 2, row))
        out.append(jnp.stack([m["loss"], m["rewards/margins"]]))
    return {**_named(state.params, "params/"), "loss_margin": distributed.gather(jnp.stack(out))}


def _mlp_problem():
    import jax.numpy as jnp

    rng = np.random.default_rng(4)  # host arrays: placing them on a mesh compiles nothing
    params = {"w1": (0.5 * rng.standard_normal((8, 16))).astype("float32"), "b1": np.zeros(16, "float32"),
              "w2": (0.5 * rng.standard_normal((16, 1))).astype("float32"), "b2": np.zeros(1, "float32")}

    def loss_fn(p, batch, key):
        h = jnp.tanh(batch["x"] @ p["w1"] + p["b1"])
        err = (h @ p["w2"] + p["b2"])[:, 0] - batch["y"]
        return jnp.mean(err**2), {}

    def row(rng):
        x = rng.normal(size=8).astype("float32")
        return {"x": x, "y": (np.sin(x[:4].sum()) + 0.1 * x[4:].sum()).astype("float32")}

    return params, loss_fn, row


@case("sam")
def sam_case(mesh, opts) -> dict:
    """Three SAM steps (perturbation from the globally averaged gradient) on a small MLP regression."""
    import jax
    import jax.numpy as jnp
    import optax

    from nips23jax.core.sharding import batch_sharding
    from nips23jax.core.train import TrainState, make_train_step
    from nips23jax.sam import sam

    params, loss_fn, row = _mlp_problem()
    opt = sam(optax.sgd(0.1, momentum=0.9), rho=0.05)

    def extra_args(p, batch, key):
        return {"grad_fn": lambda q: jax.grad(lambda q: loss_fn(q, batch, key)[0])(q)}

    state, shardings = _sharded_state(TrainState.create(params, opt), mesh)
    step = make_train_step(loss_fn, opt, extra_args_fn=extra_args, state_shardings=shardings,
                           batch_shardings=batch_sharding(mesh))
    losses = []
    for t in range(3):
        state, m = step(state, rows_batch(mesh, 16, t, 3, row))
        losses.append(m["loss"])
    return {**_named(state.params, "params/"), "loss": distributed.gather(jnp.stack(losses))}


@case("gp_sgd")
def gp_sgd_case(mesh, opts) -> dict:
    """GP representer weights by the paper's SGD, training inputs sharded over the devices (data parallel).

    Each process holds only its rows of ``x`` and of the targets (mean column + 2 pathwise-sample
    columns); every step's minibatch and random features come from ``fold_in(key, step)``.
    """
    import jax
    import jax.numpy as jnp

    from nips23jax import gp

    def row(rng):
        x = rng.uniform(-2, 2, size=3).astype("float32")
        return {"x": x, "t": np.array([np.sin(x.sum()), *rng.normal(size=2)], "float32")}

    data = rows_batch(mesh, 32, 0, 7, row)
    params = {"lengthscale": jnp.ones(3), "signal_variance": jnp.asarray(1.0), "noise_variance": jnp.asarray(0.1)}
    res = gp.sgd(gp.matern32, params, data["x"], data["t"], key=jax.random.key(8), num_steps=20, batch_size=8,
                 num_features=16, learning_rate=0.2)
    return {"weights": distributed.gather(res.weights)}


@case("discs")
def discs_case(mesh, opts) -> dict:
    """DISCS chains split across processes: 8 Gibbs-with-gradients chains on a 4x4 Ising model."""
    import jax

    from nips23jax import discrete

    model = discrete.ising(4, inverse_temperature=0.5, key=jax.random.key(9))
    trace, info = discrete.run_chains(jax.random.key(10), model, "gwg", num_chains=8, num_steps=12, mesh=mesh)
    return {"hamming": distributed.gather(trace), "acceptance": distributed.gather(info.acceptance_rate)}


def fit_state(mesh):
    """The ``fit`` case's initial (sharded) state, train step and batch function."""
    import optax

    from nips23jax.core.sharding import batch_sharding
    from nips23jax.core.train import TrainState, make_train_step

    params, loss_fn, row = _mlp_problem()
    opt = optax.adam(1e-2)
    state, shardings = _sharded_state(TrainState.create(params, opt), mesh)
    step = make_train_step(loss_fn, opt, state_shardings=shardings, batch_shardings=batch_sharding(mesh))
    return state, step, lambda t: rows_batch(mesh, 16, t, 5, row)


@case("fit")
def fit_case(mesh, opts) -> dict:
    """``fit`` for 6 steps with checkpoints every 2 under ``opts.workdir``; resumes what is there.

    With ``opts.kill_once``: process ``num_processes - 1`` SIGKILLs itself after step 5 (once: the
    file records it), so the same command run again resumes from the last complete checkpoint.
    """
    from nips23jax.core.train import fit

    state, step, batch_fn = fit_state(mesh)
    callbacks = []
    if opts.kill_once and not Path(opts.kill_once).exists():
        import jax

        def kill(done, state, metrics):
            if done == 5 and jax.process_index() == jax.process_count() - 1:
                Path(opts.kill_once).write_text("killed")
                os.kill(os.getpid(), signal.SIGKILL)

        callbacks.append(kill)
    out = fit(state, step, batch_fn, num_steps=6, workdir=opts.workdir, checkpoint_every=2, log_every=1,
              progress=False, callbacks=callbacks)

    return {**_named(out.state.params, "params/"), "resumed_from": np.asarray(-1 if out.resumed_from is None
                                                                                else out.resumed_from)}


@case("restore")
def restore_case(mesh, opts) -> dict:
    """Restores the newest checkpoint under ``opts.restore`` (written with any process count)."""

    from nips23jax.core.checkpoint import Checkpointer

    target, _, _ = fit_state(mesh)
    ckpt = Checkpointer(Path(opts.restore) / "checkpoints")
    step, state = ckpt.restore_latest(target)
    ckpt.close()
    return {**_named(state.params, "params/"), "step": np.asarray(step)}


@case("hang")
def hang_case(mesh, opts) -> dict:
    """Collectives in a loop; the last process stops itself (SIGSTOP: alive but silent) after 3 of them.

    The others then wait in a collective until ``jax.distributed`` misses its heartbeats and ends them.
    """
    import jax
    import jax.numpy as jnp

    from nips23jax.core.sharding import replicated

    total = jax.jit(jnp.sum, out_shardings=replicated(mesh))
    for t in range(10**6):
        x = rows_batch(mesh, 4, t, 6, lambda rng: {"x": rng.normal(size=2)})["x"]
        float(total(x))
        if t == 3 and jax.process_index() == jax.process_count() - 1:
            os.kill(os.getpid(), signal.SIGSTOP)
    return {}


def run_cases(names, mesh, opts=None) -> dict:
    """``{"<case>/<key>": array}`` for the named cases, run on ``mesh`` (collective in a multi-process job)."""
    opts = opts or argparse.Namespace(workdir=None, restore=None, kill_once=None)
    out = {}
    for name in names:
        for k, v in CASES[name](mesh, opts).items():
            out[f"{name}/{k}"] = v
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("cases", nargs="+", choices=sorted(CASES))
    p.add_argument("--workdir")
    p.add_argument("--restore")
    p.add_argument("--kill-once")
    opts = p.parse_args(argv)
    info = distributed.initialize()
    import jax

    from nips23jax.core.sharding import make_mesh

    distributed.main_print(f"{info.process_count} processes x {info.local_device_count} devices ({info.cluster})")
    mesh = make_mesh(MESH)
    arrays = run_cases(opts.cases, mesh, opts)
    if jax.process_index() == 0:
        np.savez(opts.out, **arrays)
    distributed.main_print("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
