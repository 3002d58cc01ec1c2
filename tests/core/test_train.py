import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from nips23jax.core.checkpoint import CheckpointError, Checkpointer
from nips23jax.core.train import MetricsLog, TrainState, as_key, fit, global_norm, make_train_step, warmup_cosine

SCRIPT = Path(__file__).with_name("_resume_script.py")


def _linear_problem():
    """Least squares on fixed data; batches are a function of the step."""
    w_true = jnp.arange(1.0, 5.0)

    def batch_fn(step):
        x = jax.random.normal(jax.random.fold_in(jax.random.key(7), step), (8, 4))
        return {"x": x, "y": x @ w_true}

    def loss_fn(params, batch, key):
        r = batch["x"] @ params["w"] + params["b"] - batch["y"]
        return jnp.mean(r**2), {"abs_b": jnp.abs(params["b"])}

    params = {"w": jnp.zeros(4), "b": jnp.zeros(())}
    return params, loss_fn, batch_fn


def test_train_step_matches_hand_written_update():
    params, loss_fn, batch_fn = _linear_problem()
    opt = optax.adam(0.1)
    step = make_train_step(loss_fn, opt, donate=False)
    state = TrainState.create(params, opt)
    state, metrics = step(state, batch_fn(0))

    # Adam's first step by hand: m = (1-b1) g, v = (1-b2) g^2, bias corrected -> g / (|g| + eps).
    b = batch_fn(0)
    x, y = np.asarray(b["x"]), np.asarray(b["y"])
    g_w = 2 * x.T @ (x @ np.zeros(4) - y) / 8
    g_b = 2 * np.mean(x @ np.zeros(4) - y)
    np.testing.assert_allclose(state.params["w"], -0.1 * g_w / (np.abs(g_w) + 1e-8), rtol=1e-5)
    np.testing.assert_allclose(state.params["b"], -0.1 * g_b / (np.abs(g_b) + 1e-8), rtol=1e-5)
    np.testing.assert_allclose(metrics["loss"], np.mean(y**2), rtol=1e-5)
    np.testing.assert_allclose(metrics["grad_norm"], np.sqrt(np.sum(g_w**2) + g_b**2), rtol=1e-5)
    assert int(state.step) == 1 and "abs_b" in metrics


def test_train_step_passes_extra_args_and_step_keys():
    seen = []

    def update(updates, state, params=None, *, scale):
        return jax.tree.map(lambda g: -scale * g, updates), state

    opt = optax.GradientTransformationExtraArgs(lambda p: optax.EmptyState(), update)

    def loss_fn(params, batch, key):
        return jnp.sum(params["w"] * batch), {"u": jax.random.uniform(key)}

    step = make_train_step(
        loss_fn, opt, key=3, extra_args_fn=lambda p, b, k: {"scale": 0.5}, jit=False
    )
    state = TrainState.create({"w": jnp.ones(3)}, opt)
    for _ in range(2):
        state, m = step(state, jnp.arange(3.0))
        seen.append(float(m["u"]))
    np.testing.assert_allclose(state.params["w"], 1 - 2 * 0.5 * np.arange(3.0))
    expected = [float(jax.random.uniform(jax.random.fold_in(jax.random.key(3), t))) for t in range(2)]
    assert seen == expected


def test_as_key_accepts_all_forms():
    typed = jax.random.key(5)
    raw = jax.random.PRNGKey(5)
    for k in (5, typed, raw):
        assert jnp.array_equal(jax.random.key_data(as_key(k)), jax.random.key_data(typed))
    with pytest.raises(TypeError, match="key"):
        as_key(jnp.zeros(3))


def _fit(workdir, num_steps, **kw):
    params, loss_fn, batch_fn = _linear_problem()
    opt = optax.sgd(0.1, momentum=0.5)
    return fit(
        TrainState.create(params, opt), make_train_step(loss_fn, opt), batch_fn, num_steps=num_steps,
        workdir=workdir, progress=False, **kw,
    )


def test_fit_trains_logs_and_checkpoints(tmp_path):
    out = _fit(tmp_path, 40, checkpoint_every=10, keep_checkpoints=2, log_every=5,
               eval_fn=lambda s: {"w0": s.params["w"][0]}, eval_every=20)
    np.testing.assert_allclose(out.state.params["w"], [1, 2, 3, 4], atol=1e-2)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == [30, 40]
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if r["split"] == "train"] == list(range(5, 41, 5))
    assert [r["step"] for r in rows if r["split"] == "eval"] == [0, 20, 40]
    assert out.resumed_from is None


