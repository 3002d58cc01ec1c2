"""Built-in synthetic tasks (no downloads)."""

from nips23jax.data.arithmetic import ArithmeticTask as ArithmeticTask
from nips23jax.data.arithmetic import exact_match as exact_match
from nips23jax.data.arithmetic import predict_answers as predict_answers
