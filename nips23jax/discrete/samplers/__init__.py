"""DISCS samplers, blackjax-style: ``sampler(model, ...) -> SamplingAlgorithm(init, step)``.

``rwm``, ``gibbs``, ``block_gibbs``, ``hamming_ball``, ``gwg``, ``pas``, ``dmala``, ``dlmc``;
:func:`get_sampler` builds one by name.
"""

from nips23jax.discrete.samplers.adaptive import adapt_log_tau as adapt_log_tau
from nips23jax.discrete.samplers.adaptive import adapt_num_flips as adapt_num_flips
from nips23jax.discrete.samplers.adaptive import init_log_tau as init_log_tau
from nips23jax.discrete.samplers.balancing import BALANCING_FUNCTIONS as BALANCING_FUNCTIONS
from nips23jax.discrete.samplers.balancing import balanced_weights as balanced_weights
from nips23jax.discrete.samplers.balancing import balancing_function as balancing_function
from nips23jax.discrete.samplers.base import Info as Info
from nips23jax.discrete.samplers.base import SamplingAlgorithm as SamplingAlgorithm
from nips23jax.discrete.samplers.block_gibbs import block_gibbs as block_gibbs
from nips23jax.discrete.samplers.dlmc import dlmc as dlmc
from nips23jax.discrete.samplers.dmala import dmala as dmala
from nips23jax.discrete.samplers.gibbs import gibbs as gibbs
from nips23jax.discrete.samplers.gwg import GradientState as GradientState
from nips23jax.discrete.samplers.gwg import gwg as gwg
from nips23jax.discrete.samplers.hamming_ball import hamming_ball as hamming_ball
from nips23jax.discrete.samplers.pas import pas as pas
from nips23jax.discrete.samplers.rwm import rwm as rwm

SAMPLERS = {
    "rwm": rwm,
    "gibbs": gibbs,
    "block_gibbs": block_gibbs,
    "hamming_ball": hamming_ball,
    "gwg": gwg,
    "pas": pas,
    "dmala": dmala,
    "dlmc": dlmc,
}


def get_sampler(name: str, model, **kwargs) -> SamplingAlgorithm:
    """Builds the sampler called ``name`` (a key of ``SAMPLERS``) for ``model``.

    Raises:
      ValueError: unknown name (the message lists the known ones).
    """
    if name not in SAMPLERS:
        raise ValueError(f"get_sampler: unknown sampler {name!r}; expected one of {sorted(SAMPLERS)}")
    return SAMPLERS[name](model, **kwargs)
