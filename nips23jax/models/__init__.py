"""The shared Transformer LM, its tokenizer and LM utilities (log-probs, generation)."""

from nips23jax.models.lm import LMApply as LMApply
from nips23jax.models.lm import generate as generate
from nips23jax.models.lm import heldout_lm_loss as heldout_lm_loss
from nips23jax.models.lm import lm_loss_fn as lm_loss_fn
from nips23jax.models.lm import masked_lm_loss as masked_lm_loss
from nips23jax.models.lm import next_token_logps as next_token_logps
from nips23jax.models.lm import sequence_logps as sequence_logps
from nips23jax.models.lm import token_logps as token_logps
from nips23jax.models.tokenizer import CharTokenizer as CharTokenizer
from nips23jax.models.transformer import DenseFactory as DenseFactory
from nips23jax.models.transformer import TransformerConfig as TransformerConfig
from nips23jax.models.transformer import TransformerLM as TransformerLM
