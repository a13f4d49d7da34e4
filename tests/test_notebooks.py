"""The notebooks in notebooks/ run from top to bottom on the example run in data/, in Jupyter
and as plain scripts, from inside the repository or from any other folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))

#: What each notebook prints when run as a script: a line of each key result.
KEY_OUTPUT = {
    "01_compare_two_checkpoints": ["NNSTD distance:", "aligned_jaccard", "epoch_0015"],
    "02_topology_evolution": ["nnstd_to_first", "constant pixels:", "layers.2"],
    "03_persistence_and_interactions": ["normalized", "pairs per diagram:", "strength"],
}
FIGURES = {
    "01_compare_two_checkpoints": {"comparison.png", "distance_matrix.png"},
    "02_topology_evolution": {"evolution.png", "input_connectivity.png", "embedding.png"},
    "03_persistence_and_interactions": {"neural_persistence.png", "persistence_diagrams.png",
                                        "barcode.png", "interactions.png"},
}


def test_the_three_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == list(KEY_OUTPUT)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_and_draws_in_a_kernel_started_outside_the_repository(path, tmp_path):
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(path)
    NotebookClient(notebook, timeout=120, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code"
               for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert list(tmp_path.iterdir()) == []  # nothing saved in Jupyter


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_as_a_script_from_another_folder_prints_its_results(path, tmp_path):
    cwd, figures = tmp_path / "elsewhere", tmp_path / "figures"
    cwd.mkdir()
    env = {**os.environ, "TOPO_FIGURES": str(figures), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(path)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    for key in KEY_OUTPUT[path.stem]:
        assert key in proc.stdout, key
    assert {p.name for p in figures.iterdir()} == FIGURES[path.stem]
    assert list(cwd.iterdir()) == []  # nothing written where it was started
