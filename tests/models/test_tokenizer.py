import numpy as np
import pytest

from nips23jax.models.tokenizer import CharTokenizer


def test_roundtrip_and_specials():
    tok = CharTokenizer("0123456789+=")
    ids = tok.encode("12+7=", bos=True, eos=True)
    assert ids == [1, 4, 5, 13, 10, 14, 2]
    assert tok.decode(ids) == "12+7=" and tok.vocab_size == 15
    assert tok.decode([4, 2, 5]) == "1"  # stops at EOS
    assert tok.decode([4, 2, 5], stop_at_eos=False) == "12"


def test_encode_batch_padding():
    tok = CharTokenizer("ab")
    ids, mask = tok.encode_batch(["ab", "b"], length=4)
    np.testing.assert_array_equal(ids, [[3, 4, 0, 0], [4, 0, 0, 0]])
    np.testing.assert_array_equal(mask, [[1, 1, 0, 0], [1, 0, 0, 0]])
    ids, mask = tok.encode_batch(["ab", "b"], pad_left=True)
    np.testing.assert_array_equal(ids, [[3, 4], [0, 4]])
    assert tok.decode_batch(ids) == ["ab", "b"]


def test_errors():
    tok = CharTokenizer("ab")
    with pytest.raises(ValueError, match="character 'c' is not in the alphabet"):
        tok.encode("abc")
    with pytest.raises(ValueError, match="more than length=1"):
        tok.encode_batch(["ab"], length=1)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([9])
    with pytest.raises(ValueError, match="repeated"):
        CharTokenizer("aa")


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ALPHABET = "0123456789+*=abc"


@given(st.lists(st.text(alphabet=ALPHABET, max_size=12), min_size=1, max_size=6), st.booleans())
def test_batch_roundtrip_property(texts, pad_left):
    tok = CharTokenizer(ALPHABET)
    ids, mask = tok.encode_batch(texts, bos=True, eos=True, pad_left=pad_left)
    assert tok.decode_batch(ids) == texts
    np.testing.assert_array_equal(mask.sum(1), [len(t) + 2 for t in texts])
