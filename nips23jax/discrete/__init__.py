"""nips23jax.discrete (in progress)."""
