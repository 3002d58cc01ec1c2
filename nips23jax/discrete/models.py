"""Target distributions of DISCS (Goshvadi et al., NeurIPS 2023), on binary or categorical states.

A state is an integer vector ``x`` of shape ``(num_sites,)`` with values in ``{0, ..., K-1}``
(``K = num_categories``; ``K = 2`` is the binary case). Every model is a :class:`DiscreteModel`:
an unnormalized ``log_prob(x)`` and, for the gradient-informed samplers, the first-order
differences of ``log π`` through its continuous relaxation:

* binary models are multilinear in ``x ∈ [0, 1]^d``; with ``g = ∇ log π(x)``, flipping site ``i``
  changes ``log π`` by about ``d_i = (1 − 2x_i)·g_i``;
* categorical models are multilinear in the one-hot ``o ∈ [0, 1]^{d×K}``; moving site ``i`` to
  colour ``c`` changes ``log π`` by about ``d_{i,c} = g_{i,c} − g_{i,x_i}``.

:meth:`DiscreteModel.log_prob_and_diffs` returns ``(log π(x), D)`` with ``D`` of shape ``(d, K)``
and ``D[i, x_i] = 0`` in both cases, so every sampler is written once for any ``K``.

Models: :func:`bernoulli`, :func:`categorical`, :func:`ising`, :func:`potts`, :func:`fhmm`,
:func:`rbm` (and :func:`train_rbm` with contrastive divergence).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from nips23jax.core.checks import ids_out_of_range

__all__ = [
    "DiscreteModel",
    "bernoulli",
    "categorical",
    "fhmm",
    "ising",
    "lattice_edges",
    "potts",
    "rbm",
    "train_rbm",
]

PyTree = Any


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


@dataclasses.dataclass(frozen=True, eq=False)
class DiscreteModel:
    """An unnormalized distribution on ``{0..K-1}^d`` with a multilinear continuous relaxation.

    Attributes:
      name: short name (``"ising"``).
      num_sites: ``d``.
      num_categories: ``K`` (2 for binary models).
      relaxed_log_prob: binary: ``f(x: float[d]) -> scalar``; categorical (``K > 2``):
        ``f(onehot: float[d, K]) -> scalar``. Equals ``log π`` (up to a constant) at integer states.
      params: the arrays the model was built from (for inspection and plotting).
    """

    name: str
    num_sites: int
    num_categories: int
    relaxed_log_prob: Callable[[jax.Array], jax.Array]
    params: dict = dataclasses.field(default_factory=dict)

    @property
    def is_binary(self) -> bool:
        return self.num_categories == 2

    def check_state(self, x: ArrayLike, where: str = "x") -> jax.Array:
        """Validates one state: shape ``(d,)``, integer or bool dtype, values in ``{0..K-1}``.

        Raises:
          ValueError: wrong shape, or (for concrete arrays) a value outside ``{0..K-1}``.
          TypeError: a floating or complex dtype.
        """
        x = jnp.asarray(x)
        if x.shape != (self.num_sites,):
            raise ValueError(f"{self.name}: {where} must have shape ({self.num_sites},), got {x.shape}")
        if not (jnp.issubdtype(x.dtype, jnp.integer) or x.dtype == jnp.bool_):
            raise TypeError(f"{self.name}: {where} must be an integer array with values in 0..{self.num_categories - 1}, "
                            f"got dtype {x.dtype}")
        bad = ids_out_of_range(x, self.num_categories)
        if bad is not None:
            raise ValueError(f"{self.name}: {where} has values outside 0..{self.num_categories - 1} "
                             f"(min {bad[0]}, max {bad[1]})")
        return x.astype(jnp.int32)

    def relax(self, x: jax.Array) -> jax.Array:
        """``x`` as the relaxation's input: float ``(d,)`` (binary) or one-hot ``(d, K)``."""
        if self.is_binary:
            return x.astype(jnp.float32)
        return jax.nn.one_hot(x, self.num_categories, dtype=jnp.float32)

    def log_prob(self, x: ArrayLike) -> jax.Array:
        """Unnormalized ``log π(x)`` of one state ``x: int[d]``; scalar float32."""
        x = self.check_state(x)
        return self.relaxed_log_prob(self.relax(x))

    def log_prob_and_diffs(self, x: ArrayLike) -> tuple[jax.Array, jax.Array]:
        """``(log π(x), D)``: ``D[i, c]`` ≈ ``log π(x with x_i = c) − log π(x)``, first order.

        Binary: ``D[i, 1 − x_i] = (1 − 2x_i)·∂_i log π(x)``; categorical:
        ``D[i, c] = ∂_{i,c} − ∂_{i,x_i}`` (DISCS' gradient-informed proposals). ``D[i, x_i] = 0``.

        Returns:
          scalar ``log π(x)`` and ``D`` of shape ``(d, K)``.
        """
        x = self.check_state(x)
        if self.is_binary:
            value, flip = self._value_and_flip_diffs(x)
            return value, jnp.where(jax.nn.one_hot(x, 2, dtype=bool), 0.0, flip[:, None])
        value, g = jax.value_and_grad(self.relaxed_log_prob)(self.relax(x))
        return value, g - jnp.take_along_axis(g, x[:, None], axis=1)

    def log_prob_and_flip_diffs(self, x: ArrayLike) -> tuple[jax.Array, jax.Array]:
        """Binary models: ``(log π(x), D_flip)``, ``D_flip[i] = D[i, 1 − x_i] = (1 − 2x_i)·∂_i log π(x)``.

        The one column of :meth:`log_prob_and_diffs` that is a move, without the ``(d, 2)`` table
        (whose ``x_i`` column is 0): what the gradient samplers keep in their state on binary models.

        Returns:
          scalar ``log π(x)`` and ``D_flip`` of shape ``(d,)``.

        Raises:
          ValueError: the model is not binary (``K > 2``: use :meth:`log_prob_and_diffs`).
        """
        if not self.is_binary:
            raise ValueError(f"{self.name}: log_prob_and_flip_diffs needs a binary model (K = 2), this one has "
                             f"K = {self.num_categories}; use log_prob_and_diffs")
        return self._value_and_flip_diffs(self.check_state(x))

    def _value_and_flip_diffs(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        # binary, x already checked
        xf = self.relax(x)
        value, g = jax.value_and_grad(self.relaxed_log_prob)(xf)
        return value, (1.0 - 2.0 * xf) * g


def _check_positive(name: str, arg: str, value):
    if _is_tracer(value):  # traced (e.g. a vmapped temperature sweep): checked by the caller
        return value
    if isinstance(value, (jax.Array, np.ndarray)) and np.ndim(value) == 0:
        value = value.item()
    if isinstance(value, (bool, np.bool_)) or not np.isscalar(value) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name}: {arg} must be a positive finite number, got {value!r}")
    return float(value)


