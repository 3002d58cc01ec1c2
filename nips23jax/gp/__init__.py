"""nips23jax.gp (in progress)."""
