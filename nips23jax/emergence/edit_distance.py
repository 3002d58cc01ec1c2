"""Token-level dynamic programs on padded batches: Levenshtein edit distance and longest common subsequence.

Both are the textbook ``(|pred| + 1) x (|target| + 1)`` tables, computed one row per prediction
token with ``lax.scan``. The within-row dependency (an insertion extends the cell to its left; an
LCS cell inherits its left neighbour) is a running minimum / maximum, so each row is a handful of
vector operations plus one ``lax.cummin`` / ``lax.cummax``: for the edit distance

    D[i, j] = min(D[i-1, j] + 1, D[i-1, j-1] + [p_i != t_j], D[i, j-1] + 1)
            = j + min_{k <= j} (E[k] - k),   E[k] = min(D[i-1, k] + 1, D[i-1, k-1] + [p_i != t_k]),

with ``E[0] = i``. Sequences are padded to a common width and carry their true lengths; rows past a
sequence's length leave the carried row unchanged and columns past the target's length never feed
back into earlier columns, so the answer is ``D[len(pred), len(target)]`` read from the final row.
One example is a function of ``(pred, target, lengths)``; the batch is ``jax.vmap`` of it, jitted.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["longest_common_subsequence", "token_edit_distance"]


def _levenshtein_one(pred: jax.Array, target: jax.Array, lp: jax.Array, lt: jax.Array) -> jax.Array:
    cols = jnp.arange(target.shape[0] + 1, dtype=jnp.int32)
    row0 = cols  # D[0, j] = j (j insertions)

    def row(prev, xs):
        i, tok = xs  # i = 1 .. Tp
        sub = prev[:-1] + (tok != target).astype(jnp.int32)  # D[i-1, j-1] + cost, j = 1..Tt
        e = jnp.concatenate([i[None], jnp.minimum(prev[1:] + 1, sub)])
        new = cols + jax.lax.cummin(e - cols)
        return jnp.where(i <= lp, new, prev), None

    steps = jnp.arange(1, pred.shape[0] + 1, dtype=jnp.int32)
    last, _ = jax.lax.scan(row, row0, (steps, pred))
    return last[lt]


def _lcs_one(pred: jax.Array, target: jax.Array, lp: jax.Array, lt: jax.Array) -> jax.Array:
    valid_t = jnp.arange(target.shape[0]) < lt
    row0 = jnp.zeros(target.shape[0] + 1, jnp.int32)

    def row(prev, xs):
        i, tok = xs
        diag = prev[:-1] + ((tok == target) & valid_t).astype(jnp.int32)
        f = jnp.concatenate([jnp.zeros((1,), jnp.int32), jnp.maximum(prev[1:], diag)])
        return jnp.where(i <= lp, jax.lax.cummax(f), prev), None

    steps = jnp.arange(1, pred.shape[0] + 1, dtype=jnp.int32)
    last, _ = jax.lax.scan(row, row0, (steps, pred))
    return last[lt]


@partial(jax.jit, static_argnums=0)
def _batched(kind: str, pred, target, lp, lt):
    fn = _levenshtein_one if kind == "levenshtein" else _lcs_one
    return jax.vmap(fn)(pred, target, lp, lt)


def as_device_array(x: ArrayLike) -> jax.Array:
    """``x`` as a ``jax.Array``: arrays and tracers unchanged, host data (NumPy arrays, lists, scalars)
    transferred with ``jax.device_put`` (dtype canonicalized as by ``jnp.asarray``), which, unlike
    ``jnp.asarray``, compiles no staging program per new shape.

    Args:
      x: array-like of any shape ``S``.

    Returns:
      ``jax.Array`` of shape ``S`` and ``x``'s canonical dtype.
    """
    return x if isinstance(x, jax.Array) else jax.device_put(np.asarray(x))


def _token_batch(where: str, name: str, x: ArrayLike) -> jax.Array:
    if not isinstance(x, jax.Array):
        h = np.asarray(x)
        if np.issubdtype(h.dtype, np.integer) and h.size and (h.min() < -(2**31) or h.max() >= 2**31):
            raise ValueError(f"{where}: {name} has token ids outside the int32 range (min {h.min()}, max {h.max()}); "
                             "they would wrap")
    x = as_device_array(x)
    if not jnp.issubdtype(x.dtype, jnp.integer):
        raise TypeError(f"{where}: {name} must hold integer token ids, got dtype {x.dtype}")
    if x.ndim != 2:
        raise ValueError(f"{where}: {name} must be (batch, length) token ids, got shape {x.shape}")
    return x.astype(jnp.int32)


def _lengths(where: str, name: str, lengths: ArrayLike | None, batch: int, width: int) -> jax.Array:
    if lengths is None:
        return jax.device_put(np.full((batch,), width, np.int32))
    arr = as_device_array(lengths)
    if not jnp.issubdtype(arr.dtype, jnp.integer):
        raise TypeError(f"{where}: {name} must be integer lengths, got dtype {arr.dtype}")
    if arr.shape != (batch,):
        raise ValueError(f"{where}: {name} must have shape ({batch},) (one length per sequence), got {arr.shape}")
    host = _concrete(arr)
    if host is not None:
        if host.size and (host.min() < 0 or host.max() > width):
            raise ValueError(
                f"{where}: {name} must lie in [0, {width}] (the padded length), got values in "
                f"[{host.min()}, {host.max()}]: a sequence is longer than its padded array"
            )
    return arr.astype(jnp.int32)


def _concrete(x: jax.Array) -> np.ndarray | None:
    """``x`` on the host, or ``None`` under a trace (the checks then cannot look at values)."""
    try:
        return np.asarray(x)
    except (jax.errors.TracerArrayConversionError, jax.errors.ConcretizationTypeError):
        return None


def prepare_pairs(
    where: str,
    pred: ArrayLike,
    target: ArrayLike,
    pred_lengths: ArrayLike | None,
    target_lengths: ArrayLike | None,
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """Validates a batch of padded (pred, target) token sequences; returns int32 arrays and lengths."""
    pred = _token_batch(where, "pred", pred)
    target = _token_batch(where, "target", target)
    if pred.shape[0] != target.shape[0]:
        raise ValueError(
            f"{where}: pred and target must have the same batch size, got {pred.shape[0]} and {target.shape[0]}"
        )
    lp = _lengths(where, "pred_lengths", pred_lengths, pred.shape[0], pred.shape[1])
    lt = _lengths(where, "target_lengths", target_lengths, target.shape[0], target.shape[1])
    return pred, target, lp, lt


def token_edit_distance(
    pred: ArrayLike,
    target: ArrayLike,
    pred_lengths: ArrayLike | None = None,
    target_lengths: ArrayLike | None = None,
) -> jax.Array:
    """Levenshtein distance between token sequences (unit-cost substitutions, insertions, deletions).

    The paper's "token edit distance" (Schaeffer et al., Sec. 3): the continuous metric under which
    the exact-match "emergent" abilities become smooth, since with per-token accuracy ``p`` over
    ``L`` tokens its expectation is about ``L(1 - p)`` (:func:`nips23jax.emergence.analytic_edit_distance`).
    Computed by the row recurrence in this module's docstring, ``vmap``-ed over the batch and jitted
    (one compile per padded shape).

    Args:
      pred: ``(B, Tp)`` int token ids, right-padded.
      target: ``(B, Tt)`` int token ids, right-padded (``Tt`` may differ from ``Tp``).
      pred_lengths: ``(B,)`` int, true lengths in ``[0, Tp]``; ``None`` means all ``Tp``.
      target_lengths: ``(B,)`` int, true lengths in ``[0, Tt]``; ``None`` means all ``Tt``.

    Returns:
      ``(B,)`` int32 distances; an empty side gives the other side's length.

    Raises:
      TypeError: non-integer tokens or lengths.
      ValueError: not 2-D, different batch sizes, or a length outside ``[0, padded width]``.

    Example::

        token_edit_distance(jnp.array([[1, 2, 3]]), jnp.array([[1, 3, 0]]), target_lengths=jnp.array([2]))
        # -> [1]  (delete the 2)
    """
    args = prepare_pairs("token_edit_distance", pred, target, pred_lengths, target_lengths)
    return _batched("levenshtein", *args)


def longest_common_subsequence(
    pred: ArrayLike,
    target: ArrayLike,
    pred_lengths: ArrayLike | None = None,
    target_lengths: ArrayLike | None = None,
) -> jax.Array:
    """Length of the longest common (not necessarily contiguous) subsequence, for ROUGE-L.

    ``C[i, j] = C[i-1, j-1] + 1`` if ``p_i == t_j`` else ``max(C[i-1, j], C[i, j-1])``, computed
    row by row as a running maximum (``lax.cummax``), ``vmap``-ed over the batch and jitted.

    Args:
      pred, target, pred_lengths, target_lengths: as in :func:`token_edit_distance`.

    Returns:
      ``(B,)`` int32 LCS lengths.
    """
    args = prepare_pairs("longest_common_subsequence", pred, target, pred_lengths, target_lengths)
    return _batched("lcs", *args)
