"""Device meshes and shardings: the same program on one CPU, a GPU, or a TPU pod.

This is the modern form of ``pjit``: a :class:`jax.sharding.Mesh` with named axes, a
:class:`~jax.sharding.NamedSharding` per array, and :func:`jax.jit` with ``in_shardings`` /
``out_shardings``. Parameter shardings come from regex rules over parameter paths (the first
rule whose pattern matches ``"block_0/attn/query/kernel"`` wins), with a fully-sharded-data-parallel
default that splits the largest divisible dimension over the ``fsdp`` axis.

Axis conventions (``AXES``):

* ``data``   -- pure data parallelism: batch split, parameters replicated.
* ``fsdp``   -- batch split *and* parameters split (ZeRO-3 style); XLA inserts the gathers.
* ``tensor`` -- model parallelism inside a layer, assigned by explicit rules.

Example::

    mesh = make_mesh({"data": 2, "fsdp": 4})
    p_shard = param_shardings(params, mesh)              # fsdp default
    b_shard = batch_sharding(mesh)                       # leading axis over (data, fsdp)
    step = sharded_jit(train_step, in_shardings=(s_shard, b_shard), out_shardings=(s_shard, None),
                       donate_argnums=0)
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

PyTree = Any
Rules = Sequence[tuple[str, P]]

AXES: tuple[str, ...] = ("data", "fsdp", "tensor")
BATCH_AXES: tuple[str, ...] = ("data", "fsdp")

__all__ = [
    "AXES",
    "BATCH_AXES",
    "P",
    "batch_sharding",
    "make_mesh",
    "param_shardings",
    "path_to_str",
    "replicated",
    "shard_batch",
    "sharded_jit",
]


def make_mesh(
    axis_sizes: Mapping[str, int] | None = None,
    *,
    devices: Sequence[jax.Device] | None = None,
) -> Mesh:
    """Builds a device mesh over the named axes ``data``, ``fsdp`` and ``tensor``.

    Args:
      axis_sizes: size per axis name, e.g. ``{"data": 2, "fsdp": 4}``. Missing axes get size 1;
        at most one axis may be ``-1``, meaning "all remaining devices". ``None`` puts every
        device on ``data``.
      devices: devices to use (default ``jax.devices()``). Their count must equal the product of
        the axis sizes.

    Returns:
      A ``Mesh`` of shape ``(data, fsdp, tensor)`` whose axes are all ``Auto`` (XLA propagates
      shardings inside jit, as ``pjit`` did).
    """
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    sizes = {"data": -1} if axis_sizes is None else dict(axis_sizes)
    unknown = set(sizes) - set(AXES)
    if unknown:
        raise ValueError(f"make_mesh: axis_sizes has unknown axes {sorted(unknown)}; expected a subset of {AXES}")
    free = [a for a, s in sizes.items() if s == -1]
    if len(free) > 1:
        raise ValueError(f"make_mesh: at most one axis may be -1, got {free}")
    for a, s in sizes.items():
        if s != -1 and (not isinstance(s, (int, np.integer)) or s < 1):
            raise ValueError(f"make_mesh: axis_sizes[{a!r}] must be a positive int or -1, got {s!r}")
    fixed = math.prod(s for s in sizes.values() if s != -1)
    if free:
        if n % fixed:
            raise ValueError(f"make_mesh: {n} devices are not divisible by the fixed axis sizes {sizes}")
        sizes[free[0]] = n // fixed
    shape = tuple(int(sizes.get(a, 1)) for a in AXES)
    if math.prod(shape) != n:
        raise ValueError(
            f"make_mesh: axis sizes {dict(zip(AXES, shape))} need {math.prod(shape)} devices, but {n} were given"
        )
    axis_types = (jax.sharding.AxisType.Auto,) * len(AXES)
    return jax.make_mesh(shape, AXES, axis_types=axis_types, devices=devices)


def replicated(mesh: Mesh) -> NamedSharding:
    """A sharding that keeps a full copy of the array on every device of ``mesh``."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, axes: Sequence[str] = BATCH_AXES) -> NamedSharding:
    """Shards the leading (batch) dimension over ``axes`` (default ``data`` x ``fsdp``)."""
    return NamedSharding(mesh, P(tuple(axes)))


def shard_batch(batch: PyTree, mesh: Mesh, axes: Sequence[str] = BATCH_AXES) -> PyTree:
    """Places every leaf of ``batch`` (leading dim divisible by the batch axes) on the mesh.

    ``batch`` is the *global* batch. In a multi-process job (a mesh spanning several processes)
    every process passes the same global batch and contributes only its own rows to the global
    array; to load only those rows in the first place, see
    :func:`nips23jax.core.distributed.global_batch`.

    Raises:
      ValueError: naming the leaf whose leading dimension does not divide evenly.
    """
    sharding = batch_sharding(mesh, axes)
    n = math.prod(mesh.shape[a] for a in axes)

    def put(path, x):
        multi = not sharding.is_fully_addressable  # the mesh spans several processes
        if not isinstance(x, jax.Array) or (multi and x.is_fully_addressable):
            x = np.asarray(x)
        if x.ndim == 0 or x.shape[0] % n:
            raise ValueError(
                f"shard_batch: leaf {path_to_str(path)!r} has shape {x.shape}; its leading dimension "
                f"must be divisible by the {n} devices of mesh axes {tuple(axes)}"
            )
        if multi and isinstance(x, np.ndarray):  # each process contributes only its own rows
            return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
        return jax.device_put(x, sharding)

    return jax.tree_util.tree_map_with_path(put, batch)


