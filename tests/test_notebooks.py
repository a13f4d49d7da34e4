"""The notebooks in notebooks/ run from top to bottom on the example run in data/.

The three notebooks are executed once each, one after the other, in one Jupyter kernel started
outside the repository (its namespace reset before each notebook: a fresh notebook, without
paying three kernel start-ups and their imports), as a user opens them: the test checks what
Jupyter shows (inline figures, the key printed results, no error) and that nothing is written
where the kernel was started. What differs when a notebook runs as a plain script is its first
cell's two helpers, :func:`topo.examples.example_run` given the notebook's folder and
``script_figures(enabled=True)`` saving into ``$TOPO_FIGURES``: tests/test_examples.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))

#: What each notebook prints: a line of each key result.
KEY_OUTPUT = {
    "01_compare_two_checkpoints": ["NNSTD distance: 0.7120", "aligned_jaccard",
                                   "jaccard_aligned", "epoch_0015"],
    "02_topology_evolution": ["nnstd_to_first", "constant pixels: [ 0 32 39]", "layers.2"],
    "03_persistence_and_interactions": ["normalized", "pairs per diagram: [164, 200, 110]",
                                        "strength"],
}
#: How many figures each notebook draws.
FIGURES = {"01_compare_two_checkpoints": 2, "02_topology_evolution": 3,
           "03_persistence_and_interactions": 4}


@pytest.fixture(scope="module")
def executed(tmp_path_factory) -> dict[str, Any]:
    """Per notebook: its code cells' outputs; and what is in the kernel's folder after."""
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
        combined.cells.append(nbformat.v4.new_code_cell("%reset -f"))
        start = len(combined.cells)
        combined.cells.extend(jupytext.read(path).cells)
        spans[path.stem] = (start, len(combined.cells))
    env_backend = os.environ.pop("MPLBACKEND", None)  # the kernel's own inline backend
    try:
        NotebookClient(combined, timeout=180, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(cwd)}}).execute()
    finally:
        if env_backend is not None:
            os.environ["MPLBACKEND"] = env_backend
    out = {}
    for stem, (start, stop) in spans.items():
        cells = [c for c in combined.cells[start:stop] if c.cell_type == "code"]
        out[stem] = [o for c in cells for o in c.get("outputs", [])]
    out["cwd"] = sorted(p.name for p in cwd.iterdir())
    return out


def test_the_three_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == list(KEY_OUTPUT)


@pytest.mark.slow
@pytest.mark.parametrize("stem", list(KEY_OUTPUT))
def test_notebook_runs_draws_and_prints_its_results(stem, executed):
    outputs = executed[stem]
    errors = [o for o in outputs if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue") if errors else ""
    assert sum("image/png" in o.get("data", {}) for o in outputs) == FIGURES[stem]
    printed = "".join(o.get("text", "") for o in outputs if o.get("output_type") == "stream")
    for key in KEY_OUTPUT[stem]:
        assert key in printed, key
    assert executed["cwd"] == []  # nothing saved, and nothing where the kernel was started
