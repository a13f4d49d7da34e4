"""The ``topo`` command: parse arguments, call the Python API, print or write results.

Each sub-command lives in a module of this package that defines ``register(subparsers)``
(and an integer ``ORDER`` for its place in ``topo --help``). Those modules import only the
standard library at the top, so ``topo --help`` starts fast; heavy work is imported inside
the command functions.

Conventions every command follows: a readable table by default, ``--json`` for machine
output on stdout, and user errors as one line on stderr with a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from topo import __version__
from topo.errors import TopoError

__all__ = ["main", "build_parser"]

EXIT_USER_ERROR = 1


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every sub-command of this package registered."""
    parser = argparse.ArgumentParser(
        prog="topo",
        description="Explore the topology of sparse neural networks: read checkpoints as "
                    "layered graphs, compare topologies (NNSTD), follow their evolution "
                    "during training, and read interactions from persistent homology.",
    )
    parser.add_argument("--version", action="version", version=f"topo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    modules = []
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        modules.append(importlib.import_module(f"{__name__}.{info.name}"))
    for module in sorted(modules, key=lambda m: (getattr(m, "ORDER", 100), m.__name__)):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``topo`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        result = args.func(args)
    except TopoError as exc:
        print(f"topo {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"topo {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    return int(result or 0)
