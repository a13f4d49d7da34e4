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


def test_a_notebook_run_as_a_script_finds_the_run_from_its_own_folder(tmp_path, monkeypatch):
    # the first cell of every notebook: example_run(Path(__file__).parent) when a script
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(examples, "__file__", str(tmp_path / "pkg" / "examples.py"))
    assert examples.example_run(REPO / "notebooks") == REPO / "data" / "example-run"


def test_script_figures_go_to_a_new_temporary_folder_without_topo_figures(monkeypatch, capsys):
    monkeypatch.delenv("TOPO_FIGURES", raising=False)
    fig, ax = plt.subplots()
    save = examples.script_figures("topo-test-nb", enabled=True)
    first = save(ax, "a.png")
    second = save(fig, "b.png")  # a Figure works too, and lands in the same folder
    assert first.parent == second.parent and first.parent.name.startswith("topo-test-nb-")
    assert capsys.readouterr().out.splitlines() == [f"figure: {first}", f"figure: {second}"]
    plt.close(fig)
    for path in (first, second):
        path.unlink()
    first.parent.rmdir()
