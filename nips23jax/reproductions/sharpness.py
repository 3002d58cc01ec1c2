"""sharpness: Wen, Li & Ma (NeurIPS 2023), flatness vs generalization in two-layer ReLU networks.

Three architectures on y = x1·x2 over x ∈ {±1}^30 (100 training points), each trained with
full-batch gradient descent + weight decay and with 1-SAM (``nips23jax.sam.sam`` with
``m_sharpness=1``), tracking test error and the sharpness tr(H) = (2/n) Σ ‖∇θ f(x_i)‖²
(``nips23jax.sharpness.interpolation_hessian_trace``). Config: ``configs/sharpness.py``.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from matplotlib.figure import Figure

from nips23jax.core import reproduce
from nips23jax.core.compile import compiled_on_first_call
from nips23jax.core.config import ConfigError, config_fingerprint
from nips23jax.core.train import TrainState, fit
from nips23jax.sam import sam
from nips23jax.sharpness import hessian_trace, interpolation_hessian_trace

NAME = "sharpness"
ARCHS = ("nobias", "bias", "layernorm")
ARCH_TITLES = {"nobias": "no bias", "bias": "with bias", "layernorm": "simplified LayerNorm"}

CLAIMS = (
    reproduce.Claim(
        "nobias",
        "Without bias, sharpness minimization (1-SAM) finds flat minimizers that generalize",
        "test error ~0 (Fig. 1a)",
        "1-SAM (no bias): test MSE < {config.criteria.generalizes_below}",
    ),
    reproduce.Claim(
        "bias",
        "With bias, 1-SAM finds a flatter minimizer than GD's generalizing one, and it memorizes",
        "flatter & test error high (Fig. 1b)",
        "1-SAM (bias): train MSE < {config.criteria.fits_below}, test MSE > {config.criteria.memorizes_above}, "
        "tr(H) below GD's, and GD (bias) test MSE < {config.criteria.generalizes_below}",
    ),
    reproduce.Claim(
        "layernorm",
        "With the simplified LayerNorm, 1-SAM generalizes although non-generalizing flattest minimizers exist",
        "test error ~0 (Fig. 1c)",
        "1-SAM (simplified LayerNorm): test MSE < {config.criteria.generalizes_below}",
    ),
)


def xor_data(key: jax.Array, num: int, dim: int) -> tuple[jax.Array, jax.Array]:
    """``x`` uniform on ``{±1}^dim`` (``(num, dim)`` float32) and ``y = x1·x2`` (``(num,)``)."""
    x = jax.random.rademacher(key, (num, dim), dtype=jnp.float32)
    return x, x[:, 0] * x[:, 1]


def two_layer_init(key: jax.Array, dim: int, width: int, *, bias: bool, init_scale: float = 1.0) -> dict:
    """Parameters ``W (width, dim)``, ``a (width,)`` and, with ``bias``, ``b (width,)`` (zeros).

    ``W ~ N(0, 1/dim)·init_scale``, ``a ~ N(0, 1/width)``.
    """
    k1, k2 = jax.random.split(key)
    params = {
        "W": jax.random.normal(k1, (width, dim)) * (init_scale / np.sqrt(dim)),
        "a": jax.random.normal(k2, (width,)) / np.sqrt(width),
    }
    if bias:
        params["b"] = jnp.zeros((width,))
    return params


def two_layer_apply(params: dict, x: jax.Array, *, layernorm: bool = False, eps: float = 1e-6) -> jax.Array:
    """``f(x) = aᵀ relu(Wx + b)``, or with the simplified LayerNorm ``aᵀ r / max(‖r‖, eps)``, ``r = relu(Wx)``.

    Args:
      params: from :func:`two_layer_init`.
      x: one input ``(dim,)``.

    Returns:
      Scalar output.
    """
    r = jax.nn.relu(params["W"] @ x + params.get("b", 0.0))
    if layernorm:
        # max(‖r‖, eps) as sqrt(max(‖r‖², eps²)): the same value, but its derivatives stay finite
        # where every unit is inactive (the gradient of ‖r‖ at r = 0 is 0/0 and poisons the HVPs).
        r = r / jnp.sqrt(jnp.maximum(jnp.sum(r * r), eps * eps))
    return params["a"] @ r


def _mse(model, params, x, y):
    return jnp.mean((jax.vmap(lambda xi: model(params, xi))(x) - y) ** 2)


def eval_series(log, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(epochs, values)`` of an evaluation metric from a run's :class:`MetricsLog` (its steps
    count compiled calls of ``epochs_per_call`` epochs each; every eval row records its epoch)."""
    epochs, values = log.series("epoch", "eval")[1], log.series(name, "eval")[1]
    return epochs.astype(int), values


