"""Solvers for the representer weights of pathwise conditioning, vmapped over right-hand sides.

Every solver returns weights ``A (n, s)`` with ``(K + σ²I) A ≈ T + E`` for targets ``T (n, s)``
and noise shifts ``E (n, s)`` (Lin et al. 2023, eq. 2-3): column 0 is typically the mean
(``T = y``, ``E = 0``) and the others posterior samples (``T = f₀(X)``, ``E = ε ~ N(0, σ²I)``).
Splitting the right-hand side this way is what lets :func:`sgd` use the paper's low-variance
sample objective; :func:`cholesky` and :func:`conjugate_gradients` just solve with ``T + E``.

* :func:`cholesky`: exact, ``O(n³)``; for checking and small ``n``.
* :func:`conjugate_gradients`: preconditioned CG with a rank-``k`` pivoted-Cholesky preconditioner
  (Gardner et al. 2018); holds ``K`` when it fits in ``max_matrix_bytes``, else recomputes
  kernel blocks at each matrix-vector product.
* :func:`sgd`: the paper's stochastic gradient descent (§3, eq. 4-5): minibatched data term,
  random-feature estimate of the regularizer gradient, Nesterov momentum, geometric iterate
  averaging, optional gradient clipping.
* :func:`inducing`: representer weights on ``M`` inducing points chosen from ``X`` (§3.2),
  solved exactly in ``O(nM²)`` without any ``n × n`` matrix.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.typing import ArrayLike

from nips23jax.core.train import as_key
from nips23jax.core.compile import dual
from nips23jax.gp.kernels import Kernel, Params, default_block_size, kernel_matvec, row_blocks
from nips23jax.gp.rff import random_features, rff_features

__all__ = [
    "SolverResult",
    "cholesky",
    "conjugate_gradients",
    "inducing",
    "pivoted_cholesky",
    "preconditioned_cg",
    "sgd",
]


class SolverResult(NamedTuple):
    """Representer weights ``weights (m, s)`` on ``centers (m, d)`` (``X`` itself, or inducing points).

    ``info`` holds solver diagnostics (iterations, residuals, a Cholesky factor when one exists).
    """

    weights: jax.Array
    centers: jax.Array
    info: dict[str, Any]


def _rhs(targets: ArrayLike, shifts: ArrayLike | None) -> jax.Array:
    t = jnp.asarray(targets)
    return t if shifts is None else t + jnp.asarray(shifts, t.dtype)


# ----------------------------------------------------------------------------------------------
# Cholesky


def cholesky(
    kernel: Kernel, params: Params, x: ArrayLike, targets: ArrayLike, shifts: ArrayLike | None = None, *,
    jitter: float = 0.0,
) -> SolverResult:
    """Exact ``(K + σ²I + jitter·I)⁻¹ (T + E)`` by a Cholesky factorization.

    Args:
      kernel, params: the prior.
      x: ``(n, d)`` training inputs.
      targets: ``(n, s)``.
      shifts: ``(n, s)`` or ``None``.
      jitter: extra diagonal.

    Returns:
      :class:`SolverResult`; ``info["cholesky"]`` is the lower factor ``(n, n)``.
    """
    x = jnp.asarray(x)
    n = x.shape[0]
    w, chol, finite = _cholesky_impl.at(n * n * (x.shape[1] + 2))(kernel, params, x, targets, shifts, jitter)
    if not isinstance(finite, jax.core.Tracer) and not bool(finite):
        noise = float(np.asarray(params["noise_variance"]))
        raise ValueError(
            f"cholesky: K + (noise_variance + jitter)·I is not positive definite in {x.dtype} (noise_variance "
            f"{noise:g}, jitter {jitter:g}, n = {n}): its factor has NaN. Add jitter (posterior(..., "
            "solver_jitter=1e-4)), raise the noise variance, use float64 inputs, or use solver='cg' or 'sgd'")
    return SolverResult(w, x, {"cholesky": chol})


@dual(static_argnums=0)
def _cholesky_impl(kernel, params, x, targets, shifts, jitter):
    b = _rhs(targets, shifts)
    k = kernel(params, x, x)
    k = k + (jnp.asarray(params["noise_variance"], x.dtype) + jitter) * jnp.eye(x.shape[0], dtype=x.dtype)
    chol = jnp.linalg.cholesky(k)
    return jax.scipy.linalg.cho_solve((chol, True), b.astype(x.dtype)), chol, jnp.all(jnp.isfinite(chol))


# ----------------------------------------------------------------------------------------------
# Conjugate gradients


def pivoted_cholesky(kernel: Kernel, params: Params, x: ArrayLike, rank: int, *, tol: float = 1e-8) -> jax.Array:
    """Greedy rank-``k`` pivoted Cholesky ``K ≈ L Lᵀ`` (Harbrecht et al. 2012), ``L (n, k)``.

    Each step picks the largest remaining diagonal entry and needs one kernel row, ``O(n d)``;
    total ``O(n k (k + d))`` and ``O(n k)`` memory. Stops adding (zero columns) once the remaining
    diagonal is below ``tol`` times the kernel's variance.
    """
    x = jnp.asarray(x)
    n = x.shape[0]
    rank = int(min(rank, n))
    diag = kernel.diag(params, x)
    floor = tol * jnp.max(diag)

    def body(m, carry):
        lmat, d = carry
        i = jnp.argmax(d)
        piv = d[i]
        row = kernel(params, x[i][None, :], x)[0]
        col = (row - lmat @ lmat[i]) / jnp.sqrt(jnp.maximum(piv, floor))
        col = jnp.where(piv > floor, col, 0.0)
        lmat = lmat.at[:, m].set(col)
        return lmat, jnp.maximum(d - col * col, 0.0)

    lmat, _ = jax.lax.fori_loop(0, rank, body, (jnp.zeros((n, rank), x.dtype), diag))
    return lmat


def _woodbury_preconditioner(lmat: jax.Array, noise: jax.Array) -> Callable[[jax.Array], jax.Array]:
    """``(L Lᵀ + σ²I)⁻¹ r = (r − L (σ²I + LᵀL)⁻¹ Lᵀ r) / σ²``."""
    k = lmat.shape[1]
    inner = noise * jnp.eye(k, dtype=lmat.dtype) + lmat.T @ lmat
    c = jnp.linalg.cholesky(inner)

    def apply(r):
        return (r - lmat @ jax.scipy.linalg.cho_solve((c, True), lmat.T @ r)) / noise

    return apply


def preconditioned_cg(
    matvec: Callable[[jax.Array], jax.Array],
    b: jax.Array,
    *,
    precondition: Callable[[jax.Array], jax.Array] | None = None,
    tol: float | ArrayLike = 1e-2,
    max_iters: int = 1000,
    x0: jax.Array | None = None,
    monitor: Callable[[jax.Array], jax.Array] | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Preconditioned conjugate gradients on the columns of ``b (n, s)`` at once.

    Column ``j`` stops (its updates are masked) once ``‖r_j‖ ≤ tol_j ‖b_j‖``; the loop ends when all
    columns have, or after ``max_iters`` iterations.

    Args:
      monitor: optional ``x (n, s) -> (m,)`` evaluated on the iterate after every iteration (e.g. test
        predictions, to trace test error against iterations without restarting CG).

    Returns:
      ``(x (n, s), info)``, ``info = {"iterations": (), "relative_residual": (s,)}``, plus
      ``"monitor": (max_iters, m)`` with a monitor (row ``i`` after iteration ``i + 1``; NaN after the stop).
    """
    if max_iters < 0:
        raise ValueError(f"conjugate_gradients: max_iters must be >= 0, got {max_iters}")
    args = (matvec, precondition, monitor, int(max_iters), jnp.asarray(b), tol, x0)
    if any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(args[4:])):
        return _pcg_impl(*args)  # inside a caller's jit (as in conjugate_gradients): traced inline
    return _pcg_jit(*args)  # called eagerly: one program per function and shapes, not op by op


