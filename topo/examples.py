"""The example run shipped in ``data/``, and figure saving for notebooks run as scripts.

The notebooks in ``notebooks/`` and the README read ``data/example-run``, a small SET run on
digits made by ``topo train`` (see ``data/README.md``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from topo.errors import UnreadableFileError

__all__ = ["EXAMPLE_RUN_COMMAND", "example_run", "script_figures"]

EXAMPLE_RUN_COMMAND = ("topo train --method set --dataset digits --arch 64-100-100-10 "
                       "--epochs 15 --epsilon 5 --seed 0 --out data/example-run")


def example_run(*starts: str | Path) -> Path:
    """The folder ``data/example-run`` of a topo checkout.

    Searched above each of ``starts`` (e.g. a notebook's own folder), then above the current
    folder, then above the installed ``topo`` package (a checkout installed in editable mode,
    as ``make`` does), so a notebook finds it wherever its kernel was started.

    Raises
    ------
    UnreadableFileError
        No ``data/example-run/run.json`` in any of those places; the message gives the
        command that makes the run.
    """
    places = [Path(s).resolve() for s in starts]
    places += [Path.cwd(), Path(__file__).resolve().parent]
    for start in places:
        for folder in (start, *start.parents):
            run = folder / "data" / "example-run"
            if (run / "run.json").is_file():
                return run
    raise UnreadableFileError(
        f"data/example-run not found above {', '.join(map(str, places))}; run from a topo "
        f"checkout, or make the run with: {EXAMPLE_RUN_COMMAND}")


def script_figures(prefix: str, *, enabled: bool) -> Callable[[Any, str], Path | None]:
    """A ``save(drawn, name)`` function for notebooks that also run as plain scripts.

    With ``enabled`` (pass ``"__file__" in globals()`` from the notebook: true when it runs as
    a script) and ``$TOPO_FIGURES`` set, each figure is saved as ``name`` in that folder
    (made when missing) and its path printed. Without ``$TOPO_FIGURES`` nothing is written
    anywhere (a run leaves no folder behind) and the first figure prints how to keep them. In
    Jupyter (``enabled=False``) figures show inline and nothing is saved. ``drawn`` is an
    Axes, an array of Axes or a Figure. ``prefix`` names the notebook in the printed note.
    """
    told: list[bool] = []

    def save(drawn: Any, name: str) -> Path | None:
        if not enabled:
            return None
        env = os.environ.get("TOPO_FIGURES")
        if not env:
            if not told:
                told.append(True)
                print(f"figures of {prefix} are not saved; set TOPO_FIGURES=FOLDER to keep "
                      "them")
            return None
        folder = Path(env)
        folder.mkdir(parents=True, exist_ok=True)
        first = drawn.ravel()[0] if hasattr(drawn, "ravel") else drawn
        figure = getattr(first, "figure", first)
        path = folder / name
        figure.savefig(path, dpi=120, bbox_inches="tight")
        print(f"figure: {path}")
        return path

    return save
