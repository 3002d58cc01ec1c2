import json

import ml_collections
import pytest

from nips23jax.core import reproduce


def _fake(name="fake-test"):
    claims = (
        reproduce.Claim("a", "Claim A holds", "1.23", "ours within 10% of paper"),
        reproduce.Claim("b", "Claim B holds", None, "b > {config.seed}"),
    )

    def run(config, workdir, *, progress=True):
        return reproduce.Result(
            [reproduce.Finding("a", "1.20", True, "close"), reproduce.Finding("b", "-1", False)],
            metrics={"x": 1.5}, figures=["fig.png"], notes="some notes",
        )

    return reproduce.Reproduction(name, "a fake", "Someone et al. 2023", claims, "tiny_lm", run)


@pytest.fixture(autouse=True)
def _private_registry(monkeypatch):
    monkeypatch.setattr(reproduce, "_REGISTRY", dict(reproduce._REGISTRY))


def test_register_get_names():
    r = reproduce.register(_fake())
    assert reproduce.get("fake-test") is r and "fake-test" in reproduce.names()
    with pytest.raises(KeyError, match="unknown reproduction 'nope'; known: .*fake-test"):
        reproduce.get("nope")
    with pytest.raises(ValueError, match="duplicate claim keys"):
        reproduce.register(reproduce.Reproduction("dup", "", "", (r.claims[0], r.claims[0]), "x", r.run))


def test_write_report_and_summary(tmp_path):
    r = _fake()
    result = r.run(None, tmp_path)
    cfg = ml_collections.ConfigDict({"seed": 3})
    path = reproduce.write_report(r, result, cfg, tmp_path, command="nips23jax reproduce fake-test", elapsed_s=2.0)
    text = path.read_text()
    assert "| Claim A holds | 1.23 | 1.20 | reproduced | ours within 10% of paper |" in text
    assert "| Claim B holds | - | -1 | NOT reproduced | b > 3 |" in text
    assert "![fig](fig.png)" in text and "seed: 3" in text and "some notes" in text
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["passed"] is False and data["metrics"] == {"x": 1.5}
    assert data["claims"][0] == {
        "key": "a", "statement": "Claim A holds", "paper_value": "1.23", "criterion": "ours within 10% of paper",
        "ours": "1.20", "passed": True, "detail": "close",
    }
    table = reproduce.summary_table([(r, result)]).splitlines()
    assert table[0].split() == ["reproduction", "claim", "paper", "ours", "verdict"]
    assert table[2].split() == ["fake-test", "a", "1.23", "1.20", "reproduced"]
    assert table[3].split() == ["fake-test", "b", "-", "-1", "NOT", "reproduced"]


def test_write_report_requires_every_claim(tmp_path):
    r = _fake()
    partial = reproduce.Result([reproduce.Finding("a", "1", True)])
    with pytest.raises(ValueError, match=r"no finding for claims \['b'\]"):
        reproduce.write_report(r, partial, ml_collections.ConfigDict(), tmp_path)
