"""A small offline text corpus from the Python installation itself, and epoch-repeating data streams.

Two kinds of text, both read (never imported) from the top-level modules of the running Python's
standard library (``sysconfig.get_paths()["stdlib"]``, files ``[a-z]*.py``, sorted by name):

* ``"docstrings"``: natural language, the module/class/function docstrings extracted with ``ast``;
* ``"code"``: the same files' source with those docstrings removed (Python code and its comments).

Files are split by name: every ``validation_every``-th file (in sorted order) is held out for
validation, for both kinds, so code never contains the held-out documentation. Text is normalized
to printable ASCII plus newline (tabs -> 4 spaces, anything else -> ``?``) and encoded with the
project's :class:`~nips23jax.models.tokenizer.CharTokenizer` over that alphabet (one id per
character). The corpus is deterministic for a given Python version (3.11.7 here: about 0.9 M
docstring characters and 2.9 M code characters).

:func:`repeated_windows` builds the training stream of a data-constrained run: ``unique_tokens``
tokens (a fixed random subset of windows, nested so smaller sets are subsets of larger ones)
repeated for a number of epochs, each epoch in a fresh order, optionally mixing several sources
(e.g. natural language and code).

Example::

    tok = corpus_tokenizer()
    train = corpus_tokens("docstrings", "train")                 # int32 ids
    windows = repeated_windows([(train, 65_536, 4.0)], seq_len=64, seed=0)   # (4096, 64)
"""

from __future__ import annotations

import ast
import functools
import re
import string
import sysconfig
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from nips23jax.models.tokenizer import CharTokenizer

__all__ = ["CORPUS_ALPHABET", "corpus_files", "corpus_text", "corpus_tokenizer", "corpus_tokens", "repeated_windows"]

#: Newline and the 95 printable ASCII characters (space .. ~).
CORPUS_ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))
_KINDS = ("docstrings", "code")
_SPLITS = ("train", "validation")


def corpus_tokenizer() -> CharTokenizer:
    """The corpus's tokenizer: :class:`CharTokenizer` over :data:`CORPUS_ALPHABET` (vocab 99)."""
    return CharTokenizer(CORPUS_ALPHABET)


def corpus_files(stdlib: str | Path | None = None) -> list[Path]:
    """The source files: top-level ``[a-z]*.py`` modules of the standard library, sorted by name."""
    root = Path(stdlib) if stdlib is not None else Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise ValueError(f"corpus_files: stdlib directory {str(root)!r} does not exist")
    files = sorted(p for p in root.glob("*.py") if p.name[0] in string.ascii_lowercase)
    if not files:
        raise ValueError(f"corpus_files: no [a-z]*.py files in {str(root)!r}")
    return files


_OUTSIDE_ALPHABET = re.compile(r"[^\n\x20-\x7e]")


def _normalize(text: str) -> str:
    return _OUTSIDE_ALPHABET.sub("?", text.replace("\r\n", "\n").replace("\t", "    "))


