import numpy as np
import pytest

from nips23jax.data.arithmetic import ArithmeticTask, exact_match


@pytest.mark.parametrize("op, n, rev", [("add", 3, True), ("add", 1, False), ("mul", 4, True), ("mul", 9, False)])
def test_batches_encode_correct_arithmetic(op, n, rev):
    task = ArithmeticTask(op, n, rev)
    b = task.batch(seed=0, step=3, batch_size=50)
    tok = task.tokenizer
    assert b["tokens"].shape == (50, task.seq_len) and b["tokens"].dtype == np.int32
    for i in range(50):
        text = tok.decode(b["tokens"][i])
        prompt, ans = text[: task.prompt_len - 1], text[task.prompt_len - 1 :]
        a, rest = prompt.split("+" if op == "add" else "*")
        assert len(a) == n and rest.endswith("=") and len(ans) == task.answer_len
        want = int(a) + int(rest[:-1]) if op == "add" else int(a) * int(rest[:-1])
        assert task.parse_answer(ans) == want == (b["a"][i] + b["b"][i] if op == "add" else b["a"][i] * b["b"][i])
        assert tok.decode(b["answer"][i]) == ans
    assert b["loss_mask"][:, : task.prompt_len].sum() == 0 and b["loss_mask"][:, task.prompt_len :].all()
    assert (b["tokens"][:, -1] == tok.eos_id).all() and (b["tokens"][:, 0] == tok.bos_id).all()


def test_batches_are_a_function_of_seed_and_step():
    task = ArithmeticTask()
    a, b = task.batch(seed=1, step=5, batch_size=8), task.batch(seed=1, step=5, batch_size=8)
    np.testing.assert_array_equal(a["tokens"], b["tokens"])
    assert not np.array_equal(a["tokens"], task.batch(seed=1, step=6, batch_size=8)["tokens"])


def test_format_and_exact_match():
    task = ArithmeticTask("add", 3, reverse_answer=True)
    assert task.format(12, 345) == ("012+345=", "7530")
    assert task.parse_answer("7530") == 357 and task.parse_answer("7x") is None
    np.testing.assert_array_equal(exact_match([[1, 2], [1, 3]], [[1, 2], [1, 2]]), [True, False])


@pytest.mark.parametrize(
    "kwargs, match", [(dict(op="sub"), "op must be one of"), (dict(num_digits=10), "num_digits"), (dict(num_digits=0), "num_digits")]
)
def test_task_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ArithmeticTask(**kwargs)


def test_encode_errors():
    task = ArithmeticTask("add", 2)
    with pytest.raises(ValueError, match=r"operands must be in \[0, 100\)"):
        task.encode(np.array([100]), np.array([1]))
    with pytest.raises(ValueError, match="equal-length vectors"):
        task.encode(np.array([1, 2]), np.array([1]))