def _pcg_impl(matvec, precondition, monitor, max_iters, b, tol, x0):
    precondition = (lambda r: r) if precondition is None else precondition
    bnorm = jnp.linalg.norm(b, axis=0)
    bnorm = jnp.where(bnorm > 0, bnorm, 1.0)
    tol = jnp.broadcast_to(jnp.asarray(tol, b.dtype), bnorm.shape)
    x = jnp.zeros_like(b) if x0 is None else x0
    r = b - matvec(x) if x0 is not None else b
    z = precondition(r)
    rz = jnp.sum(r * z, 0)
    done = jnp.linalg.norm(r, axis=0) <= tol * bnorm
    if monitor is None:
        trace = jnp.zeros((0, 0), b.dtype)
    else:
        m = jax.eval_shape(monitor, x).shape
        if len(m) != 1:
            raise ValueError(f"preconditioned_cg: monitor must return a vector (m,), got shape {m}")
        trace = jnp.full((max_iters, m[0]), jnp.nan, b.dtype)

    def cond(state):
        i, _, _, _, _, done, _ = state
        return (i < max_iters) & ~jnp.all(done)

    def body(state):
        i, x, r, p, rz, done, trace = state
        ap = matvec(p)
        pap = jnp.sum(p * ap, 0)
        alpha = jnp.where(done | (pap <= 0), 0.0, rz / jnp.where(pap > 0, pap, 1.0))
        x = x + alpha * p
        r = r - alpha * ap
        z = precondition(r)
        rz_new = jnp.sum(r * z, 0)
        beta = jnp.where(done, 0.0, rz_new / jnp.where(rz != 0, rz, 1.0))
        p = jnp.where(done, p, z + beta * p)
        done = done | (jnp.linalg.norm(r, axis=0) <= tol * bnorm) | ~jnp.isfinite(rz_new)
        if monitor is not None:
            trace = trace.at[i].set(jnp.asarray(monitor(x), b.dtype))
        return i + 1, x, r, p, rz_new, done, trace

    i, x, r, _, _, _, trace = jax.lax.while_loop(cond, body, (jnp.asarray(0), x, r, z, rz, done, trace))
    info = {"iterations": i, "relative_residual": jnp.linalg.norm(r, axis=0) / bnorm}
    if monitor is not None:
        info["monitor"] = trace
    return x, info