def _check_shape(name: str, shape) -> tuple[int, int]:
    if isinstance(shape, (int, np.integer)):
        shape = (int(shape), int(shape))
    shape = tuple(shape)
    if len(shape) != 2 or any(not isinstance(s, (int, np.integer)) or s < 1 for s in shape):
        raise ValueError(f"{name}: shape must be an int or a pair of positive ints, got {shape!r}")
    return int(shape[0]), int(shape[1])


def lattice_edges(shape: int | Sequence[int]) -> np.ndarray:
    """Edges ``(E, 2)`` of the 4-neighbour 2-D lattice with open boundaries, sites row-major."""
    h, w = _check_shape("lattice_edges", shape)
    idx = np.arange(h * w).reshape(h, w)
    right = np.stack([idx[:, :-1].ravel(), idx[:, 1:].ravel()], 1)
    down = np.stack([idx[:-1, :].ravel(), idx[1:, :].ravel()], 1)
    return np.concatenate([right, down]).astype(np.int32)


def _lattice_pair_sum(a: jax.Array, b: jax.Array, h: int, w: int) -> jax.Array:
    """``Σ_{⟨ij⟩} ⟨a_i, b_j⟩`` over :func:`lattice_edges` of an ``(h, w)`` lattice, for ``(h·w, ...)`` arrays.

    By shifted slices of the grid, not by gathers over the edge list: the gradient is then slices and
    pads that XLA fuses, where the gathers' transpose is a scatter-add (block Gibbs took 1.6-2.5x as
    long per step with them on a 50x50 lattice, CPU).
    """
    grid = (h, w) + a.shape[1:]  # no unit trailing axis for (d,) inputs: it made vmapped gradients 2.5x slower
    a, b = a.reshape(grid), b.reshape(grid)
    return jnp.sum(a[:, :-1] * b[:, 1:]) + jnp.sum(a[:-1, :] * b[1:, :])


