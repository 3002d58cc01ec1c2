"""LoRA adapters (Hu et al. 2021) by parameter partitioning, and QLoRA's NF4-base variant.

A LoRA layer computes ``y = x·W + b + dropout(x)·A·B·s`` with the base kernel ``W`` (in, out)
frozen, ``A`` (in, r) initialized like PEFT (torch ``kaiming_uniform(a=√5)``, i.e.
``U(−1/√in, 1/√in)``), ``B`` (r, out) zeros, and ``s = alpha/r`` (rsLoRA: ``alpha/√r``). Dropout acts
on the adapter input only.

Layout: the adapters are the leaves ``lora_a`` and ``lora_b`` beside the ``kernel`` they adapt, so a
LoRA model's params are the base model's params plus two leaves per targeted layer. Targets are
chosen by a regex over parameter paths such as ``"block_0/attn/query/kernel"``; the default takes
every 2-D ``kernel`` except the output head's.

Two ways in:

* modules -- :func:`lora_dense` / :func:`qlora_dense` return Dense factories for the shared
  Transformer (``TransformerLM(cfg, dense=lora_dense(LoRAConfig()))``); :class:`QLoRADense` keeps
  its frozen kernel as an :class:`~nips23jax.qlora.nf4.NF4Tensor` in the ``"quant"`` collection;
* pytrees -- :func:`add_adapters` turns any pretrained params pytree into the LoRA layout and
  :func:`quantize_base` moves the targeted kernels into an NF4 ``"quant"`` tree.

Training only the adapters: :func:`lora_optimizer` (``optax.partition`` with ``set_to_zero`` on
everything else, so frozen leaves carry no optimizer state), and ``make_train_step(...,
trainable=adapter_mask(params))`` so that only the adapters are differentiated. :func:`merge` folds adapters into dense kernels, :func:`unmerge` takes them out
again, :func:`merge_into_nf4` folds them into an NF4 base and reports the rounding error.
:func:`save_adapters` / :func:`load_adapters` checkpoint the adapters alone (orbax).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import re
from pathlib import Path
from typing import Any, Callable, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from nips23jax.core.sharding import path_to_str
from nips23jax.qlora.matmul import nf4_matmul
from nips23jax.qlora.nf4 import NF4Tensor, dequantize_4bit, quantize_4bit, quantize_4bit_many

PyTree = Any

__all__ = [
    "DEFAULT_TARGETS",
    "LoRAConfig",
    "LoRADense",
    "MergeReport",
    "QLoRADense",
    "add_adapters",
    "adapter_mask",
    "adapter_params",
    "count_params",
    "dequantize_base",
    "disable_adapters",
    "load_adapters",
    "lora_dense",
    "lora_optimizer",
    "merge",
    "merge_into_nf4",
    "qlora_dense",
    "quantize_base",
    "save_adapters",
    "target_paths",
    "unmerge",
]

# Every 2-D Dense kernel except one under a module named "head" (QLoRA: all linear layers but the head).
DEFAULT_TARGETS = r"^(?!(?:.*/)?head/).*kernel$"
ADAPTER_NAMES = ("lora_a", "lora_b")


@dataclasses.dataclass(frozen=True)
class LoRAConfig:
    """LoRA hyperparameters. QLoRA's recipe for models up to 13B is rank 64, alpha 16, dropout 0.1
    (``LoRAConfig(rank=64, alpha=16.0, dropout=0.1)``); the defaults here are smaller, for small models.

    Attributes:
      rank: adapter rank r (>= 1).
      alpha: scaling numerator; the update is scaled by ``alpha/r`` (``alpha/√r`` with ``rslora``).
      dropout: dropout rate on the adapter input, active when a ``"dropout"`` PRNG stream is given
        to ``apply``.
      rslora: rank-stabilized scaling ``alpha/√r``.
      targets: regex (``re.search``) over parameter paths ``"a/b/kernel"`` selecting adapted kernels.
    """

    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    rslora: bool = False
    targets: str = DEFAULT_TARGETS

    def __post_init__(self):
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"LoRAConfig: rank must be an int >= 1, got {self.rank!r}")
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, (int, float)) or not math.isfinite(self.alpha):
            raise ValueError(f"LoRAConfig: alpha must be a finite number, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRAConfig: dropout must be in [0, 1), got {self.dropout!r}")
        try:
            re.compile(self.targets)
        except re.error as e:
            raise ValueError(f"LoRAConfig: targets is not a valid regex ({e}): {self.targets!r}") from None

    @property
    def scaling(self) -> float:
        """``alpha/r``, or ``alpha/√r`` with rsLoRA."""
        return self.alpha / (math.sqrt(self.rank) if self.rslora else self.rank)


def _leaf_name(path) -> str:
    """The last component of a pytree path: ``"kernel"``, ``"lora_a"``, ..."""
    return path_to_str(path[-1:])


def _matches(config: LoRAConfig, kernel_path: str) -> bool:
    return re.search(config.targets, kernel_path) is not None


def _check_rank(config: LoRAConfig, shape: tuple[int, ...], where: str) -> None:
    if config.rank > min(shape):
        raise ValueError(f"{where}: rank {config.rank} is larger than min(in, out) = {min(shape)} "
                         f"of the kernel {shape}")


def _lora_a_init(key: jax.Array, shape: tuple[int, int], dtype: Any) -> jax.Array:
    """PEFT's ``kaiming_uniform_(a=√5)`` on the (r, in) torch weight: ``U(−1/√in, 1/√in)``; stored (in, r)."""
    bound = 1.0 / math.sqrt(shape[0])
    return jax.random.uniform(key, shape, dtype, -bound, bound)


