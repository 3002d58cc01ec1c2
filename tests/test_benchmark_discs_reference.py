"""benchmarks/discs_reference.py: its rows are DISCS' recorded configurations, its table's numbers, its
argument errors, and our side of the timing end to end at a tiny size (DISCS' side needs DISCS' code
and an old JAX in another venv, so it runs outside CI; benchmarks/README.md has its output)."""

import importlib.util
import json

import pytest


def _load(repo_root, name):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", repo_root / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ref(repo_root):
    return _load(repo_root, "discs_reference")


def test_rows_are_discs_recorded_configs(ref, repo_root):
    bench = _load(repo_root, "discs")
    recorded = {r["sampler"]: r["sampler_config"] for r in json.loads(bench.DISCS_RESULTS.read_text())["rows"]}
    assert ref.discs_name("dlmcf_ratio") == "a_dlmcf(ratio)" and ref.discs_name("pas_sqrt") == "a_path_auxiliary(sqrt)"
    for row, (name, balancing, extra) in ref.ROWS.items():
        config = recorded[ref.discs_name(row)]  # each row is one of DISCS' recorded runs (so has our variant)
        assert config["balancing_fn_type"] == balancing, row
        assert all(config[k] == v for k, v in extra.items()), row
    assert len({ref.discs_name(row) for row in ref.ROWS}) == len(ref.ROWS)


def test_table_ranges_and_ratios_of_medians_and_minima(ref):
    runs = lambda *v: [{"cpu_ms_per_step": x} for x in v]
    results = [{"impl": "discs", "row": "dmala_sqrt", "runs": runs(6.0, 9.0, 6.5)},
               {"impl": "ours", "row": "dmala_sqrt", "runs": runs(4.0, 3.0)},
               {"impl": "discs", "row": "gwg_sqrt", "runs": runs(30.0)}]  # no ours: no line
    lines = ref.table(results).splitlines()
    assert len(lines) == 3
    assert lines[2] == "| DMALA √t | 6.0–9.0 | 3.0–4.0 | 1.86x | 2.00x |"  # 6.5 / 3.5, 6 / 3


def test_bad_arguments_name_the_flag(ref, capsys, tmp_path):
    with pytest.raises(SystemExit):
        ref.main(["ours", "--rows", "dmala_sqrt,nope"])
    assert "--rows: unknown ['nope']" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ref.main(["discs", "--discs-repo", str(tmp_path)])
    assert "--discs-repo must be a clone of google-research/discs" in capsys.readouterr().err
    (tmp_path / "discs").mkdir()
    with pytest.raises(SystemExit):
        ref.main(["compare", "--discs-repo", str(tmp_path), "--discs-python", str(tmp_path / "python")])
    assert "--discs-python must be the python executable" in capsys.readouterr().err


def test_ours_side_end_to_end(ref, capsys):
    ref.main(["ours", "--rows", "dmala_sqrt,dlmcf_ratio", "--side", "4", "--chains", "2", "--steps", "3",
              "--repeats", "2"])
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["impl"], r["row"], len(r["runs"])) for r in out] == [("ours", "dmala_sqrt", 2), ("ours", "dlmcf_ratio", 2)]
    assert all(r["cpu_ms_per_step"] > 0 and r["wall_ms_per_step"] > 0 for o in out for r in o["runs"])
