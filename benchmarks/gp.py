"""GP posterior solvers: time to a target test RMSE, SGD vs CG vs Cholesky, and GPyTorch's CG as the peer.

Data: inputs uniform on [0, 1]^d, targets a Matérn-3/2 GP prior sample (2000 random Fourier features)
plus N(0, σ²) noise; the posterior uses the generating hyperparameters ("fitted" noise σ² = --noise)
and the paper's low noise σ² = 1e-6; test RMSE is against the noise-free function. Three questions
(--questions):

1. **race**, per size n and noise: test RMSE against time for SGD and CG, each from its first step,
   and the time each takes to reach the target RMSE = (1 + --slack) × the reference RMSE. Reference:
   the exact posterior mean (Cholesky) where n <= --cholesky-max-n; else CG's RMSE once it meets the
   paper's tolerance 1e-2 (fitted noise); else (CG stopped by --cg-max-iters) the best RMSE either
   method reached, flagged ``*``. SGD runs the paper's settings (batch 512, lr 0.5, Nesterov 0.9,
   clipping 0.1, 100 fresh regularizer features, averaging r = 100/T with T = --sgd-steps) and is
   checked every --check-every steps, its clock stopped while checking, until it reaches the target
   or spends --time-cap seconds. CG (pivoted-Cholesky preconditioner, rank 100, tolerance 1e-2, at
   most --cg-max-iters iterations) records the test predictions after every iteration inside its loop
   (``monitor=``); its time to reach RMSE r is its run time × (iterations to r / iterations run), the
   preconditioner's setup spread over the iterations (< 1% of the run at n = 100k). --clock cpu
   measures process CPU time instead of wall time (a fair race on a shared machine). Cholesky is
   timed where it fits.
2. **samples**: SGD with 64 posterior samples (sharing minibatches and features) vs the mean only,
   same steps; goal <= 3x per step. The one-off evaluation of the 64 prior functions at X (2000
   features each) is timed separately and folded into an end-to-end ratio.
3. **peer**: GPyTorch's exact GP (CG posterior mean, ``eval_cg_tolerance`` = --tol, same
   hyperparameters) on the same data, when ``gpytorch`` is importable, vs our CG to the same tolerance.

    python benchmarks/gp.py                                  # n = 5k, 20k, 100k
    python benchmarks/gp.py --sizes 5000 20000 --sgd-steps 3000
    python benchmarks/gp.py --questions race --sizes 100000 --clock cpu --time-cap 200 --cg-max-iters 15
"""

from __future__ import annotations

import functools
import json
import time

import jax
import jax.numpy as jnp
import numpy as np

from nips23jax import gp
from nips23jax.core.benchmark import benchmark_parser

SAMPLES_GOAL = 3.0
QUESTIONS = ("race", "samples", "peer")