def _split_source(source: str) -> tuple[list[str], str]:
    """(docstrings, source without the docstring lines) of one module."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a file this Python cannot parse (e.g. lib2to3 test data): skip it
        return [], ""
    docs, drop = [], set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node, clean=True)
            if doc:
                first = node.body[0]
                drop.update(range(first.lineno - 1, first.end_lineno))
                docs.append(doc)
    lines = source.splitlines()
    code = "\n".join(line for i, line in enumerate(lines) if i not in drop)
    return docs, code


@functools.lru_cache(maxsize=None)
def _parsed_file(path: Path) -> tuple[list[str], str]:
    return _split_source(path.read_text(encoding="utf-8", errors="replace"))


@functools.lru_cache(maxsize=8)
def corpus_text(
    kind: str, split: str, *, num_files: int | None = None, validation_every: int = 10, min_doc_chars: int = 40
) -> str:
    """The normalized text of one kind and split.

    Args:
      kind: ``"docstrings"`` (natural language) or ``"code"`` (source without docstrings).
      split: ``"train"`` or ``"validation"`` (files whose sorted index is a multiple of
        ``validation_every``).
      num_files: use only the first this-many files of :func:`corpus_files` (None: all 168 on
        Python 3.11); parsing is the corpus's cost, so small experiments read fewer.
      validation_every: hold out every this-many-th file.
      min_doc_chars: docstrings shorter than this are dropped (one-liners such as "Return x.").

    Returns:
      One string; documents are separated by a blank line.
    """
    if kind not in _KINDS:
        raise ValueError(f"corpus_text: kind must be one of {_KINDS}, got {kind!r}")
    if split not in _SPLITS:
        raise ValueError(f"corpus_text: split must be one of {_SPLITS}, got {split!r}")
    if not isinstance(validation_every, int) or validation_every < 2:
        raise ValueError(f"corpus_text: validation_every must be an int >= 2, got {validation_every!r}")
    parts = []
    if num_files is not None and (not isinstance(num_files, int) or num_files < validation_every):
        raise ValueError(f"corpus_text: num_files must be None or an int >= validation_every={validation_every}, got {num_files!r}")
    for i, path in enumerate(corpus_files()[:num_files]):
        if (i % validation_every == 0) != (split == "validation"):
            continue
        docs, code = _parsed_file(path)
        if kind == "docstrings":
            parts.extend(d for d in docs if len(d) >= min_doc_chars)
        elif code.strip():
            parts.append(code)
    return _normalize("\n\n".join(parts))


def corpus_tokens(kind: str, split: str, **kwargs) -> np.ndarray:
    """:func:`corpus_text` encoded with :func:`corpus_tokenizer`: ``(num_chars,)`` int32 ids."""
    return np.asarray(corpus_tokenizer().encode(corpus_text(kind, split, **kwargs)), np.int32)


def repeated_windows(
    sources: Sequence[tuple[np.ndarray, int, float]], *, seq_len: int, seed: int, subset_seed: int = 0
) -> np.ndarray:
    """The training stream of a data-constrained run, as ``(num_windows, seq_len)`` token windows.

    Each source ``(tokens, unique_tokens, epochs)`` is cut into non-overlapping windows of
    ``seq_len``; its unique set is the first ``unique_tokens // seq_len`` windows of a permutation
    drawn with ``subset_seed`` (so a smaller unique set is a subset of a larger one and runs that
    differ only in ``epochs`` see the same data). It contributes ``round(epochs · num_unique)``
    windows: whole epochs, each a fresh permutation, then a partial epoch. Epoch ``e`` of every
    source is shuffled together and placed before epoch ``e + 1``, so repetitions stay epochs
    even in a mixture. The total tokens ``D = num_windows · seq_len``.

    Args:
      sources: ``(tokens (L,) int, unique_tokens, epochs)`` per source; ``epochs`` > 0 may be
        fractional.
      seq_len: window length.
      seed: orders the epochs (a different seed: the same windows in another order).
      subset_seed: chooses which windows are the unique set.

    Returns:
      int32 ``(num_windows, seq_len)``.

    Raises:
      ValueError: a source needs more unique tokens than it has, or a non-positive size.
    """
    if not isinstance(seq_len, (int, np.integer)) or seq_len < 2:
        raise ValueError(f"repeated_windows: seq_len must be an int >= 2, got {seq_len!r}")
    if len(sources) == 0:
        raise ValueError("repeated_windows: sources must not be empty")
    rng = np.random.default_rng(seed)
    per_epoch: list[list[np.ndarray]] = []
    for j, (tokens, unique_tokens, epochs) in enumerate(sources):
        tokens = np.asarray(tokens)
        if tokens.ndim != 1:
            raise ValueError(f"repeated_windows: sources[{j}] tokens must be 1-D, got shape {tokens.shape}")
        if epochs <= 0:
            raise ValueError(f"repeated_windows: sources[{j}] epochs must be > 0, got {epochs}")
        n_avail = tokens.size // seq_len
        n_unique = int(unique_tokens) // seq_len
        if n_unique < 1:
            raise ValueError(f"repeated_windows: sources[{j}] unique_tokens={unique_tokens} is less than one window of {seq_len}")
        if n_unique > n_avail:
            raise ValueError(
                f"repeated_windows: sources[{j}] asks for {unique_tokens} unique tokens, but the source has "
                f"only {n_avail * seq_len} in windows of {seq_len}"
            )
        all_windows = tokens[: n_avail * seq_len].reshape(n_avail, seq_len)
        unique = all_windows[np.random.default_rng(subset_seed).permutation(n_avail)[:n_unique]]
        total = int(round(epochs * n_unique))
        e = 0
        while total > 0:
            take = min(total, n_unique)
            if len(per_epoch) <= e:
                per_epoch.append([])
            per_epoch[e].append(unique[rng.permutation(n_unique)[:take]])
            total -= take
            e += 1
    out = []
    for chunks in per_epoch:
        block = np.concatenate(chunks)
        out.append(block[rng.permutation(len(block))])
    return np.concatenate(out).astype(np.int32)
