"""Multi-process runs on jax.distributed, on 127.0.0.1: 2 processes x 2 CPU devices against 1 x 4.

The named cases live in ``_mp_cases.py``: ``nips23jax launch`` runs them as 2 processes x 2 devices
and as 1 process x 4 devices, each writing an .npz, and the arrays must agree. This (pytest)
process restores the 2-process checkpoint on 4 of its 8 devices. Every subprocess is bounded (``--timeout`` and ``subprocess`` timeouts).
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import jax
import numpy as np
import pytest

from nips23jax.core import distributed
from nips23jax.core.sharding import make_mesh
from nips23jax.core.train import MetricsLog

sys.path.insert(0, str(Path(__file__).parent))
import _mp_cases  # noqa: E402

SCRIPT = Path(__file__).with_name("_mp_cases.py")
CASES_COMPARED = ("qlora", "dpo", "sam", "gp_sgd", "discs")  # capabilities: 2 x 2 devices must equal 1 x 4
HEARTBEAT_S = 5


def _opts(**kw):
    return argparse.Namespace(**{"workdir": None, "restore": None, "kill_once": None, **kw})


def _launch(cwd, *args, timeout=240, n=2, devices=2):
    """``nips23jax launch -n N --devices-per-process K -- python _mp_cases.py ARGS`` in a clean environment."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = "--xla_backend_optimization_level=0"  # the children compile twice as fast
    cmd = [sys.executable, "-m", "nips23jax", "launch", "-n", str(n), "--devices-per-process", str(devices),
           "--heartbeat-timeout", str(HEARTBEAT_S), "--timeout", str(timeout), "--", sys.executable, str(SCRIPT), *args]
    t0 = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout + 30)
    return out, time.monotonic() - t0