def bernoulli(logits: ArrayLike) -> DiscreteModel:
    """Independent Bernoulli sites: ``log π(x) = Σ_i θ_i x_i``, so ``P(x_i = 1) = σ(θ_i)``.

    Args:
      logits: ``θ``, float ``(d,)``.
    """
    theta = jnp.asarray(logits, jnp.float32)
    if theta.ndim != 1 or theta.shape[0] < 1:
        raise ValueError(f"bernoulli: logits must have shape (d,), got {theta.shape}")
    return DiscreteModel("bernoulli", int(theta.shape[0]), 2, lambda x: x @ theta, {"logits": theta})


def categorical(logits: ArrayLike) -> DiscreteModel:
    """Independent categorical sites: ``log π(x) = Σ_i θ_{i, x_i}``.

    Args:
      logits: ``θ``, float ``(d, K)`` with ``K >= 2``.
    """
    theta = jnp.asarray(logits, jnp.float32)
    if theta.ndim != 2 or theta.shape[1] < 2 or theta.shape[0] < 1:
        raise ValueError(f"categorical: logits must have shape (d, K) with K >= 2, got {theta.shape}")
    k = int(theta.shape[1])
    if k == 2:
        delta = theta[:, 1] - theta[:, 0]
        base = jnp.sum(theta[:, 0])
        return DiscreteModel("categorical", int(theta.shape[0]), 2, lambda x: base + x @ delta, {"logits": theta})
    return DiscreteModel("categorical", int(theta.shape[0]), k, lambda o: jnp.sum(o * theta), {"logits": theta})


def _disc_field(key, h, w, mu, low, high):
    """DISCS' external field: uniform(low, high) plus +μ inside a central disc, −μ outside."""
    u = jax.random.uniform(key, (h, w), minval=low, maxval=high)
    r, c = np.meshgrid(np.arange(h) - (h - 1) / 2, np.arange(w) - (w - 1) / 2, indexing="ij")
    inside = np.sqrt(r**2 + c**2) <= min(h, w) / 4
    return (u + np.where(inside, mu, -mu)).reshape(-1)


