from pathlib import Path

import jax
import numpy as np
import pytest

from nips23jax.core.config import load_config
from nips23jax.data.arithmetic import ArithmeticTask
from nips23jax.emergence import analytic_edit_distance, analytic_exact_match
from nips23jax.reproductions import emergence as repro

# The end-to-end run (findings per claim, figures, one metrics.jsonl per model, verdicts that follow
# their numbers) is checked by colab/emergence.ipynb's sanity-check cell, which tests/test_notebooks.py
# executes with tests/notebook_overrides/emergence.txt: running it here too would repeat the same run.
# The resume test below trains that run's model 0, so the two share their compiled programs.
NOTEBOOK_OVERRIDES = [
    line.split("#", 1)[0].strip()
    for line in (Path(__file__).resolve().parents[1] / "notebook_overrides" / "emergence.txt").read_text().splitlines()
]
NOTEBOOK_OVERRIDES = [line for line in NOTEBOOK_OVERRIDES if line]


@pytest.mark.parametrize("op,digits", [("add", 3), ("mul", 2)])
def test_encode_operands_matches_the_task_encoder(op, digits):
    task = ArithmeticTask(op, digits)
    batch = task.sample(np.random.default_rng(0), 32)
    got = repro.encode_operands(task, batch["a"], batch["b"])
    np.testing.assert_array_equal(np.asarray(got), batch["tokens"])


def test_multiple_choice_items_hold_the_answer_once_among_other_problems_answers():
    task = ArithmeticTask("add", 3)
    answer = task.sample(np.random.default_rng(0), 64)["answer"]
    choices, correct = repro.multiple_choice_items(np.random.default_rng(1), answer, 4)
    assert choices.shape == (64, 4, task.answer_len) and correct.dtype == np.int32
    rows = {tuple(a) for a in answer}
    for i in range(64):
        np.testing.assert_array_equal(choices[i, correct[i]], answer[i])
        assert len({tuple(c) for c in choices[i]}) == 4  # distinct options, the answer exactly once
        assert all(tuple(c) in rows for c in choices[i])  # distractors are answers of other problems
    assert set(np.unique(correct)) == {0, 1, 2, 3}
    # same generator state, same items; too few distinct answers is a clear error
    again, correct2 = repro.multiple_choice_items(np.random.default_rng(1), answer, 4)
    np.testing.assert_array_equal(again, choices)
    np.testing.assert_array_equal(correct2, correct)
    with pytest.raises(ValueError, match="3 distinct rows, need num_choices=4"):
        repro.multiple_choice_items(np.random.default_rng(0), answer[[0, 1, 2, 0, 1]], 4)
    with pytest.raises(ValueError, match="num_choices must be >= 2"):
        repro.multiple_choice_items(np.random.default_rng(0), answer, 1)


def test_analytic_simulation_follows_the_closed_forms():
    config = load_config("emergence", quick=True, overrides=["analytic.num_items=3000"])
    sim = repro.simulate_analytic(config, jax.random.key(0))
    np.testing.assert_allclose(sim["exact_match"], analytic_exact_match(sim["p"], config.analytic.length), atol=0.03)
    # edit distance never exceeds the number of wrong tokens, and is close to it
    hamming = analytic_edit_distance(sim["p"], config.analytic.length)
    assert np.all(sim["edit_distance"] <= hamming + 0.1)
    np.testing.assert_allclose(sim["edit_distance"], hamming, atol=0.25)


def test_training_resumes_from_the_finished_checkpoint(tmp_path):
    config = load_config("emergence", quick=True, overrides=NOTEBOOK_OVERRIDES)
    task = ArithmeticTask(config.task.op, config.task.num_digits, config.task.reverse_answer)
    model_cfg = repro.family(config, task)[0]
    programs = {}
    _, first = repro._train(config, task, model_cfg, config.family.lr[0], 0, tmp_path, False, programs)
    assert first.resumed_from is None and int(first.state.step) == config.train.num_steps
    assert (tmp_path / "metrics.jsonl").is_file() and len(programs) == 1
    # training again restores the finished run: nothing left to train, the same parameters
    _, again = repro._train(config, task, model_cfg, config.family.lr[0], 0, tmp_path, False, programs)
    assert again.resumed_from == config.train.num_steps == int(again.state.step)
    for x, y in zip(jax.tree.leaves(first.state.params), jax.tree.leaves(again.state.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
