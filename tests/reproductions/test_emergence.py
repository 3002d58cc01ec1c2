import jax
import numpy as np
import pytest

from nips23jax.core.config import load_config
from nips23jax.data.arithmetic import ArithmeticTask
from nips23jax.emergence import analytic_edit_distance, analytic_exact_match
from nips23jax.reproductions import emergence as repro

# Three models, the fewest an emergence score takes (each compiles its own initialization, training and
# evaluation programs, which dominates the test's time).
TINY = [
    "family.d_model=(8,12,16)", "family.num_layers=(1,1,1)", "family.num_heads=(2,2,2)", "family.lr=(0.01,0.01,0.01)",
    "train.num_steps=2", "train.updates_per_step=4", "train.batch_size=16", "train.checkpoint_every=2",
    "eval.num_test=256", "eval.chunk=256", "eval.bootstrap=20", "analytic.num_items=3000",  # shares the compile below
]


@pytest.mark.parametrize("op,digits", [("add", 3), ("mul", 2)])
def test_encode_operands_matches_the_task_encoder(op, digits):
    task = ArithmeticTask(op, digits)
    batch = task.sample(np.random.default_rng(0), 32)
    got = repro.encode_operands(task, batch["a"], batch["b"])
    np.testing.assert_array_equal(np.asarray(got), batch["tokens"])


def test_multiple_choice_items_hold_the_answer_once_among_distinct_one_digit_distractors():
    task = ArithmeticTask("add", 3)
    answer = task.sample(np.random.default_rng(0), 64)["answer"]
    choices, correct = repro.multiple_choice_items(np.random.default_rng(1), answer, 4)
    assert choices.shape == (64, 4, task.answer_len)
    for i in range(64):
        np.testing.assert_array_equal(choices[i, correct[i]], answer[i])
        assert len({tuple(c) for c in choices[i]}) == 4
        for k in range(4):
            if k != correct[i]:
                assert (choices[i, k] != answer[i]).sum() == 1
    assert set(np.unique(correct)) == {0, 1, 2, 3}


def test_analytic_simulation_follows_the_closed_forms():
    config = load_config("emergence", quick=True, overrides=["analytic.num_items=3000"])
    sim = repro.simulate_analytic(config, jax.random.key(0))
    np.testing.assert_allclose(sim["exact_match"], analytic_exact_match(sim["p"], config.analytic.length), atol=0.03)
    # edit distance never exceeds the number of wrong tokens, and is close to it
    hamming = analytic_edit_distance(sim["p"], config.analytic.length)
    assert np.all(sim["edit_distance"] <= hamming + 0.1)
    np.testing.assert_allclose(sim["edit_distance"], hamming, atol=0.25)


@pytest.mark.slow
def test_run_writes_findings_and_figures(tmp_path):
    config = load_config("emergence", quick=True, overrides=TINY)
    result = repro.run(config, tmp_path, progress=False)
    assert [f.claim for f in result.findings] == ["mirage", "resolution", "analytic", "multiple_choice"]
    for name in result.figures:
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert len(list(tmp_path.rglob("metrics.jsonl"))) == 3
    m = result.metrics
    assert len(m["num_params"]) == 3 and np.all(np.isfinite(m["mean_edit_distance"]))
    # three models spanning < 30x cannot pass "mirage"; the others follow their numbers
    assert not result.findings[0].passed
    em = np.array(m["mean_exact_match"])
    small = np.array(m["exact_match_small"])
    assert result.findings[1].passed == (bool((small == 0).any()) and em.min() > 0)
    # training again resumes from the finished checkpoint (nothing left to train or compile)
    task = ArithmeticTask(config.task.op, config.task.num_digits, config.task.reverse_answer)
    model_cfg = repro.family(config, task)[0]
    workdir = next(tmp_path.glob("model0_*"))
    _, out = repro._train(config, task, model_cfg, config.family.lr[0], 0, workdir, False)
    assert out.resumed_from == config.train.num_steps == int(out.state.step)
