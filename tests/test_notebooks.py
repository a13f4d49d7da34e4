"""The notebooks in notebooks/ run from top to bottom on the example run in data/.

The three notebooks are executed once each, one after the other, in one Jupyter kernel started
outside the repository (its namespace reset before each notebook: a fresh notebook, without
paying three kernel start-ups and their imports). Each runs with ``__file__`` set as a plain
``python notebook.py`` run has it, so one execution checks what Jupyter shows (inline figures,
no error), what the script mode prints and saves (``$TOPO_FIGURES``), and that nothing is
written where the kernel was started. The Jupyter-only branch of the notebooks' first cell
(find the run from the kernel's folder, save nothing) is :func:`topo.examples.example_run`
without arguments and ``script_figures(enabled=False)``, tested in tests/test_examples.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))

#: What each notebook prints: a line of each key result.
KEY_OUTPUT = {
    "01_compare_two_checkpoints": ["NNSTD distance: 0.7060", "aligned_jaccard",
                                   "jaccard_aligned", "epoch_0015"],
    "02_topology_evolution": ["nnstd_to_first", "constant pixels: [ 0 32 39]", "layers.2"],
    "03_persistence_and_interactions": ["normalized", "pairs per diagram: [164, 200, 110]",
                                        "strength"],
}
FIGURES = {
    "01_compare_two_checkpoints": {"comparison.png", "distance_matrix.png"},
    "02_topology_evolution": {"evolution.png", "input_connectivity.png", "embedding.png"},
    "03_persistence_and_interactions": {"neural_persistence.png", "persistence_diagrams.png",
                                        "barcode.png", "interactions.png"},
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, Any]:
    """Per notebook: its code cells' outputs, the figures it saved, and the kernel's folder."""
    import os

    import jupytext
    import nbformat
    from nbclient import NotebookClient

    root = tmp_path_factory.mktemp("notebooks")
    cwd = root / "elsewhere"
    cwd.mkdir()
    combined = nbformat.v4.new_notebook()
    spans = {}
    for path in NOTEBOOKS:
        figures = root / path.stem
        setup = (f"%reset -f\nimport os\nos.environ['TOPO_FIGURES'] = {str(figures)!r}\n"
                 f"__file__ = {str(path)!r}")
        combined.cells.append(nbformat.v4.new_code_cell(setup))
        start = len(combined.cells)
        combined.cells.extend(jupytext.read(path).cells)
        spans[path.stem] = (start, len(combined.cells), figures)
    env_backend = os.environ.pop("MPLBACKEND", None)  # the kernel's own inline backend
    try:
        NotebookClient(combined, timeout=180, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
    out = {}
    for stem, (start, stop, figures) in spans.items():
        cells = [c for c in combined.cells[start:stop] if c.cell_type == "code"]
        outputs = [o for c in cells for o in c.get("outputs", [])]
        saved = {p.name for p in figures.iterdir()} if figures.is_dir() else set()
        out[stem] = {"outputs": outputs, "figures": saved}
    out["cwd"] = sorted(p.name for p in cwd.iterdir())
    return out


def test_the_three_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == list(KEY_OUTPUT)


@pytest.mark.slow
@pytest.mark.parametrize("stem", list(KEY_OUTPUT))
def test_notebook_runs_draws_prints_and_saves_its_figures(stem, executed):
    outputs = executed[stem]["outputs"]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    assert any("image/png" in o.get("data", {}) for o in outputs)
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    for key in KEY_OUTPUT[stem]:
        assert key in printed, key
    assert executed[stem]["figures"] == FIGURES[stem]
    assert executed["cwd"] == []  # nothing written where the kernel was started
