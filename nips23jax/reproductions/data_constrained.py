"""data-constrained: Muennighoff et al. (NeurIPS 2023), scaling language models with repeated data.

(a) From the published law (``nips23jax.scaling``): the value of each extra epoch, the loss cost
of 4 epochs vs unique data at Chinchilla-optimal allocations, and the decay of returns.
(b) A real small-scale experiment: tiny ``TransformerLM``s trained on the Python standard library's
docstrings (``nips23jax.data.corpus``) at fixed compute budgets, varying unique data vs epochs;
the law is fitted to these runs (``fit_data_constrained``). (c) With scarce natural language,
filling the budget with code (stdlib sources) vs repeating. Config: ``configs/data_constrained.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from nips23jax.core import reproduce
from nips23jax.core.compile import compiled_on_first_call
from nips23jax.core.config import ConfigError
from nips23jax.core.train import MetricsLog, TrainState, make_train_step
from nips23jax.data.corpus import corpus_tokenizer, corpus_tokens, repeated_windows
from nips23jax.models.lm import lm_loss_fn, masked_lm_loss
from nips23jax.models.transformer import TransformerConfig, TransformerLM
from nips23jax.scaling import (
    PUBLISHED,
    chinchilla_optimal,
    data_constrained_loss,
    effective_data,
    fit_data_constrained,
    optimal_allocation,
)

NAME = "data-constrained"

CLAIMS = (
    reproduce.Claim(
        "four_epochs",
        "Up to ~4 epochs, repeated data is about as good as unique data (published law)",
        "negligible loss change (abstract); the 8.7B model on 178B tokens",
        "law: loss increase of the 8.7B-parameter, 178B-token run with 4 epochs (44.5B unique tokens) vs "
        "unique tokens <= {config.criteria.four_epoch_max_increase:.1%}",
    ),
    reproduce.Claim(
        "diminishing_returns",
        "The value of each extra epoch decays toward zero (R_D* = 15.4): effective data saturates at U_D(1 + R_D*)",
        "R_D* = 15.39; D' -> 16.4 U_D",
        "value of epoch 2 >= {config.criteria.epoch2_min_value}, value of epoch 40 <= "
        "{config.criteria.epoch40_max_value}, values decreasing",
    ),
    reproduce.Claim(
        "tiny_repetition",
        "Tiny LMs at fixed compute: 4 epochs of repeated text cost little vs unique text; many epochs cost more",
        "4 epochs ~ unique; returns decay (Fig. 3)",
        "mean loss increase at 4 epochs <= {config.criteria.tiny_four_epoch_max_increase:.0%} and "
        "< the increase at {config.criteria.many_epochs} epochs",
    ),
    reproduce.Claim(
        "tiny_fit",
        "The data-constrained law fits the tiny runs (Huber/L-BFGS fit of all constants)",
        "R² = 0.772 on the paper's runs",
        "R² >= {config.criteria.min_r2}",
    ),
    reproduce.Claim(
        "code_filling",
        "With scarce natural language, filling half the budget with code is as good as repeating the text",
        "up to 50% code: no degradation on NL (Sec. 7, Fig. 6)",
        "NL validation loss of the 50% code mix <= repeating's x (1 + {config.criteria.code_tolerance})",
    ),
)


# ---- (a) the published law -------------------------------------------------------------------


def epoch_values(num_epochs: int, R_D_star: float = PUBLISHED.R_D_star) -> np.ndarray:
    """Value of epoch k = 1..num_epochs in unique-epoch units: ``(D'(k·U) − D'((k−1)·U)) / U``."""
    k = np.arange(1, num_epochs + 1, dtype=np.float64)
    with jax.enable_x64(True):
        d = np.asarray(effective_data(k, 1.0, R_D_star))
    return np.diff(np.concatenate([[0.0], d]))


def law_analysis(config) -> dict:
    """Numbers of part (a) from the published constants."""
    budgets = np.asarray(config.law.budgets, np.float64)
    epochs = np.asarray(config.law.epochs, np.float64)
    with jax.enable_x64(True):
        N, D = config.law.paper_run
        run_increase = {float(e): float(data_constrained_loss(N, D, D / e) / data_constrained_loss(N, D, D) - 1)
                        for e in epochs}
        n_opt, d_opt = (np.asarray(x) for x in chinchilla_optimal(budgets))
        unique = np.asarray(data_constrained_loss(n_opt, d_opt, d_opt))
        # the best allocation of the same compute when only D_opt/e unique tokens exist
        increase = {float(e): (np.asarray(optimal_allocation(budgets, d_opt / e).loss) / unique - 1).tolist()
                    for e in epochs}
    values = epoch_values(int(config.law.max_epochs))
    return {"budgets": budgets.tolist(), "n_opt": n_opt.tolist(), "d_opt": d_opt.tolist(), "run_increase": run_increase,
            "loss_increase": increase, "epoch_values": values.tolist()}


# ---- (b, c) tiny LMs ----------------------------------------------------------------------------


def _model(config, size) -> TransformerLM:
    return TransformerLM(TransformerConfig(
        vocab_size=corpus_tokenizer().vocab_size, d_model=size.d_model, num_heads=size.num_heads,
        num_layers=size.num_layers, max_len=config.data.seq_len,
    ))


def _num_params(params) -> int:
    """Elements in every leaf of ``params`` (the tiny LMs have no adapters: ``qlora.count_params``'s
    adapter / frozen split does not apply)."""
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(params)))


class _Trainer:
    """One compiled train step per model size; the cosine learning rate is set per step from
    Python (``optax.inject_hyperparams``), so runs of any length share the compile."""

    def __init__(self, config, size, val_windows):
        self.config = config
        self.model = _model(config, size)
        t = config.train
        self.optimizer = optax.inject_hyperparams(optax.adamw)(learning_rate=t.lr, weight_decay=t.weight_decay)
        # config.fast_compile (CPU): the one-off programs (initial state, evaluation) compile at XLA
        # backend optimization level 0, ~2.5x faster; the train step, which runs thousands of
        # times, keeps the default level (at level 0 it runs ~2x slower)
        fast = bool(config.get("fast_compile", False)) and jax.default_backend() == "cpu"
        self.step = make_train_step(lm_loss_fn(self.model), self.optimizer, key=config.seed)
        model = self.model
        val = jnp.asarray(val_windows)

        @jax.jit
        def evaluate(params):
            def one(chunk):
                return masked_lm_loss(model.apply({"params": params}, chunk), chunk, None)[0]
            return jnp.mean(jax.lax.map(one, val.reshape(-1, config.train.batch_size, val.shape[-1])))

        self.evaluate = compiled_on_first_call(evaluate, fast)

        # one compiled call builds the initial state (initializing eagerly compiles dozens of small
        # per-shape programs, which costs more than a short run)
        @jax.jit
        def init_state(key):
            params = model.init(key, jnp.zeros((1, config.data.seq_len), jnp.int32))["params"]
            return TrainState.create(params, self.optimizer)

        self._init_state = compiled_on_first_call(init_state, fast)

    def init(self):
        return self._init_state(jax.random.key(self.config.seed))

    def lr(self, t: int, total: int) -> float:
        c = self.config.train
        warm = min(c.warmup_steps, max(total // 10, 1))
        if t < warm:
            return c.lr * (t + 1) / warm
        frac = (t - warm) / max(total - warm, 1)
        return c.lr * (c.final_lr_fraction + (1 - c.final_lr_fraction) * 0.5 * (1 + np.cos(np.pi * frac)))

    def train(self, windows: np.ndarray, log: MetricsLog, name: str, progress: bool) -> tuple[float, int]:
        c = self.config.train
        total = len(windows) // c.batch_size
        state = self.init()
        mask = np.ones((c.batch_size, windows.shape[1]), bool)
        for t in tqdm(range(total), desc=name, disable=not progress, leave=False, dynamic_ncols=True):
            inj = state.opt_state
            state = state.replace(opt_state=inj._replace(
                hyperparams={**inj.hyperparams, "learning_rate": jnp.asarray(self.lr(t, total), jnp.float32)}))
            batch = {"tokens": jnp.asarray(windows[t * c.batch_size:(t + 1) * c.batch_size]), "loss_mask": mask}
            state, metrics = self.step(state, batch)
            if (t + 1) % c.log_every == 0 or t + 1 == total:
                log.write(t + 1, f"train/{name}", {"loss": metrics["loss"]})
        val = float(self.evaluate(state.params))
        log.write(total, f"eval/{name}", {"val_loss": val})
        return val, _num_params(state.params)


def _epochs_for(config, size) -> list[int]:
    """The epoch counts trained for a model size: ``config.epochs`` up to ``size.max_epochs`` (if set).

    The paper's repeated-data runs give the most epochs to the smallest models (hundreds to
    thousands for 14M-150M parameters, at most ~14 for 2.8B-8.7B): a larger model on the tiny
    unique data of many epochs overfits, which the law (monotone in D' >= U_D) does not model.
    """
    cap = size.get("max_epochs", None)
    return [e for e in config.epochs if cap is None or e <= cap]


def _windows_for(config, sources):
    return repeated_windows(sources, seq_len=config.data.seq_len, seed=config.seed, subset_seed=config.seed)


def run(config: ml_collections.ConfigDict, workdir: Path, *, progress: bool = True) -> reproduce.Result:
    """Part (a) from the law, then the tiny-LM runs of (b) and (c), the fit, the figures and verdicts."""
    validate(config)  # the CLI calls it too, before any run; a direct call (the notebooks) checks here
    for size in config.models:
        if not {1, 4} <= set(_epochs_for(config, size)):
            raise ValueError(f"{NAME}: every model must train 1 and 4 epochs (config.epochs, max_epochs), "
                             f"got {_epochs_for(config, size)} for {size}")
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    crit = config.criteria
    t0 = time.perf_counter()

    # (a) the published law
    law = law_analysis(config)
    inc4 = law["run_increase"][4.0]
    vals = np.asarray(law["epoch_values"])

    # (b) tiny LMs on the stdlib docstrings at fixed compute, unique data vs epochs
    nf = config.data.num_files
    nl_train = corpus_tokens("docstrings", "train", num_files=nf)
    code_train = corpus_tokens("code", "train", num_files=nf)
    val_tokens = corpus_tokens("docstrings", "validation", num_files=nf)
    seq, bs = config.data.seq_len, config.train.batch_size
    n_val = (min(config.eval.num_windows, len(val_tokens) // seq) // bs) * bs
    if n_val < bs:
        raise ValueError(f"{NAME}: the validation split holds fewer than batch_size={bs} windows; raise data.num_files")
    val_windows = val_tokens[: n_val * seq].reshape(n_val, seq)
    log = MetricsLog(workdir / "metrics.jsonl")
    log.truncate_after(-1)
    runs = []
    for si, size in enumerate(config.models):
        trainer = _Trainer(config, size, val_windows)
        for steps in config.budgets:
            D = steps * bs * seq
            for epochs in _epochs_for(config, size):
                U = D // epochs
                name = f"m{si}_s{steps}_e{epochs}"
                windows = _windows_for(config, [(nl_train, U, float(epochs))])[: steps * bs]
                loss, n = trainer.train(windows, log, name, progress)
                runs.append(dict(name=name, model=si, steps=steps, N=n, D=D, U_D=U, epochs=epochs, loss=loss))
        if si == 0:  # (c) code filling on the smallest model and largest budget
            steps = max(config.budgets)
            D = steps * bs * seq
            k = config.code.nl_epochs_if_repeated
            U = D // k
            code_runs = {}
            strategies = (("repeat", 0.0), ("code50", 0.5), ("code_rest", 1.0 - 1.0 / k))
            for label, frac in strategies[: 3 if config.code.nl_once_run else 2]:
                sources = [(nl_train, U, k * (1 - frac))]
                if frac > 0:
                    sources.append((code_train, int(D * frac), 1.0))
                windows = _windows_for(config, sources)[: steps * bs]
                code_runs[label], _ = trainer.train(windows, log, f"code_{label}", progress)

    # fit the law to the tiny runs (part b)
    arr = {k: np.array([r[k] for r in runs], np.float64) for k in ("N", "D", "U_D", "loss")}
    fitted, r2 = fit_data_constrained(arr["N"], arr["D"], arr["U_D"], arr["loss"],
                                      grid=dict(config.fit.grid), max_iter=config.fit.max_iter)
    with jax.enable_x64(True):
        predicted = np.asarray(data_constrained_loss(arr["N"], arr["D"], arr["U_D"], fitted))
    for r, p in zip(runs, predicted):
        r["predicted"] = float(p)

    # verdicts of part (b): per (model, budget) group, loss increase over the 1-epoch run
    # (the many-epoch increase is averaged over the groups whose model trains that many epochs,
    # and compared with the 4-epoch increase of the same groups)
    many = crit.many_epochs
    inc_4, inc_4_many, inc_many = [], [], []
    for si in range(len(config.models)):
        for steps in config.budgets:
            g = {r["epochs"]: r["loss"] for r in runs if r["model"] == si and r["steps"] == steps}
            inc_4.append(g[4] / g[1] - 1)
            if many in g:
                inc_4_many.append(g[4] / g[1] - 1)
                inc_many.append(g[many] / g[1] - 1)
    if not inc_many:
        raise ValueError(f"{NAME}: no model trains criteria.many_epochs={many} epochs; lower it or raise a max_epochs")
    mean4, mean_many = float(np.mean(inc_4)), float(np.mean(inc_many))
    mean4_same = float(np.mean(inc_4_many))
    code_ratio = code_runs["code50"] / code_runs["repeat"]

    findings = [
        reproduce.Finding(
            "four_epochs", f"+{inc4:.2%} loss", inc4 <= crit.four_epoch_max_increase,
            "law, 8.7B params / 178B tokens, k epochs vs unique: "
            + "; ".join(f"{int(e)}: +{v:.2%}" for e, v in law["run_increase"].items())
            + ". Same compute re-allocated optimally with D_opt/k unique tokens, C = 1e19 / 1e24: "
            + "; ".join(f"{int(e)}: +{v[0]:.2%} / +{v[-1]:.2%}" for e, v in law["loss_increase"].items()),
        ),
        reproduce.Finding(
            "diminishing_returns",
            f"epoch 2 worth {vals[1]:.3f}, epoch 4 {vals[3]:.3f}, epoch 40 {vals[39]:.3f}",
            vals[1] >= crit.epoch2_min_value and vals[39] <= crit.epoch40_max_value and bool(np.all(np.diff(vals[1:]) < 0)),
            f"values of epochs 2..8: {', '.join(f'{v:.3f}' for v in vals[1:8])}; D'/U_D after 100 epochs "
            f"{float(np.sum(vals[:100])):.2f}, limit 1 + R_D* = {1 + PUBLISHED.R_D_star:.2f}",
        ),
        reproduce.Finding(
            "tiny_repetition",
            f"4 epochs: {mean4:+.2%} (mean over {len(inc_4)} model x budget groups), {many} epochs: "
            f"{mean_many:+.2%} vs 4 epochs {mean4_same:+.2%} (the {len(inc_many)} groups that train {many} epochs)",
            mean4 <= crit.tiny_four_epoch_max_increase and mean4_same < mean_many,
            "runs (name: N, D, U_D, val loss): " + "; ".join(
                f"{r['name']}: {r['N']}, {r['D']}, {r['U_D']}, {r['loss']:.4f}" for r in runs),
        ),
        reproduce.Finding(
            "tiny_fit", f"R² {r2:.3f}, R_D* {fitted.R_D_star:.3g}, R_N* {fitted.R_N_star:.3g}", r2 >= crit.min_r2,
            f"fitted A={fitted.A:.4g}, B={fitted.B:.4g}, E={fitted.E:.4g}, α={fitted.alpha:.3f}, β={fitted.beta:.3f} "
            f"on {len(runs)} runs; max |predicted/observed − 1| = {float(np.max(np.abs(predicted / arr['loss'] - 1))):.2%}",
        ),
        reproduce.Finding(
            "code_filling",
            f"50% code {code_runs['code50']:.4f} vs repeat {code_runs['repeat']:.4f} ({code_ratio - 1:+.2%})",
            code_ratio <= 1 + crit.code_tolerance,
            f"NL validation loss with U_NL = D/{config.code.nl_epochs_if_repeated}: repeat NL "
            f"{config.code.nl_epochs_if_repeated} epochs {code_runs['repeat']:.4f}; NL x{config.code.nl_epochs_if_repeated // 2 if config.code.nl_epochs_if_repeated % 2 == 0 else config.code.nl_epochs_if_repeated / 2} + 50% code "
            f"{code_runs['code50']:.4f}" + (f"; NL once + code for the rest {code_runs['code_rest']:.4f}"
                                             if "code_rest" in code_runs else ""),
        ),
    ]
    figures = [_plot_law(law, workdir / "law.png").name, _plot_tiny(config, runs, fitted, workdir / "tiny_runs.png").name,
               _plot_code(code_runs, config, workdir / "code_filling.png").name]
    return reproduce.Result(
        findings=findings,
        metrics={"law": law, "runs": runs, "fit": {**fitted._asdict(), "r2": r2}, "code_filling": code_runs,
                 "elapsed_s": time.perf_counter() - t0},
        figures=figures,
    )


def _plot_law(law, path: Path) -> Path:
    fig = Figure(figsize=(12, 4))
    ax = fig.subplots(1, 3)
    vals = np.asarray(law["epoch_values"])
    k = np.arange(1, len(vals) + 1)
    ax[0].plot(k, vals, "o-", ms=3)
    ax[0].set(xscale="log", xlabel="epoch k", ylabel="value of epoch k (unique epochs)", title="value of each extra epoch")
    ax[1].plot(k, np.cumsum(vals), label="D'/U_D (law)")
    ax[1].plot(k, k, "--", label="unique data (D/U_D)")
    ax[1].axhline(1 + PUBLISHED.R_D_star, color="gray", ls=":", label="limit 1 + R_D*")
    ax[1].set(xscale="log", yscale="log", xlabel="epochs", ylabel="effective data / U_D", title="effective data")
    ax[1].legend()
    for e, inc in law["loss_increase"].items():
        ax[2].plot(law["budgets"], 100 * np.asarray(inc), "o-", ms=3, label=f"{int(e)} epochs")
    ax[2].set(xscale="log", xlabel="compute C (FLOPs)", ylabel="loss increase vs unique (%)",
              title="best allocation with D_opt/k unique tokens")
    ax[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _plot_tiny(config, runs, fitted, path: Path) -> Path:
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    i = 0
    for si in range(len(config.models)):
        for steps in config.budgets:
            g = sorted((r for r in runs if r["model"] == si and r["steps"] == steps), key=lambda r: r["epochs"])
            e = np.array([r["epochs"] for r in g])
            ax.plot(e, [r["loss"] for r in g], "o", color=f"C{i}", label=f"model {si} ({g[0]['N']:,} params), D={g[0]['D']:,}")
            ee = np.geomspace(1, e.max(), 50)
            with jax.enable_x64(True):
                pred = np.asarray(data_constrained_loss(float(g[0]["N"]), float(g[0]["D"]), g[0]["D"] / ee, fitted))
            ax.plot(ee, pred, "-", color=f"C{i}", alpha=0.7)
            i += 1
    ax.set(xscale="log", xlabel="epochs (same compute, U_D = D / epochs)", ylabel="NL validation loss (nats/char)",
           title="tiny LMs on stdlib docstrings; lines: fitted law")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def _plot_code(code_runs, config, path: Path) -> Path:
    fig = Figure(figsize=(5.5, 4))
    ax = fig.subplots()
    labels = list(code_runs)
    ax.bar(labels, [code_runs[k] for k in labels], color=["C0", "C1", "C2"][: len(labels)])
    lo = min(code_runs.values())
    ax.set_ylim(lo * 0.97, max(code_runs.values()) * 1.01)
    ax.set(ylabel="NL validation loss", title=f"scarce text (U = D/{config.code.nl_epochs_if_repeated}): repeat vs fill with code")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def validate(config: ml_collections.ConfigDict) -> None:
    """Config values the run cannot use, as :class:`ConfigError` naming the key (the CLI calls it first)."""
    if 4 not in [float(e) for e in config.law.epochs]:
        raise ConfigError(f"law.epochs must include 4 (the 'four_epochs' claim reads it), got {list(config.law.epochs)}")
    if config.law.max_epochs < 40:
        raise ConfigError(f"law.max_epochs must be >= 40 (the claims read epoch 40's value), got {config.law.max_epochs}")


REPRODUCTION = reproduce.register(
    reproduce.Reproduction(
        name=NAME,
        title="scaling with repeated data: the data-constrained law and tiny-LM repetition/code-filling runs",
        paper="Muennighoff, Rush, Barak, Le Scao, Piktus, Tazi, Pyysalo, Wolf, Raffel. Scaling Data-Constrained "
        "Language Models. NeurIPS 2023",
        claims=CLAIMS,
        config="data_constrained",
        run=run,
        notebook="colab/data_constrained.ipynb",
        validate=validate,
    )
)