def _arch_programs(config, arch: str, data) -> dict:
    """What the GD and 1-SAM runs of one architecture share: the model, its loss and one compiled
    evaluation program."""
    (x, y), (xt, yt) = data
    model = functools.partial(two_layer_apply, layernorm=arch == "layernorm", eps=config.ln_eps)
    loss = functools.partial(_mse, model)

    def evaluate(params):
        pred = jax.vmap(lambda xi: model(params, xi))(xt)
        return {
            "train_mse": loss(params, x, y),
            "test_mse": jnp.mean((pred - yt) ** 2),
            "test_error": jnp.mean(jnp.sign(pred) != yt),
            "trace_h": interpolation_hessian_trace(model, params, x),
        }

    def hutchinson(params):
        return hessian_trace(lambda p, b: loss(p, *b), params, (x, y), method="hutchinson",
                             key=jax.random.key(config.seed), num_samples=config.hutchinson_samples)

    # Programs called a few dozen times (evaluate) or once per run (the Hutchinson check) and cheap
    # to run: XLA's fastest compile (on a CPU) beats its fastest code.
    return {"loss": loss, "evaluate": compiled_on_first_call(jax.jit(evaluate)),
            "hutchinson": compiled_on_first_call(jax.jit(hutchinson))}


def _train_one(config, arch: str, run: ml_collections.ConfigDict, data, programs: dict, workdir: Path, progress: bool):
    (x, y), _ = data
    loss, evaluate = programs["loss"], programs["evaluate"]
    params = two_layer_init(
        jax.random.fold_in(jax.random.key(config.seed), 1), config.dim, config.width,
        bias=arch == "bias", init_scale=run.init_scale,
    )
    if run.method == "gd":
        opt = optax.chain(optax.add_decayed_weights(run.weight_decay), optax.sgd(run.lr))
    elif run.method == "sam":
        rho = optax.piecewise_constant_schedule(run.rho, {run.rho_switch: run.rho_late / run.rho}) if (
            run.rho_switch > 0 and run.rho_late != run.rho) else run.rho
        # 1-SAM's per-example perturbed parameter copies: one at a time on a CPU, where the copy
        # stays in cache (about 2x faster than all 100 at once); all at once on an accelerator.
        opt = sam(optax.sgd(run.lr), rho=rho, m_sharpness=1,
                  chunk_size=1 if jax.default_backend() == "cpu" else None)
    else:
        raise ValueError(f"sharpness: runs.*.method must be 'gd' or 'sam', got {run.method!r}")

    def step(state, batch):
        bx, by = batch
        if run.method == "gd":
            value, grads = jax.value_and_grad(loss)(state.params, bx, by)
            updates, opt_state = opt.update(grads, state.opt_state, state.params)
        else:
            value = loss(state.params, bx, by)
            per_example_grad = lambda p, b: jax.grad(loss)(p, b[0], b[1])  # noqa: E731
            updates, opt_state = opt.update(
                state.params, state.opt_state, state.params, grad_fn=per_example_grad, batch=batch
            )
        new = TrainState(step=state.step + 1, params=optax.apply_updates(state.params, updates), opt_state=opt_state)
        return new, {"loss": value}

    # One compiled call runs `per_call` epochs (a lax.scan): thousands of full-batch epochs of a
    # small network cost little each, and a call per epoch would pay the dispatch every time. The
    # evaluation period is a whole number of calls, so evaluations fall on the same epochs.
    every = max(run.epochs // config.num_evals, 1)
    per_call = math.gcd(run.epochs, every)

    def many_epochs(state, batch):
        s, metrics = jax.lax.scan(lambda s, _: step(s, batch), state, None, length=per_call)
        return s.replace(step=state.step + 1), {"loss": metrics["loss"][-1], "epoch": (state.step + 1) * per_call}

    def eval_fn(state):
        return {"epoch": int(state.step) * per_call, **evaluate(state.params)}

    calls = run.epochs // per_call
    out = fit(
        TrainState.create(params, opt),
        jax.jit(many_epochs, donate_argnums=0),
        lambda t: (x, y),
        num_steps=calls,
        workdir=workdir,
        checkpoint_every=max(calls // 4, 1),
        keep_checkpoints=1,
        fingerprint=config_fingerprint(ml_collections.ConfigDict({"run": run, "arch": arch, "seed": config.seed,
                                                                   "width": config.width, "dim": config.dim,
                                                                   "epochs_per_call": per_call})),
        eval_fn=eval_fn,
        eval_every=every // per_call,
        log_every=every // per_call,
        progress=progress,
        desc=f"{arch} {run.method}",
    )
    final = {k: float(v) for k, v in evaluate(out.state.params).items()}
    final["trace_h_hutchinson"] = float(programs["hutchinson"](out.state.params))
    return out.log, final


def run(config: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True) -> reproduce.Result:
    """Trains the six runs (3 architectures x {GD, 1-SAM}), plots, and judges the three claims."""
    validate(config)  # the CLI calls it too, before any run; a direct call (the notebooks) checks here
    workdir = Path(workdir)
    k_train, k_test = jax.random.split(jax.random.key(config.seed))
    data = (xor_data(k_train, config.num_train, config.dim), xor_data(k_test, config.num_test, config.dim))
    logs, finals = {}, {}
    for arch in ARCHS:
        programs = _arch_programs(config, arch, data)
        for method in ("gd", "sam"):
            name = f"{arch}_{method}"
            logs[name], finals[name] = _train_one(config, arch, config.runs[name], data, programs, workdir / name, progress)

    crit = config.criteria
    f = finals
    findings = [
        reproduce.Finding(
            "nobias", f"test MSE {f['nobias_sam']['test_mse']:.3f}",
            f["nobias_sam"]["test_mse"] < crit.generalizes_below,
            _detail(f, "nobias"),
        ),
        reproduce.Finding(
            "bias",
            f"test MSE {f['bias_sam']['test_mse']:.3f}, tr(H) {f['bias_sam']['trace_h']:.1f} vs GD {f['bias_gd']['trace_h']:.1f}",
            f["bias_sam"]["train_mse"] < crit.fits_below
            and f["bias_sam"]["test_mse"] > crit.memorizes_above
            and f["bias_sam"]["trace_h"] < f["bias_gd"]["trace_h"]
            and f["bias_gd"]["test_mse"] < crit.generalizes_below,
            _detail(f, "bias"),
        ),
        reproduce.Finding(
            "layernorm", f"test MSE {f['layernorm_sam']['test_mse']:.3f}",
            f["layernorm_sam"]["test_mse"] < crit.generalizes_below,
            _detail(f, "layernorm"),
        ),
    ]
    figure = _plot(logs, workdir / "sharpness.png")
    return reproduce.Result(findings=findings, metrics={"final": finals}, figures=[figure.name])


def _detail(finals, arch):
    parts = []
    for method, label in (("gd", "GD+wd"), ("sam", "1-SAM")):
        r = finals[f"{arch}_{method}"]
        parts.append(
            f"{label}: train MSE {r['train_mse']:.2e}, test MSE {r['test_mse']:.3f}, test 0-1 error "
            f"{r['test_error']:.3f}, tr(H) {r['trace_h']:.2f} (Hutchinson on the full loss {r['trace_h_hutchinson']:.2f})"
        )
    return "; ".join(parts)


def _plot(logs, path: Path) -> Path:
    fig = Figure(figsize=(13, 6.5))
    axes = fig.subplots(2, 3)
    for j, arch in enumerate(ARCHS):
        for method, label, color in (("gd", "GD + weight decay", "C0"), ("sam", "1-SAM", "C3")):
            log = logs[f"{arch}_{method}"]
            axes[0, j].plot(*eval_series(log, "test_mse"), color=color, label=label)
            axes[1, j].semilogy(*eval_series(log, "trace_h"), color=color, label=label)
        axes[0, j].set(title=ARCH_TITLES[arch], xlabel="epoch", ylabel="test MSE")
        axes[1, j].set(xlabel="epoch", ylabel="tr(H) = (2/n) Σ‖∇f‖²")
        axes[0, j].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def validate(config: ml_collections.ConfigDict) -> None:
    """Config values the run cannot use, as :class:`ConfigError` naming the key (the CLI calls it first)."""
    for name, run_cfg in config.runs.items():
        if run_cfg.method not in ("gd", "sam"):
            raise ConfigError(f"runs.{name}.method must be 'gd' or 'sam', got {run_cfg.method!r}")


REPRODUCTION = reproduce.register(
    reproduce.Reproduction(
        name=NAME,
        title="flatness vs generalization: 1-SAM vs GD on two-layer ReLU networks (Wen, Li & Ma)",
        paper="Wen, Li, Ma. Sharpness Minimization Algorithms Do Not Only Minimize Sharpness To Achieve "
        "Better Generalization. NeurIPS 2023",
        claims=CLAIMS,
        config="sharpness",
        run=run,
        notebook="colab/sharpness.ipynb",
        validate=validate,
    )
)
