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

import jax  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session", autouse=True)
def _check_devices():
    assert jax.device_count() == 8, f"expected 8 simulated CPU devices, got {jax.devices()}"
