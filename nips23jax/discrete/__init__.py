"""DISCS (Goshvadi et al., NeurIPS 2023): discrete samplers, target models and ESS, on current JAX.

Models return a :class:`DiscreteModel` (``log_prob`` and first-order differences through the
continuous relaxation); samplers are blackjax-style ``sampler(model) -> SamplingAlgorithm``;
:func:`run_chains` runs many chains and :func:`ess` measures them.
"""

from nips23jax.discrete import samplers as samplers
from nips23jax.discrete.combinatorial import Graph as Graph
from nips23jax.discrete.combinatorial import anneal as anneal
from nips23jax.discrete.combinatorial import barabasi_albert as barabasi_albert
from nips23jax.discrete.combinatorial import brute_force_optimum as brute_force_optimum
from nips23jax.discrete.combinatorial import erdos_renyi as erdos_renyi
from nips23jax.discrete.combinatorial import max_clique as max_clique
from nips23jax.discrete.combinatorial import maxcut as maxcut
from nips23jax.discrete.combinatorial import mis as mis
from nips23jax.discrete.combinatorial import normalized_cut as normalized_cut
from nips23jax.discrete.enumerate import all_states as all_states
from nips23jax.discrete.enumerate import exact_log_probs as exact_log_probs
from nips23jax.discrete.enumerate import exact_marginals as exact_marginals
from nips23jax.discrete.ess import autocorrelation as autocorrelation
from nips23jax.discrete.ess import ess as ess
from nips23jax.discrete.ess import ess_per_step as ess_per_step
from nips23jax.discrete.ess import hamming_distance as hamming_distance
from nips23jax.discrete.models import DiscreteModel as DiscreteModel
from nips23jax.discrete.models import bernoulli as bernoulli
from nips23jax.discrete.models import categorical as categorical
from nips23jax.discrete.models import fhmm as fhmm
from nips23jax.discrete.models import ising as ising
from nips23jax.discrete.models import lattice_edges as lattice_edges
from nips23jax.discrete.models import potts as potts
from nips23jax.discrete.models import rbm as rbm
from nips23jax.discrete.models import train_rbm as train_rbm
from nips23jax.discrete.run import RunInfo as RunInfo
from nips23jax.discrete.run import run_chains as run_chains
from nips23jax.discrete.run import sample_chains as sample_chains
from nips23jax.discrete.samplers import SamplingAlgorithm as SamplingAlgorithm
from nips23jax.discrete.samplers import block_gibbs as block_gibbs
from nips23jax.discrete.samplers import dlmc as dlmc
from nips23jax.discrete.samplers import dmala as dmala
from nips23jax.discrete.samplers import get_sampler as get_sampler
from nips23jax.discrete.samplers import gibbs as gibbs
from nips23jax.discrete.samplers import gwg as gwg
from nips23jax.discrete.samplers import hamming_ball as hamming_ball
from nips23jax.discrete.samplers import pas as pas
from nips23jax.discrete.samplers import rwm as rwm