def _adapter_delta(x: jax.Array, module: nn.Module, config: LoRAConfig, in_features: int, out_features: int,
                   dtype: Any, param_dtype: Any) -> jax.Array:
    _check_rank(config, (in_features, out_features), f"{type(module).__name__} {'/'.join(module.path)}")
    a = module.param("lora_a", _lora_a_init, (in_features, config.rank), param_dtype)
    b = module.param("lora_b", nn.initializers.zeros, (config.rank, out_features), param_dtype)
    if config.dropout > 0 and module.has_rng("dropout"):
        keep = jax.random.bernoulli(module.make_rng("dropout"), 1.0 - config.dropout, x.shape)
        x = jnp.where(keep, x / (1.0 - config.dropout), 0).astype(x.dtype)
    # the scaling goes on B (r x out), not on the (tokens x out) product
    return (x @ a.astype(dtype)) @ (b.astype(dtype) * jnp.asarray(config.scaling, dtype))


class LoRADense(nn.Module):
    """``nn.Dense`` plus a LoRA adapter when its kernel path matches ``config.targets``.

    Params: ``kernel`` (in, out), ``bias`` (out,), and for targeted layers ``lora_a`` (in, r) and
    ``lora_b`` (r, out). Input ``(..., in)``, output ``(..., out)``.
    """

    features: int
    config: LoRAConfig = LoRAConfig()
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dtype = self.dtype or x.dtype
        kernel = self.param("kernel", self.kernel_init, (x.shape[-1], self.features), self.param_dtype)
        y = x.astype(dtype) @ kernel.astype(dtype)
        if _matches(self.config, "/".join(self.path) + "/kernel"):
            y = y + _adapter_delta(x.astype(dtype), self, self.config, x.shape[-1], self.features, dtype,
                                   self.param_dtype)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype).astype(dtype)
        return y


class QLoRADense(nn.Module):
    """LoRA over a frozen 4-bit base: ``nf4_matmul(x, W_q) + b + dropout(x)·A·B·s``.

    Targeted layers keep their kernel as an :class:`NF4Tensor` in the ``"quant"`` collection
    (variable ``kernel``; quantized from ``kernel_init`` at init, or filled by :func:`quantize_base`)
    and their adapters (and bias) in ``"params"``. A layer whose path does not match
    ``config.targets`` is a plain trainable Dense.
    """

    features: int
    config: LoRAConfig = LoRAConfig()
    quant_type: str = "nf4"
    block_size: int = 64
    double_quant: bool = True
    use_bias: bool = True
    dtype: Any = None
    param_dtype: Any = jnp.float32
    kernel_init: Callable = nn.initializers.lecun_normal()
    bias_init: Callable = nn.initializers.zeros

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        dtype = self.dtype or x.dtype
        shape = (x.shape[-1], self.features)
        if not _matches(self.config, "/".join(self.path) + "/kernel"):
            kernel = self.param("kernel", self.kernel_init, shape, self.param_dtype)
            y = x.astype(dtype) @ kernel.astype(dtype)
        else:
            def init_quant():
                w = self.kernel_init(self.make_rng("params"), shape, self.param_dtype)
                return quantize_4bit(w, self.quant_type, self.block_size, double_quant=self.double_quant)

            q = self.variable("quant", "kernel", init_quant).value
            if q.shape != shape:
                raise ValueError(f"QLoRADense {'/'.join(self.path)}: quantized kernel has shape {q.shape}, "
                                 f"expected {shape}")
            y = nf4_matmul(x.astype(dtype), q, compute_dtype=dtype)
            y = y + _adapter_delta(x.astype(dtype), self, self.config, shape[0], shape[1], dtype, self.param_dtype)
        if self.use_bias:
            y = y + self.param("bias", self.bias_init, (self.features,), self.param_dtype).astype(dtype)
        return y