@pytest.fixture(scope="module")
def mesh4():
    return make_mesh(_mp_cases.MESH, devices=jax.devices()[:4])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The cases in one process with 4 devices (same compiler flags); ``fit`` checkpoints under ``<dir>/one``."""
    d = tmp_path_factory.mktemp("one_process")
    out, _ = _launch(d, "one.npz", *CASES_COMPARED, "fit", "--workdir", "one", n=1, devices=4)
    assert out.returncode == 0, out.stdout[-4000:]
    assert "[0] 1 processes x 4 devices (launch)" in out.stdout
    return d, dict(np.load(d / "one.npz"))


def _assert_same(got, want, keys, exact=False):
    assert keys, "nothing compared"
    for k in keys:
        if exact:
            np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        else:
            np.testing.assert_allclose(got[k], want[k], rtol=2e-4, atol=1e-5, err_msg=k)


@pytest.mark.slow
def test_killed_process_stops_the_job_then_two_processes_resume_and_equal_one_process(tmp_path, reference, mesh4):
    """One command, run twice: process 1 SIGKILLs itself in ``fit`` (the first case) after step 5, the
    launcher stops the job; the same command then resumes ``fit`` from the last complete checkpoint and
    runs every capability case and the cross-process restore, and all of it must equal 1 process x 4 devices.
    """
    ref_dir, ref = reference
    args = ("two.npz", "fit", *CASES_COMPARED, "restore", "--workdir", "two", "--restore", str(ref_dir / "one"),
            "--kill-once", "killed")
    out, _ = _launch(tmp_path, *args)
    assert out.returncode == 128 + 9, out.stdout[-4000:]
    assert "nips23jax launch: process 1 of 2 was killed by signal SIGKILL; stopped the others" in out.stdout
    assert (tmp_path / "killed").exists() and not (tmp_path / "two.npz").exists()

    out, _ = _launch(tmp_path, *args)  # the same command
    assert out.returncode == 0, out.stdout[-4000:]
    assert "[0] 2 processes x 2 devices (launch)" in out.stdout
    assert "[0] done" in out.stdout and "[1] done" not in out.stdout  # main_print: process 0 only
    got = dict(np.load(tmp_path / "two.npz"))
    assert int(got["fit/resumed_from"]) in (2, 4)  # the newest complete checkpoint before the kill at step 5

    # Capabilities and the shared loop: 2 processes x 2 devices == 1 process x 4 devices.
    compared = [k for k in ref if k.split("/")[0] in (*CASES_COMPARED, "fit") and k != "fit/resumed_from"]
    assert {k for k in got if not k.startswith("restore/")} == set(ref)
    assert len(compared) > 20 and any(k.startswith("qlora/params/") and "lora_b" in k for k in compared)
    _assert_same(got, ref, compared)
    assert not np.allclose(got["sam/params/w1"], _mp_cases._mlp_problem()[0]["w1"])  # it trained

    # Checkpoints: written by 1 process, restored by 2 (exactly); written by 2, restored by 1.
    assert int(got["restore/step"]) == 6
    fit_keys = [k for k in ref if k.startswith("fit/params/")]
    _assert_same({k.replace("restore/", "fit/"): v for k, v in got.items()}, ref, fit_keys, exact=True)
    back = _mp_cases.restore_case(mesh4, _opts(restore=str(tmp_path / "two")))
    assert int(back["step"]) == 6
    _assert_same({f"fit/{k}": v for k, v in back.items()}, got, fit_keys, exact=True)

    # Metrics from process 0 only: each step once in the shared metrics.jsonl, across the kill and resume.
    steps = [r["step"] for r in MetricsLog(tmp_path / "two" / "metrics.jsonl").rows]
    assert steps == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_hung_process_ends_the_job_within_the_heartbeat_timeout(tmp_path):
    out, elapsed = _launch(tmp_path, "hang.npz", "hang", timeout=120)
    tail = out.stdout[-4000:]
    assert out.returncode not in (0, 124), tail  # ended by jax.distributed, not by the wall-clock limit
    assert "nips23jax launch: process 0 of 2" in out.stdout, tail
    assert "(jax.distributed: process 1 stopped sending heartbeats)" in out.stdout, tail
    assert elapsed < 120, elapsed


def test_process_rows_and_global_batch_in_one_process(mesh4):
    assert distributed.process_rows(8, mesh4) == slice(0, 8)
    x = np.arange(16.0).reshape(8, 2)
    g = distributed.global_batch({"x": x}, mesh4)["x"]
    assert g.shape == (8, 2) and g.sharding.spec == jax.sharding.PartitionSpec(("data", "fsdp"))
    np.testing.assert_array_equal(distributed.gather(g), x)
    np.testing.assert_array_equal(distributed.local_batch({"x": x}, mesh4)["x"], x)
    with pytest.raises(ValueError, match="global_size 6 must be a positive multiple of the 4 batch shards"):
        distributed.process_rows(6, mesh4)
    with pytest.raises(ValueError, match="leaf 'x' is a scalar"):
        distributed.global_batch({"x": np.float32(1)}, mesh4)


def test_detect_cluster_from_the_environment():
    slurm = {"SLURM_JOB_ID": "1", "SLURM_STEP_NODELIST": "n[1-2]", "SLURM_NTASKS": "2", "SLURM_PROCID": "0",
             "SLURM_LOCALID": "0"}
    assert distributed.detect_cluster({}) is None
    assert distributed.detect_cluster(slurm) == "slurm"
    assert distributed.detect_cluster({**slurm, "SLURM_NTASKS": "1"}) is None  # one task: nothing to join
    assert distributed.detect_cluster({**slurm, distributed.ENV_DISTRIBUTED: "0"}) is None
    assert distributed.detect_cluster({"OMPI_MCA_orte_hnp_uri": "x", "OMPI_COMM_WORLD_SIZE": "4"}) == "ompi"
    assert distributed.detect_cluster({"TPU_WORKER_HOSTNAMES": "a,b,c,d"}) == "tpu"
    assert distributed.detect_cluster({distributed.ENV_COORDINATOR: "127.0.0.1:1"}) == "launch"
    assert distributed.detect_cluster({distributed.ENV_DISTRIBUTED: "1"}) == "env"
    with pytest.raises(ValueError, match="NIPS23JAX_DISTRIBUTED='maybe': expected 0 or 1"):
        distributed.detect_cluster({distributed.ENV_DISTRIBUTED: "maybe"})
    info = distributed.initialize(environ={})  # a lone process: a no-op
    assert info == distributed.ProcessInfo(0, 1, 8, 8, None)
    with pytest.raises(ValueError, match="NIPS23JAX_NUM_PROCESSES and NIPS23JAX_PROCESS_ID must be too"):
        distributed.initialize(environ={distributed.ENV_COORDINATOR: "127.0.0.1:1"})
    with pytest.raises(ValueError, match=r"process_id must be in \[0, 2\), got 2"):
        distributed.initialize("127.0.0.1:1", 2, 2)


def test_launch_names_the_failed_process_and_stops_the_others(tmp_path):
    """No JAX here: process 1 fails once process 0 has printed; process 0 would sleep for a minute.

    Process 1 waits for a marker that process 0 writes after its print, so a loaded machine that
    starts process 0 late cannot reorder the two (CI once saw process 1 exit first).
    """
    import io

    marker = tmp_path / "printed"
    prog = (
        "import os, sys, time, pathlib; i = int(os.environ['NIPS23JAX_PROCESS_ID']); "
        f"m = pathlib.Path({str(marker)!r}); print('hello', i, flush=True)\n"
        "if i == 0:\n    m.touch(); time.sleep(60)\n"
        "else:\n    t = time.monotonic()\n    while not m.exists() and time.monotonic() - t < 15: time.sleep(0.02)\n"
        "    sys.exit(3)\n"
    )
    buf = io.StringIO()
    t0 = time.monotonic()
    res = distributed.launch([sys.executable, "-c", prog], 2, out=buf, grace=2.0)
    assert time.monotonic() - t0 < 30
    assert res == distributed.LaunchResult(3, 1, "process 1 of 2 exited with status 3; stopped the others")
    lines = buf.getvalue().splitlines()
    assert "[0] hello 0" in lines and "[1] hello 1" in lines
    assert lines[-1] == "nips23jax launch: process 1 of 2 exited with status 3; stopped the others"
    timed = distributed.launch([sys.executable, "-c", "import time; time.sleep(60)"], 1, out=io.StringIO(),
                               timeout=1.0, grace=1.0)
    assert timed.returncode == 124 and "timed out after 1 s" in timed.message
    with pytest.raises(ValueError, match="num_processes must be a positive int"):
        distributed.launch(["true"], 0)
