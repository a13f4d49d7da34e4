"""Options several commands share (standard library only: ``topo --help`` stays fast)."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_snapshot_options", "snapshot_choice", "snapshot_lines"]


def add_snapshot_options(p: argparse.ArgumentParser, *, both: bool = False) -> None:
    """``--best``, ``--epoch N`` and ``--level L``: which snapshot of a run or a folder of
    checkpoints a command that reads one network reads (by default the last)."""
    which = "each run or folder" if both else "a run or folder"
    group = p.add_argument_group(
        "which snapshot",
        f"{which.capitalize()} stands for one of its snapshots: the last unless one of these "
        "says otherwise; the command says which it read.")
    choice = group.add_mutually_exclusive_group()
    choice.add_argument("--best", action="store_true",
                        help=f"the best snapshot {which} records in run.json (lowest "
                             "validation loss when it used early stopping, else its last)")
    choice.add_argument("--epoch", type=int, metavar="N",
                        help="the snapshot of epoch N (with pruning levels, add --level)")
    group.add_argument("--level", type=int, metavar="L",
                       help="the pruning level (IMP): with --epoch that level's epoch N, "
                            "alone the level's last snapshot")


def snapshot_choice(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`topo.io.load` that the options above chose."""
    return {"epoch": args.epoch, "level": args.level, "best": args.best}


def snapshot_lines(graph: Any, prefix: str = "") -> list[str]:
    """``snapshot: FILE (which and why)`` and a ``note:`` when a run or folder was read as
    one of its snapshots; nothing for a single network."""
    meta = graph.metadata
    if "snapshot_choice" not in meta:
        return []
    lines = [f"{prefix}snapshot: {meta['snapshot']} ({meta['snapshot_choice']})"]
    if meta.get("snapshot_note"):
        lines.append(f"{prefix}note: {meta['snapshot_note']}")
    return lines
