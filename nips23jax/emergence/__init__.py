"""nips23jax.emergence (in progress)."""
