"""The DPO objective (Rafailov et al., NeurIPS 2023) and the published variants TRL implements.

Notation (per example): ``c = π(y_w|x) − π_ref(y_w|x)`` and ``r = π(y_l|x) − π_ref(y_l|x)`` are the
chosen / rejected log-ratios of summed sequence log-probs, ``Δ = c − r``, ``β`` the KL strength,
``ε`` the label smoothing, ``σ`` the sigmoid. The DPO loss (the paper's Eq. 7) is
``−log σ(β Δ)``. ``loss_type`` names follow Hugging Face TRL's ``DPOTrainer`` (1.16) and each
matches TRL's formula; ``"sigmoid"`` with ``ε > 0`` is conservative DPO as in the original DPO code
(``−(1−ε) log σ(βΔ) − ε log σ(−βΔ)``), which TRL 1.16 no longer applies to ``"sigmoid"``.

Every form is written with ``log σ`` / ``σ`` of the margin (never ``exp`` of an unbounded
argument), so margins of ±1e4 give finite losses and gradients in float32.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["LOSS_TYPES", "dpo_loss", "dpo_metrics"]

LOSS_TYPES: tuple[str, ...] = (
    "sigmoid",
    "hinge",
    "ipo",
    "sigmoid_norm",
    "exo_pair",
    "nca_pair",
    "robust",
    "bco_pair",
    "sppo_hard",
    "aot",
    "aot_unpaired",
    "apo_zero",
    "apo_down",
    "discopop",
)

_log_sigmoid = jax.nn.log_sigmoid


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _smoothed_logistic(z, eps):
    """``−(1−ε) log σ(z) − ε log σ(−z)``."""
    return -(1.0 - eps) * _log_sigmoid(z) - eps * _log_sigmoid(-z)


def _one_loss(loss_type, beta, eps, c, r, pc, pr, rc, rr, len_c, len_r, discopop_tau):
    """Per-example loss of one type. ``pc, pr, rc, rr``: policy / reference log-probs."""
    delta = c - r
    z = beta * delta
    if loss_type == "sigmoid":
        return _smoothed_logistic(z, eps)
    if loss_type == "hinge":
        return jax.nn.relu(1.0 - z)
    if loss_type in ("ipo", "sigmoid_norm"):
        mean_delta = delta if len_c is None else c / len_c - r / len_r
        if loss_type == "ipo":
            return (mean_delta - 1.0 / (2.0 * beta)) ** 2
        return -_log_sigmoid(beta * mean_delta)
    if loss_type == "exo_pair":
        return jax.nn.sigmoid(z) * (_log_sigmoid(z) - jnp.log1p(-eps)) + jax.nn.sigmoid(-z) * (
            _log_sigmoid(-z) - jnp.log(eps)
        )
    if loss_type == "nca_pair":
        return -_log_sigmoid(beta * c) - 0.5 * _log_sigmoid(-beta * c) - 0.5 * _log_sigmoid(-beta * r)
    if loss_type == "robust":
        return (-(1.0 - eps) * _log_sigmoid(z) + eps * _log_sigmoid(-z)) / (1.0 - 2.0 * eps)
    if loss_type == "bco_pair":
        return -_log_sigmoid(beta * c) - _log_sigmoid(-beta * r)
    if loss_type == "sppo_hard":
        return (c - 0.5 / beta) ** 2 + (r + 0.5 / beta) ** 2
    if loss_type == "aot":
        d = jnp.sort(pc - pr) - jnp.sort(rc - rr)
        return _smoothed_logistic(beta * d, eps)
    if loss_type == "aot_unpaired":
        d = jnp.sort(c) - jnp.sort(r)
        return _smoothed_logistic(beta * d, eps)
    if loss_type == "apo_zero":
        return 1.0 - jax.nn.sigmoid(beta * c) + jax.nn.sigmoid(beta * r)
    if loss_type == "apo_down":
        return jax.nn.sigmoid(beta * c) + 1.0 - jax.nn.sigmoid(z)
    if loss_type == "discopop":
        # −log σ(z)(1 − m) + e^{−z} m with m = σ(z/τ); e^{−z} m = exp(−z + log σ(z/τ)) stays finite.
        return -_log_sigmoid(z) * jax.nn.sigmoid(-z / discopop_tau) + jnp.exp(-z + _log_sigmoid(z / discopop_tau))
    raise AssertionError(loss_type)


def _check_beta(where: str, beta):
    """``beta`` as given (a number) or as a scalar float array; raises unless it is > 0 where concrete."""
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.ndarray, np.generic, jax.Array)):
        raise ValueError(f"{where}: beta must be a number > 0, got {beta!r}")
    if isinstance(beta, (int, float)):
        if not (np.isfinite(beta) and beta > 0):
            raise ValueError(f"{where}: beta must be a number > 0, got {beta!r}")
        return beta
    if np.ndim(beta) != 0 or not jnp.issubdtype(jnp.result_type(beta), jnp.floating):
        raise ValueError(f"{where}: beta must be a number > 0 or a scalar float array, got shape {np.shape(beta)} "
                         f"and dtype {jnp.result_type(beta)}")
    if _is_concrete(beta) and not (np.isfinite(float(beta)) and float(beta) > 0):
        raise ValueError(f"{where}: beta must be > 0, got {float(beta)!r}")
    return jnp.asarray(beta)


def dpo_loss(
    policy_chosen_logps: jax.Array,
    policy_rejected_logps: jax.Array,
    ref_chosen_logps: jax.Array,
    ref_rejected_logps: jax.Array,
    *,
    beta: float | jax.Array = 0.1,
    loss_type: str | Sequence[str] = "sigmoid",
    loss_weights: Sequence[float] | None = None,
    label_smoothing: float = 0.0,
    chosen_lengths: jax.Array | None = None,
    rejected_lengths: jax.Array | None = None,
    reference_free: bool = False,
    discopop_tau: float = 0.05,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Per-example DPO-family losses and implicit rewards.

    Args:
      policy_chosen_logps: ``(B,)`` summed log-probs of the chosen completions under the policy.
      policy_rejected_logps: ``(B,)`` same for the rejected completions.
      ref_chosen_logps, ref_rejected_logps: ``(B,)`` under the reference model (ignored, i.e.
        taken as 0, with ``reference_free=True``).
      beta: ``β > 0``; the KL strength (for IPO the regularization ``τ``). A number, or a scalar
        array (a traced one, e.g. a per-step β inside ``jit``, is not checked).
      loss_type: one of :data:`LOSS_TYPES`, or a sequence of them combined with ``loss_weights``.
      loss_weights: one weight per loss type (default 1 each); the result is ``Σ_k w_k loss_k``.
      label_smoothing: ``ε ∈ [0, 0.5)``: the assumed preference-flip rate (conservative DPO for
        ``sigmoid``, and ``robust``, ``exo_pair`` (needs ``ε > 0``), ``aot``, ``aot_unpaired``).
      chosen_lengths, rejected_lengths: ``(B,)`` completion token counts (> 0); when given,
        ``ipo`` and ``sigmoid_norm`` use per-token log-ratios ``c/T_c − r/T_r``.
      reference_free: use an implicit uniform reference (ref log-probs 0).
      discopop_tau: DiscoPOP's temperature ``τ``.

    Returns:
      ``(losses, chosen_rewards, rejected_rewards)``, each ``(B,)`` in the input dtype:
      the per-example loss (for ``aot``/``aot_unpaired``, per rank of the sorted batch, as TRL),
      ``β·c`` and ``β·r``. The training loss is ``losses.mean()``.

    Example::

        losses, rc, rr = dpo_loss(pc, pr, rc_ref, rr_ref, beta=0.1, loss_type="sigmoid")
        loss = losses.mean()
    """
    types = (loss_type,) if isinstance(loss_type, str) else tuple(loss_type)
    unknown = [t for t in types if t not in LOSS_TYPES]
    if unknown or not types:
        raise ValueError(f"dpo_loss: unknown loss_type {unknown or loss_type!r}; valid: {', '.join(LOSS_TYPES)}")
    weights = (1.0,) * len(types) if loss_weights is None else tuple(loss_weights)
    if len(weights) != len(types):
        raise ValueError(f"dpo_loss: loss_weights has {len(weights)} entries for {len(types)} loss types")
    beta = _check_beta("dpo_loss", beta)
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"dpo_loss: label_smoothing must be in [0, 0.5), got {label_smoothing!r}")
    if "exo_pair" in types and label_smoothing == 0.0:
        raise ValueError("dpo_loss: loss_type 'exo_pair' needs label_smoothing > 0 (the EXO paper uses 1e-3)")
    if discopop_tau <= 0:
        raise ValueError(f"dpo_loss: discopop_tau must be > 0, got {discopop_tau!r}")

    arrays = [jnp.asarray(a) for a in (policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)]
    names = ("policy_chosen_logps", "policy_rejected_logps", "ref_chosen_logps", "ref_rejected_logps")
    for name, a in zip(names, arrays):
        if a.ndim != 1 or a.shape != arrays[0].shape:
            shapes = ", ".join(f"{n} {x.shape}" for n, x in zip(names, arrays))
            raise ValueError(f"dpo_loss: the four log-prob inputs must be equal-length vectors (B,); got {shapes}")
        if a.shape[0] == 0:
            raise ValueError("dpo_loss: the batch is empty (B = 0); its mean loss would be NaN")
        if not jnp.issubdtype(a.dtype, jnp.floating):
            raise TypeError(f"dpo_loss: {name} must be floating point, got {a.dtype}")
    dtype = jnp.result_type(*arrays)
    pc, pr, rc, rr = (a.astype(dtype) for a in arrays)
    if reference_free:
        rc, rr = jnp.zeros_like(rc), jnp.zeros_like(rr)
    if (chosen_lengths is None) != (rejected_lengths is None):
        raise ValueError("dpo_loss: give both chosen_lengths and rejected_lengths, or neither")
    len_c = len_r = None
    if chosen_lengths is not None:
        len_c, len_r = (jnp.asarray(x).astype(dtype) for x in (chosen_lengths, rejected_lengths))
        for name, x in (("chosen_lengths", len_c), ("rejected_lengths", len_r)):
            if x.shape != pc.shape:
                raise ValueError(f"dpo_loss: {name} must have shape {pc.shape}, got {x.shape}")
            if _is_concrete(x) and not bool(np.all(np.asarray(x) > 0)):
                raise ValueError(f"dpo_loss: {name} must be > 0 (completion token counts), got {np.asarray(x)}")

    c, r = pc - rc, pr - rr
    losses = sum(
        w * _one_loss(t, beta, label_smoothing, c, r, pc, pr, rc, rr, len_c, len_r, discopop_tau)
        for t, w in zip(types, weights)
    )
    return losses.astype(dtype), (beta * c).astype(dtype), (beta * r).astype(dtype)


