"""Character-level tokenizer for the synthetic tasks (digits, operators, letters)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["CharTokenizer"]

SPECIALS = ("<pad>", "<bos>", "<eos>")


class CharTokenizer:
    """Maps each character of ``alphabet`` to one id; ids 0, 1, 2 are ``<pad>``, ``<bos>``, ``<eos>``.

    Example::

        tok = CharTokenizer("0123456789+=")
        ids = tok.encode("12+7=", bos=True)     # [1, 4, 5, 13, 10, 14]
        tok.decode(ids)                          # "12+7="
    """

    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self, alphabet: str):
        if len(set(alphabet)) != len(alphabet):
            raise ValueError(f"CharTokenizer: alphabet has repeated characters: {alphabet!r}")
        if not alphabet:
            raise ValueError("CharTokenizer: alphabet must not be empty")
        self.alphabet = alphabet
        self._to_id = {c: i + len(SPECIALS) for i, c in enumerate(alphabet)}

    @property
    def vocab_size(self) -> int:
        return len(SPECIALS) + len(self.alphabet)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        """Text -> ids. Raises ``ValueError`` naming the first character not in the alphabet."""
        try:
            ids = [self._to_id[c] for c in text]
        except KeyError as e:
            raise ValueError(f"CharTokenizer.encode: character {e.args[0]!r} is not in the alphabet {self.alphabet!r}") from None
        return [self.bos_id] * bos + ids + [self.eos_id] * eos

    def decode(self, ids: Sequence[int] | np.ndarray, *, stop_at_eos: bool = True) -> str:
        """Ids -> text; special tokens are dropped, and decoding stops at the first EOS."""
        out = []
        for i in np.asarray(ids).reshape(-1).tolist():
            if i == self.eos_id and stop_at_eos:
                break
            if i < len(SPECIALS):
                continue
            if i >= self.vocab_size:
                raise ValueError(f"CharTokenizer.decode: id {i} is outside the vocabulary of size {self.vocab_size}")
            out.append(self.alphabet[i - len(SPECIALS)])
        return "".join(out)

    def encode_batch(
        self, texts: Sequence[str], *, length: int | None = None, bos: bool = False, eos: bool = False,
        pad_left: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Encodes and pads to ``(B, length)`` int32 ids plus a bool mask (True on real tokens).

        ``length`` defaults to the longest; a longer text raises ``ValueError``.
        """
        seqs = [self.encode(t, bos=bos, eos=eos) for t in texts]
        n = max((len(s) for s in seqs), default=0) if length is None else length
        ids = np.full((len(seqs), n), self.pad_id, np.int32)
        mask = np.zeros((len(seqs), n), bool)
        for i, s in enumerate(seqs):
            if len(s) > n:
                raise ValueError(f"CharTokenizer.encode_batch: text {i} has {len(s)} tokens, more than length={n}")
            sl = slice(n - len(s), n) if pad_left else slice(0, len(s))
            ids[i, sl] = s
            mask[i, sl] = True
        return ids, mask

    def decode_batch(self, ids: np.ndarray) -> list[str]:
        return [self.decode(row) for row in np.asarray(ids)]
