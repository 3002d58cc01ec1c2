"""nips23jax.scaling (in progress)."""
