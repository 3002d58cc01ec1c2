import jax
import numpy as np
import pytest

from nips23jax.reproductions import qlora as repro


def test_llama_shapes_give_the_published_parameter_counts():
    """LLaMA-1 sizes: 6.7B, 13.0B, 32.5B, 65.2B parameters (Touvron et al. 2023, Table 2)."""
    counts = {k: repro.finetune_memory_gb(s, 64, 4.127)["params_B"] for k, s in repro.llama_shapes().items()}
    np.testing.assert_allclose([counts[k] for k in ("7B", "13B", "33B", "65B")], [6.74, 13.02, 32.53, 65.29], atol=0.02)


def test_memory_accounting_by_hand_for_65b():
    m = repro.finetune_memory_gb(repro.llama_shapes()["65B"], 64, 4.127)
    d, n, f, v = 8192, 80, 22016, 32000
    linear = n * (4 * d * d + 3 * d * f)
    other = 2 * v * d + 2 * n * d + d
    adapters = n * 64 * (8 * d + 3 * (d + f))
    assert m["full_16bit"] == pytest.approx(12 * (linear + other) / 1e9)  # bf16 w + g, fp32 Adam m, v
    assert m["qlora"] == pytest.approx((4.127 / 8 * linear + 2 * other + 12 * adapters) / 1e9)
    assert m["full_16bit"] > 780 and m["qlora"] < 48  # the paper's headline, from our accounting


def test_datatype_errors_follow_the_closed_form_for_int4():
    """Int4 on uniform data with absmax 1 per block: error uniform on ±1/14, RMS 1/(14·√3) relative
    to absmax; NF4 is best on normal data."""
    w = jax.random.uniform(jax.random.key(0), (256, 256), minval=-1, maxval=1)
    w = w.at[:, 0].set(1.0)
    err = repro.datatype_errors(w, 256)  # one block per row, each with absmax exactly 1
    rms_w = float(np.sqrt(np.mean(np.asarray(w) ** 2)))
    assert err["Int4"] * rms_w == pytest.approx(1 / (14 * np.sqrt(3)), rel=0.05)
    normal = repro.datatype_errors(jax.random.normal(jax.random.key(1), (256, 256)), 64)
    assert normal["NF4"] < normal["Int4"] < normal["FP4"] and normal["NF4+DQ"] == pytest.approx(normal["NF4"], rel=1e-3)


def check_run(result, config, workdir):
    """End-to-end checks, run on the notebook's run by tests/test_notebooks.py (one run per session)."""
    assert [f.claim for f in result.findings] == [c.key for c in repro.CLAIMS]
    assert (workdir / "qlora.png").read_bytes()[:4] == b"\x89PNG"
    m = result.metrics
    assert set(m["finetune"]) == set(config.finetune.methods) and set(m["perplexity"]) == set(repro.DATATYPES)
    # LoRA adapters of rank r on the 6 kernels of each layer: q, k, v, o (d -> d) and the MLP's two (d <-> d_ff)
    d, d_ff, r = config.model.d_model, config.model.d_ff, config.finetune.rank
    n_adapter = config.model.num_layers * r * (4 * 2 * d + 2 * (d + d_ff))
    total = repro._model_config(config, repro._tasks(config)[1]).num_params() + n_adapter
    assert m["finetune"]["qlora"]["trainable_fraction"] == pytest.approx(n_adapter / total)
    assert m["bits_per_param"]["NF4"] == pytest.approx(4.5, abs=1e-4)
    # verdicts of the claims that hold at any size: NF4 storage and the trainable fraction
    assert result.findings[2].passed and result.findings[3].passed
    # the run resumes: a second call finds every training run's final checkpoint
    again = repro.run(config, workdir, progress=False)
    assert again.metrics["pretrain_resumed_from"] == config.pretrain.num_steps
    assert again.metrics["finetune"] == m["finetune"]
