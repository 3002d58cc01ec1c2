"""Sharpness-Aware Minimization as an Optax transform: SAM, ASAM and m-sharpness (1-SAM)."""

from nips23jax.sam.sam import SAMState as SAMState
from nips23jax.sam.sam import sam as sam
from nips23jax.sam.sam import sam_gradient as sam_gradient
from nips23jax.sam.sam import sam_perturbation as sam_perturbation
