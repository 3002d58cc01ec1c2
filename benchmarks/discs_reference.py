"""CPU time per step of DISCS' own gradient samplers against ours, same model, same CPU.

DISCS (google-research/discs) is not on PyPI and pins an old JAX, so its side runs in its own venv:

    git clone https://github.com/google-research/discs ~/discs-repo
    python3.11 -m venv ~/discs-venv && ~/discs-venv/bin/pip install 'jax[cpu]==0.4.30' ml_collections
    python benchmarks/discs_reference.py compare --discs-repo ~/discs-repo --discs-python ~/discs-venv/bin/python

``compare`` runs, for each row, DISCS' step (``discs`` mode, in DISCS' venv) and then ours (``ours``
mode, this venv), ``--rounds`` times, and prints a Markdown table of CPU ms per step. Each side is a
separate process timed with ``time.process_time`` (robust to other jobs on the machine); alternating
them spreads the machine's drift over both.

* ``discs``: DISCS' 50x50 Ising (``ising_config``: λ 0.5, μ 0.5, field seed from ``PRNGKey(0)`` as its
  ``sampling.py`` splits it) and the sampler config of the row, jitted as its experiment does
  (``jax.jit(functools.partial(sampler.step, model=model))``, one call per step from Python), 100 chains,
  ``--warmup`` untimed steps (its adaptive state settles), then ``--repeats`` timed runs of ``--steps``.
  DISCS' ``discs/common/utils.py`` imports writers and datasets this benchmark does not need; only its
  ``copy_pytree`` is used by the samplers, so that module is replaced by a one-function stand-in.
* ``ours``: :func:`nips23jax.discrete.run_chains` on ``benchmarks/discs.py``'s copy of that model (same
  field seed), the whole run in one ``lax.scan``, after one compiling call.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import subprocess
import sys
import time
import types

# DISCS sampler config name, its balancing_fn_type, extra config
ROWS = {
    "gwg_sqrt": ("gwg", "SQRT", {}),
    "pas_sqrt": ("path_auxiliary", "SQRT", {}),
    "pas_ratio": ("path_auxiliary", "RATIO", {}),
    "dlmc_sqrt": ("dlmc", "SQRT", {"solver": "interpolate"}),
    "dlmc_ratio": ("dlmc", "RATIO", {"solver": "interpolate"}),
    "dlmcf_sqrt": ("dlmc", "SQRT", {"solver": "euler_forward"}),
    "dlmcf_ratio": ("dlmc", "RATIO", {"solver": "euler_forward"}),
    "dmala_sqrt": ("dmala", "SQRT", {}),
    "dmala_ratio": ("dmala", "RATIO", {}),
}
LABELS = {"gwg_sqrt": "GWG √t", "pas_sqrt": "PAS √t", "pas_ratio": "PAS t/(t+1)", "dlmc_sqrt": "DLMC √t",
          "dlmc_ratio": "DLMC t/(t+1)", "dlmcf_sqrt": "DLMC Euler √t", "dlmcf_ratio": "DLMC Euler t/(t+1)",
          "dmala_sqrt": "DMALA √t", "dmala_ratio": "DMALA t/(t+1)"}


def discs_name(row: str) -> str:
    """The row's sampler name in DISCS' recorded results (``"a_dlmcf(sqrt)"``), the key of
    ``benchmarks/discs.py``'s ``DISCS_TO_OURS``."""
    name, balancing, extra = ROWS[row]
    return f"a_{'dlmcf' if extra.get('solver') == 'euler_forward' else name}({balancing.lower()})"


def _timed(run, carry, steps: int, repeats: int):
    """``repeats`` timed calls of ``run(carry, first_step) -> carry``: CPU and wall ms per step."""
    import jax

    out, first = [], 0
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        carry = jax.block_until_ready(run(carry, first))
        c1, t1 = time.process_time(), time.perf_counter()
        first += steps
        out.append({"cpu_ms_per_step": round((c1 - c0) / steps * 1e3, 2),
                    "wall_ms_per_step": round((t1 - t0) / steps * 1e3, 2)})
    return out


def time_discs(row: str, discs_repo: str, chains: int, warmup: int, steps: int, repeats: int) -> dict:
    """DISCS' own step on its 50x50 Ising (run inside DISCS' venv)."""
    sys.path.insert(0, os.path.abspath(discs_repo))
    import jax
    import jax.numpy as jnp

    utils = types.ModuleType("discs.common.utils")  # see the module docstring
    utils.copy_pytree = lambda tree: jax.tree_util.tree_map(jnp.array, tree)
    sys.modules["discs.common.utils"] = utils
    from discs.common import configs as common_configs
    from discs.models.configs import ising_config

    name, balancing, extra = ROWS[row]
    config = common_configs.get_config()
    sampler_config = importlib.import_module(f"discs.samplers.configs.{name}_config").get_config()
    sampler_config.balancing_fn_type = balancing
    sampler_config.update(extra)
    config.sampler.update(sampler_config)
    config.model.update(ising_config.get_config())
    config.experiment.batch_size = chains
    model = importlib.import_module(f"discs.models.{config.model.name}").build_model(config)
    sampler = importlib.import_module(f"discs.samplers.{config.sampler.name}").build_sampler(config)
    # as discs/experiment/sampling.py initializes one model on one device
    rng_param, rng_x0, rng_state = jax.random.split(jax.random.PRNGKey(0), 3)
    params = model.make_init_params(jax.random.split(rng_param, 1)[0])
    x = jnp.reshape(model.get_init_samples(rng_x0, chains), (chains,) + tuple(config.model.shape))
    state = sampler.make_init_state(jax.random.split(rng_state, 1))
    step = jax.jit(functools.partial(sampler.step, model=model))
    base = jax.random.PRNGKey(10)

    def run(carry, first, n=steps):
        x, state = carry
        for s in range(first, first + n):
            rng = jax.random.split(jax.random.fold_in(base, s), 1).reshape(-1)
            x, state, _ = step(rng=rng, x=x, model_param=params, state=state)
        return x, state

    carry = jax.block_until_ready(run((x, state), 10**6, warmup))
    return {"impl": "discs", "row": row, "jax": jax.__version__,
            "runs": _timed(run, carry, steps, repeats)}