def lora_dense(config: LoRAConfig = LoRAConfig()) -> Callable[..., nn.Module]:
    """A Dense factory for the shared Transformer: ``TransformerLM(cfg, dense=lora_dense(config))``."""
    return functools.partial(LoRADense, config=config)


def qlora_dense(config: LoRAConfig = LoRAConfig(), *, quant_type: str = "nf4", block_size: int = 64,
                double_quant: bool = True) -> Callable[..., nn.Module]:
    """A Dense factory whose targeted layers are :class:`QLoRADense` (frozen 4-bit base + adapter)."""
    return functools.partial(QLoRADense, config=config, quant_type=quant_type, block_size=block_size,
                             double_quant=double_quant)


# ----------------------------------------------------------------------------------------------
# Pytree side


def _nested_set(tree: dict, path: tuple[str, ...], value) -> None:
    for k in path[:-1]:
        tree = tree.setdefault(k, {})
    tree[path[-1]] = value


def _to_dict(tree: PyTree) -> dict:
    """A plain nested dict copy (FrozenDicts and Mappings become dicts; leaves are shared)."""
    if hasattr(tree, "items") and not isinstance(tree, NF4Tensor):
        return {k: _to_dict(v) for k, v in tree.items()}
    return tree


def target_paths(params: PyTree, targets: str = DEFAULT_TARGETS) -> list[str]:
    """Paths ``"a/b/kernel"`` of the 2-D ``kernel`` leaves of ``params`` matched by ``targets``.

    Only leaves named ``kernel`` qualify (not ``lora_a`` / ``lora_b``, embeddings or position tables,
    which a loose regex such as ``"attn/query"`` would otherwise also select).

    Raises:
      ValueError: the regex matches no 2-D kernel (the message lists a few kernel paths that exist).
    """
    leaves = jax.tree_util.tree_flatten_with_path(params, is_leaf=lambda x: isinstance(x, NF4Tensor))[0]
    paths = [path_to_str(p) for p, x in leaves if len(getattr(x, "shape", ())) == 2 and _leaf_name(p) == "kernel"]
    found = [p for p in paths if re.search(targets, p)]
    if not found:
        raise ValueError(f"targets: the regex {targets!r} matches no 2-D kernel; kernel paths are e.g. "
                         f"{paths[:6]}")
    return found


def add_adapters(key: jax.Array, params: PyTree, config: LoRAConfig = LoRAConfig()) -> PyTree:
    """Adds ``lora_a`` (PEFT init) and ``lora_b`` (zeros) beside every targeted kernel.

    Args:
      key: PRNG key (typed or raw); one subkey per adapted kernel, folded in by position.
      params: any Flax params pytree with ``kernel`` leaves of shape (in, out).
      config: rank, alpha, targets.

    Returns:
      The params in the LoRA layout (a plain nested dict); the model's output is unchanged (B = 0).

    Raises:
      ValueError: no kernel matched, or rank > min(in, out) of a targeted kernel.
    """
    out = _to_dict(params)
    leaves = dict((path_to_str(p), x) for p, x in jax.tree_util.tree_flatten_with_path(out)[0])
    paths = target_paths(out, config.targets)
    for path in paths:
        _check_rank(config, leaves[path].shape, f"add_adapters: {path}")
    specs = tuple((tuple(leaves[p].shape), jnp.dtype(leaves[p].dtype)) for p in paths)
    for path, (a, b) in zip(paths, _init_adapters(key, specs, config.rank)):
        module = tuple(path.split("/")[:-1])
        _nested_set(out, module + ("lora_a",), a)
        _nested_set(out, module + ("lora_b",), b)
    return out


