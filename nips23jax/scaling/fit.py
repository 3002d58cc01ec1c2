"""Fitting the data-constrained law to runs (Muennighoff et al., Section 3; Hoffmann et al., Appendix D.2).

The paper's procedure, in float64: minimize the Huber loss (δ = 1e-3) between the predicted and the
observed log-loss,

    Σ_i w_i · Huber_δ( LSE(a − α·log N'_i, b − β·log D'_i, e) − log L_i ),

(``A = e^a``, ``B = e^b``, ``E = e^e``; LSE is log-sum-exp, so ``exp(LSE) = E + A/N'^α + B/D'^β``)
with L-BFGS (``optax.lbfgs``) from every point of a grid of initializations at once (``jax.vmap``),
keeping the best. Three stages, the paper's two and a joint refit: (1) the Chinchilla terms ``a, b,
e, α, β`` on the runs of at most one epoch (``N' = N``, ``D' = D``; on every run when fewer than 5
single-epoch runs exist, 4 with ``tie``); (2) with those fixed, ``R_D*`` and ``R_N*``
(optimized as logarithms, so they stay positive) on all runs; (3) all seven together on all runs,
starting from stage 2 (single-epoch runs of models larger than ``U_N`` have ``N' < N``, which
stage 1 ignores; this removes that bias). The objective is nearly flat in
``(R_D*, R_N*)``, so judge a fit by R² and its predicted losses rather than by those constants.

Float64 is switched on only inside these functions (``jax.enable_x64`` context); nothing global
changes.

Example::

    params, r2 = fit_data_constrained(N, D, U_D, loss)    # arrays of runs
    data_constrained_loss(N, D, U_D, params)              # the fitted law's predictions
"""

from __future__ import annotations

import functools
import inspect
import itertools
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from nips23jax.scaling.law import DataConstrainedParams

__all__ = [
    "CHINCHILLA_GRID",
    "DECAY_GRID",
    "DEFAULT_GRID",
    "BootstrapResult",
    "bootstrap_data_constrained",
    "fit_data_constrained",
    "huber_log_objective",
    "r_squared",
]

#: Grid of initializations for the Chinchilla terms (Hoffmann et al.): α, β ∈ {0, 0.5, ..., 2},
#: e ∈ {−1, −0.5, ..., 1}, a, b ∈ {0, 5, ..., 25}.
CHINCHILLA_GRID: Mapping[str, tuple[float, ...]] = {
    "a": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "b": (0.0, 5.0, 10.0, 15.0, 20.0, 25.0),
    "e": (-1.0, -0.5, 0.0, 0.5, 1.0),
    "alpha": (0.0, 0.5, 1.0, 1.5, 2.0),
    "beta": (0.0, 0.5, 1.0, 1.5, 2.0),
}
#: The default, coarser grid (243 starts): a, b ∈ {0, 10, 20}, e ∈ {−1, 0, 1}, α, β ∈ {0.2, 0.5, 1}.
#: Pass ``grid=CHINCHILLA_GRID`` for the paper's 4500 starts (about 20x the run time).
DEFAULT_GRID: Mapping[str, tuple[float, ...]] = {
    "a": (0.0, 10.0, 20.0),
    "b": (0.0, 10.0, 20.0),
    "e": (-1.0, 0.0, 1.0),
    "alpha": (0.2, 0.5, 1.0),
    "beta": (0.2, 0.5, 1.0),
}
#: Grid of initializations for the decay constants (R_D*, R_N*).
DECAY_GRID: Mapping[str, tuple[float, ...]] = {
    "R_D_star": (1.0, 3.0, 10.0, 30.0, 100.0),
    "R_N_star": (1.0, 3.0, 10.0, 30.0, 100.0),
}


def _validate_runs(N, D, U_D, loss, fn: str) -> tuple[np.ndarray, ...]:
    arrays = []
    for name, v in (("N", N), ("D", D), ("U_D", U_D), ("loss", loss)):
        a = np.asarray(v, dtype=np.float64) if not isinstance(v, str) else None
        if a is None or a.ndim != 1:
            raise ValueError(f"{fn}: {name} must be a 1-D array of runs, got shape {None if a is None else a.shape}")
        if np.isnan(a).any():
            raise ValueError(f"{fn}: {name} contains NaN at runs {np.flatnonzero(np.isnan(a))[:5].tolist()}")
        if not np.isfinite(a).all() or (a <= 0).any():
            bad = np.flatnonzero(~np.isfinite(a) | (a <= 0))[:5].tolist()
            raise ValueError(f"{fn}: {name} must be finite and > 0; runs {bad} are not")
        arrays.append(a)
    sizes = {a.shape[0] for a in arrays}
    if len(sizes) != 1:
        raise ValueError(f"{fn}: N, D, U_D and loss must have the same length, got {[a.shape[0] for a in arrays]}")
    return tuple(arrays)