_pcg_jit = jax.jit(_pcg_impl, static_argnums=(0, 1, 2, 3))


def conjugate_gradients(
    kernel: Kernel, params: Params, x: ArrayLike, targets: ArrayLike, shifts: ArrayLike | None = None, *,
    tol: float | ArrayLike = 1e-2,
    max_iters: int = 1000,
    preconditioner_rank: int = 100,
    max_matrix_bytes: int = 2 * 2**30,
    block_size: int | None = None,
    monitor: Callable[[jax.Array], jax.Array] | None = None,
) -> SolverResult:
    """``(K + σ²I)⁻¹ (T + E)`` by pivoted-Cholesky-preconditioned CG (Gardner et al. 2018).

    The paper's baseline settings: tolerance 1e-2 for the mean / 1e-3 for samples (``tol`` may be a
    per-column array), at most 1000 iterations, preconditioner rank 100.

    Args:
      kernel, params: the prior.
      x: ``(n, d)``.
      targets, shifts: ``(n, s)`` (shifts optional).
      tol: relative residual tolerance, scalar or ``(s,)``.
      max_iters: iteration cap.
      preconditioner_rank: ``k`` of the pivoted Cholesky (0: no preconditioner).
      max_matrix_bytes: hold ``K`` in memory when ``n² · itemsize`` fits, else recompute blocks.
      block_size: rows per kernel block when recomputing.
      monitor: ``weights (n, s) -> (m,)`` recorded after every iteration in ``info["monitor"]``
        (see :func:`preconditioned_cg`); a new function compiles a new solver.

    Returns:
      :class:`SolverResult`; ``info`` has ``iterations``, ``relative_residual`` and ``held_matrix``
      (and ``monitor`` when given).
    """
    x = jnp.asarray(x)
    n = x.shape[0]
    held = n * n * x.dtype.itemsize <= max_matrix_bytes
    bs = default_block_size(n) if block_size is None else int(block_size)
    w, info = _cg_impl(kernel, int(max_iters), int(preconditioner_rank), bool(held), bs, monitor, params, x,
                       targets, shifts, tol)
    info["held_matrix"] = held
    return SolverResult(w, x, info)


@jax.jit(static_argnums=(0, 1, 2, 3, 4, 5))
def _cg_impl(kernel, max_iters, preconditioner_rank, held, bs, monitor, params, x, targets, shifts, tol):
    b = _rhs(targets, shifts).astype(x.dtype)
    tol = jnp.broadcast_to(jnp.asarray(tol, x.dtype), b.shape[1:])
    noise = jnp.asarray(params["noise_variance"], x.dtype)
    if held:
        kmat = kernel(params, x, x)
        matvec = lambda v: kmat @ v + noise * v  # noqa: E731
    else:
        matvec = lambda v: kernel_matvec(kernel, params, x, x, v, block_size=bs) + noise * v  # noqa: E731
    precondition = None
    if preconditioner_rank > 0:
        lmat = pivoted_cholesky(kernel, params, x, preconditioner_rank)
        # with zero noise the preconditioner still needs an invertible diagonal (it need not be exact)
        floor = 1e-6 * jnp.asarray(params["signal_variance"], x.dtype)
        precondition = _woodbury_preconditioner(lmat, jnp.maximum(noise, floor))
    return preconditioned_cg(matvec, b, precondition=precondition, tol=tol, max_iters=max_iters, monitor=monitor)


