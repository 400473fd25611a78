"""Every tutorial notebook runs top to bottom in a fresh kernel without an error.

The notebooks are executed in memory and never written back; the figures they
save go to a temporary folder (through ``MINIVAE_FIGURES``), so running the tests
leaves the repository untouched. New notebooks in tutorials/ are picked up
automatically. To refresh the stored outputs, run ``python tutorials/run_all.py``.
"""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

TUTORIALS = Path(__file__).resolve().parent.parent / "tutorials"
NOTEBOOKS = sorted(TUTORIALS.glob("*.ipynb"))
#: Seconds a single cell may take; each notebook is meant to finish well within a minute.
CELL_TIMEOUT = 240


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_without_error(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    env = os.environ.copy()
    env["MINIVAE_FIGURES"] = str(tmp_path)
    env.setdefault("MPLBACKEND", "Agg")
    # Small matrices: BLAS threads only add overhead, and the cores may be shared.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    client = NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                            resources={"metadata": {"path": str(TUTORIALS)}})
    client.execute(env=env)  # raises CellExecutionError, with the cell and traceback, on failure
    errors = [o for cell in nb.cells if cell.cell_type == "code"
              for o in cell.get("outputs", []) if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_is_stored_with_its_outputs(path):
    # Readers browse the notebooks on a code-hosting site: every code cell must have
    # been run, in order, and no stored output may be an error.
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), \
        f"{path.name} is not stored fully executed; run python tutorials/run_all.py {path.stem}"
    assert not any(o.output_type == "error" for c in cells for o in c.outputs)
