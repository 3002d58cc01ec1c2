"""Data-constrained scaling laws (Muennighoff et al., "Scaling Data-Constrained Language Models", NeurIPS 2023).

* :mod:`~nips23jax.scaling.law` -- effective data/parameters (Eq. 5), the loss
  ``L(N, D, U_D)``, Chinchilla's compute-optimal ``N_opt``/``D_opt``, the published constants.
* :mod:`~nips23jax.scaling.allocation` -- the compute-optimal ``(N, D, epochs)`` under a
  unique-data constraint.
* :mod:`~nips23jax.scaling.fit` -- the paper's fitting procedure in float64 (Huber on log-loss,
  optax L-BFGS from a vmapped grid of starts), R², bootstrap intervals.
* :mod:`~nips23jax.scaling.runs_table` -- a validated table of runs from CSV/JSON.
"""

from nips23jax.scaling.allocation import Allocation as Allocation
from nips23jax.scaling.allocation import optimal_allocation as optimal_allocation
from nips23jax.scaling.fit import CHINCHILLA_GRID as CHINCHILLA_GRID
from nips23jax.scaling.fit import DECAY_GRID as DECAY_GRID
from nips23jax.scaling.fit import DEFAULT_GRID as DEFAULT_GRID
from nips23jax.scaling.fit import BootstrapResult as BootstrapResult
from nips23jax.scaling.fit import bootstrap_data_constrained as bootstrap_data_constrained
from nips23jax.scaling.fit import fit_data_constrained as fit_data_constrained
from nips23jax.scaling.fit import huber_log_objective as huber_log_objective
from nips23jax.scaling.fit import r_squared as r_squared
from nips23jax.scaling.law import PUBLISHED as PUBLISHED
from nips23jax.scaling.law import DataConstrainedParams as DataConstrainedParams
from nips23jax.scaling.law import chinchilla_loss as chinchilla_loss
from nips23jax.scaling.law import chinchilla_optimal as chinchilla_optimal
from nips23jax.scaling.law import compute_optimal_params_for_data as compute_optimal_params_for_data
from nips23jax.scaling.law import data_constrained_loss as data_constrained_loss
from nips23jax.scaling.law import effective_data as effective_data
from nips23jax.scaling.law import effective_params as effective_params
from nips23jax.scaling.runs_table import RunsTable as RunsTable
from nips23jax.scaling.runs_table import load_runs as load_runs
from nips23jax.scaling.runs_table import runs_from_records as runs_from_records
