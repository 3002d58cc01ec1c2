"""nips23jax.double_descent (in progress)."""
