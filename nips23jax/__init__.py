"""nips23jax: JAX-native building blocks and small-scale reproductions of NeurIPS 2023 results.

Subpackages: ``core`` (sharding, training loop, checkpoints, configs, benchmarks, the reproduce
registry), ``models`` (the shared Transformer LM and LM utilities), ``data`` (synthetic tasks),
and one package per result. ``nips23jax.reproductions`` registers the experiments that
``nips23jax reproduce`` runs.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nips23jax")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+local"
