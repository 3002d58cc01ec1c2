"""Direct Preference Optimization (Rafailov et al., NeurIPS 2023) and its published variants."""

from nips23jax.dpo.loss import LOSS_TYPES as LOSS_TYPES
from nips23jax.dpo.loss import dpo_loss as dpo_loss
from nips23jax.dpo.loss import dpo_metrics as dpo_metrics
from nips23jax.dpo.logps import concatenated_logps as concatenated_logps
from nips23jax.dpo.logps import sequence_logps as sequence_logps
from nips23jax.dpo.train import make_dpo_loss_fn as make_dpo_loss_fn
from nips23jax.dpo.train import reference_logps as reference_logps
from nips23jax.dpo.train import frozen_reference as frozen_reference
