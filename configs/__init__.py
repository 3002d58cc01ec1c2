"""Experiment configs: one ``get_config(arg=None)`` file per experiment (``arg="quick"`` for CI size).

Installed as ``nips23jax.configs``; load with ``nips23jax.core.config.load_config("tiny_lm")``.
"""