def ising(
    shape: int | Sequence[int],
    *,
    inverse_temperature: float = 0.5,
    mu: float | None = None,
    key: jax.Array | None = None,
    field: ArrayLike | None = None,
) -> DiscreteModel:
    """Ising model on a 2-D lattice (open boundaries), in the form DISCS' paper writes it.

    With spins ``s = 2x − 1``: ``log π(x) = λ Σ_{⟨ij⟩} s_i s_j − Σ_i b_i s_i`` (4-neighbour edges,
    each once). The critical inverse temperature of the zero-field model is
    ``λ_c = ½ log(1 + √2) ≈ 0.4407``.

    DISCS' code (``discs/models/ising.py``) differs: it sums each edge twice (its λ is a coupling of
    2λ per edge) and its +μ disc has radius ``√(1/(2π))·side`` (half the lattice). Its exact model is
    ``ising(side, inverse_temperature=2 * λ, field=...)`` with that field, as ``benchmarks/discs.py
    --model discs`` builds it.

    Args:
      shape: lattice ``(h, w)`` or side length; ``d = h·w`` sites, row-major.
      inverse_temperature: ``λ > 0`` (DISCS default 0.5); may be a traced scalar (a vmapped sweep).
      mu: field offset with ``key``: ``b_i ~ U(−1.5, 1.5) + μ`` inside a central disc of radius
        ``min(h, w)/4``, ``− μ`` outside (default 0.5). Without ``key`` there is no random field, and
        giving ``mu`` is an error.
      key: PRNG key for the random field; ``None`` with ``field=None`` means no field.
      field: explicit ``b``, float ``(h·w,)`` (instead of ``key`` and ``mu``).
    """
    h, w = _check_shape("ising", shape)
    lam = _check_positive("ising", "inverse_temperature", inverse_temperature)
    d = h * w
    if mu is not None and (key is None or field is not None):
        raise ValueError("ising: mu offsets the random field drawn with key=...; pass key (and no field), or drop mu")
    mu = 0.5 if mu is None else mu
    if field is not None and key is not None:
        raise ValueError("ising: pass either field (an explicit b) or key (a random field), not both")
    if field is not None:
        b = jnp.asarray(field, jnp.float32)
        if b.shape != (d,):
            raise ValueError(f"ising: field must have shape ({d},), got {b.shape}")
    elif key is not None:
        from nips23jax.core.train import as_key

        b = _disc_field(as_key(key), h, w, float(mu), -1.5, 1.5).astype(jnp.float32)
    else:
        b = jnp.zeros((d,), jnp.float32)

    def relaxed(x):
        s = 2.0 * x - 1.0
        return lam * _lattice_pair_sum(s, s, h, w) - s @ b

    return DiscreteModel("ising", d, 2, relaxed, {"shape": (h, w), "inverse_temperature": lam, "field": b})


def potts(
    shape: int | Sequence[int],
    *,
    num_colors: int = 4,
    inverse_temperature: float = 1.0,
    key: jax.Array | None = None,
    field: ArrayLike | None = None,
) -> DiscreteModel:
    """Potts model on a 2-D lattice: ``log π(x) = λ Σ_{⟨ij⟩} 1[x_i = x_j] + Σ_i h_{i, x_i}``.

    Relaxed on one-hot ``o``: ``λ Σ_{⟨ij⟩} ⟨o_i, o_j⟩ + Σ_i ⟨h_i, o_i⟩``. The zero-field critical
    point is ``λ_c = log(1 + √K)`` (``≈ 1.0986`` for ``K = 4``).

    Args:
      shape: lattice ``(h, w)`` or side length (DISCS: 30×30).
      num_colors: ``K >= 2`` (DISCS: 4).
      inverse_temperature: ``λ > 0``.
      key: PRNG key for a random field ``h ~ U(−1, 1)``; ``None`` and ``field=None``: no field.
      field: explicit ``h``, float ``(h·w, K)``.
    """
    h, w = _check_shape("potts", shape)
    lam = _check_positive("potts", "inverse_temperature", inverse_temperature)
    if isinstance(num_colors, bool) or not isinstance(num_colors, (int, np.integer)) or num_colors < 2:
        raise ValueError(f"potts: num_colors must be an int >= 2, got {num_colors!r}")
    k, d = int(num_colors), h * w
    if field is not None:
        f = jnp.asarray(field, jnp.float32)
        if f.shape != (d, k):
            raise ValueError(f"potts: field must have shape ({d}, {k}), got {f.shape}")
    elif key is not None:
        from nips23jax.core.train import as_key

        f = jax.random.uniform(as_key(key), (d, k), minval=-1.0, maxval=1.0)
    else:
        f = jnp.zeros((d, k), jnp.float32)
    if k == 2:
        # binary case: o = (1 − x, x); 1[x_i = x_j] = x_i x_j + (1 − x_i)(1 − x_j)
        def relaxed(x):
            return lam * (_lattice_pair_sum(x, x, h, w) + _lattice_pair_sum(1 - x, 1 - x, h, w)) + jnp.sum(
                f[:, 0] + x * (f[:, 1] - f[:, 0]))
    else:
        def relaxed(o):
            return lam * _lattice_pair_sum(o, o, h, w) + jnp.sum(o * f)

    return DiscreteModel("potts", d, k, relaxed, {"shape": (h, w), "inverse_temperature": lam, "field": f})