@functools.partial(jax.jit, static_argnums=(1, 2))
def _init_adapters(key: jax.Array, specs: tuple, rank: int) -> list[tuple[jax.Array, jax.Array]]:
    """``[(A, B)]`` for kernels of ``specs = ((shape, dtype), ...)``: A from ``fold_in(key, i)``, B zeros
    (one compiled program for all of a model's adapters)."""
    return [(_lora_a_init(jax.random.fold_in(key, i), (shape[0], rank), dtype), jnp.zeros((rank, shape[1]), dtype))
            for i, (shape, dtype) in enumerate(specs)]


def quantize_base(
    params: PyTree, config: LoRAConfig = LoRAConfig(), *, quant_type: str = "nf4", block_size: int = 64,
    double_quant: bool = True,
) -> tuple[PyTree, PyTree]:
    """Splits pretrained params into ``(params without targeted kernels, "quant" tree of NF4Tensors)``.

    Together with :func:`add_adapters` this makes the variables of a :func:`qlora_dense` model:
    ``{"params": add_adapters(key, rest, config), "quant": quant}`` -- adapters need the kernels'
    shapes, so call ``add_adapters`` on the full params first, then ``quantize_base`` on the result.
    """
    rest = _to_dict(params)
    quant: dict = {}
    leaves = dict((path_to_str(p), x) for p, x in jax.tree_util.tree_flatten_with_path(rest)[0])
    paths = target_paths(rest, config.targets)
    qs = quantize_4bit_many([leaves[p] for p in paths], quant_type, block_size, double_quant=double_quant)
    for path, q in zip(paths, qs):  # one compiled program for every kernel
        parts = tuple(path.split("/"))
        _nested_set(quant, parts, q)
        node = rest
        for k in parts[:-1]:
            node = node[k]
        del node[parts[-1]]
    return rest, quant


def dequantize_base(params: PyTree, quant: PyTree) -> dict:
    """Inverse of :func:`quantize_base`: puts each NF4 kernel of ``quant``, dequantized to its
    original dtype, back into ``params`` at its path (a plain nested dict for an ``nn.Dense`` /
    :class:`LoRADense` model: e.g. to evaluate what the 4-bit base computes)."""
    out = _to_dict(params)
    flat = jax.tree_util.tree_flatten_with_path(quant, is_leaf=lambda x: isinstance(x, NF4Tensor))[0]
    if not flat:
        raise ValueError("quant: no NF4 kernels found")
    for p, q in flat:
        if not isinstance(q, NF4Tensor):
            raise TypeError(f"quant: expected NF4Tensors, found a {type(q).__name__} at {path_to_str(p)}")
    for (p, _), w in zip(flat, _dequantize_all(tuple(q for _, q in flat))):  # one compiled program
        _nested_set(out, tuple(path_to_str(p).split("/")), w)
    return out


@jax.jit
def _dequantize_all(qs: tuple[NF4Tensor, ...]) -> tuple[jax.Array, ...]:
    return tuple(dequantize_4bit(q) for q in qs)


