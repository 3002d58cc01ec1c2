"""Are emergent abilities a mirage? Metrics, the analytic model and resolution tools (Schaeffer et al., NeurIPS 2023).

Metrics over padded token batches (exact match, token edit distance, multiple-choice grade, Brier
score, per-token cross-entropy, BLEU, ROUGE-L), the paper's analytic model of how a smooth per-token
loss becomes a sharp exact-match curve, BIG-bench's emergence score, test-set resolution and
bootstrap confidence intervals.
"""

from nips23jax.emergence.analytic import analytic_edit_distance as analytic_edit_distance
from nips23jax.emergence.analytic import analytic_exact_match as analytic_exact_match
from nips23jax.emergence.analytic import emergence_score as emergence_score
from nips23jax.emergence.analytic import items_to_resolve as items_to_resolve
from nips23jax.emergence.analytic import power_law_cross_entropy as power_law_cross_entropy
from nips23jax.emergence.analytic import resolution as resolution
from nips23jax.emergence.analytic import token_probability as token_probability
from nips23jax.emergence.bootstrap import BootstrapCI as BootstrapCI
from nips23jax.emergence.bootstrap import bootstrap_ci as bootstrap_ci
from nips23jax.emergence.edit_distance import longest_common_subsequence as longest_common_subsequence
from nips23jax.emergence.edit_distance import token_edit_distance as token_edit_distance
from nips23jax.emergence.metrics import bleu as bleu
from nips23jax.emergence.metrics import brier_score as brier_score
from nips23jax.emergence.metrics import corpus_bleu as corpus_bleu
from nips23jax.emergence.metrics import exact_match as exact_match
from nips23jax.emergence.metrics import multiple_choice_grade as multiple_choice_grade
from nips23jax.emergence.metrics import per_token_cross_entropy as per_token_cross_entropy
from nips23jax.emergence.metrics import rouge_l as rouge_l
from nips23jax.emergence.metrics import sequence_log_likelihood as sequence_log_likelihood