def fhmm(
    key: jax.Array,
    num_steps: int = 200,
    num_chains: int = 50,
    *,
    switch_prob: float = 0.1,
    noise_std: float = 2.0,
) -> DiscreteModel:
    """Posterior of a factorial HMM's hidden states given observations generated from it.

    ``x ∈ {0,1}^{T×L}`` (``T = num_steps`` time steps, ``L = num_chains`` binary chains, row-major
    as ``d = T·L``); each chain switches state with probability ``p``; ``y_t ~ N(W x_t + b, σ²)``
    with ``W ~ N(0, 1)^L``, ``b ~ N(0, 1)``. Relaxed (multilinear):
    ``log π(x) = Σ_{t,l} [a_{tl} log(1−p) + (1 − a_{tl}) log p] − ‖y − Wx − b‖²/(2σ²)`` with
    ``a_{tl} = x_{tl} x_{t−1,l} + (1 − x_{tl})(1 − x_{t−1,l})``; ``x_0`` uniform. In the
    relaxation each ``x_{tl}²`` of the square is written ``x_{tl}`` (equal on {0,1}), so
    single-site differences are exact.

    Args:
      key: PRNG key for ``W``, ``b``, the true hidden path and the observations.
      num_steps, num_chains: ``T`` and ``L`` (DISCS: 200 × 50).
      switch_prob: ``p`` in (0, 1).
      noise_std: ``σ > 0``.
    """
    from nips23jax.core.train import as_key

    if not 0 < switch_prob < 1:
        raise ValueError(f"fhmm: switch_prob must be in (0, 1), got {switch_prob!r}")
    sigma = _check_positive("fhmm", "noise_std", noise_std)
    t, l = int(num_steps), int(num_chains)
    kw, kb, k0, ks, ky = jax.random.split(as_key(key), 5)
    w = jax.random.normal(kw, (l,))
    b = jax.random.normal(kb, ())
    x0 = jax.random.bernoulli(k0, 0.5, (l,))
    switches = jax.random.bernoulli(ks, switch_prob, (t - 1, l))
    path = jnp.concatenate([x0[None], x0[None] ^ (jnp.cumsum(switches, 0) % 2 == 1)], 0).astype(jnp.float32)
    y = path @ w + b + sigma * jax.random.normal(ky, (t,))
    lp, lq = float(np.log(switch_prob)), float(np.log1p(-switch_prob))

    def relaxed(x):
        x = x.reshape(t, l)
        same = x[1:] * x[:-1] + (1 - x[1:]) * (1 - x[:-1])
        trans = jnp.sum(same * lq + (1 - same) * lp)
        # ‖r − Wx‖² with the x_l² terms written as x_l (equal on {0,1}), so it stays multilinear
        r, wx = y - b, x @ w
        sq = jnp.sum(r**2 - 2 * r * wx + wx**2 - (x**2) @ (w**2) + x @ (w**2))
        return trans - sq / (2 * sigma**2)

    return DiscreteModel("fhmm", t * l, 2, relaxed, {"W": w, "b": b, "y": y, "path": path.reshape(-1)})


