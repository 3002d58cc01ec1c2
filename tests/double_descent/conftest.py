"""One BLAS thread for these tests: their n x n eigendecompositions and solves are small, and on a
shared 2-core machine OpenBLAS threads only contend (measured 20x slower with 2 threads under load)."""

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _one_blas_thread():
    with threadpool_limits(1):
        yield
