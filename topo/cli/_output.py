"""Printing helpers of the command line.

The writers themselves (JSON values, CSV files, text tables, figures, the checks of output
paths before any work) live in :mod:`topo.io.tables` and :mod:`topo.io.export`; they are
re-exported here for the command modules.
"""

from __future__ import annotations

import sys
from typing import Any

from topo.io.export import (
    FIGURE_SUFFIXES,
    check_figure_path,
    check_output_path,
    check_outputs,
    save_figure,
)
from topo.io.tables import format_table, json_text, records, to_jsonable, write_csv

__all__ = ["print_json", "print_lines", "count", "FIGURE_SUFFIXES", "check_figure_path",
           "check_output_path", "check_outputs", "save_figure", "format_table", "records",
           "to_jsonable", "write_csv"]


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout."""
    sys.stdout.write(json_text(obj))


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` with its noun in the right number: ``"1 pair"``, ``"2 pairs"``, ``"0 pairs"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {plural or noun + 's'}"


def print_lines(lines: list[str], *, to_stderr: bool = False) -> None:
    """Print ``lines`` (e.g. the ``wrote FILE`` notes), on stderr when stdout holds JSON."""
    for line in lines:
        print(line, file=sys.stderr if to_stderr else sys.stdout)
