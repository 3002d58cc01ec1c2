"""Built-in synthetic tasks (no downloads)."""

from nips23jax.data.arithmetic import ArithmeticTask as ArithmeticTask
from nips23jax.data.arithmetic import exact_match as exact_match
from nips23jax.data.arithmetic import predict_answers as predict_answers
from nips23jax.data.corpus import corpus_text as corpus_text
from nips23jax.data.corpus import corpus_tokenizer as corpus_tokenizer
from nips23jax.data.corpus import corpus_tokens as corpus_tokens
from nips23jax.data.corpus import repeated_windows as repeated_windows
