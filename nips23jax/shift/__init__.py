"""nips23jax.shift (in progress)."""
