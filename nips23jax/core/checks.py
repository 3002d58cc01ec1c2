"""Input checks shared by the capability packages (NumPy-only: no tracing, no device work)."""

from __future__ import annotations

import jax
import numpy as np

__all__ = ["ids_out_of_range"]


def ids_out_of_range(ids: jax.Array, size: int, mask: jax.Array | None = None) -> tuple[int, int] | None:
    """``(min, max)`` of the ids (where ``mask`` is True) when any lies outside ``[0, size)``, else ``None``.

    Only concrete arrays are checked (read through NumPy: under an outer trace, ``jnp`` ops on a
    closed-over constant would be traced); traced ones give ``None``.

    Args:
      ids: int array of any shape: token ids, choice indices, category values, leaf ids.
      size: the number of valid ids (a vocabulary, choice, category or leaf count).
      mask: optional bool/0-1 array of ``ids``' shape: only its True positions count.
    """
    if any(isinstance(a, jax.core.Tracer) for a in (ids, mask)):
        return None
    values = np.asarray(ids) if mask is None else np.asarray(ids)[np.asarray(mask).astype(bool)]
    if values.size and (values.min() < 0 or values.max() >= size):
        return int(values.min()), int(values.max())
    return None