def time_ours(row: str, chains: int, steps: int, repeats: int, side: int = 50) -> dict:
    """Ours: ``run_chains`` of the row's sampler on DISCS' Ising (benchmarks/discs.py), one scan per call."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import discs as bench  # benchmarks/discs.py
    import jax

    from nips23jax import discrete as D

    model = bench.discs_ising(side, 0.5, 0.5, jax.random.key(0))
    name, kwargs = bench.parse_variant(bench.DISCS_TO_OURS[discs_name(row)])
    sampler = D.get_sampler(name, model, **kwargs)
    sweep = jax.jit(lambda key: D.run_chains(key, model, sampler, chains, steps)[0])
    jax.block_until_ready(sweep(jax.random.key(0)))  # compile
    runs = _timed(lambda carry, first: sweep(jax.random.key(1 + first)), None, steps, repeats)
    return {"impl": "ours", "row": row, "jax": jax.__version__, "runs": runs}


def _median(values):
    values = sorted(values)
    return values[len(values) // 2] if len(values) % 2 else 0.5 * (values[len(values) // 2 - 1] + values[len(values) // 2])


def table(results: list[dict]) -> str:
    """Markdown table: per row, the range of DISCS' and our CPU ms/step, and DISCS / ours of their medians
    and of their minima (the least disturbed runs: on a shared machine a run sometimes takes 2-3x longer)."""
    lines = ["| sampler | DISCS' code CPU ms/step | ours CPU ms/step | DISCS / ours, medians | DISCS / ours, minima |",
             "|---|---:|---:|---:|---:|"]
    for row in ROWS:
        cpu = {impl: [r["cpu_ms_per_step"] for res in results if res["row"] == row and res["impl"] == impl
                      for r in res["runs"]] for impl in ("discs", "ours")}
        if not cpu["discs"] or not cpu["ours"]:
            continue
        span = lambda v: f"{min(v):.1f}–{max(v):.1f}"
        lines.append(f"| {LABELS[row]} | {span(cpu['discs'])} | {span(cpu['ours'])} | "
                     f"{_median(cpu['discs']) / _median(cpu['ours']):.2f}x | {min(cpu['discs']) / min(cpu['ours']):.2f}x |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["compare", "discs", "ours"])
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from {list(ROWS)}")
    p.add_argument("--discs-repo", help="a clone of google-research/discs (discs and compare)")
    p.add_argument("--discs-python", help="the python of DISCS' venv (compare)")
    p.add_argument("--chains", type=int, default=100)
    p.add_argument("--warmup", type=int, default=300, help="untimed DISCS steps before timing")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--rounds", type=int, default=2, help="compare: DISCS/ours alternations per row")
    p.add_argument("--side", type=int, default=50, help="ours: lattice side (DISCS' config is 50)")
    p.add_argument("--jsonl", help="compare: append every JSON result to this file")
    a = p.parse_args(argv)
    rows = [r for r in a.rows.split(",") if r]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"--rows: unknown {unknown}; expected some of {list(ROWS)}")
    if a.mode in ("discs", "compare") and not (a.discs_repo and os.path.isdir(os.path.join(a.discs_repo, "discs"))):
        p.error(f"--discs-repo must be a clone of google-research/discs (with a discs/ package), got {a.discs_repo!r}")
    if a.mode == "compare" and not (a.discs_python and os.access(a.discs_python, os.X_OK)):
        p.error(f"--discs-python must be the python executable of DISCS' venv, got {a.discs_python!r}")
    common = ["--chains", str(a.chains), "--steps", str(a.steps), "--repeats", str(a.repeats)]
    if a.mode == "discs":
        for row in rows:
            print(json.dumps(time_discs(row, a.discs_repo, a.chains, a.warmup, a.steps, a.repeats)), flush=True)
        return
    if a.mode == "ours":
        for row in rows:
            print(json.dumps(time_ours(row, a.chains, a.steps, a.repeats, a.side)), flush=True)
        return
    results, me = [], os.path.abspath(__file__)
    for rnd in range(a.rounds):
        for row in rows:
            for cmd in ([a.discs_python, me, "discs", "--rows", row, "--discs-repo", a.discs_repo,
                         "--warmup", str(a.warmup)] + common,
                        [sys.executable, me, "ours", "--rows", row, "--side", str(a.side)] + common):
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                res = json.loads(out.strip().splitlines()[-1])
                results.append(res)
                print(f"round {rnd + 1}/{a.rounds} {row:12s} {res['impl']:5s} CPU ms/step "
                      f"{[r['cpu_ms_per_step'] for r in res['runs']]}", file=sys.stderr, flush=True)
                if a.jsonl:
                    with open(a.jsonl, "a") as f:
                        f.write(json.dumps(res) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
