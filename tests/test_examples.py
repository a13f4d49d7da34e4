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


def test_script_figures_without_topo_figures_write_nothing_anywhere(tmp_path, monkeypatch,
                                                                   capsys):
    import tempfile

    monkeypatch.delenv("TOPO_FIGURES", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # where mkdtemp would go
    (tmp_path / "tmp").mkdir()
    fig, ax = plt.subplots()
    save = examples.script_figures("topo-test-nb", enabled=True)
    assert save(ax, "a.png") is None and save(fig, "b.png") is None
    assert capsys.readouterr().out.splitlines() == [
        "figures of topo-test-nb are not saved; set TOPO_FIGURES=FOLDER to keep them"]
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["tmp"]
    plt.close(fig)


def test_notebook_copies_made_by_jupytext_are_ignored_by_git():
    import shutil
    import subprocess

    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "notebooks/02_topology_evolution.ipynb"],
                             cwd=REPO, check=False).returncode
    kept = subprocess.run(["git", "check-ignore", "-q", "notebooks/02_topology_evolution.py"],
                          cwd=REPO, check=False).returncode
    assert (ignored, kept) == (0, 1)


def test_the_readme_says_how_to_get_jupyter_for_the_notebooks():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert ".venv/bin/pip install jupyterlab && .venv/bin/jupyter lab notebooks/" in readme