def dpo_metrics(chosen_rewards: jax.Array, rejected_rewards: jax.Array) -> dict[str, jax.Array]:
    """The reward metrics TRL logs, from :func:`dpo_loss`'s rewards (``(B,)`` each).

    Returns:
      ``{"rewards/chosen": mean β·c, "rewards/rejected": mean β·r,
      "rewards/accuracies": mean 1[β·c > β·r], "rewards/margins": mean β·(c − r)}``.
    """
    chosen_rewards, rejected_rewards = jnp.asarray(chosen_rewards), jnp.asarray(rejected_rewards)
    if chosen_rewards.ndim != 1 or chosen_rewards.shape != rejected_rewards.shape or chosen_rewards.shape[0] == 0:
        raise ValueError(f"dpo_metrics: chosen_rewards and rejected_rewards must be non-empty vectors of equal length "
                         f"(B,); got {chosen_rewards.shape} and {rejected_rewards.shape}")
    return {
        "rewards/chosen": jnp.mean(chosen_rewards),
        "rewards/rejected": jnp.mean(rejected_rewards),
        "rewards/accuracies": jnp.mean((chosen_rewards > rejected_rewards).astype(chosen_rewards.dtype)),
        "rewards/margins": jnp.mean(chosen_rewards - rejected_rewards),
    }
