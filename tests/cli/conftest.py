"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def drawn(monkeypatch) -> dict[str, Any]:
    """The figures the commands save, by file name, kept open so that a test can read their
    artists (labels, titles, ticks and the data drawn) instead of their pixels."""
    import matplotlib.pyplot as plt

    import topo.cli._output as output

    figures: dict[str, Any] = {}

    def keep(fig: Any, path: str | Path) -> Path:
        path = output.check_figure_path(path)
        fig.savefig(path)
        figures[path.name] = fig
        return path

    monkeypatch.setattr(output, "save_figure", keep)
    yield figures
    plt.close("all")


@pytest.fixture
def help_text(capsys, monkeypatch):
    """``help_text("compare")``: what ``topo compare --help`` prints at an 80-column terminal
    (the width argparse takes when no terminal is attached), its white space collapsed; the
    command must exit 0."""
    from topo.cli import main

    def run(command: str) -> str:
        monkeypatch.setenv("COLUMNS", "80")
        with pytest.raises(SystemExit) as exited:
            main([command, "--help"])
        assert exited.value.code == 0
        return " ".join(capsys.readouterr().out.split())

    return run