def huber_log_objective(
    pred_log_loss: jax.Array, log_loss: jax.Array, weights: jax.Array | None = None, delta: float = 1e-3
) -> jax.Array:
    """``Σ_i w_i·Huber_δ(pred_i − log L_i)``: the fitting objective (Hoffmann et al., Eq. D.2).

    Args:
      pred_log_loss, log_loss: ``(R,)`` predicted and observed log-losses.
      weights: ``(R,)`` non-negative run weights (bootstrap counts), default ones.
      delta: Huber threshold.

    Returns:
      Scalar.
    """
    if not delta > 0:
        raise ValueError(f"huber_log_objective: delta must be > 0, got {delta!r}")
    shapes = [jnp.shape(a) for a in (pred_log_loss, log_loss) + (() if weights is None else (weights,))]
    if len(shapes[0]) != 1 or any(sh != shapes[0] for sh in shapes):
        raise ValueError(f"huber_log_objective: pred_log_loss, log_loss (and weights) must be equal-length vectors "
                         f"(R,), got shapes {shapes}")
    h = optax.losses.huber_loss(pred_log_loss, log_loss, delta=delta)
    return jnp.sum(h if weights is None else weights * h)


def r_squared(observed: ArrayLike, predicted: ArrayLike) -> float:
    """Coefficient of determination ``1 − Σ(y − ŷ)² / Σ(y − ȳ)²`` on the losses (not log-losses).

    Args:
      observed, predicted: ``(R,)``.

    Returns:
      R² as a float (1 for a perfect fit; can be negative).
    """
    y = np.asarray(observed, np.float64)
    p = np.asarray(predicted, np.float64)
    if y.shape != p.shape or y.ndim != 1 or y.size < 2:
        raise ValueError(f"r_squared: observed and predicted must be equal 1-D shapes of >= 2 runs, got {y.shape}, {p.shape}")
    ss_tot = np.sum((y - y.mean()) ** 2)
    if ss_tot == 0:
        raise ValueError("r_squared: observed losses are all equal; R² is undefined")
    return float(1.0 - np.sum((y - p) ** 2) / ss_tot)


# ---- the jittable core -------------------------------------------------------------------------
# One parameter vector x = (a, b, e, α, β, log R_D*, log R_N*) and one compiled solver for both
# stages (a `free` mask chooses what moves), so a fit compiles a single L-BFGS program.

_LOG_R_INFINITE = 40.0  # R* = e^40: N' = N and D' = D to float64 precision (stage 1)


def _predict_log_loss(x, logN, logD, logU, tie):
    a, b, e, alpha = x[0], x[1], x[2], x[3]
    beta = jnp.where(tie, alpha, x[4])
    r_d, r_n = jnp.exp(x[5]), jnp.exp(x[6])
    logU = jnp.minimum(logU, logD)
    R_D = jnp.maximum(jnp.exp(logD - logU) - 1.0, 0.0)
    logD_eff = logU + jnp.log1p(r_d * -jnp.expm1(-R_D / r_d))
    # U_N = G·(G·U)^{β/α}, G = (αA/(βB))^{1/(α+β)}; degenerate exponents fall back to N' = N
    ok = (alpha > 0) & (beta > 0)
    sa, sb = jnp.where(ok, alpha, 1.0), jnp.where(ok, beta, 1.0)
    logG = (jnp.log(sa) + a - jnp.log(sb) - b) / (sa + sb)
    logU_N = jnp.minimum(logN, logG + (sb / sa) * (logG + logU))
    R_N = jnp.maximum(jnp.exp(logN - logU_N) - 1.0, 0.0)
    logN_eff = jnp.where(ok, logU_N + jnp.log1p(r_n * -jnp.expm1(-R_N / r_n)), logN)
    terms = jnp.stack([a - alpha * logN_eff, b - beta * logD_eff, jnp.broadcast_to(e, logN.shape)])
    return jax.nn.logsumexp(terms, axis=0)


