"""notebooks/latent_space.ipynb runs top to bottom on the embedded default."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbclient
import nbformat
import pytest

from tests.conftest import PROJECT_ROOT

NOTEBOOK = PROJECT_ROOT / "notebooks" / "latent_space.ipynb"
FIGURE_CELLS = 6  # scatter, manifold, interpolation, reconstructions, posteriors,
# nearest neighbours


def test_notebook_is_committed_without_outputs():
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None


@pytest.fixture(scope="module")
def trained_project(tracked_project: Path) -> Path:
    """The shared project where the default ``kedro run`` ran (the notebook only
    reads the catalog), with the notebook copied in."""
    (tracked_project / "notebooks").mkdir(exist_ok=True)
    shutil.copy(NOTEBOOK, tracked_project / "notebooks")
    return tracked_project


def test_notebook_executes_and_draws_every_figure(trained_project, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    folder = trained_project / "notebooks"
    notebook = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
        allow_errors=True,  # to report the failing cell's error below
    ).execute()
    outputs = [
        o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
    ]
    # Kedro's IPython extension renders errors with rich, as display data.
    errors = [
        o.get("data", {}).get("text/plain", f"{o.get('ename')}: {o.get('evalue')}")
        for o in outputs
        if o.output_type == "error" or "Traceback" in str(o.get("data", {}))
    ]
    assert not errors, errors[0][-3000:]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == FIGURE_CELLS
