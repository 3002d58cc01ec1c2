import json

import numpy as np
import pytest

from nips23jax.scaling import load_runs, runs_from_records


def test_csv_and_json_layouts(tmp_path):
    csv = tmp_path / "runs.csv"
    csv.write_text("name,params,tokens,unique_tokens,final_loss\na,1e8,2e9,1e9,3.1\nb,2e8,1e9,4e9,3.0\n")
    t = load_runs(csv)
    assert t.name == ("a", "b") and len(t) == 2
    np.testing.assert_array_equal(t.N, [1e8, 2e8])
    np.testing.assert_array_equal(t.U_D, [1e9, 4e9])   # D < U_D (run b) is valid
    rows = tmp_path / "rows.json"
    rows.write_text(json.dumps([["a", 1e8, 2e9, 1e9, 3.1], ["b", 2e8, 1e9, 4e9, 3.0]]))
    cols = tmp_path / "cols.json"
    cols.write_text(json.dumps({"N": [1e8, 2e8], "D": [2e9, 1e9], "U_D": [1e9, 4e9], "loss": [3.1, 3.0]}))
    for path in (rows, cols):
        u = load_runs(path)
        for f in ("N", "D", "U_D", "loss"):
            np.testing.assert_array_equal(getattr(u, f), getattr(t, f))


@pytest.mark.parametrize("loss,match", [("nan", "row 1 column 'loss' is NaN"), ("-2", "row 1 column 'loss' must be finite and > 0"),
                                        ("", "row 1 column 'loss' is missing"), ("abc", "not a number")])
def test_bad_values_name_row_and_column(tmp_path, loss, match):
    p = tmp_path / "runs.csv"
    p.write_text(f"N,D,U_D,loss\n1e8,2e9,1e9,3.1\n1e8,2e9,1e9,{loss}\n")
    with pytest.raises(ValueError, match=match):
        load_runs(p)


def test_bad_layouts(tmp_path):
    with pytest.raises(ValueError, match="no column for 'U_D'"):
        runs_from_records([{"N": 1, "D": 1, "loss": 1}])
    with pytest.raises(ValueError, match="no runs"):
        runs_from_records([])
    with pytest.raises(ValueError, match="unsupported file type"):
        (tmp_path / "x.txt").write_text("")
        load_runs(tmp_path / "x.txt")
    with pytest.raises(ValueError, match="row 0 column 'N' must be finite"):
        runs_from_records([[0, 1, 1, 1]])
    (tmp_path / "cols.json").write_text('{"N": [1e9], "D": [1e10], "U_D": [1e10], "loss": 3.0}')
    with pytest.raises(ValueError, match=r"\['loss'\] are not lists"):  # was a TypeError naming no column
        load_runs(tmp_path / "cols.json")