def _lbfgs(fun, x0, max_iter: int, tol: float):
    """Minimizes ``fun`` from ``x0`` with optax's L-BFGS (zoom line search) until ‖grad‖ < tol."""
    opt = optax.lbfgs()  # zoom line search (strong Wolfe): backtracking stalls on the Huber kinks
    value_and_grad = optax.value_and_grad_from_state(fun)

    def body(carry):
        x, state = carry
        value, grad = value_and_grad(x, state=state)
        updates, state = opt.update(grad, state, x, value=value, grad=grad, value_fn=fun)
        return optax.apply_updates(x, updates), state

    def cond(carry):
        _, state = carry
        k = optax.tree.get(state, "count")
        g = optax.tree.norm(optax.tree.get(state, "grad"))
        return (k == 0) | ((k < max_iter) & (g >= tol))

    x, _ = jax.lax.while_loop(cond, body, (x0, opt.init(x0)))
    return x, fun(x)


# XLA's backend optimization level 1 instead of the default 2: compiles the L-BFGS program ~20%
# faster, runs it ~7% slower (measured: 15.8 s vs 19.9 s compile, 0.31 s vs 0.29 s run, 32 starts x 60 runs)
@functools.partial(jax.jit, static_argnames=("delta",), compiler_options={"xla_backend_optimization_level": 1})
def _solve(inits, free, tie, logN, logD, logU, logL, weights, max_iter, tol, *, delta):
    """Best of L-BFGS runs from every row of ``inits`` (K, 7), moving only the ``free`` entries.

    Only the shapes and ``delta`` are static: ``max_iter``, ``tol``, ``tie`` and the masks are
    traced, and callers pad K and R to buckets (:func:`_bucket`), so one compile (the L-BFGS
    program dominates a small fit's time) serves every fit of a process.
    """

    def from_start(x0):
        def objective(z):
            x = jnp.where(free, z, x0)
            return huber_log_objective(_predict_log_loss(x, logN, logD, logU, tie), logL, weights, delta)

        z, value = _lbfgs(objective, x0, max_iter, tol)
        return jnp.where(free, z, x0), value

    xs, values = jax.vmap(from_start)(inits)
    values = jnp.where(jnp.isfinite(values), values, jnp.inf)
    i = jnp.argmin(values)
    return xs[i], values[i]


def _grid_inits(grid, tie) -> np.ndarray:
    keys = ("a", "b", "e", "alpha") + (() if tie else ("beta",))
    for k in keys:
        if k not in grid or len(grid[k]) == 0:
            raise ValueError(f"fit_data_constrained: grid must give a non-empty sequence for {k!r}")
    rows = np.array(list(itertools.product(*(grid[k] for k in keys))), np.float64)
    if tie:
        rows = np.concatenate([rows, rows[:, 3:4]], axis=1)
    return np.concatenate([rows, np.full((len(rows), 2), _LOG_R_INFINITE)], axis=1)


def _decay_inits(decay_grid) -> np.ndarray:
    for k in ("R_D_star", "R_N_star"):
        if k not in decay_grid or len(decay_grid[k]) == 0 or min(decay_grid[k]) <= 0:
            raise ValueError(f"fit_data_constrained: decay_grid[{k!r}] must be a non-empty sequence of positive values")
    return np.log(np.array(list(itertools.product(decay_grid["R_D_star"], decay_grid["R_N_star"])), np.float64))


def _pad_rows(rows: np.ndarray, k: int) -> np.ndarray:
    return rows[np.arange(k) % len(rows)]


# Shape buckets for the compiled solver: starts padded (by repeating rows) to a multiple of 32,
# runs padded (with zero-weight copies of run 0) to a multiple of 64.
_STARTS_BUCKET = 32
_RUNS_BUCKET = 64


