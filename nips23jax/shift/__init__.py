"""Distribution shift: accuracy on the line, and the X-shift vs Y|X-shift decomposition (DISDE).

From the NeurIPS 2023 tutorial "Modeling and Exploiting Data Heterogeneity Under Distribution
Shifts": :func:`accuracy_on_the_line` fits probit(OOD accuracy) on probit(ID accuracy) across
models; :func:`disde` splits a performance change into X-shift (P → S), Y|X-shift on the shared
region S ∝ pq/(p+q), and X-shift (S → Q), with density ratios from a cross-fitted JAX domain
classifier (:mod:`nips23jax.shift.domain_classifier`). :mod:`nips23jax.shift.synthetic` holds
Gaussian populations with exact ground truth.
"""

from nips23jax.shift.accuracy_on_the_line import LineFit as LineFit
from nips23jax.shift.accuracy_on_the_line import accuracy_on_the_line as accuracy_on_the_line
from nips23jax.shift.accuracy_on_the_line import plot_accuracy_on_the_line as plot_accuracy_on_the_line
from nips23jax.shift.accuracy_on_the_line import probit as probit
from nips23jax.shift.accuracy_on_the_line import wilson_interval as wilson_interval
from nips23jax.shift.disde import DisdeResult as DisdeResult
from nips23jax.shift.disde import DisdeTerms as DisdeTerms
from nips23jax.shift.disde import EmptySharedRegionWarning as EmptySharedRegionWarning
from nips23jax.shift.disde import disde as disde
from nips23jax.shift.disde import disde_terms as disde_terms
from nips23jax.shift.disde import shared_region_weights as shared_region_weights
from nips23jax.shift.domain_classifier import ClassifierSpec as ClassifierSpec
from nips23jax.shift.domain_classifier import cross_fit_domain_probability as cross_fit_domain_probability
from nips23jax.shift.domain_classifier import fit_domain_classifier as fit_domain_classifier
from nips23jax.shift.synthetic import Population as Population
from nips23jax.shift.synthetic import conditional_accuracy as conditional_accuracy
from nips23jax.shift.synthetic import disde_ground_truth as disde_ground_truth
from nips23jax.shift.synthetic import exact_shared_weights as exact_shared_weights
from nips23jax.shift.synthetic import sample_population as sample_population
