"""Every notebook in ``colab/``: saved clean, installs itself on Colab, and runs top to bottom.

The execution test runs each notebook in a fresh ``python3`` kernel (jupyter_client resolves the
kernelspec's ``python`` to the interpreter running pytest, so the kernel sees this environment)
with its working directory in ``tmp_path``, so nothing lands in the repository. It uses the quick
config (``NIPS23JAX_QUICK=1``) cut short through ``NIPS23JAX_NOTEBOOK_OVERRIDES`` to stay within
seconds; with the run cut short a claim may not be met, so the test checks that the verdicts are
shown, not that they pass (the reproductions' own tests check the verdicts).

A notebook's run is also its reproduction's end-to-end test: where
``tests/reproductions/test_<notebook stem>.py`` defines ``check_run(result, config, workdir)``, the
test hands it the notebook's ``Result``, config and output directory after the run, so the
reproduction is run once per test session rather than once here and once in its own test.
"""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "colab").glob("*.ipynb"))
PIP_FALLBACK = "nips23jax @ git+https://github.com/nips23jax/nips23jax"

# Per-notebook overrides that keep the execution test short (the saved notebook runs the real quick
# config): tests/notebook_overrides/<notebook stem>.txt, one "key=value" per line, "#" comments.
OVERRIDES_DIR = Path(__file__).resolve().parent / "notebook_overrides"


def _fast_overrides(path: Path) -> str:
    f = OVERRIDES_DIR / f"{path.stem}.txt"
    if not f.is_file():
        return ""
    lines = (line.split("#", 1)[0].strip() for line in f.read_text().splitlines())
    return " ".join(line for line in lines if line)


def _run_check(path: Path):
    """``check_run`` of the notebook's reproduction test module, or None."""
    f = REPO / "tests" / "reproductions" / f"test_{path.stem}.py"
    if not f.is_file():
        return None
    spec = importlib.util.spec_from_file_location(f"_notebook_check_{path.stem}", f)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, "check_run", None)


# Appended to the notebook under test when its reproduction has a check_run: hands the run back.
_SAVE_RUN = """import pickle as _pickle
with open("_notebook_run.pkl", "wb") as _f:
    _pickle.dump({"result": result, "config": cfg, "workdir": str(Path(workdir).resolve())}, _f)
"""


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _ids(paths):
    return [p.name for p in paths]


def _reproductions():
    import nips23jax.reproductions  # noqa: F401 - registers the reproductions
    from nips23jax.core import reproduce

    return [reproduce.get(name) for name in reproduce.names()]


def test_every_reproduction_has_its_notebook():
    assert NOTEBOOKS, "no notebooks in colab/"
    for r in _reproductions():
        assert r.notebook is not None, f"reproduction {r.name} names no notebook"
        assert (REPO / r.notebook) in NOTEBOOKS, f"reproduction {r.name}: {r.notebook} is not in colab/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_is_saved_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    for i, cell in enumerate(_code_cells(nb)):
        assert cell.outputs == [], f"{path.name}: code cell {i} has stored outputs; clear them before saving"
        assert cell.execution_count is None, f"{path.name}: code cell {i} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_installs_itself_when_missing(path):
    first = _code_cells(nbformat.read(path, as_version=4))[0].source
    assert "import nips23jax" in first and "except ImportError" in first, first
    assert "pip" in first and PIP_FALLBACK in first, first
    # The install must sit under the except branch, not run unconditionally.
    assert first.index("except ImportError") < first.index(PIP_FALLBACK)


def _texts(nb) -> list[str]:
    """Every text an executed notebook shows: streams, and text/plain or text/markdown data."""
    out = []
    for cell in _code_cells(nb):
        for o in cell.outputs:
            if o.output_type == "stream":
                out.append(o.text)
            elif o.output_type in ("display_data", "execute_result"):
                out += [o.data[k] for k in ("text/plain", "text/markdown") if k in o.data]
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=_ids(NOTEBOOKS))
def test_notebook_runs(path, tmp_path, monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)  # one device in the kernel, as a Colab CPU has
    monkeypatch.setenv("NIPS23JAX_QUICK", "1")
    monkeypatch.setenv("NIPS23JAX_NOTEBOOK_OVERRIDES", _fast_overrides(path))
    # The kernel inherits the run-wide compilation cache of tests/conftest.py: a notebook rebuilds what
    # its run compiled (to restore the trained state), and its reproduction's own test compiled much of it.
    nb = nbformat.read(path, as_version=4)
    check = _run_check(path)
    if check is not None:
        nb.cells.append(nbformat.v4.new_code_cell(_SAVE_RUN))
    client = NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(tmp_path / "cwd")}}
    )
    (tmp_path / "cwd").mkdir()
    client.execute()  # raises CellExecutionError naming the failing cell

    texts = _texts(nb)
    joined = "\n".join(texts)
    assert "QUICK = True" in joined, f"{path.name}: NIPS23JAX_QUICK=1 did not select the quick config"
    # The findings table: a row per claim of the notebook's reproduction, with its verdict.
    rows = [line for t in texts for line in t.splitlines() if line.startswith("|")]
    claims = [c.key for r in _reproductions() if REPO / r.notebook == path for c in r.claims]
    assert claims, f"{path.name}: no registered reproduction names this notebook"
    for key in claims:
        assert any(row.startswith(f"| {key} |") and "reproduced |" in row for row in rows), (
            f"{path.name}: no verdict shown for claim {key!r}; table rows: {rows}"
        )
    pngs = [o for c in _code_cells(nb) for o in c.outputs if "image/png" in o.get("data", {})]
    assert pngs, f"{path.name}: no inline plot"
    # The run wrote into the notebook's working directory, not into the repository.
    assert list((tmp_path / "cwd").rglob("metrics.jsonl")), sorted(map(str, (tmp_path / "cwd").rglob("*")))[:20]
    if check is not None:
        with open(tmp_path / "cwd" / "_notebook_run.pkl", "rb") as f:
            run = pickle.load(f)
        check(run["result"], run["config"], Path(run["workdir"]))
