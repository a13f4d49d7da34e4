"""topo.examples: finding the example run, and saving figures of notebooks run as scripts."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pytest

from topo import examples
from topo.errors import UnreadableFileError

REPO = Path(__file__).resolve().parents[1]


def test_example_run_found_from_an_unrelated_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert examples.example_run(tmp_path) == REPO / "data" / "example-run"


def test_missing_example_run_names_the_command(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(examples, "__file__", str(tmp_path / "pkg" / "examples.py"))
    with pytest.raises(UnreadableFileError, match="topo train --method set"):
        examples.example_run()


def test_script_figures_saves_only_when_enabled(tmp_path, monkeypatch):
    monkeypatch.setenv("TOPO_FIGURES", str(tmp_path / "figs"))
    fig, ax = plt.subplots()
    assert examples.script_figures("t", enabled=False)(ax, "a.png") is None
    assert not (tmp_path / "figs").exists()
    path = examples.script_figures("t", enabled=True)(ax, "a.png")
    assert path == tmp_path / "figs" / "a.png" and path.stat().st_size > 0
    plt.close(fig)