# ----------------------------------------------------------------------------------------------
# SGD


_ROW_BLOCK_ENTRIES = 2**22  # kernel values per block of minibatch rows in one SGD step (16 MB in float32)


class SGDState(NamedTuple):
    """Iterate ``alpha (n, s)``, its geometric average ``average (n, s)``, optax state, step count."""

    alpha: jax.Array
    average: jax.Array
    opt_state: Any
    step: jax.Array


def sgd(
    kernel: Kernel, params: Params, x: ArrayLike, targets: ArrayLike, shifts: ArrayLike | None = None, *,
    key: jax.Array,
    num_steps: int = 100_000,
    batch_size: int = 512,
    learning_rate: float | ArrayLike = 0.5,
    momentum: float = 0.9,
    num_features: int = 100,
    averaging: float | None = None,
    grad_clip: float | None = 0.1,
    callback: Callable[[int, jax.Array], None] | None = None,
    callback_every: int = 0,
    row_block: int | None = None,
) -> SolverResult:
    """The paper's SGD for ``(K + σ²I)⁻¹ (T + E)``, all columns sharing minibatches and features.

    Per column it minimizes (Lin et al. 2023, eq. 4 for the mean, eq. 5 for samples)

        L(α) = ½‖T − Kα‖² + (σ²/2)‖α − E/σ²‖²_K,

    whose minimizer is ``(K + σ²I)⁻¹(T + E)``. Each step estimates the gradient divided by ``n``:
    ``(1/B) Σ_{i∈batch} k_{x_i}(k_{x_i}ᵀα − T_i)`` plus ``(1/n) Φ Φᵀ(σ²α − E)`` with ``L`` fresh random
    Fourier features ``Φ (n, L)`` (the regularizer ``K ≈ ΦΦᵀ``), clips each column's gradient to norm
    ``grad_clip``, scales by the column's learning rate, and takes a Nesterov-momentum step;
    the returned weights are the geometric iterate average ``ᾱ ← (1 − r)ᾱ + rα`` with
    ``r = averaging`` (default ``100/num_steps``, the paper's). Cost per step ``O(n(B + L)(d + s))``.

    Defaults are the paper's: 100k steps, batch 512, momentum 0.9, 100 features, lr 0.5 for the mean
    (pass ``learning_rate`` as an ``(s,)`` array to give samples 0.1), clipping at 0.1.

    Args:
      kernel, params: the prior.
      x: ``(n, d)``; may be sharded over a mesh's data axis.
      targets: ``(n, s)``.
      shifts: ``(n, s)`` noise ``E`` or ``None``.
      key: PRNG key; step ``t`` uses ``fold_in(key, t)``.
      num_steps, batch_size, learning_rate, momentum, num_features: as above.
      averaging: ``r`` in ``(0, 1]``; ``None`` for ``min(1, 100/num_steps)``.
      grad_clip: per-column gradient norm cap, or ``None``.
      callback: ``callback(step, averaged_weights)`` called every ``callback_every`` steps (and at the end).
      callback_every: steps between callbacks (0: only at the end when a callback is given).
      row_block: minibatch rows per kernel block within a step (``None``: ``2²² // n``, so one block is
        at most 16 MB in float32; the result is the same up to summation order).

    Returns:
      :class:`SolverResult` with the averaged weights; ``info["steps"]``.
    """
    x = jnp.asarray(x)
    n, d = x.shape
    if np.ndim(targets) != 2 or np.shape(targets)[0] != n:
        raise ValueError(f"sgd: targets must have shape ({n}, s), one column per right-hand side; got {np.shape(targets)}")
    s = np.shape(targets)[1]
    rpb = max(1, _ROW_BLOCK_ENTRIES // n) if row_block is None else row_block
    for name, v, least in (("num_steps", num_steps, 1), ("batch_size", batch_size, 1), ("num_features", num_features, 1),
                           ("row_block", rpb, 1)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < least:
            raise ValueError(f"sgd: {name} must be an int >= {least}, got {v!r}")
    r_avg = min(1.0, 100.0 / num_steps) if averaging is None else float(averaging)
    if not 0 < r_avg <= 1:
        raise ValueError(f"sgd: averaging must be in (0, 1], got {averaging}")
    key = as_key(key)
    bsz = int(min(batch_size, n))
    static = dict(kernel=kernel, bsz=bsz, rpb=int(min(rpb, bsz)), num_features=int(num_features),
                  grad_clip=None if grad_clip is None else float(grad_clip), momentum=float(momentum))
    state, t, e, lr = _sgd_init.at(4 * n * s)(float(momentum), x, targets, shifts, learning_rate)
    every = num_steps if (callback is None or callback_every <= 0) else int(callback_every)
    done = 0
    while done < num_steps:
        length = min(every, num_steps - done)
        state = _sgd_chunk(state, jnp.asarray(length), params, x, t, e, lr, key, jnp.asarray(r_avg, x.dtype), **static)
        done += length
        if callback is not None:
            callback(done, state.average)
    return SolverResult(state.average, x, {"steps": num_steps, "last_iterate": state.alpha})


@dual(static_argnums=0)
def _sgd_init(momentum, x, targets, shifts, learning_rate):
    """The zero initial :class:`SGDState` and the targets, shifts and per-column learning rates in ``x.dtype``."""
    n = x.shape[0]
    t = jnp.asarray(targets, x.dtype)
    e = jnp.zeros_like(t) if shifts is None else jnp.asarray(shifts, x.dtype)
    s = t.shape[1]
    lr = jnp.broadcast_to(jnp.asarray(learning_rate, x.dtype), (s,))
    opt = optax.sgd(1.0, momentum=momentum, nesterov=True)
    zeros = jnp.zeros((n, s), x.dtype)
    return SGDState(zeros, zeros, opt.init(zeros), jnp.asarray(0, jnp.int32)), t, e, lr


@functools.partial(jax.jit, static_argnames=("kernel", "bsz", "rpb", "num_features", "grad_clip", "momentum"))
def _sgd_chunk(state, length, params, x, t, e, lr, key, r_avg, *, kernel, bsz, rpb, num_features, grad_clip, momentum):
    """``length`` SGD steps (a traced count: one compilation serves every chunk and every call)."""
    n, d = x.shape
    noise = jnp.asarray(params["noise_variance"], x.dtype)
    opt = optax.sgd(1.0, momentum=momentum, nesterov=True)

    def gradient(alpha, step_key):
        k_batch, k_feat = jax.random.split(step_key)
        idx = jax.random.randint(k_batch, (bsz,), 0, n)
        # The kernel rows and the features are computed once per step and shared by all s columns.
        # The barriers keep XLA from fusing their (transcendental) elementwise computation into each
        # consumer matmul, which it otherwise does on CPU: the rows were recomputed per product and the
        # products lost their BLAS kernels (measured 1.6x -> 1.2x per-step cost of 65 columns vs 1).
        # Row i's residual needs only row i, so the B rows are taken in blocks of rpb rows (default at
        # most _ROW_BLOCK_ENTRIES kernel values): at n = 100k the (512, n) rows were 200 MB written and
        # read through memory each step; blocks of 41 rows stay in cache (measured 783 -> 226 ms of CPU
        # per step at n = 100k, d = 8, side by side).
        nblk = -(-bsz // rpb)
        if nblk == 1:
            kb = jax.lax.optimization_barrier(kernel(params, x[idx], x))  # (B, n)
            g = kb.T @ (kb @ alpha - t[idx])
        else:
            (idx_p,), keep = row_blocks(rpb, idx)  # padded rows: index 0 with weight 0
            keep = keep.astype(x.dtype)

            def block(acc, blk):
                ib, wb = blk
                kb = jax.lax.optimization_barrier(kernel(params, x[ib], x))  # (rpb, n)
                return acc + kb.T @ ((kb @ alpha - t[ib]) * wb[:, None]), None

            g, _ = jax.lax.scan(block, jnp.zeros_like(alpha), (idx_p, keep))
        g = g / bsz
        phi = jax.lax.optimization_barrier(
            rff_features(random_features(k_feat, kernel, d, num_features, dtype=x.dtype), params, x))
        g = g + phi @ (phi.T @ (noise * alpha - e)) / n
        if grad_clip is not None:
            norm = jnp.linalg.norm(g, axis=0)
            g = g * jnp.minimum(1.0, grad_clip / jnp.maximum(norm, 1e-30))
        return g * lr

    def one_step(_, state: SGDState) -> SGDState:
        g = gradient(state.alpha, jax.random.fold_in(key, state.step))
        updates, opt_state = opt.update(g, state.opt_state, state.alpha)
        alpha = optax.apply_updates(state.alpha, updates)
        average = (1.0 - r_avg) * state.average + r_avg * alpha
        return SGDState(alpha, average, opt_state, state.step + 1)

    return jax.lax.fori_loop(0, length, one_step, state)


# ----------------------------------------------------------------------------------------------
# Inducing points


def inducing(
    kernel: Kernel, params: Params, x: ArrayLike, targets: ArrayLike, shifts: ArrayLike | None = None, *,
    key: jax.Array | None = None,
    num_inducing: int = 1024,
    inducing_points: ArrayLike | None = None,
    jitter: float = 1e-6,
    block_size: int | None = None,
) -> SolverResult:
    """Representer weights on ``M`` inducing points ``Z`` (Lin et al. 2023, §3.2).

    Minimizes ``½‖(T + E) − K_XZ α‖² + (σ²/2)‖α‖²_{K_ZZ}`` exactly:
    ``α = (K_ZX K_XZ + σ² K_ZZ)⁻¹ K_ZX (T + E)``, accumulating ``K_ZX K_XZ`` and ``K_ZX (T + E)``
    over blocks of ``X`` (``O(nM²)`` time, ``O(M² + block·M)`` memory, no ``n × n`` matrix).

    Args:
      kernel, params: the prior.
      x: ``(n, d)``.
      targets, shifts: ``(n, s)``.
      key: picks ``Z`` as ``num_inducing`` distinct rows of ``x`` (needed unless ``inducing_points``).
      num_inducing: ``M``.
      inducing_points: ``(M, d)`` to use instead.
      jitter: diagonal jitter, relative to the mean diagonal of ``K_ZX K_XZ``, for the ``M × M`` solve.
      block_size: rows of ``x`` per block.

    Returns:
      :class:`SolverResult` whose ``centers`` are ``Z``.
    """
    x = jnp.asarray(x)
    n, d = x.shape
    if inducing_points is None:
        if key is None:
            raise ValueError("inducing: pass key= (to choose inducing points from x) or inducing_points=")
        m = int(min(num_inducing, n))
        if m < 1:
            raise ValueError(f"inducing: num_inducing must be >= 1, got {num_inducing}")
        z = _choose_rows.at(n * d)(m, as_key(key), x)
    else:
        z = jnp.asarray(inducing_points, x.dtype)
        if z.ndim != 2 or z.shape[1] != d:
            raise ValueError(f"inducing: inducing_points must have shape (M, {d}), got {z.shape}")
    m = z.shape[0]
    bs = default_block_size(m, 2**22) if block_size is None else int(block_size)
    w = _inducing_impl(kernel, min(bs, n), params, x, z, targets, shifts, jitter)
    return SolverResult(w, z, {"num_inducing": m})


@dual(static_argnums=0)
def _choose_rows(m, key, x):
    """``m`` distinct rows of ``x``, uniformly at random."""
    return x[jax.random.choice(key, x.shape[0], (m,), replace=False)]


@jax.jit(static_argnums=(0, 1))
def _inducing_impl(kernel, bs, params, x, z, targets, shifts, jitter):
    b = _rhs(targets, shifts).astype(x.dtype)
    m = z.shape[0]
    (xb_all, bb_all), valid = row_blocks(bs, x, b)

    def accumulate(carry, blk):
        xb, bb, vb = blk
        kbz = kernel(params, xb, z) * vb[:, None]  # padded rows contribute nothing
        return (carry[0] + kbz.T @ kbz, carry[1] + kbz.T @ bb), None

    init = (jnp.zeros((m, m), x.dtype), jnp.zeros((m, b.shape[1]), x.dtype))
    (kzx_kxz, kzx_b), _ = jax.lax.scan(accumulate, init, (xb_all, bb_all, valid))
    noise = jnp.asarray(params["noise_variance"], x.dtype)
    a = kzx_kxz + noise * kernel(params, z, z)
    a = a + jitter * jnp.mean(jnp.diag(kzx_kxz)) * jnp.eye(m, dtype=x.dtype)
    chol = jnp.linalg.cholesky(a)
    return jax.scipy.linalg.cho_solve((chol, True), kzx_b)
