import numpy as np
import pytest

from nips23jax.data.corpus import CORPUS_ALPHABET, corpus_text, corpus_tokenizer, corpus_tokens, repeated_windows

NF = 20  # the first 20 stdlib files: enough to check the corpus, quick to parse


def test_corpus_is_deterministic_split_and_in_alphabet():
    doc_train = corpus_text("docstrings", "train", num_files=NF)
    doc_val = corpus_text("docstrings", "validation", num_files=NF)
    code_train = corpus_text("code", "train", num_files=NF)
    assert len(doc_train) > 10_000 and len(doc_val) > 1_000 and len(code_train) > 50_000
    assert set(doc_train + doc_val + code_train) <= set(CORPUS_ALPHABET)
    # code has its docstrings removed; held-out documentation appears in no training text
    para = max(doc_val.split("\n\n"), key=len)
    assert para not in doc_train and para not in code_train
    assert "def " in code_train and "def " not in doc_train[:2000]
    ids = corpus_tokens("docstrings", "validation", num_files=NF)
    assert ids.dtype == np.int32 and corpus_tokenizer().decode(ids[:500]) == doc_val[:500]
    assert corpus_tokenizer().vocab_size == 99


def test_repeated_windows_are_epochs_of_a_nested_unique_set():
    tokens = np.arange(10_000, dtype=np.int32)
    w = repeated_windows([(tokens, 800, 4.0)], seq_len=16, seed=1)
    assert w.shape == (200, 16)
    starts = w[:, 0]
    uniq, counts = np.unique(starts, return_counts=True)
    assert len(uniq) == 50 and np.all(counts == 4)           # 50 unique windows, each seen 4 times
    for e in range(4):                                          # epoch e holds every window once
        assert len(np.unique(starts[e * 50:(e + 1) * 50])) == 50
    np.testing.assert_array_equal(w, repeated_windows([(tokens, 800, 4.0)], seq_len=16, seed=1))
    small = repeated_windows([(tokens, 400, 1.0)], seq_len=16, seed=5)
    assert set(small[:, 0]) <= set(uniq)                        # smaller unique sets are subsets
    # a mixture: 2 epochs of text plus one of another source, epoch by epoch
    other = np.arange(10_000, 20_000, dtype=np.int32)
    mix = repeated_windows([(tokens, 320, 2.0), (other, 640, 1.0)], seq_len=16, seed=0)
    assert mix.shape == (80, 16) and np.sum(mix[:, 0] >= 10_000) == 40
    assert np.sum(mix[:60, 0] >= 10_000) == 40                  # epoch 1 = 20 text + 40 other windows


def test_bad_arguments():
    with pytest.raises(ValueError, match="kind must be one of"):
        corpus_text("poems", "train")
    with pytest.raises(ValueError, match="split must be one of"):
        corpus_text("code", "test")
    with pytest.raises(ValueError, match="asks for 20000 unique tokens"):
        repeated_windows([(np.arange(1000), 20_000, 1.0)], seq_len=16, seed=0)
    with pytest.raises(ValueError, match="epochs must be > 0"):
        repeated_windows([(np.arange(1000), 100, 0.0)], seq_len=16, seed=0)
    with pytest.raises(ValueError, match="seq_len"):
        repeated_windows([(np.arange(1000), 100, 1.0)], seq_len=1, seed=0)