def path_to_str(path: Sequence[Any]) -> str:
    """``(DictKey('block_0'), DictKey('kernel'))`` -> ``"block_0/kernel"``."""
    parts = []
    for k in path:
        if isinstance(k, jax.tree_util.DictKey):
            parts.append(str(k.key))
        elif isinstance(k, jax.tree_util.GetAttrKey):
            parts.append(k.name)
        elif isinstance(k, jax.tree_util.SequenceKey):
            parts.append(str(k.idx))
        elif isinstance(k, jax.tree_util.FlattenedIndexKey):
            parts.append(str(k.key))
        else:
            parts.append(str(k))
    return "/".join(parts)


def _fsdp_spec(shape: tuple[int, ...], fsdp_size: int, min_size: int) -> P:
    """Splits the largest dimension divisible by ``fsdp_size`` over ``fsdp``; else replicates."""
    if fsdp_size == 1 or math.prod(shape) < min_size:
        return P()
    for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
        if shape[dim] % fsdp_size == 0:
            spec = [None] * len(shape)
            spec[dim] = "fsdp"
            return P(*spec)
    return P()


def param_shardings(
    params: PyTree,
    mesh: Mesh,
    rules: Rules = (),
    *,
    fsdp_min_size: int = 2**10,
) -> PyTree:
    """Infers a ``NamedSharding`` for every parameter from regex rules over its path.

    Each leaf's path (``"params/block_0/mlp/fc1/kernel"``) is matched with ``re.search``
    against the rules in order; the first match's ``PartitionSpec`` is used. Unmatched leaves
    get the FSDP default: their largest dimension divisible by the ``fsdp`` axis size is split
    over ``fsdp`` (leaves smaller than ``fsdp_min_size`` elements stay replicated). A rule spec
    ``P("fsdp")``-style that does not divide the leaf's shape is an error, not a silent fallback.

    Args:
      params: pytree of arrays or ``jax.ShapeDtypeStruct`` (shapes are all that is read).
      mesh: mesh from :func:`make_mesh`.
      rules: ``[(regex, PartitionSpec), ...]``; use ``P()`` to force replication.
      fsdp_min_size: smallest leaf (in elements) that the default splits.

    Returns:
      A pytree of ``NamedSharding`` with the structure of ``params``.
    """
    compiled = [(re.compile(pattern), spec) for pattern, spec in rules]
    fsdp_size = mesh.shape.get("fsdp", 1)

    def infer(path, leaf):
        name = path_to_str(path)
        shape = tuple(getattr(leaf, "shape", ()))
        for pattern, spec in compiled:
            if pattern.search(name):
                _check_spec(name, shape, spec, mesh)
                return NamedSharding(mesh, spec)
        return NamedSharding(mesh, _fsdp_spec(shape, fsdp_size, fsdp_min_size))

    return jax.tree_util.tree_map_with_path(infer, params)


def _check_spec(name: str, shape: tuple[int, ...], spec: P, mesh: Mesh) -> None:
    if len(spec) > len(shape):
        raise ValueError(f"param_shardings: rule spec {spec} has more entries than parameter {name!r} of shape {shape}")
    for dim, axes in enumerate(spec):
        if axes is None:
            continue
        axes = (axes,) if isinstance(axes, str) else tuple(axes)
        for a in axes:
            if a not in mesh.shape:
                raise ValueError(f"param_shardings: rule spec {spec} for {name!r} names unknown mesh axis {a!r}")
        size = math.prod(mesh.shape[a] for a in axes)
        if shape[dim] % size:
            raise ValueError(
                f"param_shardings: parameter {name!r} dim {dim} (size {shape[dim]}) is not divisible by "
                f"mesh axes {axes} (size {size}) from rule spec {spec}"
            )


def sharded_jit(
    fn: Callable[..., Any],
    *,
    in_shardings: Any = None,
    out_shardings: Any = None,
    donate_argnums: int | Sequence[int] = (),
    static_argnums: int | Sequence[int] = (),
) -> Callable[..., Any]:
    """``jax.jit`` with input/output shardings: what ``pjit`` became.

    ``in_shardings``/``out_shardings`` are pytrees (prefixes) of ``NamedSharding`` matching the
    arguments / outputs; ``None`` lets XLA choose. Donated arguments' buffers are reused for
    outputs, so a training state is updated in place.
    """
    kwargs: dict[str, Any] = dict(donate_argnums=donate_argnums, static_argnums=static_argnums)
    if in_shardings is not None:
        kwargs["in_shardings"] = in_shardings
    if out_shardings is not None:
        kwargs["out_shardings"] = out_shardings
    return jax.jit(fn, **kwargs)
