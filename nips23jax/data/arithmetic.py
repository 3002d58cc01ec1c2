"""Multi-digit integer arithmetic as a sequence task (addition, multiplication).

A sample is ``<bos> a op b = c <eos>`` with operands zero-padded to ``num_digits`` and the answer
zero-padded to its maximal width (``num_digits + 1`` for addition, ``2 * num_digits`` for
multiplication), optionally written least-significant digit first (``reverse_answer``), which
small Transformers learn far more easily. All sequences have the same length, so batches are
dense arrays and the answer sits at fixed positions.

Batches are a deterministic function of ``(seed, step)`` (NumPy's ``default_rng``), which is
what the shared loop needs for bit-exact resume.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from nips23jax.models.lm import generate
from nips23jax.models.tokenizer import CharTokenizer

__all__ = ["ArithmeticTask", "exact_match", "predict_answers"]

_OPS = {"add": "+", "mul": "*"}
_TOKENIZER = CharTokenizer("0123456789+*=")


@dataclasses.dataclass(frozen=True)
class ArithmeticTask:
    """``num_digits``-digit ``op`` problems.

    Attributes:
      op: ``"add"`` or ``"mul"``.
      num_digits: digits per operand (1..9; answers must fit in int64).
      reverse_answer: write the answer's digits least-significant first.

    Example::

        task = ArithmeticTask("add", 3)
        batch = task.batch(seed=0, step=5, batch_size=64)   # tokens (64, 14), loss_mask, answer
    """

    op: str = "add"
    num_digits: int = 3
    reverse_answer: bool = True

    def __post_init__(self):
        if self.op not in _OPS:
            raise ValueError(f"ArithmeticTask: op must be one of {sorted(_OPS)}, got {self.op!r}")
        if not isinstance(self.num_digits, int) or not 1 <= self.num_digits <= 9:
            raise ValueError(f"ArithmeticTask: num_digits must be an int in [1, 9], got {self.num_digits!r}")

    @property
    def tokenizer(self) -> CharTokenizer:
        return _TOKENIZER

    @property
    def answer_len(self) -> int:
        return self.num_digits + 1 if self.op == "add" else 2 * self.num_digits

    @property
    def prompt_len(self) -> int:
        """``<bos> a op b =``."""
        return 1 + 2 * self.num_digits + 2

    @property
    def seq_len(self) -> int:
        """Prompt, answer and ``<eos>``."""
        return self.prompt_len + self.answer_len + 1

    def format(self, a: int, b: int) -> tuple[str, str]:
        """``(prompt_text, answer_text)`` for one problem, e.g. ``("012+345=", "7530")`` reversed."""
        n = self.num_digits
        c = a + b if self.op == "add" else a * b
        ans = f"{c:0{self.answer_len}d}"
        return f"{a:0{n}d}{_OPS[self.op]}{b:0{n}d}=", ans[::-1] if self.reverse_answer else ans

    def parse_answer(self, text: str) -> int | None:
        """Inverse of the answer format; ``None`` if ``text`` is not all digits."""
        if not text.isdigit():
            return None
        return int(text[::-1] if self.reverse_answer else text)

    def encode(self, a: np.ndarray, b: np.ndarray) -> dict[str, np.ndarray]:
        """Encodes operand arrays ``(B,)`` into a batch.

        Returns:
          ``tokens`` ``(B, seq_len)`` int32; ``loss_mask`` ``(B, seq_len)`` bool, True on the answer
          digits and ``<eos>`` (the positions the LM is trained to predict); ``answer`` ``(B,
          answer_len)`` int32 token ids of the answer; ``a``, ``b`` the operands (int64).
        """
        a = np.asarray(a, np.int64)
        b = np.asarray(b, np.int64)
        hi = 10**self.num_digits
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"ArithmeticTask.encode: a and b must be equal-length vectors, got {a.shape} and {b.shape}")
        if (a < 0).any() or (a >= hi).any() or (b < 0).any() or (b >= hi).any():
            raise ValueError(f"ArithmeticTask.encode: operands must be in [0, {hi})")
        tok = self.tokenizer
        texts = ["".join(self.format(int(x), int(y))) for x, y in zip(a, b)]
        tokens, _ = tok.encode_batch(texts, length=self.seq_len, bos=True, eos=True)
        loss_mask = np.zeros_like(tokens, bool)
        loss_mask[:, self.prompt_len :] = True
        answer = tokens[:, self.prompt_len : self.prompt_len + self.answer_len]
        return {"tokens": tokens, "loss_mask": loss_mask, "answer": answer.copy(), "a": a, "b": b}

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        """A batch of uniformly random operands (each digit uniform, so leading zeros occur)."""
        hi = 10**self.num_digits
        return self.encode(rng.integers(0, hi, batch_size), rng.integers(0, hi, batch_size))

    def batch(self, *, seed: int, step: int, batch_size: int) -> dict[str, np.ndarray]:
        """The batch for training step ``step``: ``sample(default_rng((seed, step)), batch_size)``."""
        return self.sample(np.random.default_rng((seed, step)), batch_size)


def predict_answers(apply_fn, params, task: ArithmeticTask, batch: dict[str, np.ndarray]) -> np.ndarray:
    """Greedy-decodes the answers of ``batch`` from its prompts.

    Args:
      apply_fn: hashable ``(params, tokens, mask) -> logits`` (e.g. ``LMApply(model)``).
      params: model parameters.
      task: the task that made ``batch``.
      batch: from :meth:`ArithmeticTask.encode` (only ``tokens`` is read).

    Returns:
      ``(B, answer_len)`` int32 predicted answer token ids.
    """
    prompt = np.asarray(batch["tokens"])[:, : task.prompt_len]
    out = generate(apply_fn, params, prompt, jax.random.key(0), max_new_tokens=task.answer_len)
    return np.asarray(out)


def exact_match(predicted: np.ndarray, answer: np.ndarray) -> np.ndarray:
    """``(B,)`` bool: every answer token right."""
    return (np.asarray(predicted) == np.asarray(answer)).all(-1)
