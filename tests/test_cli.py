"""The nips23jax command, run as a user runs it (a subprocess)."""

import functools
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

QUICK_SMALL = [
    "--set", "train.num_steps=40", "--set", "train.eval_every=20", "--set", "train.checkpoint_every=20",
    "--set", "eval.num_examples=32", "--set", "eval.num_test=64", "--set", "model.num_layers=1",
    "--set", "model.d_model=32", "--set", "model.d_ff=64",
]


def nips23jax(*args, cwd=None, xla_flags=None):
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}  # one device, as a user has
    if xla_flags:
        env["XLA_FLAGS"] = xla_flags
    return subprocess.run(
        [sys.executable, "-m", "nips23jax", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


def test_list_and_version():
    out = nips23jax("list")
    names = [line.split()[0] for line in out.stdout.splitlines() if line and not line[0].isspace()]
    assert out.returncode == 0 and names == sorted(names) and {"tiny-lm", "sharpness", "dpo"} <= set(names)
    assert "configs/tiny_lm.py" in out.stdout and "colab/tiny_lm.ipynb" in out.stdout
    assert nips23jax("--version").stdout.startswith("nips23jax ")


BAD_INPUT = [
    (["reproduce", "no-such-thing"], "unknown reproduction 'no-such-thing'; known: "),
    (["reproduce", "tiny-lm", "--set", "train.nope=1"], "unknown config key 'train.nope'"),
    (["reproduce", "tiny-lm", "--set", "train.num_steps"], "malformed override 'train.num_steps'"),
    (["reproduce", "tiny-lm", "--set", "train.lr=fast"], "bad value 'fast' for config key 'train.lr'"),
    (["reproduce", "tiny-lm", "--config", "missing.py"], "config file 'missing.py' does not exist"),
    (["config", "tiny-lm", "--set", "seed=x"], "expected int"),
    # values of the right type that a run cannot use: refused before anything runs
    (["reproduce", "tiny-lm", "--set", "train.num_steps=0"], "config key 'train.num_steps' must be an int >= 1"),
    (["reproduce", "tiny-lm", "--config", str(Path(__file__).parents[1] / "configs" / "sharpness.py")],
     "is for reproduction 'sharpness', not 'tiny-lm'"),
    (["reproduce", "sharpness", "--set", "runs.nobias_gd.method=adam"], "runs.nobias_gd.method must be 'gd' or 'sam'"),
    (["reproduce", "data-constrained", "--set", "law.epochs=[2,8]"], "law.epochs must include 4"),
    (["reproduce", "emergence", "--set", "multiple_choice.num_digits=5"], "answers overflow int32"),
    (["reproduce", "dpo", "--set", "dpo.loss_type=kto"], "dpo.loss_type: unknown ['kto']"),
    (["reproduce", "qlora", "--set", "finetune.methods=['adapter']"], "finetune.methods: unknown ['adapter']"),
    (["reproduce", "gp-sgd", "--set", "regression.datasets=()"], "regression.datasets must be a non-empty list"),
]


def _assert_one_line_error(returncode, stderr, message, status=2):
    assert returncode == status, (returncode, stderr)
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nips23jax: error: ") and message in lines[0], stderr


def test_bad_input_is_one_line_and_nonzero_from_the_console():
    """One error through the console entry point (``python -m nips23jax``); the rest in-process below."""
    args, message = BAD_INPUT[3]
    out = nips23jax(*args)
    _assert_one_line_error(out.returncode, out.stderr, message)


@pytest.mark.parametrize("args, message", BAD_INPUT)
def test_bad_input_is_one_line_and_nonzero(args, message, capsys):
    """``main`` (what the console script calls) returns 2 and prints one line; nothing raises."""
    from nips23jax.cli import main

    code = main(args)
    _assert_one_line_error(code, capsys.readouterr().err, message)


def test_unwritable_output_dir(tmp_path, capsys):
    from nips23jax.cli import main

    (tmp_path / "afile").write_text("")
    code = main(["reproduce", "tiny-lm", "--quick", "--out", str(tmp_path / "afile" / "reports")])
    _assert_one_line_error(code, capsys.readouterr().err, "cannot create output directory")


def test_config_prints_resolved_values(capsys):
    from nips23jax.cli import main

    assert main(["config", "tiny-lm", "--quick", "--set", "train.num_steps=7"]) == 0
    assert "num_steps: 7" in capsys.readouterr().out


@pytest.mark.slow
def test_reproduce_writes_report_and_resumes(tmp_path):
    # Level-0 XLA compiles twice as fast; the three runs share their programs (persistent cache).
    run = functools.partial(nips23jax, xla_flags="--xla_backend_optimization_level=0")
    out = run("reproduce", "tiny-lm", "--quick", *QUICK_SMALL, "--out", "rep", "--no-progress", "--strict",
            cwd=tmp_path)
    # 40 steps cannot solve addition: the verdict says so, and --strict turns it into exit 1.
    assert out.returncode == 1, out.stderr[-3000:]
    assert "NOT reproduced" in out.stdout and "tiny-lm" in out.stdout
    rep = tmp_path / "rep" / "tiny-lm"
    text = (rep / "report.md").read_text()
    assert "| claim | paper | ours | verdict | criterion |" in text and "![loss](loss.png)" in text
    command = next(line for line in text.splitlines() if line.startswith("Command: `"))[len("Command: `"):-1]
    assert shlex.split(command) == ["nips23jax", "reproduce", "tiny-lm", "--quick",
                                    *[a for s in QUICK_SMALL[1::2] for a in ("--set", s)]]  # runs as written
    assert (rep / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((rep / "results.json").read_text())
    assert data["metrics"]["steps"] == 40 and data["metrics"]["resumed_from"] is None
    assert {c["key"] for c in data["claims"]} == {"learns", "loss_drop"}

    again = run("reproduce", "tiny-lm", "--quick", *QUICK_SMALL, "--out", "rep", "--no-progress", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((rep / "results.json").read_text())["metrics"]["resumed_from"] == 40
    fresh = run("reproduce", "tiny-lm", "--quick", *QUICK_SMALL, "--out", "rep", "--no-progress", "--fresh",
              cwd=tmp_path)
    assert fresh.returncode == 0
    assert json.loads((rep / "results.json").read_text())["metrics"]["resumed_from"] is None


def test_launch_usage_errors_are_one_line(capsys):
    """In-process (the launcher's argument checks start no process and import no JAX)."""
    from nips23jax.cli import main

    for args, message in [
        (["launch", "-n", "2"], "launch needs a command after --"),
        (["launch", "-n", "0", "--", "list"], "--num-processes must be >= 1, got 0"),
        (["launch", "-n", "2", "--", "launch", "-n", "2", "--", "list"], "launch cannot launch itself"),
        (["launch", "-n", "2", "--", "no-such-program-xyz"], "cannot run 'no-such-program-xyz'"),
    ]:
        assert main(args) == 2, args
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nips23jax: error: ") and message in lines[0], lines


def test_launch_runs_a_nips23jax_command_as_two_processes():
    """Each process joins the job (initialize from the launcher's environment) and runs ``config``."""
    out = nips23jax("launch", "-n", "2", "--devices-per-process", "2", "--timeout", "240", "--",
                    "config", "tiny-lm", "--quick", "--set", "train.num_steps=7")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    for i in (0, 1):  # both processes ran the command; their lines carry their index
        assert any(x.startswith(f"[{i}] ") and "num_steps: 7" in x for x in lines), out.stdout[-3000:]