def parse_args(argv=None):
    p = benchmark_parser(__doc__, warmup=1, repeats=2)
    p.add_argument("--questions", nargs="+", choices=QUESTIONS, default=list(QUESTIONS))
    p.add_argument("--sizes", type=int, nargs="+", default=[5000, 20000, 100000])
    p.add_argument("--dim", type=int, default=8)
    p.add_argument("--num-test", type=int, default=2000)
    p.add_argument("--lengthscale", type=float, default=0.8)
    p.add_argument("--noise", type=float, default=0.1, help="the 'fitted' noise variance (the generating one)")
    p.add_argument("--low-noise", type=float, default=1e-6)
    p.add_argument("--noises", nargs="+", choices=("fitted", "low"), default=["fitted", "low"])
    p.add_argument("--slack", type=float, default=0.05, help="target RMSE = (1 + slack) x reference RMSE")
    p.add_argument("--sgd-steps", type=int, default=10000, help="SGD step cap (also sets averaging r = 100/T)")
    p.add_argument("--check-every", type=int, default=250)
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--tol", type=float, default=1e-2, help="CG relative residual tolerance (the paper's mean tol)")
    p.add_argument("--cg-max-iters", type=int, default=1000)
    p.add_argument("--cholesky-max-n", type=int, default=20000)
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="race clock: wall time, or this process's CPU time (all threads)")
    p.add_argument("--time-cap", type=float, default=600.0, help="SGD time cap per case (seconds of --clock)")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--samples-steps", type=int, default=200, help="SGD steps timed for samples vs mean")
    p.add_argument("--no-peer", action="store_true", help="skip GPyTorch even when importable")
    p.add_argument("--peer-max-n", type=int, default=20000)
    p.add_argument("--warmup-max-n", type=int, default=5000,
                   help="run --warmup untimed calls (compilation) up to this n; above it one call, compilation "
                        "included (a few seconds) rather than running a big solve twice")
    p.add_argument("--json", default=None, help="write the race's RMSE-vs-time curves to this file")
    args = p.parse_args(argv)
    for name in ("sgd_steps", "check_every", "batch_size", "cg_max_iters", "samples", "samples_steps", "num_test"):
        if getattr(args, name) < 1:
            raise SystemExit(f"gp.py: --{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    return args


def make_data(args, n):
    rng = np.random.default_rng(args.seed)
    x = rng.uniform(size=(n + args.num_test, args.dim)).astype(np.float32)
    prior = gp.prior_sample_fn(jax.random.key(args.seed), gp.matern32,
                               gp.init_params(args.dim, lengthscale=args.lengthscale), 1, 2000)
    f = np.asarray(prior(x))[0]
    y = (f + np.sqrt(args.noise) * rng.normal(size=len(f))).astype(np.float32)
    return (x[:n], y[:n]), (x[n:], f[n:])


def rmse(post, xt, ft):
    return float(np.sqrt(np.mean((np.asarray(post.mean(xt)) - ft) ** 2)))


def _wait(out):
    """Blocks until ``out``'s arrays exist (a GPPosterior is not a pytree: wait on its weights)."""
    if isinstance(out, gp.GPPosterior):
        out = (out.mean_weights, out.sample_weights)
    jax.block_until_ready(out)


def clock(kind):
    return time.process_time if kind == "cpu" else time.perf_counter


def timed(fn, warmup=1, kind="wall"):
    """(output, seconds) of ``fn()`` after ``warmup`` untimed calls (compilation; same shapes)."""
    for _ in range(warmup):
        _wait(fn())
    now = clock(kind)
    t0 = now()
    out = fn()
    _wait(out)
    return out, now() - t0


class _Stop(Exception):
    pass


def test_predictor(x, xt, params):
    """``w (n, s) -> K(x_test, X) w[:, 0]``: test predictions of representer weights. The kernel does not
    depend on the noise variance, so one predictor (one compiled CG monitor) serves both noise settings."""
    xt = jnp.asarray(xt)
    kernel_params = {k: params[k] for k in ("lengthscale", "signal_variance")}

    @jax.jit
    def predict(w):
        # the barrier keeps XLA from constant-folding K(x_test, X) (closed-over arrays are constants)
        a, b = jax.lax.optimization_barrier((xt, x))
        return gp.kernel_matvec(gp.matern32, kernel_params, a, b, w[:, 0])

    return predict


def sgd_curve(args, x, y, xt, ft, params, target, predict):
    """SGD's (seconds, steps, test RMSE) every --check-every steps, the clock stopped while checking,
    until the target or --time-cap. Returns (curve, seconds to target or None)."""
    now = clock(args.clock)
    opts = dict(batch_size=args.batch_size)
    gp.posterior(x, y, params, solver="sgd", key=jax.random.key(args.seed), num_steps=1, **opts)  # compile
    state = {"elapsed": 0.0, "t0": now(), "hit": None}
    curve = []

    def callback(step, w):
        jax.block_until_ready(w)
        state["elapsed"] += now() - state["t0"]
        r = float(np.sqrt(np.mean((np.asarray(predict(w)) - ft) ** 2)))
        curve.append((state["elapsed"], step, r))
        if state["hit"] is None and target is not None and r <= target:
            state["hit"] = state["elapsed"]
            raise _Stop()
        if state["elapsed"] > args.time_cap:
            raise _Stop()
        state["t0"] = now()

    try:
        gp.posterior(x, y, params, solver="sgd", key=jax.random.key(args.seed), num_steps=args.sgd_steps,
                     callback=callback, callback_every=args.check_every, **opts)
    except _Stop:
        pass
    return curve, state["hit"]


def cg_curve(args, x, y, ft, params, warm, monitor):
    """CG at --tol with the test predictions recorded after every iteration. Returns (curve of (seconds,
    iteration, RMSE) with the run time spread evenly over the iterations, iterations, converged)."""
    run = lambda: gp.posterior(x, y, params, solver="cg", tol=args.tol, max_iters=args.cg_max_iters,  # noqa: E731
                               monitor=monitor)
    post, secs = timed(run, args.warmup if warm else 0, args.clock)
    its = int(post.info["iterations"])
    preds = np.asarray(post.info["monitor"])[:its]
    errs = np.sqrt(np.mean((preds - ft[None]) ** 2, 1))
    curve = [((k + 1) * secs / max(its, 1), k + 1, float(e)) for k, e in enumerate(errs)]
    converged = float(post.info["relative_residual"][0]) <= args.tol
    return curve, its, converged


def first_hit(curve, target):
    return next((t for t, _, r in curve if r <= target), None)


def _fmt_curve(curve, unit):
    """A few (time, RMSE) points of a curve, log-spaced in its index."""
    if not curve:
        return "-"
    idx = sorted(set(np.unique(np.geomspace(1, len(curve), 6).astype(int) - 1).tolist() + [len(curve) - 1]))
    return ", ".join(f"{curve[i][0]:.3g} s/{curve[i][1]}{unit}: {curve[i][2]:.3f}" for i in idx)


def race(args, n, log):
    (x, y), (xt, ft) = make_data(args, n)
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    warm = n <= args.warmup_max_n
    rows = []
    predict = test_predictor(xj, xt, gp.init_params(args.dim, lengthscale=args.lengthscale))
    for noise_name in args.noises:
        noise = args.noise if noise_name == "fitted" else args.low_noise
        params = gp.init_params(args.dim, lengthscale=args.lengthscale, noise_variance=noise)
        chol = None
        if n <= args.cholesky_max_n:
            post, secs = timed(lambda: gp.posterior(xj, yj, params, solver="cholesky"), args.warmup if warm else 0,
                               args.clock)
            chol = (secs, rmse(post, xt, ft))
        cg, its, converged = cg_curve(args, xj, yj, ft, params, warm, predict)
        if chol is not None:
            ref, how = chol[1], "exact"
        elif converged and noise_name == "fitted":
            ref, how = cg[-1][2], "CG at tol"
        else:
            ref, how = None, "best*"
        target = None if ref is None else (1 + args.slack) * ref
        sgd, sgd_hit = sgd_curve(args, xj, yj, xt, ft, params, target, predict)
        if ref is None:  # neither reference exists: the best either method reached
            ref = min(r for _, _, r in cg + sgd)
            target = (1 + args.slack) * ref
            sgd_hit = first_hit(sgd, target)
        cg_hit = first_hit(cg, target)
        sec = lambda t: f"{t:.3g} {'s' if args.clock == 'wall' else 'CPU-s'}"  # noqa: E731
        sgd_cell = (sec(sgd_hit) if sgd_hit is not None else
                    f"not reached in {sec(sgd[-1][0])} ({sgd[-1][1]} steps, RMSE {sgd[-1][2]:.3f})")
        cg_cell = sec(cg_hit) if cg_hit is not None else "not reached"
        cg_cell += (f" ({its} it, {'converged' if converged else 'capped'}, {sec(cg[-1][0])}; "
                    f"best {min(r for _, _, r in cg):.3f}, last {cg[-1][2]:.3f})")
        print(f"| {n} | {noise_name} ({noise:g}) | {target:.3f} ({how}) | {sgd_cell} | {cg_cell} | "
              + (f"{sec(chol[0])}, RMSE {chol[1]:.3f} |" if chol else "- |"), flush=True)
        rows.append(dict(n=n, noise=noise_name, noise_variance=noise, reference=ref, reference_kind=how,
                         target=target, sgd_hit=sgd_hit, cg_hit=cg_hit, cholesky=chol, clock=args.clock,
                         sgd_curve=sgd, cg_curve=cg, cg_iterations=its, cg_converged=converged))
        log.append(rows[-1])
    for r in rows:
        unit = "" if args.clock == "wall" else " CPU"
        print(f"  curve n={n} {r['noise']}: SGD {_fmt_curve(r['sgd_curve'], ' steps')}\n"
              f"  curve n={n} {r['noise']}: CG  {_fmt_curve(r['cg_curve'], ' it')}{unit}", flush=True)
    return rows


@functools.partial(jax.jit, static_argnums=4)
def _sample_columns(key, y, f0, noise_sd, widths):
    """Per width c in ``widths``: the first c columns of the targets [y, f₀(X)ᵀ], shifts [0, ε] (ε ~ N(0, σ²I))
    and learning rates [0.5, 0.1, ...] of pathwise conditioning, as one program (not op by op)."""
    n, s = f0.shape[1], f0.shape[0]
    eps = noise_sd * jax.random.normal(key, (n, s))
    targets = jnp.concatenate([y[:, None], f0.T], 1)
    shifts = jnp.concatenate([jnp.zeros((n, 1)), eps], 1)
    lr = jnp.asarray([0.5] + [0.1] * s)
    return {c: (targets[:, :c], shifts[:, :c], lr[:c]) for c in widths}


def samples_question(args, n):
    """SGD for the mean alone vs the mean + --samples samples (one solve, shared minibatches and features).

    Two costs: the solver's per-step cost (what sharing buys; goal <= 3x), and the one-off prior evaluation
    f₀(X) of --samples prior functions with 2000 features each, which a short run does not amortize;
    the end-to-end ratio is reported at --samples-steps and extrapolated to the paper's 100k steps."""
    (x, y), _ = make_data(args, n)
    params = gp.init_params(args.dim, lengthscale=args.lengthscale, noise_variance=args.noise)
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    s = args.samples
    prior = gp.prior_sample_fn(jax.random.key(1), gp.matern32, params, s, 2000)
    f0, t_prior = timed(lambda: prior(xj), args.warmup)
    columns = _sample_columns(jax.random.key(2), yj, f0, np.sqrt(args.noise), (1, s + 1))

    def solve(cols):
        targets, shifts, lr = columns[cols]
        return gp.sgd(gp.matern32, params, xj, targets, shifts, key=jax.random.key(0),
                      num_steps=args.samples_steps, batch_size=args.batch_size, learning_rate=lr).weights

    times = {}
    for cols in (1, s + 1):
        times[cols] = min(timed(lambda: solve(cols), args.warmup if i == 0 else 0)[1] for i in range(args.repeats))
    mean_t, all_t = times[1], times[s + 1]
    ratio = all_t / mean_t
    per_step = lambda t: t / args.samples_steps  # noqa: E731
    end_to_end = (t_prior + all_t) / mean_t
    paper = (t_prior + 100_000 * per_step(all_t)) / (100_000 * per_step(mean_t))
    print(f"\nSGD, n={n}, {args.samples_steps} steps, batch {args.batch_size}: mean only {mean_t:.2f} s "
          f"({per_step(mean_t) * 1e3:.1f} ms/step), mean + {s} samples {all_t:.2f} s "
          f"({per_step(all_t) * 1e3:.1f} ms/step): {ratio:.2f}x per step (goal <= {SAMPLES_GOAL}x: "
          f"{'within the goal' if ratio <= SAMPLES_GOAL else 'OVER the goal'})")
    print(f"prior f0(X) for {s} samples x 2000 features, once: {t_prior:.2f} s; end to end with it: "
          f"{end_to_end:.2f}x at {args.samples_steps} steps, {paper:.2f}x at the paper's 100k steps")
    return ratio


def gpytorch_mean(args, x, y, xt, params):
    """GPyTorch ExactGP posterior mean by CG at eval_cg_tolerance=--tol; returns (mean, seconds) or None."""
    try:
        import gpytorch
        import torch
    except ImportError:
        return None
    torch.set_default_dtype(torch.float32)
    tx, ty, txt = (torch.as_tensor(np.asarray(a)) for a in (x, y, xt))

    class Model(gpytorch.models.ExactGP):
        def __init__(self, lik):
            super().__init__(tx, ty, lik)
            self.mean_module = gpytorch.means.ZeroMean()
            self.covar_module = gpytorch.kernels.ScaleKernel(gpytorch.kernels.MaternKernel(nu=1.5, ard_num_dims=x.shape[1]))

        def forward(self, a):
            return gpytorch.distributions.MultivariateNormal(self.mean_module(a), self.covar_module(a))

    lik = gpytorch.likelihoods.GaussianLikelihood(noise_constraint=gpytorch.constraints.GreaterThan(1e-8))
    model = Model(lik)
    model.covar_module.base_kernel.lengthscale = torch.tensor(np.array(params["lengthscale"]))[None]
    model.covar_module.outputscale = float(params["signal_variance"])
    lik.noise = float(params["noise_variance"])
    model.eval()
    lik.eval()
    t0 = time.perf_counter()
    with torch.no_grad(), gpytorch.settings.eval_cg_tolerance(args.tol), \
            gpytorch.settings.max_cg_iterations(args.cg_max_iters), gpytorch.settings.skip_posterior_variances(True), \
            gpytorch.settings.max_cholesky_size(0):
        mean = model(txt).mean.numpy()
    return mean, time.perf_counter() - t0


def peer_question(args, n):
    (x, y), (xt, ft) = make_data(args, n)
    params = gp.init_params(args.dim, lengthscale=args.lengthscale, noise_variance=args.noise)
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    ours_post, ours = timed(lambda: gp.posterior(xj, yj, params, solver="cg", tol=args.tol,
                                                 max_iters=args.cg_max_iters),
                            args.warmup if n <= args.warmup_max_n else 0)
    ours_mean = np.asarray(ours_post.mean(xt))
    peer = None if args.no_peer else gpytorch_mean(args, x, y, xt, params)
    if peer is None:
        print(f"\npeer: gpytorch not importable (or --no-peer); nips23jax CG at n={n}: {ours:.1f} s")
        return None
    peer_mean, peer_s = peer
    r_ours, r_peer = np.sqrt(np.mean((ours_mean - ft) ** 2)), np.sqrt(np.mean((peer_mean - ft) ** 2))
    print(f"\n| CG posterior mean, n={n}, d={args.dim}, tol {args.tol:g} | seconds | test RMSE |\n|---|---:|---:|\n"
          f"| GPyTorch ExactGP (baseline) | {peer_s:.1f} | {r_peer:.4f} |\n"
          f"| nips23jax cg | {ours:.1f} ({ours / peer_s:.2f}x) | {r_ours:.4f} |")
    print(f"nips23jax CG / GPyTorch CG: {ours / peer_s:.2f}x (goal <= 1.0x: "
          f"{'within the goal' if ours <= peer_s else 'OVER the goal'}); max |Δmean| {np.max(np.abs(ours_mean - peer_mean)):.2e}")
    return ours / peer_s


def main(argv=None):
    args = parse_args(argv)
    print(f"GP solvers on a Matérn-3/2 prior sample, d={args.dim}, lengthscale {args.lengthscale}, "
          f"{jax.default_backend()} (JAX {jax.__version__})\n")
    log = []
    if "race" in args.questions:
        print(f"**time to target test RMSE** (target = (1 + {args.slack:g}) x reference RMSE; clock: {args.clock})\n")
        print("| n | noise | target RMSE (reference) | SGD | CG (tol %g) | Cholesky |" % args.tol)
        print("|---:|---|---:|---|---|---|")
        for n in args.sizes:
            race(args, n, log)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(log, fh, indent=1)
    if "samples" in args.questions:
        samples_question(args, min(args.sizes))
    if "peer" in args.questions:
        peer_n = max([n for n in args.sizes if n <= args.peer_max_n], default=min(args.sizes))
        peer_question(args, peer_n)


if __name__ == "__main__":
    main()
