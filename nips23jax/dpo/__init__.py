"""Direct Preference Optimization (Rafailov et al., NeurIPS 2023) and its published variants."""

from nips23jax.dpo.loss import LOSS_TYPES as LOSS_TYPES
from nips23jax.dpo.loss import dpo_loss as dpo_loss
from nips23jax.dpo.loss import dpo_metrics as dpo_metrics