def test_fit_resume_in_process_and_log_has_each_step_once(tmp_path):
    full = _fit(tmp_path / "a", 30, checkpoint_every=10, log_every=5)
    _fit(tmp_path / "b", 20, checkpoint_every=10, log_every=5)
    resumed = _fit(tmp_path / "b", 30, checkpoint_every=10, log_every=5)
    assert resumed.resumed_from == 20
    for a, b in zip(jax.tree.leaves(full.state.params), jax.tree.leaves(resumed.state.params)):
        np.testing.assert_array_equal(a, b)
    steps = [r["step"] for r in MetricsLog(tmp_path / "b" / "metrics.jsonl").rows]
    assert steps == list(range(5, 31, 5))


def test_fit_killed_midway_resumes_to_identical_parameters(tmp_path):
    """A real SIGKILL mid-run; the same command then resumes and matches an uninterrupted run."""
    # Level-0 XLA compiles twice as fast; the three runs share their programs (persistent cache).
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0"}
    run = lambda d, kill: subprocess.run(  # noqa: E731
        [sys.executable, str(SCRIPT), str(d), "40", str(kill)], env=env, capture_output=True, text=True
    )
    ref = run(tmp_path / "ref", -1)
    assert ref.returncode == 0, ref.stderr[-2000:]
    killed = run(tmp_path / "job", 25)
    assert killed.returncode == -9, (killed.returncode, killed.stderr[-2000:])
    assert not (tmp_path / "job" / "final.npz").exists()
    again = run(tmp_path / "job", -1)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed_from = int(again.stdout.split("resumed_from")[1].split()[0])
    assert resumed_from in (10, 20), again.stdout
    a, b = np.load(tmp_path / "ref" / "final.npz"), np.load(tmp_path / "job" / "final.npz")
    assert len(a.files) == len(b.files) > 5
    for k in a.files:
        np.testing.assert_array_equal(a[k], b[k])
    steps = [r["step"] for r in MetricsLog(tmp_path / "job" / "metrics.jsonl").rows if r["split"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == 40


def _corrupt(step_dir: Path):
    for f in step_dir.rglob("*"):
        if f.is_file() and f.name != "metadata":
            f.write_bytes(b"garbage")


def test_fit_skips_damaged_newest_checkpoint(tmp_path):
    full = _fit(tmp_path / "a", 30, checkpoint_every=10)
    _fit(tmp_path / "b", 20, checkpoint_every=10)
    _corrupt(tmp_path / "b" / "checkpoints" / "20")
    with pytest.warns(RuntimeWarning, match="step 20 .* damaged"):
        resumed = _fit(tmp_path / "b", 30, checkpoint_every=10)
    assert resumed.resumed_from == 10
    assert (tmp_path / "b" / "checkpoints" / "corrupt_20").is_dir()
    np.testing.assert_array_equal(resumed.state.params["w"], full.state.params["w"])


def test_fit_refuses_to_start_over_when_nothing_restores(tmp_path):
    _fit(tmp_path, 20, checkpoint_every=10)
    for d in (tmp_path / "checkpoints").iterdir():
        if d.name.isdigit():
            _corrupt(d)
    with pytest.raises(CheckpointError, match="no checkpoint .* could be restored.*refusing to start over"):
        _fit(tmp_path, 30, checkpoint_every=10)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == ["10", "20"]


def test_checkpointer_fingerprint_mismatch_is_an_error(tmp_path):
    state = {"w": jnp.ones(3)}
    c = Checkpointer(tmp_path, fingerprint="run-a")
    c.save(1, state)
    c.close()
    with pytest.raises(CheckpointError, match="different run"):
        Checkpointer(tmp_path, fingerprint="run-b").restore_latest(state)
    step, restored = Checkpointer(tmp_path, fingerprint="run-a").restore_latest(state)
    assert step == 1 and np.array_equal(restored["w"], np.ones(3))


def test_checkpointer_unwritable_directory(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CheckpointError, match="cannot create checkpoint directory"):
        Checkpointer(tmp_path / "file" / "ckpt")


def test_fit_stops_on_non_finite_loss(tmp_path):
    opt = optax.sgd(1e30)
    loss_fn = lambda p, b, k: (jnp.sum(p["w"] ** 4), {})  # noqa: E731
    with pytest.raises(FloatingPointError, match="loss became"):
        fit(TrainState.create({"w": jnp.ones(2)}, opt), make_train_step(loss_fn, opt), lambda t: None,
            num_steps=5, log_every=1, progress=False)


def test_global_norm_matches_numpy_and_accumulates_in_float32_or_wider():
    tree = {"a": jnp.arange(3.0), "b": [jnp.full((2, 2), -2.0)]}
    np.testing.assert_allclose(global_norm(tree), np.sqrt(0 + 1 + 4 + 4 * 4), rtol=1e-6)
    assert global_norm({"x": jnp.ones(4, jnp.bfloat16)}).dtype == jnp.float32
    with jax.enable_x64(True):
        assert global_norm({"x": jnp.ones(4, jnp.float64)}).dtype == jnp.float64


def test_frozen_variables_reach_the_loss_get_no_update_and_checkpoint(tmp_path):
    """A state's ``frozen`` tree (here an NF4 weight, uint8 codes that jax.grad would reject) is passed
    to the loss, never differentiated or updated, and saved and restored with the state."""
    from nips23jax.qlora import dequantize_4bit, quantize_4bit

    _, _, batch_fn = _linear_problem()
    frozen = {"w_q": quantize_4bit(jnp.arange(1.0, 5.0).reshape(4, 1) * jnp.ones((1, 64)))}

    def loss_fn(params, batch, key, frozen):
        w = dequantize_4bit(frozen["w_q"])[:, 0] + params["delta"]
        return jnp.mean((batch["x"] @ w - batch["y"]) ** 2), {}

    opt = optax.sgd(0.05)
    copy = lambda t: jax.tree.map(lambda x: jnp.array(x, copy=True), t)  # noqa: E731 - the step donates
    state = TrainState.create({"delta": jnp.zeros(4)}, opt, copy(frozen))
    step = make_train_step(loss_fn, opt)
    kw = dict(num_steps=20, workdir=tmp_path, checkpoint_every=10, progress=False)
    out = fit(state, step, batch_fn, **kw)
    np.testing.assert_allclose(out.state.params["delta"], 0.0, atol=1e-2)  # NF4 holds 1..4 almost exactly
    jax.tree.map(np.testing.assert_array_equal, out.state.frozen, frozen)
    again = fit(TrainState.create({"delta": jnp.zeros(4)}, opt, copy(frozen)), step, batch_fn, **kw)
    assert again.resumed_from == 20 and again.state.frozen["w_q"].packed.dtype == jnp.uint8
    jax.tree.map(np.testing.assert_array_equal, again.state.frozen, frozen)


def test_trainable_mask_differentiates_only_the_selected_leaves():
    params, loss_fn, batch_fn = _linear_problem()
    opt = optax.partition({"t": optax.sgd(0.1), "f": optax.set_to_zero()}, {"w": "t", "b": "f"})
    params = {"w": jnp.zeros(4), "b": jnp.ones(())}
    masked = make_train_step(loss_fn, opt, trainable={"w": True, "b": False}, donate=False)
    plain = make_train_step(loss_fn, opt, donate=False)
    s = TrainState.create(params, opt)
    a, ma = masked(s, batch_fn(0))
    b, mb = plain(s, batch_fn(0))
    np.testing.assert_allclose(a.params["w"], b.params["w"], rtol=1e-6)
    assert float(a.params["b"]) == 1.0
    g = jax.grad(lambda p: loss_fn(p, batch_fn(0), None)[0])(params)
    np.testing.assert_allclose(ma["grad_norm"], jnp.linalg.norm(g["w"]), rtol=1e-6)  # the trained leaves only
    np.testing.assert_allclose(mb["grad_norm"], jnp.sqrt(jnp.sum(g["w"] ** 2) + g["b"] ** 2), rtol=1e-6)
    with pytest.raises(ValueError, match="trainable: no leaf is True"):
        make_train_step(loss_fn, opt, trainable={"w": False, "b": False})(s, batch_fn(0))
    with pytest.raises(ValueError, match="structure of params"):
        make_train_step(loss_fn, opt, trainable={"w": True})(s, batch_fn(0))


def test_warmup_cosine_closed_form():
    peak, n, w = 3e-3, 50, 10
    lr = warmup_cosine(peak, n, w)
    for t in range(n + 1):
        expect = peak * t / w if t < w else peak * 0.5 * (1 + math.cos(math.pi * (t - w) / (n - w)))
        assert float(lr(t)) == pytest.approx(expect, rel=1e-5, abs=1e-9), t
    # a warmup as long as the run is cut to num_steps - 1, so the schedule still ends at 0
    short = warmup_cosine(1.0, 4, 100)
    np.testing.assert_allclose([float(short(t)) for t in range(5)], [0.0, 1 / 3, 2 / 3, 1.0, 0.0], atol=1e-6)


@pytest.mark.parametrize(
    "args, match",
    [((1.0, 0, 0), "num_steps must be an int >= 1"), ((1.0, 10.0, 0), "num_steps"), ((1.0, 10, -1), "warmup_steps"),
     ((-1.0, 10, 0), "peak_lr"), ((float("nan"), 10, 0), "peak_lr")],
)
def test_warmup_cosine_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        warmup_cosine(*args)
