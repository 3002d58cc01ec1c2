"""Pathwise conditioning: GP posterior means and samples as functions (Lin et al. 2023, eq. 2).

A posterior sample is the prior sample plus a data-dependent update (Wilson et al. 2020):

    (f | y)(·) = f₀(·) + K(·, X) v,    (K + σ²I) v = y − f₀(X) − ε,  ε ~ N(0, σ²I),

and the posterior mean is the same with ``f₀ = 0``, ``ε = 0``: ``μ(·) = K(·, X) α``,
``(K + σ²I) α = y``. :func:`posterior` draws ``f₀`` with random Fourier features, solves for all
representer weights at once with the chosen solver (column 0 the mean, one column per sample),
and returns a :class:`GPPosterior` that evaluates them anywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nips23jax.core.train import as_key
from nips23jax.core.compile import dual
from nips23jax.gp import solvers as _solvers
from nips23jax.gp.kernels import Kernel, Params, _kernel_matvec_impl, check_data, check_params, default_block_size, get_kernel
from nips23jax.gp.kernels import kernel_matvec, matern32, warn_duplicates_zero_noise
from nips23jax.gp.rff import PRIOR_BLOCK_ROWS, PriorSampleFn, _draw_prior

__all__ = ["GPPosterior", "SOLVERS", "posterior"]

SOLVERS = ("cholesky", "cg", "sgd", "inducing")


@dataclasses.dataclass(frozen=True)
class GPPosterior:
    """A GP posterior given by representer weights on ``centers`` (``X``, or inducing points).

    Attributes:
      kernel, params: the prior (``params["noise_variance"]`` is the one solved with, jitter included).
      centers: ``(m, d)``.
      mean_weights: ``(m,)``: ``μ(x) = K(x, centers) mean_weights``.
      sample_weights: ``(m, S)``: sample ``i`` is ``f₀⁽ⁱ⁾(x) + K(x, centers) sample_weights[:, i]``.
      prior_fn: ``x -> (S, n)`` prior samples ``f₀`` (``None`` when ``S = 0``).
      solver: the solver's name.
      info: solver diagnostics.
      resample: ``(key, num_samples) -> GPPosterior``, the same construction with a new key.
    """

    kernel: Kernel
    params: Params
    centers: jax.Array
    mean_weights: jax.Array
    sample_weights: jax.Array
    prior_fn: Callable[[ArrayLike], jax.Array] | None
    solver: str
    info: dict[str, Any]
    resample: Callable[[jax.Array, int], "GPPosterior"] | None = None
    block_size: int | None = None

    @property
    def num_samples(self) -> int:
        return int(self.sample_weights.shape[1])

    def _check_x(self, x: ArrayLike) -> jax.Array:
        x = jnp.asarray(x, self.centers.dtype)
        if x.ndim != 2 or x.shape[1] != self.centers.shape[1]:
            raise ValueError(f"GPPosterior: x must have shape (n, {self.centers.shape[1]}), got {x.shape}")
        return x

    def mean(self, x: ArrayLike) -> jax.Array:
        """Posterior mean ``μ(x) = K(x, X) α``: ``(n,)`` for ``x (n, d)``."""
        x = self._check_x(x)
        return kernel_matvec(self.kernel, self.params, x, self.centers, self.mean_weights, block_size=self.block_size)

    def sample(self, key: jax.Array | None, x: ArrayLike, num_samples: int | None = None) -> jax.Array:
        """Posterior samples at ``x``: ``(num_samples, n)``.

        With ``key=None`` the samples drawn at construction are evaluated (the first ``num_samples``):
        the same functions at every call, so values at different ``x`` are jointly consistent. With a
        key, ``num_samples`` fresh samples are drawn by re-running the construction's solver.
        """
        x = self._check_x(x)
        if key is not None:
            if self.resample is None:
                raise ValueError("GPPosterior.sample: this posterior cannot draw fresh samples (no resample)")
            return self.resample(key, self.num_samples if num_samples is None else num_samples).sample(None, x)
        s = self.num_samples if num_samples is None else int(num_samples)
        if s < 1 or s > self.num_samples:
            raise ValueError(
                f"GPPosterior.sample: num_samples must be in [1, {self.num_samples}] (drawn at construction) "
                f"without a key, got {num_samples}")
        if isinstance(self.prior_fn, PriorSampleFn):
            work = x.shape[0] * (self.centers.shape[0] + self.prior_fn.features.omega[0].size) * s
            return _samples_impl.at(work)(self.kernel, self._block(), s, self.params, self.centers,
                                          self.sample_weights, self.prior_fn, x)
        update = kernel_matvec(self.kernel, self.params, x, self.centers, self.sample_weights[:, :s],
                               block_size=self.block_size)
        return self.prior_fn(x)[:s] + update.T

    def _block(self) -> int:
        return default_block_size(self.centers.shape[0]) if self.block_size is None else int(self.block_size)

    def predict(self, x: ArrayLike, *, exact: bool | None = None, include_noise: bool = False
                ) -> tuple[jax.Array, jax.Array]:
        """``(mean (n,), variance (n,))`` of ``f(x)`` (plus ``σ²`` with ``include_noise``).

        The variance is exact, ``k(x,x) − K(x,X)(K+σ²I)⁻¹K(X,x)``, for the Cholesky solver (or
        ``exact=True``, which needs it); otherwise the Monte Carlo estimate around the mean
        from the construction's samples, ``(1/S) Σ_i (f_i(x) − μ(x))²``. One compiled program per
        solver kind and shapes.
        """
        x = self._check_x(x)
        chol = self.info.get("cholesky")
        if exact is None:
            exact = chol is not None
        if exact:
            if chol is None:
                raise ValueError("GPPosterior.predict: exact=True needs the Cholesky solver")
            work = x.shape[0] * self.centers.shape[0] * (self.centers.shape[1] + 2)
            return _predict_exact_impl.at(work)(self.kernel, self._block(), bool(include_noise), self.params,
                                                self.centers, self.mean_weights, chol, x)
        if self.num_samples < 1:
            raise ValueError("GPPosterior.predict: the sample variance needs num_samples >= 1 at construction")
        if isinstance(self.prior_fn, PriorSampleFn):
            work = x.shape[0] * (self.centers.shape[0] + self.prior_fn.features.omega[0].size) * (self.num_samples + 1)
            return _predict_mc_impl.at(work)(self.kernel, self._block(), bool(include_noise), self.params,
                                             self.centers, self.mean_weights, self.sample_weights, self.prior_fn, x)
        mu = self.mean(x)
        return mu, _variance(self.sample(None, x), mu, self.params, include_noise)


@dual(static_argnums=(0, 1, 2))
def _samples_impl(kernel, bs, s, params, centers, sample_weights, prior_fn, x):
    update = _kernel_matvec_impl(kernel, bs, params, x, centers, sample_weights[:, :s])
    return prior_fn(x)[:s] + update.T


@dual(static_argnums=(0, 1, 2))
def _predict_exact_impl(kernel, bs, include_noise, params, centers, mean_weights, chol, x):
    mu = _kernel_matvec_impl(kernel, bs, params, x, centers, mean_weights)
    kxz = kernel(params, x, centers)
    half = jax.scipy.linalg.solve_triangular(chol, kxz.T, lower=True)
    var = jnp.maximum(kernel.diag(params, x) - jnp.sum(half * half, 0), 0.0)
    return mu, (var + params["noise_variance"] if include_noise else var)


@dual(static_argnums=(0, 1, 2))
def _predict_mc_impl(kernel, bs, include_noise, params, centers, mean_weights, sample_weights, prior_fn, x):
    mu = _kernel_matvec_impl(kernel, bs, params, x, centers, mean_weights)
    samples = _samples_impl(kernel, bs, sample_weights.shape[1], params, centers, sample_weights, prior_fn, x)
    return mu, _variance(samples, mu, params, include_noise)


def _variance(samples, mu, params, include_noise):
    """Monte Carlo variance ``(n,)`` of samples ``(S, n)`` around the mean ``(n,)``, plus ``σ²`` if asked."""
    var = jnp.mean(jnp.square(samples - mu[None]), 0)
    return var + params["noise_variance"] if include_noise else var


@dual(static_argnums=(0, 1, 2))
def _pathwise_rhs(kernel, num_samples, num_features, key, params, x, y):
    """Right-hand sides of pathwise conditioning (Lin et al. 2023, eq. 2) as one program.

    Returns ``(prior, targets (n, 1 + S), shifts, solver_key)``: column 0 the mean (``y``, no shift), column
    ``i`` the prior sample ``f₀⁽ⁱ⁾(X)`` with noise ``ε⁽ⁱ⁾ ~ N(0, σ²I)``; ``prior`` the samples' (features,
    weights) as :func:`nips23jax.gp.prior_sample_fn` draws them from the same key (``None`` and no shifts
    when ``S = 0``).
    """
    n, d = x.shape
    dtype = x.dtype
    k_prior, k_noise, k_solver = jax.random.split(key, 3)
    targets = y[:, None].astype(dtype)
    if num_samples == 0:
        return None, targets, None, k_solver
    feats, weights = _draw_prior(k_prior, kernel, num_samples, num_features, d)
    f0 = PriorSampleFn(feats, weights, params, d, PRIOR_BLOCK_ROWS)(x).T  # (n, S)
    eps = jnp.sqrt(params["noise_variance"]) * jax.random.normal(k_noise, (n, num_samples), dtype)
    targets = jnp.concatenate([targets, f0], 1)
    shifts = jnp.concatenate([jnp.zeros((n, 1), dtype), eps], 1)
    return (feats, weights), targets, shifts, k_solver


@dual()
def _split_weights(w):
    """Solved weights ``(m, 1 + S)`` -> mean weights ``(m,)`` and sample weights ``v⁽ⁱ⁾ = α_mean − α⁽ⁱ⁾``."""
    return w[:, 0], w[:, :1] - w[:, 1:]


def _as_2d(name: str, a: ArrayLike) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"posterior: {name} must have shape (n, d) or (n,), got {a.shape}")
    return a


def posterior(
    x_train: ArrayLike,
    y_train: ArrayLike,
    kernel_params: Params,
    *,
    kernel: Kernel | str = matern32,
    solver: str = "cholesky",
    key: jax.Array | int | None = None,
    num_samples: int = 0,
    num_features: int = 2000,
    jitter: float = 1e-6,
    block_size: int | None = None,
    **solver_options: Any,
) -> GPPosterior:
    """Conditions a GP on ``(x_train, y_train)`` by pathwise conditioning with the chosen solver.

    All right-hand sides go through one solver call: column 0 is the mean (target ``y``), column
    ``i ≥ 1`` sample ``i`` (target ``f₀⁽ⁱ⁾(X)``, noise ``ε⁽ⁱ⁾``). Sample weights are
    ``v⁽ⁱ⁾ = α_mean − α⁽ⁱ⁾`` with ``(K + σ²I) α⁽ⁱ⁾ = f₀⁽ⁱ⁾(X) + ε⁽ⁱ⁾``.

    Args:
      x_train: ``(n, d)`` (or ``(n,)`` for ``d = 1``); may be sharded over a mesh's data axis.
      y_train: ``(n,)``.
      kernel_params: ``{"lengthscale", "signal_variance", "noise_variance"}``.
      kernel: a kernel (default Matérn-3/2, the paper's) or its name.
      solver: ``"cholesky"``, ``"cg"``, ``"sgd"`` or ``"inducing"``.
      key: PRNG key (needed for samples, ``sgd`` and ``inducing``).
      num_samples: ``S`` posterior samples drawn alongside the mean.
      num_features: random Fourier features per prior sample (the paper: 2000).
      jitter: the noise used when ``noise_variance`` is 0 and ``x_train`` has duplicate rows (warns).
      block_size: rows per kernel block, in the solver (``cg`` when it recomputes blocks, ``inducing``)
        and when evaluating the posterior at new inputs; ``None`` for each one's default.
      **solver_options: passed to the solver. ``cg``: ``tol`` (mean, default 1e-2), ``sample_tol``
        (default 1e-3), ``max_iters``, ``preconditioner_rank``, ``max_matrix_bytes``, ``monitor``. ``sgd``:
        ``learning_rate`` (mean, 0.5), ``sample_learning_rate`` (0.1), ``num_steps``, ``batch_size``,
        ``momentum``, ``num_features`` → pass as ``sgd_num_features``, ``averaging``, ``grad_clip``,
        ``callback``, ``callback_every``, ``row_block``. ``inducing``: ``num_inducing``, ``inducing_points``,
        ``solver_jitter`` (relative diagonal jitter of the M × M solve, default 1e-6). ``cholesky``:
        ``solver_jitter`` (extra diagonal, default 0; the factorization raises if ``K + σ²I`` is not
        positive definite in the input dtype, as at σ² = 1e-6 in float32).

    Returns:
      A :class:`GPPosterior`.

    Raises:
      ValueError: mismatched lengths, NaN/Inf data, invalid hyperparameters, ``num_features < 1``,
        unknown solver or a missing key.
    """
    kernel = get_kernel(kernel)
    if solver not in SOLVERS:
        raise ValueError(f"posterior: solver must be one of {SOLVERS}, got {solver!r}")
    x_is_jax = isinstance(x_train, jax.Array)
    xn = _as_2d("x_train", x_train if not x_is_jax else np.asarray(jax.device_get(x_train)))
    yn = np.asarray(jax.device_get(y_train) if isinstance(y_train, jax.Array) else y_train)
    if yn.ndim == 2 and yn.shape[1] == 1:
        yn = yn[:, 0]
    check_data("posterior", xn, yn, names=("x_train", "y_train"))
    check_params(kernel_params, xn.shape[1], where="posterior: kernel_params")
    if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or num_samples < 0:
        raise ValueError(f"posterior: num_samples must be an int >= 0, got {num_samples!r}")
    if isinstance(num_features, bool) or not isinstance(num_features, (int, np.integer)) or num_features < 1:
        raise ValueError(f"posterior: num_features must be an int >= 1, got {num_features!r}")
    if key is None and (num_samples > 0 or solver == "sgd"
                        or (solver == "inducing" and "inducing_points" not in solver_options)):
        raise ValueError(f"posterior: key is required for samples (num_samples={num_samples}) and for solver "
                         f"{solver!r}" + (" without inducing_points" if solver == "inducing" else ""))

    params = dict(kernel_params)
    noise = warn_duplicates_zero_noise(xn, float(np.asarray(params["noise_variance"])), jitter)
    dtype = jnp.asarray(x_train).dtype if jnp.issubdtype(jnp.asarray(x_train).dtype, jnp.floating) else jnp.float32
    params = {k: jnp.asarray(v, dtype) for k, v in params.items()}
    params["noise_variance"] = jnp.asarray(noise, dtype)
    # Keep the caller's array (and its sharding) when it was already a JAX array of the right shape.
    x = x_train if (x_is_jax and jnp.ndim(x_train) == 2 and x_train.dtype == dtype) else jnp.asarray(xn, dtype)
    y_kept = isinstance(y_train, jax.Array) and y_train.ndim == 1 and y_train.dtype == dtype
    y = y_train if y_kept else jnp.asarray(yn, dtype)
    n, d = xn.shape

    key = as_key(0 if key is None else key)
    work = n * (num_samples * num_features * (d + 2) + 1)
    prior, targets, shifts, k_solver = _pathwise_rhs.at(work)(kernel, int(num_samples), int(num_features), key,
                                                              params, x, y)
    prior_fn = None if prior is None else PriorSampleFn(*prior, params, d, PRIOR_BLOCK_ROWS)

    opts = dict(solver_options)
    s = targets.shape[1]
    if "solver_jitter" in opts:
        if solver not in ("cholesky", "inducing"):
            raise ValueError(f"posterior: solver_jitter is an option of the cholesky and inducing solvers, not {solver!r}")
        opts["jitter"] = opts.pop("solver_jitter")
    if block_size is not None and solver in ("cg", "inducing"):
        opts["block_size"] = block_size
    if solver == "cholesky":
        result = _solvers.cholesky(kernel, params, x, targets, shifts, **opts)
    elif solver == "cg":
        tol = np.full((s,), opts.pop("sample_tol", 1e-3), np.float32)
        tol[0] = opts.pop("tol", 1e-2)
        result = _solvers.conjugate_gradients(kernel, params, x, targets, shifts, tol=tol, **opts)
    elif solver == "sgd":
        lr = np.full((s,), opts.pop("sample_learning_rate", 0.1), np.float32)
        lr[0] = opts.pop("learning_rate", 0.5)
        if "sgd_num_features" in opts:
            opts["num_features"] = opts.pop("sgd_num_features")
        result = _solvers.sgd(kernel, params, x, targets, shifts, key=k_solver, learning_rate=lr, **opts)
    else:
        result = _solvers.inducing(kernel, params, x, targets, shifts, key=k_solver, **opts)

    mean_w, sample_w = _split_weights.at(result.weights.size)(result.weights)

    def resample(new_key, new_num_samples):
        return posterior(x_train, y_train, kernel_params, kernel=kernel, solver=solver, key=new_key,
                         num_samples=new_num_samples, num_features=num_features, jitter=jitter,
                         block_size=block_size, **solver_options)

    return GPPosterior(kernel=kernel, params=params, centers=result.centers, mean_weights=mean_w,
                       sample_weights=sample_w, prior_fn=prior_fn, solver=solver, info=result.info,
                       resample=resample, block_size=block_size)