def _bucket(n: int, size: int) -> int:
    return max(size, -(-n // size) * size)


def _two_stage(inits1, decay_inits, logs, weights, tie, delta, max_iter, tol):
    """Stage 1 (Chinchilla terms on single-epoch runs), stage 2 (R_D*, R_N* on all runs), stage 3 (all seven)."""
    logN, logD, logU, logL = logs
    k = _bucket(max(len(inits1), len(decay_inits)), _STARTS_BUCKET)
    single = (logD <= logU) & (weights > 0)
    # too few single-epoch runs for the Chinchilla constants: stage 1 uses every run (module docstring)
    w1 = weights * single if single.sum() >= (4 if tie else 5) else weights
    free1 = np.array([1, 1, 1, 1, 0 if tie else 1, 0, 0], bool)
    kw = dict(delta=delta)
    it = (np.int32(max_iter), np.float64(tol))
    x1, _ = _solve(_pad_rows(inits1, k), free1, tie, logN, logD, logU, logL, w1, *it, **kw)
    x1 = np.asarray(x1)
    inits2 = np.concatenate([np.tile(x1[:5], (len(decay_inits), 1)), decay_inits], axis=1)
    x2, _ = _solve(_pad_rows(inits2, k), np.array([0, 0, 0, 0, 0, 1, 1], bool), tie,
                   logN, logD, logU, logL, weights, *it, **kw)
    # stage 3: every constant together on all runs (removes stage 1's bias from single-epoch runs with
    # excess parameters, whose N' < N), from stage 2's answer and from every grid start with stage 2's
    # decay constants (a single start can stall on the Huber objective's kinks)
    free3 = free1 | np.array([0, 0, 0, 0, 0, 1, 1], bool)
    x2 = np.asarray(x2)
    grid3 = np.concatenate([inits1[:, :5], np.tile(x2[5:], (len(inits1), 1))], axis=1)
    inits3 = np.concatenate([x2[None], grid3])
    x, value = _solve(_pad_rows(inits3, k), free3, tie, logN, logD, logU, logL, weights, *it, **kw)
    return np.asarray(x), float(value)


def _to_params(x, tie) -> DataConstrainedParams:
    a, b, e, alpha, beta, log_rd, log_rn = np.asarray(x, np.float64)
    return DataConstrainedParams(
        A=float(np.exp(a)), B=float(np.exp(b)), E=float(np.exp(e)), alpha=float(alpha),
        beta=float(alpha if tie else beta), R_D_star=float(np.exp(log_rd)), R_N_star=float(np.exp(log_rn)),
    )


def fit_data_constrained(
    N: ArrayLike,
    D: ArrayLike,
    U_D: ArrayLike,
    loss: ArrayLike,
    *,
    grid: Mapping[str, Sequence[float]] = DEFAULT_GRID,
    decay_grid: Mapping[str, Sequence[float]] = DECAY_GRID,
    tie_exponents: bool = False,
    delta: float = 1e-3,
    max_iter: int = 500,
    tol: float = 1e-10,
) -> tuple[DataConstrainedParams, float]:
    """Fits ``L(N, D, U_D) = E + A/N'^α + B/D'^β`` (Eq. 5) to runs; returns ``(params, R²)``.

    Huber (δ) on log-loss, optax L-BFGS from every grid point (vmapped), three stages (see module
    docstring), all in float64.

    Args:
      N: ``(R,)`` parameters of each run, > 0.
      D: ``(R,)`` total training tokens, > 0.
      U_D: ``(R,)`` unique tokens, > 0 (``D < U_D`` is valid: less than one epoch).
      loss: ``(R,)`` final validation losses, > 0, no NaN.
      grid: initial values of ``a = log A``, ``b = log B``, ``e = log E``, ``alpha``, ``beta``;
        their product is the stage-1 grid (default :data:`DEFAULT_GRID`, 243 points;
        :data:`CHINCHILLA_GRID` is the paper's 4500).
      decay_grid: initial ``R_D_star``, ``R_N_star`` values (product grid) for stage 2.
      tie_exponents: fit one exponent ``α = β`` (the paper's published fit has α = β).
      delta: Huber threshold on the log-loss residual.
      max_iter: L-BFGS iterations per start.
      tol: stop a start when the gradient norm falls below this.

    Returns:
      ``(params, r2)``: the fitted :class:`DataConstrainedParams` (Python floats) and R² of the
      fitted law's losses on these runs (:func:`r_squared`).

    Raises:
      ValueError: NaN, non-positive or non-finite values, unequal lengths, fewer than 3 runs.
    """
    N, D, U_D, loss = _validate_runs(N, D, U_D, loss, "fit_data_constrained")
    _check_num_runs(N, "fit_data_constrained")
    params = _fit(N, D, U_D, loss, np.ones_like(N), _grid_inits(grid, tie_exponents), _decay_inits(decay_grid),
                  tie_exponents, delta, max_iter, tol)
    return params, _r2(N, D, U_D, loss, params)


def _check_num_runs(N: np.ndarray, fn: str) -> None:
    if N.size < 3:
        raise ValueError(f"{fn}: need at least 3 runs, got {N.size}")


def _r2(N, D, U_D, loss, params) -> float:
    # the unchecked Eq. 5 (a degenerate fit, e.g. α <= 0, still gets its R²)
    x = np.array([np.log(params.A), np.log(params.B), np.log(params.E) if params.E > 0 else -np.inf,
                  params.alpha, params.beta, np.log(params.R_D_star), np.log(params.R_N_star)])
    with jax.enable_x64(True):
        pred = np.exp(np.asarray(_predict_log_loss(jnp.asarray(x), *(jnp.asarray(np.log(v)) for v in (N, D, U_D)),
                                                   False)))
    return r_squared(loss, pred)


def _fit(N, D, U_D, loss, weights, inits1, decay_inits, tie, delta, max_iter, tol) -> DataConstrainedParams:
    r = _bucket(len(N), _RUNS_BUCKET)
    pad = np.arange(r) % len(N) if r > len(N) else np.arange(len(N))
    weights = np.concatenate([np.asarray(weights, np.float64), np.zeros(r - len(N))])  # padding weighs 0
    with jax.enable_x64(True):
        logs = tuple(jnp.asarray(np.log(v[pad]), jnp.float64) for v in (N, D, U_D, loss))
        x, _ = _two_stage(inits1, decay_inits, logs, weights, bool(tie), float(delta),
                          int(max_iter), float(tol))
    return _to_params(x, tie)


class BootstrapResult(NamedTuple):
    """What :func:`bootstrap_data_constrained` returns.

    Attributes:
      params: the fit on all runs.
      r2: its R².
      intervals: ``{name: (low, high)}`` percentile interval of each constant (``A`` ... ``R_N_star``)
        and of ``r2``.
      samples: ``{name: (num_samples,) array}`` of the refitted constants and R².
    """

    params: DataConstrainedParams
    r2: float
    intervals: dict[str, tuple[float, float]]
    samples: dict[str, np.ndarray]


def bootstrap_data_constrained(
    N: ArrayLike,
    D: ArrayLike,
    U_D: ArrayLike,
    loss: ArrayLike,
    key: jax.Array | int,
    *,
    num_samples: int = 100,
    confidence: float = 0.95,
    **fit_kwargs,
) -> BootstrapResult:
    """Percentile bootstrap intervals for the fitted constants (runs resampled with replacement).

    Each resample is a vector of run counts (the weights of the Huber objective), so every
    resample is refitted by the same compiled three-stage solver (the grid of starts vmapped).

    Args:
      N, D, U_D, loss: ``(R,)`` runs, as :func:`fit_data_constrained`.
      key: PRNG key (int seed, raw or typed); the same key gives the same intervals.
      num_samples: bootstrap resamples.
      confidence: interval mass, in (0, 1).
      **fit_kwargs: passed to :func:`fit_data_constrained` (``grid``, ``tie_exponents``, ...).

    Returns:
      :class:`BootstrapResult`.
    """
    from nips23jax.core.train import as_key

    N, D, U_D, loss = _validate_runs(N, D, U_D, loss, "bootstrap_data_constrained")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"bootstrap_data_constrained: confidence must be in (0, 1), got {confidence}")
    if num_samples < 2:
        raise ValueError(f"bootstrap_data_constrained: num_samples must be >= 2, got {num_samples}")
    _check_num_runs(N, "bootstrap_data_constrained")
    opts = {k: p.default for k, p in inspect.signature(fit_data_constrained).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}  # fit_data_constrained's options and defaults
    unknown = set(fit_kwargs) - set(opts)
    if unknown:
        raise TypeError(f"bootstrap_data_constrained: unknown fit options {sorted(unknown)}")
    opts.update(fit_kwargs)
    tie = opts["tie_exponents"]
    inits1, decay_inits = _grid_inits(opts["grid"], tie), _decay_inits(opts["decay_grid"])
    args = (tie, opts["delta"], opts["max_iter"], opts["tol"])
    params = _fit(N, D, U_D, loss, np.ones_like(N), inits1, decay_inits, *args)
    r2 = _r2(N, D, U_D, loss, params)
    r = N.size
    idx = np.asarray(jax.random.randint(as_key(key), (num_samples, r), 0, r))
    fits = []
    for i in range(num_samples):  # the same compiled solver for every resample (shapes are equal)
        counts = np.bincount(idx[i], minlength=r).astype(np.float64)
        fits.append(_fit(N, D, U_D, loss, counts, inits1, decay_inits, *args))
    samples = {k: np.array([getattr(p, k) for p in fits]) for k in DataConstrainedParams._fields}
    samples["r2"] = np.array([_r2(N, D, U_D, loss, p) for p in fits])
    lo, hi = 100 * (1 - confidence) / 2, 100 * (1 + confidence) / 2
    intervals = {k: (float(np.percentile(v, lo)), float(np.percentile(v, hi))) for k, v in samples.items()}
    return BootstrapResult(params, r2, intervals, samples)