def adapter_mask(params: PyTree) -> PyTree:
    """A pytree of bools, True at ``lora_a`` / ``lora_b`` leaves."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    return jax.tree_util.tree_unflatten(treedef, [_leaf_name(p) in ADAPTER_NAMES for p, _ in flat])


def adapter_params(params: PyTree) -> dict:
    """The adapter leaves alone, as a nested dict with the same paths (for adapter-only checkpoints)."""
    out: dict = {}
    for p, x in jax.tree_util.tree_flatten_with_path(params)[0]:
        path = path_to_str(p).split("/")
        if path[-1] in ADAPTER_NAMES:
            _nested_set(out, tuple(path), x)
    if not out:
        raise ValueError("params: no lora_a / lora_b leaves found (add adapters first)")
    return out


def disable_adapters(params: PyTree) -> PyTree:
    """The same params with every ``lora_b`` zeroed: the model computes the frozen base (the DPO
    reference "adapters off"), sharing the base buffers instead of copying them."""
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    return jax.tree_util.tree_unflatten(
        treedef, [jnp.zeros_like(x) if _leaf_name(p) == "lora_b" else x for p, x in flat])


def count_params(params: PyTree, quant: PyTree = None) -> dict[str, int]:
    """``{"adapter": n, "frozen": m, "total": n + m}``: elements of the ``lora_a`` / ``lora_b`` leaves
    vs every other leaf of ``params``, plus the logical size of each NF4Tensor in ``quant`` (QLoRA's
    4-bit base, frozen)."""
    mask = adapter_mask(params)
    counts = {"adapter": 0, "frozen": 0}
    for x, m in zip(jax.tree.leaves(params), jax.tree.leaves(mask)):
        counts["adapter" if m else "frozen"] += int(np.prod(x.shape))
    if quant is not None:
        for q in jax.tree.leaves(quant, is_leaf=lambda x: isinstance(x, NF4Tensor)):
            if not isinstance(q, NF4Tensor):
                raise TypeError(f"quant: expected a tree of NF4Tensors, found a {type(q).__name__}")
            counts["frozen"] += q.size
    counts["total"] = counts["adapter"] + counts["frozen"]
    return counts


def lora_optimizer(optimizer: optax.GradientTransformation, params: PyTree, *,
                   also_train: str | None = None) -> optax.GradientTransformationExtraArgs:
    """Trains the adapters (and leaves whose path matches ``also_train``) with ``optimizer``; every
    other leaf gets zero updates and no optimizer state (``optax.partition`` + ``set_to_zero``).

    Gradients of the frozen leaves are still computed if anything reads them (the shared step's
    ``grad_norm`` does): pass ``trainable=adapter_mask(params)`` to ``core.make_train_step`` to
    differentiate the adapters alone.

    Args:
      optimizer: any optax transform, e.g. ``optax.adamw(2e-4)``.
      params: the LoRA-layout params (only the tree structure and paths are used).
      also_train: optional regex over paths of extra trainable leaves (e.g. ``"bias$"``).
    """
    if not isinstance(optimizer, optax.GradientTransformation):
        raise TypeError(f"optimizer: expected an optax.GradientTransformation, got {type(optimizer).__name__}")
    flat, treedef = jax.tree_util.tree_flatten_with_path(params)
    labels = []
    for p, _ in flat:
        s = path_to_str(p)
        train = _leaf_name(p) in ADAPTER_NAMES or (also_train is not None and re.search(also_train, s))
        labels.append("trainable" if train else "frozen")
    if "trainable" not in labels:
        raise ValueError("params: nothing to train (no lora_a / lora_b leaves and nothing matched also_train)")
    return optax.partition({"trainable": optimizer, "frozen": optax.set_to_zero()},
                           jax.tree_util.tree_unflatten(treedef, labels))


def _adapted_modules(params: PyTree) -> list[tuple[str, ...]]:
    mods = []
    for p, _ in jax.tree_util.tree_flatten_with_path(params, is_leaf=lambda x: isinstance(x, NF4Tensor))[0]:
        path = tuple(path_to_str(p).split("/"))
        if path[-1] == "lora_a":
            mods.append(path[:-1])
    return mods


def _get(tree, path):
    for k in path:
        tree = tree[k]
    return tree


def _delta(module_params: dict, config: LoRAConfig) -> jax.Array:
    a = module_params["lora_a"].astype(jnp.float32)
    b = module_params["lora_b"].astype(jnp.float32)
    return (a @ b) * config.scaling


def merge(params: PyTree, config: LoRAConfig) -> dict:
    """Folds every adapter into its kernel, ``W + A·B·s``, and drops the adapters.

    Returns params in the base model's layout (load them into a plain ``nn.Dense`` model); keep
    :func:`adapter_params` of the input to :func:`unmerge` later.
    """
    out = _to_dict(params)
    mods = _adapted_modules(out)
    if not mods:
        raise ValueError("params: no lora_a / lora_b leaves found to merge")
    for m in mods:
        node = _get(out, m)
        if "kernel" not in node:
            raise ValueError(f"merge: {'/'.join(m)} has adapters but no dense kernel (an NF4 base? use "
                             "merge_into_nf4)")
        w = node["kernel"]
        node["kernel"] = (w.astype(jnp.float32) + _delta(node, config)).astype(w.dtype)
        del node["lora_a"], node["lora_b"]
    return out


def unmerge(merged: PyTree, adapters: PyTree, config: LoRAConfig) -> dict:
    """Inverse of :func:`merge`: subtracts ``A·B·s`` from each kernel and puts the adapters back
    (exact up to float rounding of the kernel's dtype)."""
    out = _to_dict(merged)
    mods = _adapted_modules(adapters)
    if not mods:
        raise ValueError("adapters: no lora_a / lora_b leaves found")
    for m in mods:
        try:
            node = _get(out, m)
        except KeyError:
            raise ValueError(f"unmerge: adapters for {'/'.join(m)} but merged params have no such module") from None
        ad = _get(adapters, m)
        w = node["kernel"]
        node["kernel"] = (w.astype(jnp.float32) - _delta(ad, config)).astype(w.dtype)
        node["lora_a"], node["lora_b"] = ad["lora_a"], ad["lora_b"]
    return out


class MergeReport(NamedTuple):
    """Rounding introduced by re-quantizing ``W + ΔW`` (per layer, float32 scalars).

    rms_error / max_error: of ``dequant(requant(W + ΔW)) − (W + ΔW)``; delta_rms: RMS of ΔW =
    A·B·s itself, for scale (an error near delta_rms means the merge lost the adapter).
    """

    rms_error: jax.Array
    max_error: jax.Array
    delta_rms: jax.Array


def merge_into_nf4(params: PyTree, quant: PyTree, config: LoRAConfig) -> tuple[dict, dict, dict[str, MergeReport]]:
    """Folds adapters into an NF4 base: dequantize, add ``A·B·s``, quantize again (same settings).

    Args:
      params: QLoRA params (with ``lora_a`` / ``lora_b``).
      quant: the ``"quant"`` collection (NF4Tensors at the same module paths).
      config: the LoRA config the adapters were trained with.

    Returns:
      ``(params without adapters, new quant tree, {module path: MergeReport})``. Re-quantizing adds
      rounding of the same size as the original quantization; the report says how much.
    """
    out_p, out_q = _to_dict(params), _to_dict(quant)
    mods = _adapted_modules(out_p)
    if not mods:
        raise ValueError("params: no lora_a / lora_b leaves found to merge")
    reports = {}
    for m in mods:
        name = "/".join(m)
        try:
            q = _get(out_q, m)["kernel"]
        except KeyError:
            raise ValueError(f"quant: no NF4 kernel at {name}") from None
        node = _get(out_p, m)
        delta = _delta(node, config)
        exact = dequantize_4bit(q, jnp.float32) + delta
        new = quantize_4bit(exact, q.quant_type, q.block_size, double_quant=q.double_quant,
                            dq_block_size=q.dq_block_size)
        new = dataclasses.replace(new, dtype=q.dtype)
        err = dequantize_4bit(new, jnp.float32) - exact
        reports[name] = MergeReport(jnp.sqrt(jnp.mean(err**2)), jnp.max(jnp.abs(err)), jnp.sqrt(jnp.mean(delta**2)))
        _get(out_q, m)["kernel"] = new
        del node["lora_a"], node["lora_b"]
    return out_p, out_q, reports


def save_adapters(path: str | Path, params: PyTree) -> None:
    """Writes only the adapters of ``params`` (an orbax PyTree checkpoint at ``path``, a new dir)."""
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckpt:  # synchronous: done on return
        ckpt.save(path, args=ocp.args.StandardSave(adapter_params(params)))


def load_adapters(path: str | Path, params: PyTree) -> dict:
    """Restores adapters saved by :func:`save_adapters` into ``params`` (same paths and shapes).

    Raises:
      ValueError: the saved adapters do not fit ``params`` (a missing module or a shape mismatch).
    """
    import orbax.checkpoint as ocp

    path = Path(path).absolute()
    target = adapter_params(params)
    abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), target)
    with ocp.Checkpointer(ocp.StandardCheckpointHandler()) as ckpt:
        try:
            saved = ckpt.restore(path, args=ocp.args.StandardRestore(abstract))
        except (ValueError, KeyError) as e:
            raise ValueError(f"load_adapters: the checkpoint at {path} does not fit params: {e}") from None
    out = _to_dict(params)
    for p, x in jax.tree_util.tree_flatten_with_path(saved)[0]:
        _nested_set(out, tuple(path_to_str(p).split("/")), x)
    return out
