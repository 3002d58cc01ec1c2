from pathlib import Path

import jax
import numpy as np
import pytest

from nips23jax.core.config import load_config
from nips23jax.data.arithmetic import ArithmeticTask
from nips23jax.emergence import analytic_edit_distance, analytic_exact_match, emergence_score
from nips23jax.reproductions import emergence as repro

# The end-to-end run is checked by check_run below, which tests/test_notebooks.py calls on the run of
# colab/emergence.ipynb (with tests/notebook_overrides/emergence.txt): running it here too would repeat
# the same run. The resume test below trains that run's model 0, so the two share their compiled programs.
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


def test_training_batches_are_the_documented_draws_of_valid_problems():
    task = ArithmeticTask("mul", 2)
    key = jax.random.key(3)
    draw = jax.jit(repro.training_batches, static_argnums=(0, 2, 3))  # as _train calls it: one program
    tokens = np.asarray(draw(task, key, 4, 2, 7))
    assert tokens.shape == (2, 4, task.seq_len) and tokens.dtype == np.int32
    # batch 1 of step 7: operands from split(fold_in(fold_in(key, 7), 1)), drawn here (one compiled call)

    @jax.jit
    def operands(key):
        ka, kb = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, 7), 1))
        return jax.random.randint(ka, (4,), 0, 100), jax.random.randint(kb, (4,), 0, 100)

    a, b = (np.asarray(x) for x in operands(key))
    np.testing.assert_array_equal(tokens[1], task.encode(a, b)["tokens"])
    np.testing.assert_array_equal(tokens, np.asarray(draw(task, key, 4, 2, 7)))  # same key and step
    assert not np.array_equal(tokens, np.asarray(draw(task, key, 4, 2, 8)))


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
    assert (tmp_path / "metrics.jsonl").is_file() and len(programs) == 2  # the data program and the model's
    # training again restores the finished run: nothing left to train, the same parameters
    _, again = repro._train(config, task, model_cfg, config.family.lr[0], 0, tmp_path, False, programs)
    assert again.resumed_from == config.train.num_steps == int(again.state.step)
    for x, y in zip(jax.tree.leaves(first.state.params), jax.tree.leaves(again.state.params)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def check_run(result, config, workdir):
    """End-to-end checks, run on the notebook's run by tests/test_notebooks.py (one run per session):
    the outputs are what the config asked for, and every verdict follows its numbers."""
    m = result.metrics
    k = len(config.family.d_model)
    assert [f.claim for f in result.findings] == [c.key for c in repro.CLAIMS]
    assert len(m["num_params"]) == k and np.all(np.isfinite(m["mean_edit_distance"]))
    assert len(list(workdir.rglob("metrics.jsonl"))) == 2 * k  # one training log per model of both families
    assert len(result.figures) == 3
    for name in result.figures:
        assert (workdir / name).read_bytes()[:4] == b"\x89PNG", name
    verdict = {f.claim: f.passed for f in result.findings}
    score = {key: float(v) for key, v in m["emergence_scores"].items()}  # "inf" is stored as a string
    n, em_all, em_small = np.array(m["num_params"]), np.array(m["mean_exact_match"]), np.array(m["exact_match_small"])
    # the scores are BIG-bench's emergence score of the stored means (the multiple-choice family's own sizes)
    for key, scale in (("exact_match", n), ("edit_distance", n), ("mc_grade", m["mc_num_params"]),
                       ("brier", m["mc_num_params"]), ("mc_cross_entropy", m["mc_num_params"])):
        np.testing.assert_allclose(score[key], float(emergence_score(np.array(m[f"mean_{key}"]), scale)), rtol=1e-5)
    ratio = abs(score["exact_match"]) / abs(score["edit_distance"]) if score["edit_distance"] else np.inf
    assert verdict["mirage"] == (ratio >= config.criteria.min_score_ratio and n.max() / n.min() >= 30 and k >= 5)
    assert verdict["resolution"] == (bool((em_small == 0).any()) and em_all.min() > 0)
    a = {key: np.array(v) for key, v in m["analytic"].items()}
    deviation = max(np.abs(a["exact_match"] - a["exact_match_closed_form"]).max(),
                    np.abs(a["edit_distance"] - a["edit_distance_closed_form"]).max() / config.analytic.length)
    assert verdict["analytic"] == (deviation <= config.criteria.analytic_tolerance)
    mc_ratio = abs(score["mc_grade"]) / abs(score["brier"]) if score["brier"] else np.inf
    assert verdict["multiple_choice"] == (mc_ratio >= config.criteria.min_score_ratio)


def test_score_ratio_fails_when_neither_metric_is_smooth():
    """Both scores infinite (both metrics saturate: median step 0) or either NaN: no comparison, NaN (fails)."""
    assert repro._ratio(np.inf, 2.0) == np.inf and repro._ratio(6.0, -2.0) == 3.0
    for num, den in ((np.inf, np.inf), (np.nan, 1.0), (1.0, np.nan)):
        assert np.isnan(repro._ratio(num, den)) and not repro._ratio(num, den) >= 1.5
