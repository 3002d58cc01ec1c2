"""Experiments, one module per paper; importing this package registers them all.

To add one: write ``nips23jax/reproductions/<name>.py`` that calls
``nips23jax.core.reproduce.register(Reproduction(...))``, add its config to ``configs/`` and its
notebook to ``colab/``, and import the module here.
"""

from nips23jax.reproductions import dpo as dpo
from nips23jax.reproductions import qlora as qlora
from nips23jax.reproductions import sharpness as sharpness
from nips23jax.reproductions import tiny_lm as tiny_lm
