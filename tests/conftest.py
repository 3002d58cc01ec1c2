"""Test setup: 8 simulated CPU devices (must be set before jax is imported anywhere)."""

import os
import sys
from pathlib import Path

_FLAG = "--xla_force_host_platform_device_count=8"
if "jax" in sys.modules:  # pragma: no cover - would make the sharding tests meaningless
    raise RuntimeError("tests/conftest.py must run before jax is imported")
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One persistent compilation cache for the whole run: the xdist workers, the notebook kernels and
# the launched subprocesses inherit it, so a program that several of them compile (a reproduction's
# test and its notebook run the same config) compiles once. Compiling dominates this suite.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="nips23jax-test-jax-cache-")
    atexit.register(shutil.rmtree, os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)  # by its creator
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")

import jax  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session", autouse=True)
def _check_devices():
    assert jax.device_count() == 8, f"expected 8 simulated CPU devices, got {jax.devices()}"


@pytest.fixture(scope="session")
def run_benchmark():
    """``run_benchmark(script, args, *, timeout=300, xla_flags=None) -> stdout``: runs
    ``benchmarks/<script>`` as a user does (a subprocess with one device: the simulated-device
    ``XLA_FLAGS`` are dropped, ``xla_flags`` replaces them) and fails with its stderr if it fails."""
    import subprocess

    def run(script: str, args, *, timeout: float = 300, xla_flags: str | None = None) -> str:
        env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
        if xla_flags is not None:
            env["XLA_FLAGS"] = xla_flags
        out = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *args],
                             capture_output=True, text=True, cwd=REPO, env=env, timeout=timeout)
        assert out.returncode == 0, out.stderr[-4000:]
        return out.stdout

    return run


def pytest_collection_modifyitems(config, items):
    """Runs the long tests first: the notebooks' end-to-end runs, then the other ``slow`` tests.

    ``pytest -n auto --dist worksteal`` hands each worker a share of the list and lets an idle worker
    take the pending tests of a busy one; a long test that starts last keeps one core busy while the
    other idles. Longest first (the notebooks take 20-90 s each) leaves only short tests for the end.
    The sort is stable, so every worker collects the same order.
    """

    def rank(item) -> int:
        if item.nodeid.startswith("tests/test_notebooks.py::test_notebook_runs"):
            return 0
        return 1 if item.get_closest_marker("slow") else 2

    items.sort(key=rank)