def rbm(weights: ArrayLike, visible_bias: ArrayLike, hidden_bias: ArrayLike) -> DiscreteModel:
    """Binary RBM marginal over visible units: ``log π(v) = bᵀv + Σ_j softplus(c_j + W_jᵀ v)``.

    Args:
      weights: ``W``, float ``(num_visible, num_hidden)``.
      visible_bias: ``b``, ``(num_visible,)``.
      hidden_bias: ``c``, ``(num_hidden,)``.
    """
    w = jnp.asarray(weights, jnp.float32)
    b = jnp.asarray(visible_bias, jnp.float32)
    c = jnp.asarray(hidden_bias, jnp.float32)
    if w.ndim != 2 or b.shape != (w.shape[0],) or c.shape != (w.shape[1],):
        raise ValueError(f"rbm: expected weights (V, H), visible_bias (V,), hidden_bias (H,); got "
                         f"{w.shape}, {b.shape}, {c.shape}")
    return DiscreteModel("rbm", int(w.shape[0]), 2, lambda v: v @ b + jnp.sum(jax.nn.softplus(v @ w + c)),
                         {"W": w, "b": b, "c": c})


def train_rbm(
    key: jax.Array,
    data: ArrayLike,
    num_hidden: int,
    *,
    num_epochs: int = 20,
    batch_size: int = 64,
    learning_rate: float = 0.05,
    cd_steps: int = 1,
) -> DiscreteModel:
    """Trains a binary RBM with contrastive divergence (CD-k, Hinton 2002) and returns :func:`rbm`.

    The gradient of the mean log-likelihood is ``E_data[v hᵀ] − E_model[v hᵀ]`` (and likewise
    for the biases); CD-k replaces the model expectation by ``k`` block-Gibbs steps started at the
    data. Plain SGD over shuffled mini-batches.

    Args:
      key: PRNG key.
      data: binary float/int ``(n, V)``.
      num_hidden: ``H``.
      num_epochs, batch_size, learning_rate, cd_steps: training schedule.
    """
    from nips23jax.core.train import as_key

    v_data = jnp.asarray(data, jnp.float32)
    if v_data.ndim != 2 or not bool(jnp.all((v_data == 0) | (v_data == 1))):
        raise ValueError("train_rbm: data must be a binary (n, V) array")
    n, nv = v_data.shape
    key = as_key(key)
    k_init, k_train = jax.random.split(key)
    params = {"W": 0.1 * jax.random.normal(k_init, (nv, num_hidden)),
              "b": jnp.log(jnp.clip(v_data.mean(0), 1e-3, 1 - 1e-3)) - jnp.log1p(-jnp.clip(v_data.mean(0), 1e-3, 1 - 1e-3)),
              "c": jnp.zeros((num_hidden,))}
    nb = max(n // batch_size, 1)

    def cd_grad(p, v0, k):
        def gibbs(v, kk):
            k1, k2 = jax.random.split(kk)
            hh = jax.random.bernoulli(k1, jax.nn.sigmoid(v @ p["W"] + p["c"])).astype(jnp.float32)
            return jax.random.bernoulli(k2, jax.nn.sigmoid(hh @ p["W"].T + p["b"])).astype(jnp.float32), None

        vk, _ = jax.lax.scan(gibbs, v0, jax.random.split(k, cd_steps))
        h0, hk = jax.nn.sigmoid(v0 @ p["W"] + p["c"]), jax.nn.sigmoid(vk @ p["W"] + p["c"])
        m = v0.shape[0]
        return {"W": (v0.T @ h0 - vk.T @ hk) / m, "b": (v0 - vk).mean(0), "c": (h0 - hk).mean(0)}

    @jax.jit
    def epoch(p, k):
        kp, kg = jax.random.split(k)
        perm = jax.random.permutation(kp, n)[: nb * batch_size].reshape(nb, -1)

        def step(p, inp):
            idx, kk = inp
            g = cd_grad(p, v_data[idx], kk)
            return jax.tree.map(lambda a, b: a + learning_rate * b, p, g), None

        p, _ = jax.lax.scan(step, p, (perm, jax.random.split(kg, nb)))
        return p

    for e in range(num_epochs):
        params = epoch(params, jax.random.fold_in(k_train, e))
    return rbm(params["W"], params["b"], params["c"])
